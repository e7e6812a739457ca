"""Grade a whole class: every submission of every assignment, in parallel, fairly and safely.

    nn-course grade SUBMISSIONS [--jobs N] [--cell-timeout S] [--notebook-timeout S]
                                [--memory-mb M] [--force] [--course DIR]

SUBMISSIONS is a folder laid out like nbgrader's ``submitted/``
(``<student>/<assignment>/<notebook>.ipynb``) or a zip of notebooks as a learning platform
exports them (collected with nbgrader's ``zip_collect``; see ``collect_zip``).

For each submission (a *unit*: one student, one assignment) a worker process

1. **normalises** it (``autograder.intake``): broken JSON, old nbformat, a wrong file name,
   split, deleted, duplicated or edited cells are repaired or reported; the raw submission
   is never changed, the normalised copy goes to ``<course>/grading/intake/``;
2. **autogrades** it with nbgrader (its ``Autograde`` converter, in the worker, so nbgrader's
   imports are paid once per worker), with three changes to nbgrader's execution:
   ``GradingExecute`` runs the kernel in the sandbox (``autograder.sandbox``, forked by
   ``zygote.py``), stops a notebook at its time limit and grades what ran when the kernel
   dies; ``StderrIsNotFailure`` keeps a warning printed by correct code from zeroing its test;
3. **re-checks** it outside the student's kernel (``autograder.integrity``): the static scan
   of the student's cells, then the instructor's notebook with only the student's
   definitions, in a fresh kernel, with an integrity probe after every cell;
4. keeps, per test cell, the **lower** of nbgrader's score and the re-check's, writes it to
   the gradebook (``needs_manual_grade`` where something was flagged) and writes the unit's
   **ledger** record, ``<course>/grading/ledger/<assignment>/<student>.json``: scores, flags
   with their evidence, diagnoses, times.

The ledger makes grading resumable: a rerun (after Ctrl-C, a crash, even ``kill -9``) grades
only the units without a current record (same submission bytes, same source notebook), and
nbgrader updates a unit's grades in place, so nothing is lost or counted twice. At the end
the gradebook is reconciled with the ledger: a grade that differs is put back and reported.

A unit whose worker hangs or dies is killed, retried once, and otherwise recorded as an
error; the batch always finishes.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import build, sandbox
from .intake import Finding

GRADER_VERSION = 1
ZYGOTE = Path(__file__).with_name("zygote.py")
#: Ledger statuses that count as done (a rerun does not grade these units again).
DONE = ("graded", "missing", "unreadable")


# ------------------------------------------------------------------------------ the course
def course_config(course_dir):
    """nbgrader's Config of the course in ``course_dir`` (its nbgrader_config.py)."""
    from traitlets.config import Config

    course_dir = Path(course_dir).resolve()
    config = Config()
    config_file = course_dir / "nbgrader_config.py"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: point --course at the folder with the "
                                "course's nbgrader_config.py (course/ in this repository).")
    exec(compile(config_file.read_text(encoding="utf-8"), str(config_file), "exec"),
         {"get_config": lambda: config, "__file__": str(config_file)})
    config.CourseDirectory.root = str(course_dir)
    return config


@dataclass
class Course:
    """Where things are: nbgrader's course folder and what the grader keeps next to it."""
    dir: Path
    config: object = None

    def __post_init__(self):
        from nbgrader.coursedir import CourseDirectory

        self.dir = Path(self.dir).resolve()
        self.config = course_config(self.dir)
        coursedir = CourseDirectory(config=self.config)
        self.root = Path(coursedir.root)
        self.source = self.root / coursedir.source_directory
        self.release = self.root / coursedir.release_directory
        self.db_url = coursedir.db_url
        self.course_id = coursedir.course_id
        if not self.source.is_dir():
            raise FileNotFoundError(f"the course's source notebooks are not at {self.source} "
                                    "(CourseDirectory.source_directory in nbgrader_config.py)")
        self.state = self.root / "grading"
        self.intake = self.state / "intake"
        self.ledger = self.state / "ledger"
        self.assignments = build.assignments(self.source.parent) if self.source.name == "source_notebooks" \
            else sorted(p.name for p in self.source.iterdir() if p.is_dir())

    def notebook_name(self, assignment):
        (path,) = build.notebooks(self.source / assignment)
        return path.name

    def source_notebook(self, assignment):
        return self.source / assignment / self.notebook_name(assignment)

    def release_notebook(self, assignment):
        return self.release / assignment / self.notebook_name(assignment)

    def ledger_path(self, assignment, student):
        return self.ledger / assignment / f"{student}.json"

    def hidden_folders(self, extra=()):
        """What the sandbox hides from students' code: gradebook, submissions, solutions."""
        folders = [self.root, self.source, *extra]
        repository = Path(__file__).resolve().parents[1]       # a checkout of this course, if any
        folders += [repository / "source_notebooks", repository / "course"]
        for start in (self.root, repository):
            for parent in [start, *start.parents]:
                if (parent / ".git").exists():
                    folders.append(parent / ".git")
                    break
        return sorted({Path(f).resolve() for f in folders})


