"""The one authoritative execution of a submission: student cells in one process, tests in another.

``SplitExecute`` takes the place of nbgrader's ``Execute`` among Autograde's preprocessors
(nbgrader still restores the locked cells before, and scores, checksums, late penalties and
feedback after). It starts two kernels for the notebook:

- the **student process** (``StudentKernelManager``: forked by the sandboxed zygote, no
  network, no reference, no test): it runs the given cells and the student's cells, in order;
- the **grader process** (``GraderKernelManager``: forked by the grader's zygote, which has
  the references preloaded): it runs the given cells (the release's, locked) and the test
  cells, in order, with the student's names bound to proxies (``proxy.py``).

For each cell, in notebook order:

1. a student cell (an answer, or a cell the student added) runs in the student process; the
   names it changed are bound in the grader process (``agent.changes``, ``proxy.install``);
2. a given cell runs in both (its outputs in the notebook are the student process's);
3. a test cell runs in the grader process while the student process serves the proxies'
   calls (``agent.serve``); the cell's outputs are what the student's code printed during
   those calls, then the grader's own outputs, whose errors keep only "Type: message" (and the
   student's traceback when the error came from the student's code): nothing of a hidden
   test's source reaches the notebook.

Time: every cell gets the cell limit and no more than what is left of the notebook's; when
a test cell runs out, both kernels are interrupted. A student process that dies fails every
later check that needs it; the cells before keep their results.
"""
import asyncio
import copy
import json
import os
import time
from pathlib import Path

from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Any, Integer, Unicode

from ..nbcells import is_locked, is_test
from ..nbexec import ExecutionLog, ZygoteKernelManager, error_output

HERE = Path(__file__).parent
AGENT, PROXY, WIRE = HERE / "agent.py", HERE / "proxy.py", HERE / "wire.py"
MARK = "application/x-nn-split+json"
TIMEOUT_ERROR = {"ename": "CellTimeoutError", "evalue": "the cell ran past its time limit and was interrupted",
                 "traceback": ["CellTimeoutError: the cell ran past its time limit and was interrupted"]}


class StudentKernelManager(ZygoteKernelManager):
    """The student's kernel: forked in the sandbox (its own config section)."""


class GraderKernelManager(ZygoteKernelManager):
    """The grader's kernel: forked by the grader's zygote, outside the sandbox."""


def _load(path, name):
    """Code that loads the file ``path`` as a module in a kernel and binds ``install(globals())``."""
    return ("import importlib.util as _nn_u\n"
            f"_nn_s = _nn_u.spec_from_file_location({name!r}, {str(path)!r})\n"
            "_nn_m = _nn_u.module_from_spec(_nn_s)\n"
            "_nn_s.loader.exec_module(_nn_m)\n"
            "_nn_m.install(globals())\n"
            "del _nn_u, _nn_s, _nn_m\n")


class _Client(NotebookClient):
    """nbclient's client for one of the two kernels, with the notebook's deadline."""
    deadline = None

    def _get_timeout(self, cell):
        left = max(1, int(self.deadline - time.monotonic()))
        return left if self.timeout is None else min(self.timeout, left)


