"""Grading on a Dask cluster: the units as tasks, the same worker process on every machine.

    nn-course grade SUBMISSIONS --scheduler tcp://HOST:PORT

``DaskPool`` is the second backend of ``pool.Backend`` (``run(todo, summary, progress)``):

1. the coordinator (where ``nn-course grade`` runs) packs what a worker needs to grade: the
   course's ``nbgrader_config.py``, a copy of its SQLite gradebook, the source notebooks (with
   the kit) and the release (``course_bundle``); it goes to every Dask worker once, as the data
   of a ``GradingPlugin`` (also to workers that join later);
2. the plugin unpacks it into a scratch course of its own on the worker's disk and starts ONE
   grading worker there, ``python -m autograder.instructor.worker`` driven by a
   ``pool._WorkerProcess``: nbgrader's imports and the sandboxed zygotes are paid once per Dask
   worker, as with the local pool, and a hang or a dead kernel is handled exactly as locally;
3. one task per unit (``grade_unit``), keyed by the unit and its ledger fingerprint, carries
   the submission's files as task data (no shared filesystem is needed) and returns
   ``{"record": Record.as_dict(), "autograded": notebook text, "feedback": HTML}``;
4. the coordinator alone writes: the files, the gradebook rows from the record and the ledger
   record, last (``pool.store_result``). A task whose grading worker died or hung, or whose
   unit nbgrader could not grade, is retried once (``Backend._retry_or_fail``, as locally);
   a task lost with a Dask worker that died is run again by Dask on another worker.

The workers need the course package installed (``pip install -e ".[dask]"``) and bubblewrap,
as the coordinator does; see docs/distributed.md.
"""
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path

from . import pool
from .canary import CanaryFailed
from .records import Course, Record, Unit, fingerprint, read_ledger

#: The name the grading plugin has on every worker (registering it again replaces it).
PLUGIN = "nn-course-grader"


class GradingFailed(RuntimeError):
    """The grading worker on a Dask worker died, hung or could not grade the unit."""


# ------------------------------------------------------------------------------ the coordinator's side
def course_bundle(course):
    """What a Dask worker needs to grade units of ``course``, as a tar.gz (bytes).

    Inside: ``course/nbgrader_config.py`` (with lines added that point this copy at its own
    folders and gradebook), ``course/gradebook.db`` (a consistent copy of the coordinator's
    SQLite gradebook: the assignments, their cells and due dates), ``source_notebooks/<a>/``
    (with the kit) and ``release/<a>/`` of every assignment.
    """
    if not str(course.db_url).startswith("sqlite:///"):
        raise ValueError(f"grading on Dask copies the course's SQLite gradebook to the workers, and this "
                         f"course's gradebook is {course.db_url}: grade with a SQLite gradebook (the default "
                         "db_url of nbgrader_config.py) and export it, or use --shard K/N on each machine and "
                         "nn-course merge")
    scratch = Path(tempfile.mkdtemp(prefix="nn-bundle-"))
    try:
        db = scratch / "gradebook.db"
        with sqlite3.connect(course.db_url[len("sqlite:///"):]) as source, sqlite3.connect(db) as copy:
            source.backup(copy)
        config = (course.dir / "nbgrader_config.py").read_text(encoding="utf-8") + _SCRATCH_CONFIG
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("course/nbgrader_config.py")
            data = config.encode("utf-8")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            tar.add(db, "course/gradebook.db")
            for assignment in course.assignments:
                tar.add(course.source / assignment, f"source_notebooks/{assignment}",
                        filter=lambda t: None if "__pycache__" in t.name else t)
                tar.add(course.release / assignment, f"release/{assignment}",
                        filter=lambda t: None if "__pycache__" in t.name else t)
        return buffer.getvalue()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_SCRATCH_CONFIG = '''

# --- added by nn-course for a Dask worker: this scratch copy's own folders and gradebook
import os as _nn_os

_nn_here = _nn_os.path.dirname(_nn_os.path.abspath(__file__))
c.CourseDirectory.root = _nn_here
c.CourseDirectory.source_directory = _nn_os.path.join("..", "source_notebooks")
c.CourseDirectory.release_directory = _nn_os.path.join("..", "release")
c.CourseDirectory.db_url = "sqlite:///" + _nn_os.path.join(_nn_here, "gradebook.db")
'''


