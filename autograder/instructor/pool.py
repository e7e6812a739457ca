"""Grade a whole class: every submission of every assignment, in parallel, resumably.

    nn-course grade SUBMISSIONS [--jobs N] [--cell-timeout S] [--notebook-timeout S]
                                [--memory-mb M] [--force] [--course DIR]

SUBMISSIONS is a folder laid out like nbgrader's ``submitted/``
(``<student>/<assignment>/<notebook>.ipynb``) or a zip of notebooks as a learning platform
exports them (collected with nbgrader's ``zip_collect``; see ``collect_zip``).

``grade`` finds the units (``discover``), leaves out those the ledger says are done (same
fingerprint), and hands the rest to a pool of worker processes (``worker.py``; one per core),
each grading one unit at a time. A unit whose worker hangs or dies is killed, retried once,
and otherwise recorded as an error; the batch always finishes. At the end the gradebook is
reconciled with the ledger (``reconcile``): a grade that differs is put back and reported.
"""
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import build, sandbox
from .canary import CanaryFailed
from .records import (DONE, Course, Flag, Record, Unit, fingerprint, ledger_records, read_ledger, withhold,
                      write_ledger)


# ------------------------------------------------------------------------------ the units
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
        config = course.fresh_config()
        config.CourseDirectory.assignment_id = assignment
        config.FileNameCollectorPlugin.named_regexp = regexp
        config.ZipCollectApp.force = True
        app = ZipCollectApp(config=config)
        app.initialize([])
        app.start()
    return course.root / "submitted"


# ------------------------------------------------------------------------------ the batch
@dataclass
class Summary:
    graded: int = 0
    skipped: int = 0
    failed: list = field(default_factory=list)       # [(unit key, why)]
    problems: list = field(default_factory=list)
    isolated: bool = False
    seconds: float = 0.0
    canary_seconds: float = 0.0      # the longest worker's grading of the reference answers
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
    if submissions.suffix.lower() == ".zip":
        submissions = collect_zip(submissions, course)
    units, problems = discover(submissions, course)
    for assignment in course.assignments:          # the kit nbgrader copies into every submission
        build.add_kit(course.source / assignment)
    todo = [u for u in units if force or not _current(course, u)]
    summary = Summary(skipped=len(units) - len(todo), problems=problems)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    log(f"{len(units)} submissions ({len(units) // max(1, len(course.assignments))} students x "
        f"{len(course.assignments)} assignments): {len(todo)} to grade, {summary.skipped} already graded; "
        f"{jobs} worker{'s' if jobs > 1 else ''}")
    if todo:
        Pool(course, limits, jobs, feedback, retries).run(todo, summary, progress)
    summary.reconciled = reconcile(course)
    summary.seconds = time.perf_counter() - start
    if summary.reconciled:
        log(f"gradebook differed from the ledger in {len(summary.reconciled)} grades; put back: "
            + "; ".join(summary.reconciled[:5]))
    for key, why in summary.failed:
        log(f"could not grade {key}: {why.strip().splitlines()[-1] if why.strip() else 'unknown'}")
    return summary


def _current(course, unit):
    """Has the ledger a finished record of exactly this submission?"""
    old = read_ledger(course, unit.assignment, unit.student)
    return old is not None and old.status in DONE and old.fingerprint == fingerprint(unit, course)


# ------------------------------------------------------------------------------ the pool
class _WorkerProcess:
    """The parent's handle on one worker: a subprocess speaking JSON lines (``worker.main``)."""

    def __init__(self, index, course, limits, feedback, canary=()):
        settings = {"course": str(course.dir), "limits": asdict(limits), "index": index, "feedback": feedback,
                    "canary": list(canary)}
        with open(course.state / f"worker{index}.log", "a", encoding="utf-8") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "autograder.instructor.worker", json.dumps(settings)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                         bufsize=1, start_new_session=True)
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


