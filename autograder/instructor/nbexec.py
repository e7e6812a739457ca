"""The kernels a notebook is graded in, and what the preprocessors around them note.

Imported only by the grading worker (it imports nbgrader, which takes seconds). The
execution itself is ``split.execute.SplitExecute`` (two processes per submission).

- ``FastReadyClient``: jupyter_client's kernel client, minus a fixed 0.2 s wait per start;
- ``ZygoteKernelManager``: kernels forked by one of the worker's zygotes (``zygote.py``)
  instead of a new Python per notebook;
- ``StderrIsNotFailure``: a warning printed by correct code does not zero its test cell;
- ``ExecutionLog``: what the preprocessors noticed (events for the ledger, seconds spent
  in cells). A worker makes one and hands it to them through the config
  (``config.SplitExecute.execution_log``), not as an argument: nbgrader builds its
  preprocessors from the config at every run.
"""
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Any, Dict, Unicode, default

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
    """Starts kernels through a zygote of the worker instead of a new Python.

    The launcher (``zygote.py launch``) reads the kernel's working folder and environment
    from a request file next to the connection file; the zygote sets its limits itself.
    """
    socket_path = Unicode(None, allow_none=True, help="the zygote's control socket").tag(config=True)
    runtime_dir = Unicode(None, allow_none=True,
                          help="where the kernel finds its connection file (inside its sandbox)").tag(config=True)
    kernel_env = Dict(help="the kernel's whole environment").tag(config=True)
    kernel_cwd = Unicode("", help="the kernel's working folder").tag(config=True)

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.socket_path is None or "-f" not in cmd:
            return cmd
        args = cmd[cmd.index("-f"):]
        visible = os.path.join(self.runtime_dir, os.path.basename(args[1]))
        shutil.copy(args[1], visible)    # the sandbox sees only its own folders
        request = args[1] + ".request"
        with open(request, "w", encoding="utf-8") as out:
            json.dump({"cwd": self.kernel_cwd or os.getcwd(), "env": self.kernel_env or dict(os.environ)}, out)
        return [sys.executable, str(ZYGOTE), "launch", self.socket_path, "--request", request,
                "-f", visible] + args[2:]

    @default("client_factory")
    def _fast_ready_client(self):
        return FastReadyClient

    async def _async_wait(self, pollinterval=0.1):
        # jupyter_client polls every 0.1 s whether a killed kernel is gone; the launcher
        # dies at once, so poll faster (0.1 s of each notebook's shutdown otherwise)
        await super()._async_wait(pollinterval=0.005)


def error_output(ename, evalue):
    """An error output that says only ``ename: evalue`` (no traceback)."""
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


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


def failed_part_text(cell):
    """The message of the first failed part in a test cell's tally (``checks.Tally.score``), or ''.

    Read from the cell's last tally list (the grader's output comes after anything the
    student's code printed): its first "✗" line, without the part's name and share.
    """
    text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if re.match(r"^[0-9.]+ of [0-9.]+ points", line)]
    for line in lines[heads[-1] + 1:] if heads else []:
        if line.startswith("  ✗ ") and "): " in line:
            return line.split("): ", 1)[1]
    return ""