def unit_files(unit):
    """The files of a unit's submission folder, {relative path: bytes} ({} when nothing was sent)."""
    if not unit.folder:
        return {}
    folder = Path(unit.folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def dask_backend(address):
    """A ``backend`` for ``pool.grade``: the units graded on the Dask scheduler at ``address``."""
    def make(course, limits, jobs, feedback=True, retries=1):
        return DaskPool(address, course, limits, jobs, feedback, retries)
    make.label = f"on the Dask cluster of {address}"
    return make


class DaskPool(pool.Backend):
    """The units of ``todo`` as tasks on the Dask cluster whose scheduler is at ``address``."""

    def __init__(self, address, course, limits, jobs, feedback=True, retries=1):
        super().__init__(course, limits, jobs, feedback, retries)
        self.address = address

    def run(self, todo, summary, progress=True):
        from distributed import Client, as_completed
        from tqdm.auto import tqdm

        self.queue, self.summary = list(todo), summary
        self.bar = tqdm(total=len(todo), desc="grading (dask)", unit="nb", disable=not progress)
        try:
            client = Client(self.address, timeout=30)
        except OSError as err:
            self.bar.close()
            raise ValueError(f"no Dask scheduler answers at {self.address} ({err}): start one with "
                             "`dask scheduler` and workers with `dask worker ADDRESS --nthreads 1` "
                             "(docs/distributed.md)") from None
        try:
            settings = {"limits": asdict(self.limits), "feedback": self.feedback, "hard_limit": self.hard_limit,
                        "canary": sorted({u.assignment for u in todo if u.folder})}
            client.register_plugin(GradingPlugin(course_bundle(self.course), settings), name=PLUGIN)
            pending, submitted = {}, []
            tasks = as_completed()
            while self.queue or pending:
                while self.queue:
                    unit = self.queue.pop(0)
                    future = self._submit(client, unit)
                    pending[future.key] = unit
                    submitted.append(future)
                    tasks.add(future)
                future = next(tasks)
                unit = pending.pop(future.key)
                try:
                    self._handle(unit, future)
                except CanaryFailed:             # a worker cannot grade: nothing more is graded
                    client.cancel(submitted)
                    raise
        finally:
            self.bar.close()
            client.close()

    def _submit(self, client, unit):
        attempt = self.attempts.get(unit.key, 0)
        key = f"nn-grade-{unit.assignment}-{unit.student}-{fingerprint(unit, self.course)[:16]}-{attempt}"
        return client.submit(grade_unit, asdict(unit), unit_files(unit), key=key, pure=False)

    def _handle(self, unit, future):
        """One finished task: store its record, or retry its unit (as ``Pool._handle`` does)."""
        try:
            result = future.result()
        except CanaryFailed:
            raise
        except Exception as err:             # noqa: BLE001  (the task's failure: retried, else recorded)
            self._retry_or_fail(unit, f"{type(err).__name__}: {err}")
            return
        record = Record.from_dict(result["record"])
        if record.status == "error":         # nbgrader could not grade it: once more, then its record
            if self.attempts.get(unit.key, 0) >= self.retries:
                pool.store_result(self.course, result)
            self._retry_or_fail(unit, "nbgrader failed on this submission (see its ledger record)")
            return
        pool.store_result(self.course, result)
        self.summary.graded += 1
        self.summary.isolated = self.summary.isolated or record.isolated
        self.bar.update(1)


# ------------------------------------------------------------------------------ the worker's side
try:
    from distributed import WorkerPlugin as _PluginBase
except ImportError:                          # without Dask the module still imports (and says so on use)
    _PluginBase = object


class GradingPlugin(_PluginBase):
    """Lives on each Dask worker: a scratch copy of the course and one grading worker process.

    ``bundle``: ``course_bundle``'s bytes; ``settings``: {"limits", "feedback", "hard_limit"}.
    The grading worker is started in the background at ``setup`` (its start, ~10 s, is paid
    while the first tasks travel) and again after it died or hung.
    """
    name = PLUGIN

    def __init__(self, bundle, settings):
        self.bundle, self.settings = bundle, settings

    def setup(self, worker):
        self.scratch = Path(tempfile.mkdtemp(prefix="nn-course-", dir=worker.local_directory))
        self.lock, self.process, self.course = threading.Lock(), None, None
        threading.Thread(target=self._warm, daemon=True).start()

    def teardown(self, worker):
        """The plugin is replaced (a new run registered its own) or the worker closes: the grading
        worker stops once its unit is done, in the background (teardown runs on the worker's event
        loop, which must not wait for a unit)."""
        threading.Thread(target=self._close, daemon=True).start()

    def _close(self):
        with self.lock:
            if self.process is not None:
                self.process.stop()
                self.process = None
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _warm(self):
        with self.lock:
            try:
                self._ready()
            except Exception:                # noqa: BLE001  (the first task raises it again)
                pass

    def _ready(self):
        """The grading worker process, started (and the course unpacked) if needed; waits for "ready"."""
        from . import sandbox

        if self.course is None:
            with tarfile.open(fileobj=io.BytesIO(self.bundle), mode="r:gz") as tar:
                tar.extractall(self.scratch, filter="data")
            self.course = Course(self.scratch / "course")
            self.course.state.mkdir(parents=True, exist_ok=True)
        if self.process is None:
            self.process = pool._WorkerProcess(0, self.course, sandbox.Limits(**self.settings["limits"]),
                                               self.settings["feedback"], self.settings.get("canary", ()))
            message = self._receive(timeout=600)
            if message[0] == "canary-failed":    # this worker cannot grade the reference answers
                self._kill()
                raise CanaryFailed(f"on the Dask worker {os.uname().nodename}: {message[1]}")
            if message[0] != "ready":
                self._kill()
                raise GradingFailed(f"the grading worker on this Dask worker could not start: {message[-1]}")
            self.process.ready = True
        return self.process

    def _receive(self, timeout):
        if not pool._wait([self.process.proc.stdout], timeout):
            return ["died", f"no answer from the grading worker in {timeout:.0f} s; it was killed"]
        return self.process.receive()

    def _kill(self):
        if self.process is not None:
            self.process.kill()
            self.process = None

    def grade(self, unit, files):
        """Grade one unit in the scratch course; returns what ``pool.store_result`` takes."""
        with self.lock:
            process = self._ready()
            folder = self.scratch / "submitted" / unit.student / unit.assignment
            shutil.rmtree(folder, ignore_errors=True)
            for name, data in files.items():
                path = (folder / name).resolve()
                if folder.resolve() not in path.parents:
                    raise GradingFailed(f"a file of {unit.key} is outside its folder: {name!r}")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
            local = Unit(unit.student, unit.assignment, str(folder) if unit.folder else None)
            process.send(local)
            message = self._receive(timeout=self.settings["hard_limit"])
            if message[0] != "done":
                self._kill()                 # the worker, its zygotes and kernels; a new one next time
                raise GradingFailed(message[-1])
            process.unit = None
            record = read_ledger(self.course, unit.assignment, unit.student)
            if record is None:
                raise GradingFailed(f"the grading worker wrote no ledger record for {unit.key}")
            result = pool.result_of(self.course, record)
            shutil.rmtree(folder, ignore_errors=True)
            return result


def grade_unit(unit, files):
    """The task: grade ``unit`` (a Unit as a dict) from its ``files`` on this Dask worker."""
    from distributed import get_worker

    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN)
    if plugin is None:
        raise GradingFailed(f"the Dask worker {worker.address} has no {PLUGIN} plugin (the coordinator registers it)")
    return plugin.grade(Unit(**unit), files)
