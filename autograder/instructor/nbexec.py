"""How a notebook is executed for grading: nbgrader's Execute, with our kernels and limits.

Imported only by the grading worker (it imports nbgrader, which takes seconds).

- ``FastReadyClient``: jupyter_client's kernel client, minus a fixed 0.2 s wait per start;
- ``ZygoteKernelManager``: kernels forked by the worker's zygote inside the sandbox
  (``zygote.py``) instead of a new Python per notebook;
- ``GradingExecute``: nbgrader's ``Execute`` with a time limit for the whole notebook, and a
  dead kernel graded up to the cell where it died;
- ``StderrIsNotFailure``: a warning printed by correct code does not zero its test cell;
- ``ExecutionLog``: what the two preprocessors noticed (events for the ledger, seconds spent
  in cells). A worker makes one and hands it to them through the config
  (``config.GradingExecute.execution_log``), not as an argument: nbclient loads the config
  again at every ``preprocess``, over what the constructor was given.
"""
import os
import shutil
import sys
import time
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Any, Integer, Unicode, default

from .nbcells import grade_id, is_test

ZYGOTE = Path(__file__).with_name("zygote.py")


class ExecutionLog:
    """Events of one execution ({"kind", "cell", "grade_id", ...}) and the seconds its cells took.

    Shared by the preprocessors that write it and the worker that reads it; nbgrader copies
    its configuration deeply, and a copy of the log is the log itself.
    """

    def __init__(self):
        self.events, self.cell_seconds = [], 0.0

    def reset(self):
        self.events, self.cell_seconds = [], 0.0

    def add(self, kind, index, cell, **more):
        self.events.append({"kind": kind, "cell": index, "grade_id": grade_id(cell), **more})

    def has(self, kind):
        return any(e["kind"] == kind for e in self.events)

    def __deepcopy__(self, memo):
        return self


class FastReadyClient(AsyncKernelClient):
    """jupyter_client's kernel client, except that waiting for a new kernel ends when it answers.

    The stock ``wait_for_ready`` always waits another 0.2 s for IOPub to stay quiet, twice
    per graded notebook; here what IOPub holds is flushed without waiting for more.
    """

    async def _async_wait_for_ready(self, timeout=None):
        deadline = time.monotonic() + (60 if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                msg = None
            if msg is not None and msg["msg_type"] == "kernel_info_reply":
                try:
                    await self.iopub_channel.get_msg(timeout=0.2)     # is IOPub connected?
                except Empty:
                    pass
                else:
                    self._handle_kernel_info_reply(msg)
                    break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=0.005)
            except Empty:
                break

    wait_for_ready = _async_wait_for_ready


class ZygoteKernelManager(AsyncKernelManager):
    """Starts kernels through the worker's zygote (in the sandbox) instead of a new Python."""
    socket_path = Unicode(None, allow_none=True, help="the zygote's control socket").tag(config=True)
    runtime_dir = Unicode(None, allow_none=True,
                          help="where kernels in the sandbox find their connection file").tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.socket_path is None or "-f" not in cmd:
            return cmd
        args = cmd[cmd.index("-f"):]
        visible = os.path.join(self.runtime_dir, os.path.basename(args[1]))
        shutil.copy(args[1], visible)    # the sandbox has a /tmp of its own
        return [sys.executable, str(ZYGOTE), "launch", self.socket_path, "-f", visible] + args[2:]

    @default("client_factory")
    def _fast_ready_client(self):
        return FastReadyClient

    async def _async_wait(self, pollinterval=0.1):
        # jupyter_client polls every 0.1 s whether a killed kernel is gone; the launcher
        # dies at once, so poll faster (0.1 s of each notebook's shutdown otherwise)
        await super()._async_wait(pollinterval=0.005)


def _error_output(ename, evalue):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class GradingExecute(Execute):
    """nbgrader's Execute with a notebook time limit, sandboxed kernels, and dead kernels graded.

    - a cell gets at most ``timeout`` seconds and never more than what is left of
      ``notebook_timeout``; cells after the limit are not run and fail with
      ``NotebookTimeLimit``;
    - when the kernel dies, the cell it was running and all later ones fail with
      ``DeadKernelError``; the cells before keep their results (nbgrader would drop the
      whole submission).
    """
    notebook_timeout = Integer(180, help="seconds for the whole notebook").tag(config=True)
    execution_log = Any(None, help="the ExecutionLog that events go to").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", ZygoteKernelManager)
        super().__init__(*args, **kwargs)
        if self.execution_log is None:
            self.execution_log = ExecutionLog()

    def _get_timeout(self, cell):
        left = max(1, int(self._deadline - time.monotonic()))
        return left if self.timeout is None else min(self.timeout, left)

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._current = None
        try:
            return super().preprocess(nb, resources, km=km)
        except DeadKernelError as err:
            index = self._current if self._current is not None else 0
            self.execution_log.add("dead-kernel", index, nb.cells[index], message=str(err)[:300])
            for cell in nb.cells[index:]:
                if cell.cell_type == "code":
                    cell.outputs.append(_error_output(
                        "DeadKernelError", "the kernel died while this notebook ran (os._exit, a crash, "
                                           "or memory); this cell did not run to its end"))
            return nb, resources

    def preprocess_cell(self, cell, resources, index):
        log = self.execution_log
        if cell.cell_type == "code" and time.monotonic() > self._deadline:
            if not log.has("notebook-time-limit"):
                log.add("notebook-time-limit", index, cell)
            cell.outputs = [_error_output("NotebookTimeLimit",
                                          f"not run: the notebook used up its {self.notebook_timeout} s")]
            return cell, resources
        self._current = index
        started = time.perf_counter()
        cell, resources = super().preprocess_cell(cell, resources, index)
        log.cell_seconds += time.perf_counter() - started
        if any(out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError"
               for out in cell.get("outputs", [])):
            log.add("cell-timeout", index, cell)
        return cell, resources


class StderrIsNotFailure(NbGraderPreprocessor):
    """nbgrader scores a test cell 0 when it wrote to stderr; a warning is not a failure.

    Streams to stderr are relabelled stdout (their text stays for the feedback); a test
    still fails when it raises.
    """
    execution_log = Any(None, help="the ExecutionLog that events go to").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if is_test(cell):
            streams = [out for out in cell.get("outputs", [])
                       if out.get("output_type") == "stream" and out.get("name") == "stderr"]
            for out in streams:
                out["name"] = "stdout"
            if streams and self.execution_log is not None:
                self.execution_log.add("stderr", index, cell)
        return cell, resources


def error_text(cell):
    """'Ename: evalue' of a cell's first error output ('' when it raised nothing)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return ""
