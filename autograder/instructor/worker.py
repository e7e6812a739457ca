"""A grading worker: grades units one after the other, in a process of its own.

``Worker.grade(unit)`` runs the steps of ``docs/grading.md``, in this order, each a method of
the same name (``Worker.STEPS``); a step may end the unit early (nothing to grade, or
nbgrader failed), and the ledger is written last whatever happened:

1. ``intake``    normalise the submission (``intake.normalize``); nothing to grade: 0 points;
2. ``autograde`` nbgrader's Autograde, its execution sandboxed (``nbexec``, ``zygote.py``);
3. ``scan``      the static integrity scan of the student's cells (``integrity.scan``);
4. ``recheck``   the instructor's notebook with only the student's definitions, in a fresh
                 kernel, with integrity probes (``recheck.clean_notebook``);
5. ``score``     per test cell the lower of nbgrader's and the re-check's score, flags, into
                 the gradebook (``needs_manual_grade`` where flagged);
6. ``feedback``  the unit's feedback HTML (``feedback.write_feedback``);
7. the ledger record (``records.write_ledger``), written last: a unit without its record is
   graded again by the next run.

A step that raises (the grader's failure, never the student's code, which runs in a kernel)
ends the unit as an error, and its scores are withheld in the gradebook (``records.withhold``:
0 and marked for a manual grade), never left at what an earlier step wrote.

The process side: ``python -m autograder.instructor.worker SETTINGS`` reads units as JSON
lines on stdin and answers one JSON line per message on its stdout (``main``); the pool
(``pool.py``) drives it.
"""
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import feedback as feedback_module
from . import integrity, intake, recheck, sandbox, zygote
from .nbcells import grade_id
from .nbexec import ZYGOTE, ExecutionLog, GradingExecute, StderrIsNotFailure, error_text
from .records import Course, Flag, Record, Score, Unit, fingerprint, withhold, write_ledger

#: Reference modules the zygote imports once for all kernels (the hidden tests import them).
PRELOAD = ("solutions_lib.activations", "solutions_lib.layers", "solutions_lib.losses",
           "solutions_lib.network", "solutions_lib.optim", "solutions_lib.data")