class Pool:
    """``jobs`` worker processes grading a queue of units; a dead or stuck worker is replaced.

    Each worker first grades the reference answers of the queue's assignments (the canary,
    ``canary.py``); no unit is handed out before every worker has passed it, and a worker whose
    canary fails stops the run (``CanaryFailed``): nothing is graded.
    """

    def __init__(self, course, limits, jobs, feedback=True, retries=1):
        self.course, self.limits, self.jobs = course, limits, jobs
        self.feedback, self.retries = feedback, retries
        self.hard_limit = 2 * limits.notebook_timeout + 120   # a worker silent this long is stuck

    def _start(self, index):
        return _WorkerProcess(index, self.course, self.limits, self.feedback, self.canary)

    def run(self, todo, summary, progress=True):
        from tqdm.auto import tqdm

        self.course.state.mkdir(parents=True, exist_ok=True)
        self.queue, self.attempts, self.summary = list(todo), {}, summary
        self.canary = sorted({u.assignment for u in todo if u.folder})    # nothing sent: nothing to run
        self.workers = {i: self._start(i) for i in range(self.jobs)}
        self.bar = tqdm(total=len(todo), desc="grading", unit="nb", disable=not progress)
        self.started = False             # every worker has passed its canary
        self.deaths_at_start = 0
        try:
            while self.queue or any(w.unit for w in self.workers.values()):
                started = self.started or all(w.ready for w in self.workers.values())
                self.started = started
                for w in self.workers.values():
                    if started and w.ready and w.unit is None and self.queue:
                        w.send(self.queue.pop(0))
                readable = _wait([w.proc.stdout for w in self.workers.values()], timeout=1.0)
                for index, w in list(self.workers.items()):
                    if w.proc.stdout in readable:
                        self._handle(index, w, w.receive())
                    elif w.unit is not None and time.monotonic() - w.since > self.hard_limit:
                        self._handle(index, w, ["died", f"grading took more than {self.hard_limit} s; "
                                                       "the worker was killed"])
        finally:
            self.bar.close()
            for w in self.workers.values():
                w.stop()

    def _handle(self, index, w, message):
        """One message of worker ``index``: ready, done, failed, died or broken."""
        kind = message[0]
        if kind == "ready":
            w.ready, self.summary.isolated = True, message[1]
            self.summary.canary_seconds = max(self.summary.canary_seconds, message[2])
            return
        if kind == "canary-failed":
            raise CanaryFailed(message[1])
        if kind == "broken":
            raise RuntimeError(f"a grading worker could not start:\n{message[-1]}")
        if kind == "done" and message[2] != "error":
            self.summary.graded += 1
            w.unit = None
            self.bar.update(1)
            return
        if kind == "done":                 # nbgrader could not grade it: try once more
            message = ["failed", message[1], "nbgrader failed on this submission (see its ledger record)"]
        unit, why = w.unit, message[-1]
        if kind == "died" and not w.ready:
            self.deaths_at_start += 1
            if self.deaths_at_start > 2 * self.jobs:
                raise RuntimeError(f"grading workers die before they can grade ({why}); see "
                                   f"{self.course.state}/worker{index}.log")
        if kind == "died":
            w.kill()
            self.workers[index] = self._start(index)
        else:
            w.unit = None
        if unit is not None:
            self._retry_or_fail(unit, why)

    def _retry_or_fail(self, unit, why):
        self.attempts[unit.key] = self.attempts.get(unit.key, 0) + 1
        if self.attempts[unit.key] <= self.retries:
            self.queue.insert(0, unit)
            return
        self.summary.failed.append((unit.key, why))
        old = read_ledger(self.course, unit.assignment, unit.student)
        if not (old and old.status == "error" and old.fingerprint == fingerprint(unit, self.course)):
            _record_failure(self.course, unit, why)   # keep nbgrader's own error if it wrote one
        self.bar.update(1)


def _wait(streams, timeout):
    """The streams of ``streams`` that have something to read within ``timeout`` seconds."""
    with selectors.DefaultSelector() as sel:
        for stream in streams:
            sel.register(stream, selectors.EVENT_READ)
        return [key.fileobj for key, _ in sel.select(timeout)]


def _record_failure(course, unit, why):
    """The unit's worker died or hung: an error record, and its scores withheld in the gradebook."""
    record = Record(unit.student, unit.assignment, status="error", fingerprint=fingerprint(unit, course),
                    error=why[-3000:])
    withheld = withhold(course, unit.assignment, unit.student)
    record.flags.append(Flag("grader-error", "the grader could not grade this submission; see the error"
                             + (f" ({withheld} autograded scores withheld: 0, marked for a manual grade)"
                                if withheld else ""), severity="review"))
    write_ledger(course, record)


# ------------------------------------------------------------------------------ reconciliation
def reconcile(course):
    """Make the gradebook's autograded test scores equal the ledger's; returns what it fixed."""
    from nbgrader.api import Gradebook, MissingEntry

    fixed = []
    records = [r for r in ledger_records(course) if r.status in DONE]
    if not records:
        return fixed
    with Gradebook(course.db_url, course.course_id) as gb:
        for record in records:
            try:
                sub = gb.find_submission_notebook(Path(record.notebook).stem, record.assignment, record.student)
            except (MissingEntry, KeyError):
                continue
            for g in sub.grades:
                entry = record.scores.get(g.name)
                if entry is None or entry.kind != "test":
                    continue
                if g.auto_score is None or abs(g.auto_score - entry.final) > 1e-9:
                    fixed.append(f"{record.key}/{g.name}: {g.auto_score} -> {entry.final}")
                    g.auto_score = entry.final
        gb.db.commit()
    return fixed