@dataclass
class Unit:
    """One submission: a student's folder for one assignment (``folder`` None: nothing sent)."""
    student: str
    assignment: str
    folder: str = None

    @property
    def key(self):
        return f"{self.assignment}/{self.student}"


def discover(submissions, course):
    """The units of a folder laid out like nbgrader's submitted/ (<student>/<assignment>/).

    Returns (units, problems): a unit for every student and every assignment of the course
    (a student who sent nothing for an assignment gets a unit with folder None, graded 0);
    ``problems`` lists folders that are not an assignment of this course.
    """
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise FileNotFoundError(f"{submissions} is not a folder of submissions "
                                "(<student>/<assignment>/<notebook>.ipynb) or a zip file.")
    units, problems = [], []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sent = {p.name: p for p in student_dir.iterdir() if p.is_dir()}
        for name in sorted(set(sent) - set(course.assignments)):
            problems.append(f"{student_dir.name}/{name}: not an assignment of this course (ignored)")
        for assignment in course.assignments:
            folder = sent.get(assignment)
            units.append(Unit(student_dir.name, assignment, str(folder) if folder else None))
    return units, problems


def collect_zip(zip_path, course, pattern=None):
    """Collect an LMS zip of notebooks into ``<course>/submitted`` with nbgrader's zip_collect.

    Each notebook in the zip is matched against ``pattern`` (a regular expression with the
    groups ``student_id`` and ``file_id``); the default takes names like
    ``<student>_<notebook>.ipynb`` (``alice_01_perceptron.ipynb``, also inside folders and with
    a suffix such as `` (1)``). The assignment is the one whose notebook the name carries.
    Returns the submitted/ folder.
    """
    from nbgrader.apps import ZipCollectApp

    zip_path = Path(zip_path).resolve()
    for assignment in course.assignments:
        stem = Path(course.notebook_name(assignment)).stem
        regexp = pattern or (r"^(?:.*/)?(?P<student_id>[A-Za-z0-9][A-Za-z0-9.\-]*)_"
                             rf"(?P<file_id>{stem}[^/]*\.ipynb)$")
        archive = course.root / "downloaded" / assignment / "archive"
        if archive.exists():
            shutil.rmtree(archive.parent)
        archive.mkdir(parents=True)
        shutil.copy(zip_path, archive / zip_path.name)
        config = course_config(course.dir)
        config.CourseDirectory.assignment_id = assignment
        config.FileNameCollectorPlugin.named_regexp = regexp
        config.ZipCollectApp.force = True
        app = ZipCollectApp(config=config)
        app.initialize([])
        app.start()
    return course.root / "submitted"