class SplitExecute(NbGraderPreprocessor):
    """See the module docstring."""
    timeout = Integer(60, help="seconds for one cell").tag(config=True)
    notebook_timeout = Integer(180, help="seconds for the whole notebook").tag(config=True)
    startup_timeout = Integer(60, help="seconds for a kernel to start").tag(config=True)
    execution_log = Any(None, help="the ExecutionLog that events go to").tag(config=True)
    student_cwd = Unicode("", help="the student process's working folder (in the box)").tag(config=True)
    grader_cwd = Unicode("", help="the grader process's working folder").tag(config=True)
    channel = Unicode("", help="where the grader process listens for the student process (in the box)").tag(config=True)
    kernel_name = Unicode("python3").tag(config=True)
    agent = Unicode(str(AGENT), help="agent.py as the student process sees it").tag(config=True)

    def preprocess(self, nb, resources):
        if self.execution_log is None:
            self.execution_log = ExecutionLog()
        return run_sync(self._run)(nb, resources)

    # ------------------------------------------------------------------ kernels
    def _client(self, kind, nb, cwd):
        client = _Client(
            NotebookNode(cells=[None] * max(1, len(nb.cells)), metadata=copy.deepcopy(nb.metadata), nbformat=4,
                         nbformat_minor=5),      # nbclient puts each executed cell at its index
            kernel_manager_class=kind, config=self.config, timeout=self.timeout, kernel_name=self.kernel_name,
            interrupt_on_timeout=True, allow_errors=True, error_on_timeout=TIMEOUT_ERROR, raise_on_iopub_timeout=True,
            startup_timeout=self.startup_timeout, shutdown_kernel="immediate", record_timing=False,
            extra_arguments=["--HistoryManager.hist_file=:memory:"], resources={"metadata": {"path": cwd}})
        client.on_cell_executed = _append_reply_error
        return client

    async def _run(self, nb, resources):
        self._deadline = time.monotonic() + self.notebook_timeout
        student = self._client(StudentKernelManager, nb, self.student_cwd)
        grader = self._client(GraderKernelManager, nb, self.grader_cwd)
        for client in (student, grader):
            client.deadline = self._deadline
            client.km = client.create_kernel_manager()
        try:
            await asyncio.gather(student.async_start_new_kernel(cwd=self.student_cwd),
                                 grader.async_start_new_kernel(cwd=self.grader_cwd))
            await asyncio.gather(student.async_start_new_kernel_client(), grader.async_start_new_kernel_client())
            await self._connect(student, grader)
            await self._cells(nb, student, grader)
        finally:
            await asyncio.gather(*(self._stop(c) for c in (student, grader)))
        return nb, resources

    async def _stop(self, client):
        try:
            if client.kc is not None:
                client.kc.stop_channels()
            if client.km is not None and client.km.has_kernel:
                await client.km.shutdown_kernel(now=True)
        except Exception:                      # noqa: BLE001  (a kernel already gone)
            pass

    async def _code(self, client, code, index=0):
        """Run the grader's own code in a kernel; returns its outputs (never part of the notebook)."""
        cell = NotebookNode(cell_type="code", source=code, metadata={}, outputs=[], execution_count=None)
        await client.async_execute_cell(cell, index, store_history=False)
        return cell.outputs

    async def _connect(self, student, grader):
        if os.path.exists(self.channel):
            os.unlink(self.channel)
        errors = await self._code(grader, _load(PROXY, "_nn_proxy") + f"__nn_proxy__.listen({self.channel!r})")
        errors += await self._code(student, _load(self.agent, "_nn_agent") + f"__nn_agent__.connect({self.channel!r})")
        errors += await self._code(grader, "__nn_proxy__.accept()")
        errors = [o for o in errors if o.get("output_type") == "error"]
        if errors:
            raise RuntimeError("the two grading processes could not connect: "
                               + "; ".join(f"{o.ename}: {o.evalue}" for o in errors))

    # ------------------------------------------------------------------ cells
    async def _cells(self, nb, student, grader):
        log = self.execution_log
        tests = [i for i, c in enumerate(nb.cells) if is_test(c)]
        last_test = tests[-1] if tests else -1
        self._student_alive = True
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if time.monotonic() > self._deadline:
                if not log.has("notebook-time-limit"):
                    log.add("notebook-time-limit", index, cell)
                cell.outputs = [error_output("NotebookTimeLimit", f"not run: the notebook used up its "
                                                                  f"{self.notebook_timeout} s")]
                continue
            started = time.perf_counter()
            if is_test(cell):
                await self._test_cell(index, cell, student, grader)
            else:
                await self._student_cell(index, cell, student, grader)
                if is_locked(cell) and index < last_test:
                    await self._grader_cell(index, copy.deepcopy(cell), student, grader)
            log.cell_seconds += time.perf_counter() - started
            if any(o.get("output_type") == "error" and o.get("ename") == "CellTimeoutError" for o in cell.outputs):
                log.add("cell-timeout", index, cell)

    async def _student_cell(self, index, cell, student, grader):
        if not self._student_alive:
            cell.outputs = [_dead_output()]
            return
        try:
            await student.async_execute_cell(cell, index, store_history=True)
            if is_locked(cell):              # its names are the grader's own: the next answer's
                return                       # changes list them too, and the grader keeps its own
            outputs = await self._code(student, "__nn_agent__.changes()", index)
        except DeadKernelError as err:
            self._student_died(index, cell, err)
            return
        changes = _json_line(outputs)
        if not changes:
            return
        install = f"__nn_proxy__.install({changes!r})"
        if all(kind in ("callable", "module", "deleted") for kind in changes.values()):
            await self._code(grader, install, index)      # nothing to fetch: no round trip
        else:                                            # data is fetched: the student process serves
            await self._grader_cell(index, NotebookNode(cell_type="code", source=install, metadata={}, outputs=[],
                                                        execution_count=None), student, grader, store_history=False)

    def _student_died(self, index, cell, err):
        self._student_alive = False
        self.execution_log.add("dead-kernel", index, cell, message=str(err)[:300])
        cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"] + [_dead_output()]

    async def _grader_cell(self, index, cell, student, grader, store_history=True):
        """Run ``cell`` in the grader process while the student process serves its calls; returns
        (the grader's outputs, the student process's outputs meanwhile)."""
        serve = NotebookNode(cell_type="code", source="__nn_agent__.serve()", metadata={}, outputs=[],
                             execution_count=None)
        serving = None
        if self._student_alive:
            serving = asyncio.ensure_future(student.async_execute_cell(serve, index, store_history=False))
        try:
            await grader.async_execute_cell(cell, index, store_history=store_history)
        except DeadKernelError as err:
            self.execution_log.add("grader-died", index, cell, message=str(err)[:300])
            cell.outputs = [error_output("GraderError", "the grading process stopped; this cell is not graded")]
        timed_out = any(o.get("ename") == "CellTimeoutError" for o in cell.outputs if o.get("output_type") == "error")
        try:
            await self._code(grader, "__nn_proxy__.end()", index)
        except DeadKernelError:
            pass
        if serving is not None:
            await self._finish_serving(serving, student, index, cell, interrupt=timed_out)
        return cell.outputs, serve.outputs

    async def _finish_serving(self, serving, student, index, cell, interrupt):
        """Wait for the student process to stop serving; interrupt it if it does not (a loop)."""
        for wait, action in ((0.5 if interrupt else 5.0, "interrupt"), (5.0, "kill")):
            done, _ = await asyncio.wait({serving}, timeout=wait)
            if done:
                try:
                    serving.result()
                except DeadKernelError as err:
                    self._student_died(index, cell, err)
                    return
                except Exception:              # noqa: BLE001  (nbclient's own error: the cell is done)
                    return
                return
            if action == "interrupt":
                await student.km.interrupt_kernel()
        serving.cancel()
        self._student_alive = False
        self.execution_log.add("dead-kernel", index, cell, message="the student process did not stop after an interrupt")
        await student.km.shutdown_kernel(now=True)

    async def _test_cell(self, index, cell, student, grader):
        grader_cell = copy.deepcopy(cell)
        outputs, student_outputs = await self._grader_cell(index, grader_cell, student, grader)
        errors, shown = [], []
        for out in student_outputs:
            if out.get("output_type") == "display_data" and MARK in out.get("data", {}):
                errors += (out["data"][MARK] or {}).get("errors", []) if isinstance(out["data"][MARK], dict) else []
            elif out.get("output_type") in ("stream", "display_data"):
                shown.append(out)
        cell.outputs = shown + [_sanitized(o, errors) for o in outputs]
        cell.execution_count = grader_cell.get("execution_count")


