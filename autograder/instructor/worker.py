"""A grading worker: grades units one after the other, in a process of its own.

``Worker.grade(unit)`` runs the steps of ``docs/grading.md``, in this order, each a method of
the same name (``Worker.STEPS``); a step may end the unit early (nothing to grade, or
nbgrader failed), and the ledger is written last whatever happened:

0. ``deadline``  the unit's due date, extension and submission time into the gradebook
                 (``deadlines.write_to_gradebook``: nbgrader's late penalty comes from them);
1. ``intake``    normalise the submission (``intake.normalize``); nothing to grade: 0 points;
2. ``autograde`` nbgrader's Autograde, its execution split in two processes
                 (``split.execute.SplitExecute``): the student's cells in the sandboxed student
                 process, the tests in the grader process;
3. ``scan``      the static integrity scan of the student's cells (``integrity.scan``):
                 evidence for a human, never a wall;
4. ``score``     nbgrader's scores, flags, into the gradebook (``needs_manual_grade`` where
                 flagged);
5. ``feedback``  the unit's feedback HTML (``feedback.write_feedback``);
6. the ledger record (``records.write_ledger``), written last: a unit without its record is
   graded again by the next run.

A step that raises (the grader's failure, never the student's code, which runs in a kernel)
ends the unit as an error, and its scores are withheld in the gradebook (``records.withhold``:
0 and marked for a manual grade), never left at what an earlier step wrote.

The process side: ``python -m autograder.instructor.worker SETTINGS`` reads units as JSON
lines on stdin and answers one JSON line per message on its stdout (``main``); the pool
(``pool.py``) drives it.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import canary as canary_module
from . import feedback as feedback_module
from . import deadlines, integrity, intake, sandbox, zygote
from .nbcells import grade_id
from .nbexec import ZYGOTE, ExecutionLog, StderrIsNotFailure, error_text, failed_part_text
from .split import execute as split
from .records import Course, Flag, Record, Score, Unit, fingerprint, withhold, write_ledger

#: Reference modules the grader's zygote imports once for all its kernels (the hidden tests import them).
PRELOAD = ("solutions_lib.activations", "solutions_lib.layers", "solutions_lib.losses",
           "solutions_lib.network", "solutions_lib.optim", "solutions_lib.data")
EVENT_FLAGS = {
    "dead-kernel": "the kernel died (os._exit, a crash, or out of memory); the cells before it kept "
                   "their results, the rest scored 0",
    "notebook-time-limit": "the notebook ran out of time; the cells after the limit were not run",
    "cell-timeout": "a cell ran past the cell time limit (an endless loop?) and was interrupted",
    "grader-died": "the grader's own process stopped while it ran a cell; the cells after it are not graded",
}


@dataclass
class Job:
    """One unit while it is graded: the record being written and what the steps pass on."""
    unit: Unit
    record: Record
    source_nb: object = None
    release_nb: object = None
    student_nb: object = None            # the normalised submission (intake)
    graded_nb: object = None             # what nbgrader executed (autograde)
    nbgrader: dict = field(default_factory=dict)      # {grade_id: Score} from the gradebook
    findings: list = field(default_factory=list)      # [Flag] of the scan
    ended: bool = False

    def end(self, status, error=""):
        self.record.status, self.record.error, self.ended = status, error, True


class Worker:
    """Grades units one after the other (see the module docstring)."""
    STEPS = ("deadline", "intake", "autograde", "scan", "score", "feedback")

    def __init__(self, course_dir, limits, index=0, feedback=True):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        self.course = Course(course_dir)
        self.limits, self.write_feedback = limits, feedback
        # scratch/control: the zygotes' sockets; box: all the student process sees (emptied
        # per unit); grader: the grader process's folders; bin: the agent, bound read-only
        self.scratch = Path(tempfile.mkdtemp(prefix=f"nn-grade-w{index}-"))
        self.box, self.grader_dir, self.bin = self.scratch / "box", self.scratch / "grader", self.scratch / "bin"
        self.kits = self.scratch / "kits"
        for sub in ("control", "runtime", "box", "box/unit", "grader", "grader/unit", "bin", "data", "kits"):
            (self.scratch / sub).mkdir()
        _warm_data_cache(self.scratch / "data")
        for script in (ZYGOTE, split.AGENT, split.WIRE):
            shutil.copy(script, self.bin / script.name)
        os.environ["JUPYTER_RUNTIME_DIR"] = str(self.scratch / "runtime")
        self.isolated = sandbox.isolation_available()
        self.log = ExecutionLog()
        self.config = self._config()
        self.api = NbGraderAPI(CourseDirectory(config=self.config), config=self.config)
        self.zygotes = []
        self.zygotes.append(self._start_zygote("student"))
        self.zygotes.append(self._start_zygote("grader"))
        self._feedback_api = None

    def _config(self):
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from nbgrader.preprocessors import AssignLatePenalties, IgnorePattern, LimitOutput, SaveAutoGrades

        config = self.course.config
        config.CourseDirectory.submitted_directory = os.path.relpath(self.course.intake, self.course.root)
        config.Autograde.autograde_preprocessors = [
            split.SplitExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, StderrIsNotFailure,
            SaveAutoGrades, AssignLatePenalties]        # (the metadata was checked once, before: sanitize)
        from .latepenalty import DeadlinePenalty     # deadlines.yml's policy, applied by nbgrader
        config.AssignLatePenalties.plugin_class = DeadlinePenalty
        config.DeadlinePenalty.course = self.course
        for name in ("SplitExecute", "StderrIsNotFailure"):
            config[name].execution_log = self.log
        box, grader = self.box, self.grader_dir
        config.SplitExecute.update(timeout=self.limits.cell_timeout, notebook_timeout=self.limits.notebook_timeout,
                                   student_cwd=str(box / "unit" / "work"), grader_cwd=str(grader / "unit" / "work"),
                                   channel=str(box / "run" / "channel"), agent=str(self.bin / "agent.py"))
        config.StudentKernelManager.update(socket_path=str(self.scratch / "control" / "student"),
                                           runtime_dir=str(box / "run"), kernel_cwd=str(box / "unit" / "work"),
                                           kernel_env=self._kernel_env(box / "unit"))
        if self.isolated:                    # no network in the sandbox: the kernel's sockets are files
            config.StudentKernelManager.update(transport="ipc", ip=str(box / "run" / "kernel"))
        config.GraderKernelManager.update(socket_path=str(self.scratch / "control" / "grader"),
                                          runtime_dir=str(grader / "run"), kernel_cwd=str(grader / "unit" / "work"),
                                          kernel_env=self._kernel_env(grader / "unit"))
        return config

    # ---------------------------------------------------------------- the sandbox
    def _start_zygote(self, which):
        """The student's zygote (in the sandbox, listening on a socket it inherits) or the grader's
        (with the references preloaded); returns its Popen once it listens."""
        path = str(self.scratch / "control" / which)
        limits = ["--limits", json.dumps(self.limits.kernel())]
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MPLCONFIGDIR=str(self.scratch / "runtime"), IPYTHONDIR=str(self.scratch / "runtime"))
        if which == "student":               # what the sandbox's processes hold (/proc/1/environ): nothing of ours
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                   "HOME": "/tmp", "MPLCONFIGDIR": "/tmp/mpl", "IPYTHONDIR": "/tmp/ipython",
                   "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        pass_fds, server = (), None
        if which == "grader":
            command = [sys.executable, str(ZYGOTE), "serve", path, "--preload", ",".join(PRELOAD)] + limits
        else:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(path)
            server.listen(16)
            pass_fds = (server.fileno(),)
            command = [sys.executable, str(self.bin / "zygote.py"), "serve", "--fd", str(server.fileno())] + limits
            if self.isolated:
                command = sandbox.wrap(command + ["--sweep"], self.box, readonly=[self.bin, self.kits, self.scratch / "data"],
                                       private=self.box / "unit")
        with open(self.scratch / f"zygote-{which}.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=self.scratch,
                                    start_new_session=True, pass_fds=pass_fds)
        if server is not None:
            server.close()                   # the zygote has its own copy
        deadline = time.monotonic() + 120
        while "modules preloaded" not in (self.scratch / f"zygote-{which}.log").read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the grading zygote ({which}) did not start:\n"
                                   + (self.scratch / f"zygote-{which}.log").read_text()[-3000:])
            time.sleep(0.05)
        while not os.path.exists(path):
            time.sleep(0.01)
        return proc

    def close(self):
        for proc in self.zygotes:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _kernel_env(self, root):
        """What a grading kernel sees: its own home, grading mode, nothing of the grader's."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "MPLCONFIGDIR": str(root / "mpl"),
               "IPYTHONDIR": str(root / "ipython"), "NN_COURSE_CACHE": str(root / "cache"),
               "NBGRADER_EXECUTION": "autograde", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
               "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONHASHSEED": "0"}
        return env

    def _fresh_unit(self, assignment):
        """Fresh unit folders for both processes, each with a copy of the assignment's release
        folder (the kit, no notebook) as its working folder and of the MNIST cache: nothing a
        previous student's code started or wrote is left. In the sandbox the student's unit
        folder is a tmpfs that only the zygote sees: it kills every process of the last unit
        (in any session or group) and refills the folder itself."""
        kit = self.kits / assignment
        if not kit.exists():
            shutil.copytree(self.course.release / assignment, kit,
                            ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        copies = {"work": kit, "cache": self.scratch / "data", "home": None, "tmp": None, "mpl": None,
                  "ipython": None}
        for root in (self.box, self.grader_dir):
            _empty(root / "run")
        if self.isolated:
            answer = zygote.request(str(self.scratch / "control" / "student"), {"sweep": True, "reset": {
                "folder": str(self.box / "unit"), "copies": {k: v and str(v) for k, v in copies.items()}}})
            if answer.get("error"):
                raise RuntimeError(f"the student's folder could not be reset: {answer['error']}")
            (self.box / "unit" / "work").mkdir(exist_ok=True)     # (outside: only the launcher's cwd)
        else:
            _refill(self.box / "unit", copies)
        _refill(self.grader_dir / "unit", copies)

    # ---------------------------------------------------------------- the canary
    def canary(self, assignments):
        """Grade the reference answers of ``assignments`` here, as a student's would be graded
        (``canary.py``); returns the test cells that lost points ([]: this worker can grade)."""
        misses = []
        for assignment in assignments:
            self.log.reset()
            self._fresh_unit(assignment)
            notebook = nbformat.read(self.course.source_notebook(assignment), as_version=4)
            misses += canary_module.grade_reference(self.config, self.log, notebook, assignment)
        return misses

    # ---------------------------------------------------------------- one unit
    def grade(self, unit):
        """Grade one unit: the STEPS in order, then the ledger. Returns the unit's Record."""
        start = time.perf_counter()
        course = self.course
        record = Record(unit.student, unit.assignment, notebook=course.notebook_name(unit.assignment),
                        fingerprint=fingerprint(unit, course), isolated=self.isolated)
        job = Job(unit, record, source_nb=nbformat.read(course.source_notebook(unit.assignment), as_version=4),
                  release_nb=nbformat.read(course.release_notebook(unit.assignment), as_version=4))
        for step in self.STEPS:
            began = time.perf_counter()
            try:
                getattr(self, step)(job)
            except Exception:                # noqa: BLE001  (the grader's own failure: withhold, report)
                self._withhold(job, step, traceback.format_exc())
            record.seconds[step] = time.perf_counter() - began
            if job.ended:
                break
        record.seconds["total"] = time.perf_counter() - start
        write_ledger(course, record)         # 7. last: a unit without its record is graded again
        return record

    def deadline(self, job):
        """0. Due date, extension and submission time into the gradebook; old late penalties reset."""
        from nbgrader.api import Gradebook

        unit = job.unit
        deadline, stamp = self.course.deadlines.for_unit(unit.assignment, unit.student), deadlines.read_timestamp(unit.folder)
        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            deadlines.write_to_gradebook(gb, self.course.deadlines, unit.assignment, unit.student, stamp)
        job.record.lateness = deadlines.lateness(deadline, stamp)

    def intake(self, job):
        """1. The gradable form of the submission; with nothing to grade, every grade 0."""
        unit, record = job.unit, job.record
        if unit.folder:
            target = self.course.intake / unit.student / unit.assignment
            got = intake.normalize(unit.folder, record.notebook, job.release_nb, target)
        else:
            got = intake.Intake(None, [Flag("missing-notebook", f"nothing was submitted for {unit.assignment}.")])
        record.flags += got.findings
        if got.notebook is None:
            record.scores = self._zero(unit, record.notebook)
            job.end("unreadable" if any(f.kind == "unreadable" for f in got.findings) else "missing")
            return
        job.student_nb = nbformat.read(got.notebook, as_version=4)

    def autograde(self, job):
        """2. nbgrader's Autograde of the unit, sandboxed; its scores as nbgrader wrote them."""
        unit, record = job.unit, job.record
        self.log.reset()
        self._fresh_unit(unit.assignment)
        result = self.api.autograde(unit.assignment, unit.student, force=True, create=True)
        record.seconds["autograde_cells"] = self.log.cell_seconds
        record.events = list(self.log.events)
        if not result.get("success"):          # what nbgrader wrote before it stopped is withheld
            self._withhold(job, "autograde", (result.get("error") or "")[-2000:] + "\n"
                           + (result.get("log") or "")[-2000:])
            return
        job.graded_nb = nbformat.read(self.course.autograded_notebook(record), as_version=4)
        job.nbgrader, record.lateness["penalty"] = self._scores(unit, record.notebook)

    def scan(self, job):
        """3. The static scan of every cell the student wrote (evidence for a human)."""
        cells = [(label, src) for _, label, src in integrity.student_cells(job.student_nb, job.source_nb)]
        job.findings = integrity.scan(cells, integrity.provided_names(job.source_nb))
        job.record.flags += [f for f in job.findings if f.severity != "info"]

    def score(self, job):
        """4. Final scores (nbgrader's, from the split execution), flags, into the gradebook."""
        record = job.record
        for gid, s in job.nbgrader.items():
            if s.kind == "test":
                s.final = s.nbgrader or 0.0
                cell = next((c for c in job.graded_nb.cells if grade_id(c) == gid), None)
                if cell is not None and (error_text(cell) or failed_part_text(cell)):
                    record.diagnoses[gid] = (error_text(cell) or failed_part_text(cell))[:400]
            else:
                s.final = s.nbgrader
            record.scores[gid] = s
        for event in record.events:
            if event["kind"] in EVENT_FLAGS:
                record.flag(event["kind"], EVENT_FLAGS[event["kind"]], "review",
                            event.get("grade_id") or f"cell {event['cell']}", event.get("message", ""))
        if not self.isolated:
            record.flag("no-isolation", "graded without the sandbox (bubblewrap missing): the student's code ran "
                        "in a process of its own, but could read this machine's files (the reference solutions among them) "
                        "and reach its network")
        self._save(job.unit, record)
        record.status = "graded"

    def feedback(self, job):
        """5. The unit's feedback HTML, written here so that it is made in parallel."""
        if not self.write_feedback:
            return
        if self._feedback_api is None:
            self._feedback_api = feedback_module.feedback_api(self.course)
        feedback_module.write_feedback(self.course, [job.record], force=True, api=self._feedback_api,
                                       log=lambda *a: None)

    # ---------------------------------------------------------------- the gradebook
    def _withhold(self, job, step, why):
        """A step raised: no score of this unit stays in the gradebook unseen; the unit is an error."""
        record = job.record
        record.scores = {g: Score(s.max, s.kind, s.nbgrader, final=0.0) for g, s in record.scores.items()}
        withheld = withhold(self.course, job.unit.assignment, job.unit.student)   # late penalty reset too
        if record.lateness:
            record.lateness["penalty"] = 0.0
        record.flag("withheld", f"grading stopped at step '{step}' with an error of the grader; the "
                    f"{withheld} autograded scores are withheld (0, marked for a manual grade) until it is "
                    "graded again.", "review", evidence=(why.strip().splitlines() or [""])[-1][:300])
        job.end("error", why[-3000:])

    def _scores(self, unit, name):
        """({grade_id: Score}, late penalty) of the unit's notebook as nbgrader graded it, from the gradebook."""
        from nbgrader.api import Gradebook

        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            sub = gb.find_submission_notebook(Path(name).stem, unit.assignment, unit.student)
            return ({g.name: Score(g.max_score, "test" if g.cell.cell_type == "code" else "written", g.auto_score)
                     for g in sub.grades}, sub.late_submission_penalty or 0.0)

    def _zero(self, unit, name):
        """Create the submission in the gradebook with every grade at 0; returns its scores."""
        from nbgrader.api import Gradebook

        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            gb.update_or_create_student(unit.student)
            gb.update_or_create_submission(unit.assignment, unit.student)
            sub = gb.find_submission_notebook(Path(name).stem, unit.assignment, unit.student)
            scores = {}
            for g in sub.grades:
                g.auto_score, g.needs_manual_grade = 0.0, False
                scores[g.name] = Score(g.max_score, "test" if g.cell.cell_type == "code" else "written", 0.0,
                                       final=0.0)
            gb.db.commit()
        return scores

    def _save(self, unit, record):
        """Write the final scores to the gradebook; flagged cells need a manual look."""
        from nbgrader.api import Gradebook

        flagged = {f.cell for f in record.actionable_flags}
        whole = any(f.severity == "tampering" for f in record.flags)
        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            sub = gb.find_submission_notebook(Path(record.notebook).stem, unit.assignment, unit.student)
            for g in sub.grades:
                entry = record.scores.get(g.name)
                if entry is None or entry.kind != "test":
                    continue
                g.auto_score = entry.final
                if g.name in flagged or whole:
                    g.needs_manual_grade = True
            gb.db.commit()


def _empty(folder):
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()


def _refill(folder, copies):
    """``folder`` emptied, with {sub-folder: a copy of this folder, or None: empty}."""
    _empty(folder)
    for sub, source in copies.items():
        if source:
            shutil.copytree(source, folder / sub)
        else:
            (folder / sub).mkdir()


def _warm_data_cache(folder):
    """The embedded MNIST, parsed once per worker into ``folder`` (the kit's cache format): each
    unit's kernels start with a copy of it instead of parsing it again (a second per notebook)."""
    from autograder import datasets

    try:
        datasets.load_mnist("embedded", cache_dir=folder)
    except Exception as err:                 # noqa: BLE001  (the notebooks will say what is missing)
        print(f"worker: no MNIST cache: {err}", file=sys.stderr)


# ------------------------------------------------------------------------------ the process
def main(argv):
    """A worker process: ``python -m autograder.instructor.worker SETTINGS`` (JSON).

    First grades the reference answers of the assignments in ``settings["canary"]``; if one
    loses a point it answers ["canary-failed", message] and stops. Then reads units as JSON
    lines on stdin; answers on its original stdout, one JSON line per message:
    ["ready", isolated, canary seconds], ["done", key, status, seconds], ["failed", key,
    traceback] or ["broken", traceback]. Everything else it prints goes to stderr.
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
                        settings["feedback"])
        began = time.perf_counter()
        misses = worker.canary(settings.get("canary", []))
        if misses:
            send("canary-failed", canary_module.explain(misses, worker.limits))
            return
        send("ready", worker.isolated, time.perf_counter() - began)
        for line in sys.stdin:
            unit = Unit(**json.loads(line))
            try:
                record = worker.grade(unit)
                send("done", unit.key, record.status, record.seconds)
            except Exception:                # noqa: BLE001  (reported, the worker goes on)
                send("failed", unit.key, traceback.format_exc()[-3000:])
    except Exception:                        # noqa: BLE001
        send("broken", traceback.format_exc()[-3000:])
    finally:
        if worker is not None:
            worker.close()


if __name__ == "__main__":
    main(sys.argv[1:])
