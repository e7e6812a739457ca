"""Grade a whole class: every submission of every assignment, in parallel, resumably.

    nn-course grade SUBMISSIONS [--jobs N] [--cell-timeout S] [--notebook-timeout S]
                                [--memory-mb M] [--force] [--course DIR]
                                [--scheduler tcp://HOST:PORT] [--shard K/N]
    nn-course merge LEDGER_OR_COURSE_DIRS... [--course DIR]

SUBMISSIONS is a folder laid out like nbgrader's ``submitted/``
(``<student>/<assignment>/<notebook>.ipynb``) or a zip of notebooks as a learning platform
exports them (collected with nbgrader's ``zip_collect``; see ``collect_zip``).

``grade`` finds the units (``discover``), leaves out those the ledger says are done (same
fingerprint), and hands the rest to a pool of worker processes (``worker.py``; one per core),
each grading one unit at a time. A unit whose worker hangs or dies is killed, retried once,
and otherwise recorded as an error; the batch always finishes. At the end the gradebook is
reconciled with the ledger (``reconcile``): a grade that differs is put back and reported.

Two backends grade the units, behind one small interface (``Backend.run(todo, summary,
progress)``): ``Pool`` here (local worker processes) and ``dask_pool.DaskPool`` (the same
worker process on each machine of a Dask cluster, which sends back the record and the files;
``store_result`` writes them here). ``--shard K/N`` grades a stable share of the units
(``shard_of``) into its own ledger, and ``merge`` puts the ledgers of several shards into one
course: the gradebook rows come from the records (``records.put_in_gradebook``) in both cases.
"""
import hashlib
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
from . import feedback as feedback_module
from .canary import CanaryFailed
from .records import (DONE, Course, Flag, Record, Unit, fingerprint, ledger_records, put_in_gradebook, read_ledger,
                      withhold, write_ledger)


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
          retries=1, feedback=True, backend=None, shard=None):
    """Grade every unit of ``submissions`` (a folder or a zip) into the course's gradebook.

    jobs: worker processes (default: one per core); limits: a ``sandbox.Limits``; force:
    grade again what the ledger says is done; feedback: write each unit's feedback HTML as it
    is graded (else ``nn-course report`` writes it); backend: what grades the units, a callable
    ``(course, limits, jobs, feedback, retries) -> Backend`` (default ``Pool``, local
    processes; ``dask_pool.dask_backend(address)`` for a Dask cluster); shard: ``(k, n)``,
    grade only the k-th of n shares of the units (1 <= k <= n, ``shard_of``). Returns a ``Summary``.
    """
    start = time.perf_counter()
    course = Course(course_dir)
    limits = limits or sandbox.Limits()
    submissions = Path(submissions)
    if submissions.suffix.lower() == ".zip":
        submissions = collect_zip(submissions, course)
    units, problems = discover(submissions, course)
    if shard is not None:
        k, n = shard
        if not (isinstance(k, int) and isinstance(n, int) and 1 <= k <= n):
            raise ValueError(f"--shard {k}/{n}: give K/N with 1 <= K <= N, e.g. --shard 1/4 ... --shard 4/4")
        units = [u for u in units if shard_of(u.key, n) == k - 1]
    for assignment in course.assignments:          # the kit nbgrader copies into every submission
        build.add_kit(course.source / assignment)
    todo = [u for u in units if force or not _current(course, u)]
    summary = Summary(skipped=len(units) - len(todo), problems=problems)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    log(f"{len(units)} submissions ({len(units) // max(1, len(course.assignments))} students x "
        f"{len(course.assignments)} assignments): {len(todo)} to grade, {summary.skipped} already graded; "
        + (getattr(backend, "label", "") or f"{jobs} worker{'s' if jobs > 1 else ''}"))
    if todo:
        (backend or Pool)(course, limits, jobs, feedback, retries).run(todo, summary, progress)
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