def _sanitized(output, student_errors):
    """An output of the grader process as the student may see it: no traceback of the grader's."""
    if output.get("output_type") != "error":
        return output
    ename, evalue = str(output.get("ename")), str(output.get("evalue"))
    lines = [f"{ename}: {evalue}"]
    for err in reversed(student_errors if isinstance(student_errors, list) else []):
        if isinstance(err, dict) and err.get("type") == ename and str(err.get("message")) == evalue:
            lines = ["The error was raised in your code:", str(err.get("traceback", ""))[-6000:]]
            break
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=lines)


def _json_line(outputs):
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items() if isinstance(k, str) and k.isidentifier()}
    return {}


def _dead_output():
    return error_output("DeadKernelError", "your code's process had ended before this cell (os._exit, a crash, "
                                           "memory, or a time limit); this cell did not run")


def _append_reply_error(cell, cell_index, execute_reply):
    """As nbgrader's Execute: an error reply without an error output (a timeout) gets one."""
    content = execute_reply["content"]
    if content.get("status") == "error" and not any(
            o.output_type == "error" and o.ename == content.get("ename") for o in cell.outputs):
        cell.outputs.append(NotebookNode(output_type="error", ename=content.get("ename"),
                                         evalue=content.get("evalue"), traceback=content.get("traceback") or []))