def fingerprint(unit, course):
    """sha256 of what a unit's grade depends on: its files, its source notebook, the grader."""
    digest = hashlib.sha256(f"v{GRADER_VERSION}".encode())
    digest.update(course.source_notebook(unit.assignment).read_bytes())
    if unit.folder:
        for path in sorted(Path(unit.folder).rglob("*")):
            if path.is_file() and "autograder" not in path.relative_to(unit.folder).parts:
                digest.update(str(path.relative_to(unit.folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def read_ledger(course, assignment, student):
    path = course.ledger_path(assignment, student)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_ledger(course, record):
    """Write a unit's record atomically (a kill mid-write leaves the old one or none)."""
    path = course.ledger_path(record["assignment"], record["student"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------ nbgrader's side
def _preprocessors():
    """The nbgrader classes, imported late (nbgrader's imports take seconds)."""
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import DeadKernelError
    from nbformat.notebooknode import NotebookNode
    from nbgrader import utils
    from nbgrader.preprocessors import Execute, NbGraderPreprocessor
    from traitlets import Integer, default

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
        socket_path = None                   # set by the worker
        runtime_dir = None                   # where the kernels (in the sandbox) find their connection file

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

    class GradingExecute(Execute):
        """nbgrader's Execute with a notebook time limit, sandboxed kernels, and dead kernels graded.

        - a cell gets at most ``timeout`` seconds and never more than what is left of
          ``notebook_timeout``; cells after the limit are not run and fail with
          ``NotebookTimeLimit``;
        - when the kernel dies, the cell it was running and all later ones fail with
          ``DeadKernelError``; the cells before keep their results (nbgrader would drop the
          whole submission).
        Events go to ``GradingExecute.events`` for the ledger.
        """
        notebook_timeout = Integer(180, help="seconds for the whole notebook").tag(config=True)
        events = []
        cell_seconds = 0.0                   # time spent running cells (the student's code and the tests)

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", ZygoteKernelManager)
            super().__init__(*args, **kwargs)

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
                GradingExecute.events.append({"kind": "dead-kernel", "cell": index,
                                              "grade_id": build.grade_id(nb.cells[index]), "message": str(err)[:300]})
                for cell in nb.cells[index:]:
                    if cell.cell_type == "code":
                        cell.outputs.append(NotebookNode(
                            output_type="error", ename="DeadKernelError",
                            evalue="the kernel died while this notebook ran (os._exit, a crash, "
                                   "or memory); this cell did not run to its end",
                            traceback=["DeadKernelError: the kernel died"]))
                return nb, resources

        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "code" and time.monotonic() > self._deadline:
                if not any(e["kind"] == "notebook-time-limit" for e in GradingExecute.events):
                    GradingExecute.events.append({"kind": "notebook-time-limit", "cell": index,
                                                  "grade_id": build.grade_id(cell)})
                cell.outputs = [NotebookNode(
                    output_type="error", ename="NotebookTimeLimit",
                    evalue=f"not run: the notebook used up its {self.notebook_timeout} s",
                    traceback=["NotebookTimeLimit: not run"])]
                return cell, resources
            self._current = index
            started = time.perf_counter()
            cell, resources = super().preprocess_cell(cell, resources, index)
            GradingExecute.cell_seconds += time.perf_counter() - started
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error" and out.get("ename") == "CellTimeoutError":
                    GradingExecute.events.append({"kind": "cell-timeout", "cell": index,
                                                  "grade_id": build.grade_id(cell)})
            return cell, resources

    class StderrIsNotFailure(NbGraderPreprocessor):
        """nbgrader scores a test cell 0 when it wrote to stderr; a warning is not a failure.

        Streams to stderr are relabelled stdout (their text stays for the feedback); a test
        still fails when it raises.
        """
        def preprocess_cell(self, cell, resources, index):
            if cell.cell_type == "code" and utils.is_grade(cell):
                streams = [out for out in cell.get("outputs", [])
                           if out.get("output_type") == "stream" and out.get("name") == "stderr"]
                for out in streams:
                    out["name"] = "stdout"
                if streams:
                    GradingExecute.events.append({"kind": "stderr", "cell": index, "grade_id": build.grade_id(cell)})
            return cell, resources

    return ZygoteKernelManager, GradingExecute, StderrIsNotFailure


def _error_text(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return ""


# ------------------------------------------------------------------------------ a worker
class Worker:
    """Grades units one after the other; lives in its own process (see ``_worker_main``)."""

    def __init__(self, course_dir, limits, index=0, isolate=True, hide=(), feedback=True):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                            LimitOutput, SaveAutoGrades)
        from nbconvert.preprocessors import ClearMetadataPreprocessor

        self.course = Course(course_dir)
        self.limits, self.feedback = limits, feedback
        self.kernel_manager, self.execute, stderr = _preprocessors()
        config = self.course.config
        config.CourseDirectory.submitted_directory = os.path.relpath(self.course.intake, self.course.root)
        config.Autograde.autograde_preprocessors = [
            self.execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, stderr,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
        config.GradingExecute.timeout = limits.cell_timeout
        config.GradingExecute.notebook_timeout = limits.notebook_timeout
        config.GradingExecute.shutdown_kernel = "immediate"
        config.GradingExecute.startup_timeout = 60
        config.GradingExecute.interrupt_on_timeout = True
        self.config = config
        self.api = NbGraderAPI(CourseDirectory(config=config), config=config)

        self.scratch = Path(tempfile.mkdtemp(prefix=f"nn-grade-w{index}-"))
        for sub in ("home", "tmp", "mpl", "ipython", "runtime", "work", "cache"):
            (self.scratch / sub).mkdir()
        os.environ["JUPYTER_RUNTIME_DIR"] = str(self.scratch / "runtime")
        self.isolated = bool(isolate and sandbox.isolation_available())
        self.hide = self.course.hidden_folders(hide)
        self.zygote = None
        self._feedback_api = None
        self._start_zygote()

    # the zygote, inside the sandbox
    def _start_zygote(self):
        socket_path = str(self.scratch / "zygote.sock")
        command = [sys.executable, str(ZYGOTE), "serve", socket_path,
                   "--preload", "solutions_lib.activations,solutions_lib.layers,solutions_lib.losses,"
                                "solutions_lib.network,solutions_lib.optim,solutions_lib.data"]
        if self.isolated:
            command = sandbox.wrap(command + ["--sweep"], self.hide, self.scratch)
        log = open(self.scratch / "zygote.log", "w", encoding="utf-8")
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MPLCONFIGDIR=str(self.scratch / "mpl"), IPYTHONDIR=str(self.scratch / "ipython"))
        self.zygote = subprocess.Popen(command, stdout=log, stderr=log, env=env,
                                                     cwd=self.scratch, start_new_session=True)
        deadline = time.monotonic() + 120
        while not os.path.exists(socket_path):
            if self.zygote.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the grading zygote did not start:\n"
                                   + (self.scratch / "zygote.log").read_text()[-3000:])
            time.sleep(0.05)
        self.kernel_manager.socket_path = socket_path
        self.kernel_manager.runtime_dir = str(self.scratch / "runtime")

    def _zygote(self, message):
        from . import zygote as zygote_module      # the protocol helper (the client side only)

        return zygote_module.request(self.kernel_manager.socket_path, message)

    def close(self):
        if self.zygote is not None and self.zygote.poll() is None:
            self.zygote.kill()
            self.zygote.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _kernel_env(self, cwd):
        """What a grading kernel sees: a scratch home, grading mode, nothing of the grader's."""
        s = self.scratch
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(s / "home"), "TMPDIR": str(s / "tmp"), "MPLCONFIGDIR": str(s / "mpl"),
               "IPYTHONDIR": str(s / "ipython"), "NN_COURSE_CACHE": str(s / "cache"),
               "NBGRADER_EXECUTION": "autograde", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0"}
        os.environ["NN_KERNEL_ENV"] = json.dumps(env)
        os.environ["NN_KERNEL_CWD"] = str(cwd)
        os.environ["NN_KERNEL_LIMITS"] = json.dumps(self.limits.kernel())

    def _fresh_workdir(self, name, files_from):
        """A scratch copy of an assignment folder for a kernel's working folder."""
        if self.isolated:
            self._zygote({"sweep": True})        # nothing a previous kernel left keeps running
        work = self.scratch / "work" / name
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(files_from, work, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        for sub in ("home", "tmp", "mpl", "ipython"):
            shutil.rmtree(self.scratch / sub, ignore_errors=True)
            (self.scratch / sub).mkdir()
        return work

    # one unit
    def grade(self, unit):
        """Grade one unit; returns its ledger record (also written to the ledger)."""
        import nbformat

        from . import integrity, intake

        course, start = self.course, time.perf_counter()
        times = {}
        name = course.notebook_name(unit.assignment)
        source_nb = nbformat.read(course.source_notebook(unit.assignment), as_version=4)
        release_nb = nbformat.read(course.release_notebook(unit.assignment), as_version=4)
        record = {"student": unit.student, "assignment": unit.assignment, "notebook": name,
                  "fingerprint": fingerprint(unit, course), "grader_version": GRADER_VERSION,
                  "isolated": self.isolated, "flags": [], "scores": {}, "diagnoses": {},
                  "events": [], "left_out": []}
        target = course.intake / unit.student / unit.assignment
        got = intake.normalize(unit.folder, name, release_nb, target) if unit.folder else \
            intake.Intake(None, [Finding("missing-notebook", f"nothing was submitted for {unit.assignment}.",
                                         severity="info")])
        record["flags"] += [f.as_dict() for f in got.findings]
        times["intake"] = time.perf_counter() - start
        if got.notebook is None:
            status = "unreadable" if any(f.kind == "unreadable" for f in got.findings) else "missing"
            record["status"] = status
            record["scores"] = self._zero(unit, name)
            record["seconds"] = {**times, "total": time.perf_counter() - start}
            write_ledger(course, record)
            return record

        # 1. nbgrader autograde, sandboxed
        t = time.perf_counter()
        self.execute.events, self.execute.cell_seconds = [], 0.0
        autograded_dir = course.root / "autograded" / unit.student / unit.assignment
        self._kernel_env(self._fresh_workdir(f"{unit.student}-{unit.assignment}", course.source / unit.assignment))
        result = self.api.autograde(unit.assignment, unit.student, force=True, create=True)
        times["autograde"] = time.perf_counter() - t
        times["autograde_cells"] = self.execute.cell_seconds
        record["events"] = list(self.execute.events)
        if not result.get("success"):
            record["status"] = "error"
            record["error"] = (result.get("error") or "")[-2000:] + "\n" + (result.get("log") or "")[-2000:]
            record["seconds"] = {**times, "total": time.perf_counter() - start}
            write_ledger(course, record)
            return record
        graded_nb = nbformat.read(autograded_dir / name, as_version=4)
        nbgrader_scores = self._scores(unit, name)

        # 2. static scan and the re-check outside the student's kernel
        student_nb = nbformat.read(got.notebook, as_version=4)
        provided = integrity.provided_names(source_nb)
        findings = integrity.scan([(label, src) for _, label, src in integrity.student_cells(student_nb, source_nb)],
                                  provided)
        record["flags"] += [f.as_dict() for f in findings if f.severity != "info"]
        t = time.perf_counter()
        recheck = {}
        earned = any(s["auto"] for s in nbgrader_scores.values() if s["kind"] == "test")
        if earned:
            clean, left_out = integrity.clean_notebook(source_nb, student_nb, release_nb, provided)
            record["left_out"] = [f.as_dict() for f in left_out]
            self.execute.cell_seconds = 0.0
            recheck = self._recheck(unit, clean)
            times["recheck_cells"] = self.execute.cell_seconds
        times["recheck"] = time.perf_counter() - t

        # 3. the final scores: the lower of the two, per test cell
        tampering = [f for f in findings if f.severity == "tampering"]
        for grade_id, s in nbgrader_scores.items():
            entry = {"max": s["max"], "nbgrader": s["auto"], "kind": s["kind"]}
            if s["kind"] == "test":
                passed, message = recheck.get(grade_id, (None, ""))
                entry["recheck"] = None if passed is None else (s["max"] if passed else 0.0)
                entry["final"] = (s["auto"] or 0.0) if passed in (None, True) else 0.0
                if s["auto"] and passed is False:
                    caught = "integrity check" in message      # the probe saw something replaced
                    flag = {"kind": "integrity" if caught else "not-confirmed", "cell": grade_id,
                            "severity": "tampering" if tampering or caught else "review",
                            "message": f"{grade_id}: nbgrader gave {s['auto']:g} of {s['max']:g} points in the "
                                       "student's kernel, but the re-check outside it failed; the points "
                                       "are withheld.", "evidence": message[:400]}
                    record["flags"].append(flag)
                cell = next((c for c in graded_nb.cells if build.grade_id(c) == grade_id), None)
                if cell is not None and _error_text(cell):
                    record["diagnoses"][grade_id] = _error_text(cell)[:400]
            else:
                entry["final"] = s["auto"]
            record["scores"][grade_id] = entry
        for event in record["events"]:
            if event["kind"] in ("dead-kernel", "notebook-time-limit", "cell-timeout"):
                record["flags"].append({"kind": event["kind"], "cell": event.get("grade_id") or f"cell {event['cell']}",
                                        "severity": "review", "message": _EVENT_TEXT[event["kind"]],
                                        "evidence": event.get("message", "")})
        if not self.isolated:
            record["flags"].append({"kind": "no-isolation", "severity": "info",
                                    "message": "graded without filesystem isolation (bubblewrap missing)"})
        self._save(unit, name, record)
        record["status"] = "graded"
        record["seconds"] = {**times, "total": time.perf_counter() - start}
        if self.feedback:
            t = time.perf_counter()
            self._feedback(record)
            record["seconds"]["feedback"] = time.perf_counter() - t
        write_ledger(course, record)           # last: a unit without its record is graded again
        return record

    def _feedback(self, record):
        """The unit's feedback HTML, written here so that it is made in parallel."""
        from . import report

        if self._feedback_api is None:
            self._feedback_api = report.feedback_api(self.course)
        report.write_feedback(self.course, [record], force=True, api=self._feedback_api, log=lambda *a: None)

    def _recheck(self, unit, clean):
        """{grade_id: (passed, message)} from running ``clean`` in a fresh sandboxed kernel."""
        from . import integrity

        work = self._fresh_workdir(f"recheck-{unit.student}-{unit.assignment}",
                                   self.course.source / unit.assignment)
        self._kernel_env(work)
        events = self.execute.events
        self.execute.events = []
        runner = self.execute(timeout=self.limits.cell_timeout, notebook_timeout=self.limits.notebook_timeout,
                              kernel_name="python3", shutdown_kernel="immediate", startup_timeout=60,
                              interrupt_on_timeout=True)
        try:
            runner.preprocess(clean, {"metadata": {"path": str(work)}})
        finally:
            self.execute.events = events
        return integrity.recheck_results(clean)

    def _scores(self, unit, name):
        """{grade_id: {"auto", "max", "kind"}} of the unit's notebook, from the gradebook."""
        from nbgrader.api import Gradebook

        nb_id = Path(name).stem
        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            sub = gb.find_submission_notebook(nb_id, unit.assignment, unit.student)
            return {g.name: {"auto": g.auto_score, "max": g.max_score,
                             "kind": "test" if g.cell.cell_type == "code" else "written"}
                    for g in sub.grades}

    def _zero(self, unit, name):
        """Create the submission in the gradebook with every grade at 0; returns its scores."""
        from nbgrader.api import Gradebook

        nb_id = Path(name).stem
        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            gb.update_or_create_student(unit.student)
            gb.update_or_create_submission(unit.assignment, unit.student)
            sub = gb.find_submission_notebook(nb_id, unit.assignment, unit.student)
            scores = {}
            for g in sub.grades:
                g.auto_score, g.needs_manual_grade = 0.0, False
                scores[g.name] = {"max": g.max_score, "nbgrader": 0.0, "final": 0.0,
                                  "kind": "test" if g.cell.cell_type == "code" else "written"}
            gb.db.commit()
        return scores

    def _save(self, unit, name, record):
        """Write the final scores to the gradebook; flagged cells need a manual look."""
        from nbgrader.api import Gradebook

        flagged = {f.get("cell") for f in record["flags"] if f.get("severity") in ("tampering", "review")}
        whole = any(f.get("severity") == "tampering" for f in record["flags"])
        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            sub = gb.find_submission_notebook(Path(name).stem, unit.assignment, unit.student)
            for g in sub.grades:
                entry = record["scores"].get(g.name)
                if entry is None or entry["kind"] != "test":
                    continue
                g.auto_score = entry["final"]
                if g.name in flagged or whole:
                    g.needs_manual_grade = True
            gb.db.commit()


_EVENT_TEXT = {
    "dead-kernel": "the kernel died (os._exit, a crash, or out of memory); the cells before it kept "
                   "their results, the rest scored 0",
    "notebook-time-limit": "the notebook ran out of time; the cells after the limit were not run",
    "cell-timeout": "a cell ran past the cell time limit (an endless loop?) and was interrupted",
}


def _worker_main(argv):
    """A worker process (``python -m autograder.grading --worker SETTINGS``).

    Reads units as JSON lines on stdin; answers on its original stdout, one JSON line per
    message: ["ready", isolated], ["done", key, status, seconds], ["failed", key, traceback]
    or ["broken", traceback]. Everything else it prints goes to stderr.
    """
    settings = json.loads(argv[0])
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)                              # stray prints must not reach the channel
    sys.stdout = sys.stderr

    def send(*message):
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    worker = None
    try:
        worker = Worker(settings["course"], sandbox.Limits(**settings["limits"]), settings["index"],
                        settings["isolate"], settings["hide"], settings["feedback"])
        send("ready", worker.isolated)
        for line in sys.stdin:
            unit = Unit(**json.loads(line))
            try:
                record = worker.grade(unit)
                send("done", unit.key, record.get("status"), record.get("seconds", {}))
            except Exception:                # noqa: BLE001  (reported, the worker goes on)
                send("failed", unit.key, traceback.format_exc()[-3000:])
    except Exception:                        # noqa: BLE001
        send("broken", traceback.format_exc()[-3000:])
    finally:
        if worker is not None:
            worker.close()


# ------------------------------------------------------------------------------ the batch
@dataclass
class Summary:
    graded: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    isolated: bool = False
    seconds: float = 0.0
    reconciled: list = field(default_factory=list)


def grade(submissions, course_dir, jobs=None, limits=None, force=False, progress=True, log=print,
          retries=1, feedback=True):
    """Grade every unit of ``submissions`` (a folder or a zip) into the course's gradebook.

    jobs: worker processes (default: one per core); limits: a ``sandbox.Limits``; force:
    grade again what the ledger says is done; feedback: write each unit's feedback HTML as it
    is graded (else ``nn-course report`` writes it). Returns a ``Summary``.
    """
    start = time.perf_counter()
    course = Course(course_dir)
    limits = limits or sandbox.Limits()
    submissions = Path(submissions)
    hide = [submissions.resolve()]
    if submissions.suffix.lower() == ".zip":
        submissions = collect_zip(submissions, course)
    units, problems = discover(submissions, course)
    for assignment in course.assignments:          # the kit nbgrader copies into every submission
        build.add_kit(course.source / assignment)
    todo = []
    for unit in units:
        old = read_ledger(course, unit.assignment, unit.student)
        current = old and old.get("status") in DONE and old.get("fingerprint") == fingerprint(unit, course)
        if force or not current:
            todo.append(unit)
    summary = Summary(skipped=len(units) - len(todo), problems=problems)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    log(f"{len(units)} submissions ({len(units) // max(1, len(course.assignments))} students x "
        f"{len(course.assignments)} assignments): {len(todo)} to grade, {summary.skipped} already graded; "
        f"{jobs} worker{'s' if jobs > 1 else ''}")
    if todo:
        _run_pool(todo, course, limits, jobs, hide, summary, progress, log, retries, feedback)
    summary.reconciled = reconcile(course)
    summary.seconds = time.perf_counter() - start
    if summary.reconciled:
        log(f"gradebook differed from the ledger in {len(summary.reconciled)} grades; put back: "
            + "; ".join(summary.reconciled[:5]))
    for key, why in summary.failed:
        log(f"could not grade {key}: {why.strip().splitlines()[-1] if why.strip() else 'unknown'}")
    return summary


class _WorkerProcess:
    """The parent's handle on one worker: a subprocess speaking JSON lines."""

    def __init__(self, index, course, limits, isolate, hide, feedback):
        settings = {"course": str(course.dir), "limits": asdict(limits), "index": index,
                    "isolate": isolate, "hide": [str(h) for h in hide], "feedback": feedback}
        log = open(course.state / f"worker{index}.log", "a", encoding="utf-8")
        self.proc = subprocess.Popen([sys.executable, "-m", "autograder.grading", "--worker",
                                      json.dumps(settings)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log, text=True, bufsize=1, start_new_session=True)
        log.close()
        self.unit, self.since, self.ready = None, None, False

    def send(self, unit):
        self.unit, self.since = unit, time.monotonic()
        self.proc.stdin.write(json.dumps(asdict(unit)) + "\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.proc.stdout.readline()
        return json.loads(line) if line else ["died", "the worker process died"]

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)   # the worker, its zygote and its kernels
        except OSError:
            pass
        self.proc.wait()

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()


def _run_pool(todo, course, limits, jobs, hide, summary, progress, log, retries, feedback, isolate=True):
    from tqdm.auto import tqdm

    course.state.mkdir(parents=True, exist_ok=True)
    queue, attempts = list(todo), {}
    hard_limit = 2 * limits.notebook_timeout + 120
    workers = {i: _WorkerProcess(i, course, limits, isolate, hide, feedback) for i in range(jobs)}
    bar = tqdm(total=len(todo), desc="grading", unit="nb", disable=not progress)
    try:
        while queue or any(w.unit for w in workers.values()):
            for w in workers.values():
                if w.ready and w.unit is None and queue:
                    w.send(queue.pop(0))
            readable = selectors_wait([w.proc.stdout for w in workers.values()], timeout=1.0)
            for index, w in list(workers.items()):
                if w.proc.stdout in readable:
                    message = w.receive()
                elif w.unit is not None and time.monotonic() - w.since > hard_limit:
                    message = ["died", f"grading took more than {hard_limit} s; the worker was killed"]
                else:
                    continue
                kind = message[0]
                if kind == "ready":
                    w.ready, summary.isolated = True, message[1]
                    continue
                if kind == "done" and message[2] != "error":
                    summary.graded += 1
                    w.unit = None
                    bar.update(1)
                    continue
                if kind == "done":                 # nbgrader could not grade it: try once more
                    message = ["failed", message[1], "nbgrader failed on this submission (see its ledger record)"]
                if kind == "broken":
                    raise RuntimeError(f"a grading worker could not start:\n{message[-1]}")
                unit, why = w.unit, message[-1]
                if kind == "died":
                    w.kill()
                    workers[index] = _WorkerProcess(index, course, limits, isolate, hide, feedback)
                else:
                    w.unit = None
                if unit is not None:
                    attempts[unit.key] = attempts.get(unit.key, 0) + 1
                    if attempts[unit.key] <= retries:
                        queue.insert(0, unit)
                    else:
                        summary.failed.append((unit.key, why))
                        old = read_ledger(course, unit.assignment, unit.student)
                        if not (old and old.get("status") == "error" and old.get("fingerprint") == fingerprint(unit, course)):
                            _record_failure(course, unit, why)   # keep nbgrader's own error if it wrote one
                        bar.update(1)
    finally:
        bar.close()
        for w in workers.values():
            w.stop()


def selectors_wait(streams, timeout):
    """The streams of ``streams`` that have something to read within ``timeout`` seconds."""
    import selectors

    with selectors.DefaultSelector() as sel:
        for stream in streams:
            sel.register(stream, selectors.EVENT_READ)
        return [key.fileobj for key, _ in sel.select(timeout)]


def _record_failure(course, unit, why):
    write_ledger(course, {"student": unit.student, "assignment": unit.assignment, "status": "error",
                          "fingerprint": fingerprint(unit, course), "grader_version": GRADER_VERSION,
                          "error": why[-3000:], "flags": [{"kind": "grader-error", "severity": "review",
                                                           "message": "the grader could not grade this "
                                                                      "submission; see the error"}],
                          "scores": {}})


def ledger_records(course):
    """Every ledger record of the course, sorted by assignment and student."""
    records = []
    for path in sorted(course.ledger.glob("*/*.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            continue
    return records


def reconcile(course):
    """Make the gradebook's autograded test scores equal the ledger's; returns what it fixed."""
    from nbgrader.api import Gradebook, MissingEntry

    fixed = []
    records = [r for r in ledger_records(course) if r.get("status") in ("graded", "missing", "unreadable")]
    if not records:
        return fixed
    with Gradebook(course.db_url, course.course_id) as gb:
        for record in records:
            try:
                sub = gb.find_submission_notebook(Path(record["notebook"]).stem, record["assignment"],
                                                  record["student"])
            except (MissingEntry, KeyError):
                continue
            for g in sub.grades:
                entry = record["scores"].get(g.name)
                if entry is None or entry.get("kind") != "test":
                    continue
                if g.auto_score is None or abs(g.auto_score - entry["final"]) > 1e-9:
                    fixed.append(f"{record['assignment']}/{record['student']}/{g.name}: "
                                 f"{g.auto_score} -> {entry['final']}")
                    g.auto_score = entry["final"]
        gb.db.commit()
    return fixed


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker_main(sys.argv[2:])