def shard_of(key, n):
    """The shard (0 .. n-1) of a unit key ("<assignment>/<student>"): the same on every machine
    and in every run (sha256 of the key, not Python's salted ``hash``)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:12], 16) % n


# ------------------------------------------------------------------------------ the pool
class Backend:
    """What grades a list of units: ``run(todo, summary, progress)`` grades every unit of
    ``todo`` (``Unit``), counts into ``summary`` (a ``Summary``: graded, failed, isolated) and
    leaves each unit's ledger record in the course. ``Pool`` (local processes) and
    ``dask_pool.DaskPool`` (a Dask cluster) are the two; they share the retry rule below."""

    def __init__(self, course, limits, jobs, feedback=True, retries=1):
        self.course, self.limits, self.jobs = course, limits, jobs
        self.feedback, self.retries = feedback, retries
        self.hard_limit = 2 * limits.notebook_timeout + 120   # a worker silent this long is stuck
        self.attempts, self.queue, self.summary, self.bar = {}, [], None, None

    def run(self, todo, summary, progress=True):
        raise NotImplementedError("a backend grades the units: Pool or dask_pool.DaskPool")

    def _retry_or_fail(self, unit, why):
        """A unit failed (its worker died or hung, or nbgrader failed): back into the queue once
        (``retries``), else an error record and its scores withheld."""
        self.attempts[unit.key] = self.attempts.get(unit.key, 0) + 1
        if self.attempts[unit.key] <= self.retries:
            self.queue.insert(0, unit)
            return
        self.summary.failed.append((unit.key, why))
        old = read_ledger(self.course, unit.assignment, unit.student)
        if not (old and old.status == "error" and old.fingerprint == fingerprint(unit, self.course)):
            _record_failure(self.course, unit, why)   # keep nbgrader's own error if it wrote one
        self.bar.update(1)


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


class Pool(Backend):
    """``jobs`` worker processes grading a queue of units; a dead or stuck worker is replaced.

    Each worker first grades the reference answers of the queue's assignments (the canary,
    ``canary.py``); no unit is handed out before every worker has passed it, and a worker whose
    canary fails stops the run (``CanaryFailed``): nothing is graded.
    """

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


# ------------------------------------------------------------------------------ records graded elsewhere
def store_result(course, result):
    """Write a unit graded elsewhere into this course: its autograded notebook and feedback HTML
    (when there are any), its gradebook rows (``records.put_in_gradebook``), and its ledger
    record, last (as a worker writes it last: a unit without its record is graded again).

    Inputs:
    - course: the ``Course`` that owns the gradebook and the ledger
    - result: {"record": Record.as_dict(), "autograded": notebook text or None,
               "feedback": HTML text or None}
    Returns the ``Record``.
    """
    record = Record.from_dict(result["record"])
    for path, text in ((course.autograded_notebook(record) if record.notebook else None, result.get("autograded")),
                       (feedback_module.feedback_path(course, record) if record.notebook else None,
                        result.get("feedback"))):
        if path is not None and text is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    put_in_gradebook(course, record)
    write_ledger(course, record)
    return record


def _read_text(path):
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return None


def result_of(course, record):
    """What ``store_result`` takes, read from the course where ``record`` was graded."""
    return {"record": record.as_dict(),
            "autograded": _read_text(course.autograded_notebook(record)) if record.notebook else None,
            "feedback": _read_text(feedback_module.feedback_path(course, record)) if record.notebook else None}


def _shard_course(path):
    """(the Course or None, its ledger folder) of what ``merge`` was given: a course folder (with
    nbgrader_config.py) or a ledger folder (<assignment>/<student>.json)."""
    path = Path(path)
    if (path / "nbgrader_config.py").is_file():
        course = Course(path)
        return course, course.ledger
    if path.is_dir() and any(path.glob("*/*.json")):
        return None, path
    raise FileNotFoundError(f"{path} is neither a course folder (with nbgrader_config.py) nor a ledger folder "
                            "(<assignment>/<student>.json, as in <course>/grading/ledger): give the --course "
                            "folder of each shard, or its grading/ledger")


def merge(course_dir, sources, log=print):
    """Put the ledgers of several shards (``grade --shard K/N``) into one course.

    Each source is a shard's course folder (its ledger, autograded notebooks and feedback are
    taken) or a ledger folder (the records only; ``nn-course report`` writes missing feedback).
    A unit found in several sources keeps a finished record (status in DONE) over an error, and
    otherwise the later source's. The gradebook rows are made from the records
    (``records.put_in_gradebook``), then the gradebook is reconciled with the ledger.
    Returns the number of records merged.
    """
    course = Course(course_dir)
    chosen = {}
    for source in sources:
        shard, ledger = _shard_course(source)
        if shard is not None and shard.dir == course.dir:
            raise ValueError(f"{source} is the course merged into (--course): give the shards' own folders")
        for path in sorted(Path(ledger).glob("*/*.json")):
            try:
                record = Record.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, TypeError, AttributeError):
                log(f"merge: {path} is not a ledger record (skipped)")
                continue
            if record.assignment not in course.assignments:
                raise ValueError(f"{path}: {record.assignment} is not an assignment of {course.dir}")
            old = chosen.get(record.key)
            if old is None or not (old[0].status in DONE and record.status not in DONE):
                chosen[record.key] = (record, shard)
    for record, shard in chosen.values():
        store_result(course, result_of(shard, record) if shard is not None else {"record": record.as_dict()})
    fixed = reconcile(course)
    log(f"merged {len(chosen)} records from {len(sources)} ledgers into {course.ledger}"
        + (f"; {len(fixed)} gradebook grades put back" if fixed else ""))
    return len(chosen)


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