EVENT_FLAGS = {
    "dead-kernel": "the kernel died (os._exit, a crash, or out of memory); the cells before it kept "
                   "their results, the rest scored 0",
    "notebook-time-limit": "the notebook ran out of time; the cells after the limit were not run",
    "cell-timeout": "a cell ran past the cell time limit (an endless loop?) and was interrupted",
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
    rechecked: dict = field(default_factory=dict)     # {grade_id: recheck.Result}
    ended: bool = False

    def end(self, status, error=""):
        self.record.status, self.record.error, self.ended = status, error, True


class Worker:
    """Grades units one after the other (see the module docstring)."""
    STEPS = ("intake", "autograde", "scan", "recheck", "score", "feedback")

    def __init__(self, course_dir, limits, index=0, hide=(), feedback=True):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory

        self.course = Course(course_dir)
        self.limits, self.write_feedback = limits, feedback
        self.scratch = Path(tempfile.mkdtemp(prefix=f"nn-grade-w{index}-"))
        for sub in ("home", "tmp", "mpl", "ipython", "runtime", "work", "cache"):
            (self.scratch / sub).mkdir()
        os.environ["JUPYTER_RUNTIME_DIR"] = str(self.scratch / "runtime")
        self.isolated = sandbox.isolation_available()
        self.hide = self.course.hidden_folders(hide)
        self.log, self.recheck_log = ExecutionLog(), ExecutionLog()
        self.config = self._config()
        self.recheck_config = copy.deepcopy(self.config)     # the re-check's own log (nbclient
        self.recheck_config.GradingExecute.execution_log = self.recheck_log   # reloads the config)
        self.api = NbGraderAPI(CourseDirectory(config=self.config), config=self.config)
        self.zygote = self._start_zygote()
        self._feedback_api = None

    def _config(self):
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                            LimitOutput, SaveAutoGrades)

        config = self.course.config
        config.CourseDirectory.submitted_directory = os.path.relpath(self.course.intake, self.course.root)
        config.Autograde.autograde_preprocessors = [
            GradingExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, StderrIsNotFailure,
            SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
        for name in ("GradingExecute", "StderrIsNotFailure"):
            config[name].execution_log = self.log
        config.GradingExecute.update(timeout=self.limits.cell_timeout, notebook_timeout=self.limits.notebook_timeout,
                                     shutdown_kernel="immediate", startup_timeout=60, interrupt_on_timeout=True)
        config.ZygoteKernelManager.socket_path = str(self.scratch / "zygote.sock")
        config.ZygoteKernelManager.runtime_dir = str(self.scratch / "runtime")
        return config

    # ---------------------------------------------------------------- the sandbox
    def _start_zygote(self):
        """The zygote, inside the sandbox; returns its Popen once its socket listens."""
        socket_path = self.config.ZygoteKernelManager.socket_path
        command = [sys.executable, str(ZYGOTE), "serve", socket_path, "--preload", ",".join(PRELOAD)]
        if self.isolated:
            command = sandbox.wrap(command + ["--sweep"], self.hide, self.scratch)
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MPLCONFIGDIR=str(self.scratch / "mpl"), IPYTHONDIR=str(self.scratch / "ipython"))
        with open(self.scratch / "zygote.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=log, env=env, cwd=self.scratch,
                                    start_new_session=True)
        deadline = time.monotonic() + 120
        while not os.path.exists(socket_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the grading zygote did not start:\n"
                                   + (self.scratch / "zygote.log").read_text()[-3000:])
            time.sleep(0.05)
        return proc

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

    def _fresh_workdir(self, name, assignment):
        """A scratch copy of the assignment's folder (the kit, no notebook) for a kernel; sets its env."""
        if self.isolated:                    # nothing a previous kernel left keeps running
            zygote.request(self.config.ZygoteKernelManager.socket_path, {"sweep": True})
        work = self.scratch / "work" / name
        if work.exists():
            shutil.rmtree(work)
        shutil.copytree(self.course.source / assignment, work,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
        for sub in ("home", "tmp", "mpl", "ipython"):
            shutil.rmtree(self.scratch / sub, ignore_errors=True)
            (self.scratch / sub).mkdir()
        self._kernel_env(work)
        return work

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
        self._fresh_workdir(f"{unit.student}-{unit.assignment}", unit.assignment)
        result = self.api.autograde(unit.assignment, unit.student, force=True, create=True)
        record.seconds["autograde_cells"] = self.log.cell_seconds
        record.events = list(self.log.events)
        if not result.get("success"):          # what nbgrader wrote before it stopped is withheld
            self._withhold(job, "autograde", (result.get("error") or "")[-2000:] + "\n"
                           + (result.get("log") or "")[-2000:])
            return
        job.graded_nb = nbformat.read(self.course.autograded_notebook(record), as_version=4)
        job.nbgrader = self._scores(unit, record.notebook)

    def scan(self, job):
        """3. The static scan of every cell the student wrote (evidence for a human)."""
        cells = [(label, src) for _, label, src in integrity.student_cells(job.student_nb, job.source_nb)]
        job.findings = integrity.scan(cells, integrity.provided_names(job.source_nb))
        job.record.flags += [f for f in job.findings if f.severity != "info"]

    def recheck(self, job):
        """4. When nbgrader gave any test points: the re-check outside the student's kernel."""
        if not any(s.nbgrader for s in job.nbgrader.values() if s.kind == "test"):
            return
        clean, left_out = recheck.clean_notebook(job.source_nb, job.student_nb, job.release_nb)
        job.record.left_out = left_out
        work = self._fresh_workdir(f"recheck-{job.unit.student}-{job.unit.assignment}", job.unit.assignment)
        self.recheck_log.reset()
        GradingExecute(config=self.recheck_config, kernel_name="python3").preprocess(
            clean, {"metadata": {"path": str(work)}})
        job.record.seconds["recheck_cells"] = self.recheck_log.cell_seconds
        job.rechecked = recheck.results(clean)

    def score(self, job):
        """5. Final scores (the lower of the two per test cell), flags, into the gradebook."""
        record = job.record
        tampering = any(f.severity == "tampering" for f in job.findings)
        for gid, s in job.nbgrader.items():
            if s.kind == "test":
                s.final, flag = _final_score(gid, s, job.rechecked.get(gid), tampering)
                if flag is not None:
                    record.flags.append(flag)
                cell = next((c for c in job.graded_nb.cells if grade_id(c) == gid), None)
                if cell is not None and error_text(cell):
                    record.diagnoses[gid] = error_text(cell)[:400]
            else:
                s.final = s.nbgrader
            record.scores[gid] = s
        for event in record.events:
            if event["kind"] in EVENT_FLAGS:
                record.flag(event["kind"], EVENT_FLAGS[event["kind"]], "review",
                            event.get("grade_id") or f"cell {event['cell']}", event.get("message", ""))
        if not self.isolated:
            record.flag("no-isolation", "graded without filesystem isolation (bubblewrap missing)")
        self._save(job.unit, record)
        record.status = "graded"

    def feedback(self, job):
        """6. The unit's feedback HTML, written here so that it is made in parallel."""
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
        withheld = withhold(self.course, job.unit.assignment, job.unit.student)
        record.flag("withheld", f"grading stopped at step '{step}' with an error of the grader; the "
                    f"{withheld} autograded scores are withheld (0, marked for a manual grade) until it is "
                    "graded again.", "review", evidence=(why.strip().splitlines() or [""])[-1][:300])
        job.end("error", why[-3000:])

    def _scores(self, unit, name):
        """{grade_id: Score} of the unit's notebook as nbgrader graded it, from the gradebook."""
        from nbgrader.api import Gradebook

        with Gradebook(self.course.db_url, self.course.course_id) as gb:
            sub = gb.find_submission_notebook(Path(name).stem, unit.assignment, unit.student)
            return {g.name: Score(g.max_score, "test" if g.cell.cell_type == "code" else "written", g.auto_score)
                    for g in sub.grades}

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


def _final_score(gid, score, rechecked, tampering):
    """(final score, Flag or None) of one test cell from nbgrader's score and the re-check's."""
    if rechecked is None:                                    # not re-checked: nbgrader gave nothing
        return score.nbgrader or 0.0, None
    score.recheck = score.max if rechecked.passed else 0.0
    if rechecked.passed:
        return score.nbgrader or 0.0, None
    if not score.nbgrader:
        return 0.0, None
    kind = "integrity" if rechecked.tampered else "not-confirmed"
    severity = "tampering" if tampering or rechecked.tampered else "review"
    return 0.0, Flag(kind, f"{gid}: nbgrader gave {score.nbgrader:g} of {score.max:g} points in the student's "
                           "kernel, but the re-check outside it failed; the points are withheld.",
                     evidence=rechecked.message[:400], severity=severity, cell=gid)


# ------------------------------------------------------------------------------ the process
def main(argv):
    """A worker process: ``python -m autograder.instructor.worker SETTINGS`` (JSON).

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
                        settings["hide"], settings["feedback"])
        send("ready", worker.isolated)
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
