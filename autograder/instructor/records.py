"""The grading record: one typed model for what the grader decided about a submission.

- ``Course``: where an nbgrader course keeps things, and what the grader keeps beside it;
- ``Unit``: one student's submission of one assignment (the thing a worker grades);
- ``Flag``: one thing the grader noticed, with its ``kind`` (set where it is made), its
  ``severity`` (``info``, ``review`` or ``tampering``) and its evidence;
- ``Score``: one graded cell: nbgrader's score in the student's kernel, the re-check's, the
  final one;
- ``Record``: everything about one unit: status, scores, flags, diagnoses, lateness, times. It is what
  the ledger stores (``<course>/grading/ledger/<assignment>/<student>.json``), what the
  report and the demo read, and what the tests check.

Records round-trip through JSON (``as_dict`` / ``from_dict``); the ledger is written
atomically, so a kill mid-write leaves the old record or none.
"""
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import deadlines as deadlines_module
from . import nbcells

#: Bumped when a change of the grader changes grades: every record older than it is regraded.
GRADER_VERSION = 1
#: Statuses that count as done (a rerun does not grade these units again).
DONE = ("graded", "missing", "unreadable")
SEVERITIES = ("tampering", "review", "info")


# ------------------------------------------------------------------------------ the course
class Course:
    """Where things are: nbgrader's course folder and what the grader keeps next to it."""

    def __init__(self, course_dir):
        from nbgrader.coursedir import CourseDirectory

        self.dir = Path(course_dir).resolve()
        self.config = nbcells.load_config(self.dir)
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
        self.assignments = nbcells.assignments(self.source.parent) if self.source.name == "source_notebooks" \
            else sorted(p.name for p in self.source.iterdir() if p.is_dir())
        #: Due dates, late policy, extensions (``deadlines.yml`` next to nbgrader_config.py; none: never late).
        self.deadlines = deadlines_module.load(self.dir / deadlines_module.FILE_NAME, self.assignments)

    def __deepcopy__(self, memo):
        return self                      # where a course is does not change: nbgrader's configs may share it

    def fresh_config(self):
        """A new copy of the course's nbgrader Config (to change for one use)."""
        return nbcells.load_config(self.dir)

    def notebook_name(self, assignment):
        (path,) = nbcells.notebooks(self.source / assignment)
        return path.name

    def source_notebook(self, assignment):
        return self.source / assignment / self.notebook_name(assignment)

    def release_notebook(self, assignment):
        return self.release / assignment / self.notebook_name(assignment)

    def ledger_path(self, assignment, student):
        return self.ledger / assignment / f"{student}.json"

    def autograded_notebook(self, record):
        return self.root / "autograded" / record.student / record.assignment / record.notebook


@dataclass
class Unit:
    """One submission: a student's folder for one assignment (``folder`` None: nothing sent)."""
    student: str
    assignment: str
    folder: str = None

    @property
    def key(self):
        return f"{self.assignment}/{self.student}"


# ------------------------------------------------------------------------------ the record
@dataclass
class Flag:
    """One thing the grader noticed. ``severity``: info, review or tampering."""
    kind: str
    message: str
    evidence: str = ""
    severity: str = "info"
    cell: str = ""

    @property
    def actionable(self):
        """Does a human need to look (the report lists it, the gradebook asks for a manual grade)?"""
        return self.severity in ("tampering", "review")

    def as_dict(self):
        return {k: v for k, v in asdict(self).items() if v != ""}

    @classmethod
    def from_dict(cls, data):
        return cls(**{k: str(data[k]) for k in ("kind", "message", "evidence", "severity", "cell") if k in data})


@dataclass
class Score:
    """One graded cell. ``kind``: "test" (autograded) or "written" (graded by hand).

    nbgrader: nbgrader's score of the split execution; final: what the gradebook gets (0 when
    the unit's scores are withheld).
    """
    max: float
    kind: str = "test"
    nbgrader: float = None
    final: float = None

    @property
    def full(self):
        return self.final is not None and abs(self.final - self.max) < 1e-9


@dataclass
class Record:
    """What the grader decided about one unit (the ledger's content)."""
    student: str
    assignment: str
    notebook: str = ""
    fingerprint: str = ""
    status: str = ""                     # graded, missing, unreadable, error ("" while grading)
    grader_version: int = GRADER_VERSION
    isolated: bool = False
    flags: list = field(default_factory=list)        # [Flag]
    scores: dict = field(default_factory=dict)       # {grade_id: Score}
    diagnoses: dict = field(default_factory=dict)    # {grade_id: the failing test's message}
    events: list = field(default_factory=list)       # [{"kind", "cell", "grade_id", ...}] from execution
    seconds: dict = field(default_factory=dict)      # {step: seconds}
    error: str = ""
    #: ``deadlines.lateness``: "timestamp" (ISO, UTC, or None: no timestamp.txt), "due" (the
    #: assignment's due date, ISO UTC, None: it has none), "extension" (seconds), "penalty" (points
    #: nbgrader took off the notebook), and "seconds_late" (after the extension), "days_late"
    #: (started days), "percent" (of the score), "cutoff", "past" ("cutoff", "max-days" or ""),
    #: "policy" (in words), "timezone" (the course's, for showing the dates).
    lateness: dict = field(default_factory=dict)

    @property
    def key(self):
        return f"{self.assignment}/{self.student}"

    @property
    def tests(self):
        """{grade_id: Score} of the autograded test cells."""
        return {g: s for g, s in self.scores.items() if s.kind == "test"}

    @property
    def actionable_flags(self):
        return [f for f in self.flags if f.actionable]

    def flag(self, kind, message, severity="info", cell="", evidence=""):
        self.flags.append(Flag(kind, message, evidence=evidence, severity=severity, cell=cell or ""))

    def as_dict(self):
        data = asdict(self)
        data["flags"] = [f.as_dict() for f in self.flags]
        return data

    @classmethod
    def from_dict(cls, data):
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.flags = [Flag.from_dict(f) for f in data.get("flags", [])]
        known = {"max", "kind", "nbgrader", "final"}          # a ledger of an older grader has more
        record.scores = {g: Score(**{k: v for k, v in s.items() if k in known}) for g, s in data.get("scores", {}).items()}
        return record


# ------------------------------------------------------------------------------ the ledger
def fingerprint(unit, course):
    """sha256 of what a unit's grade depends on: its files (timestamp.txt too), its source
    notebook, its effective deadline (due date, extension, cutoff, policy), the grader."""
    digest = hashlib.sha256(f"v{GRADER_VERSION}".encode())
    deadline = course.deadlines.for_unit(unit.assignment, unit.student)
    if deadline is not None:
        digest.update(deadline.key().encode())
    digest.update(course.source_notebook(unit.assignment).read_bytes())
    if unit.folder:
        for path in sorted(Path(unit.folder).rglob("*")):
            if path.is_file() and "autograder" not in path.relative_to(unit.folder).parts:
                digest.update(str(path.relative_to(unit.folder)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def read_ledger(course, assignment, student):
    """The unit's Record, or None (none written yet, or unreadable)."""
    try:
        return Record.from_dict(json.loads(course.ledger_path(assignment, student).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def write_ledger(course, record):
    """Write a unit's record atomically (a kill mid-write leaves the old one or none)."""
    path = course.ledger_path(record.assignment, record.student)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record.as_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def ledger_records(course):
    """Every Record of the course's ledger, sorted by assignment and student."""
    records = []
    for path in sorted(course.ledger.glob("*/*.json")):
        try:
            records.append(Record.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except (ValueError, TypeError, AttributeError):
            continue
    return records


# ------------------------------------------------------------------------------ the gradebook
def withhold(course, assignment, student):
    """After a stage of grading failed: the unit's autograded scores at 0, each marked for a
    manual grade, so that nothing an earlier stage wrote stays in the gradebook unseen.
    Returns how many grades were withheld (0 when the gradebook has no such submission)."""
    from nbgrader.api import Gradebook, MissingEntry

    withheld = 0
    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return 0
        for notebook in submission.notebooks:
            notebook.late_submission_penalty = None          # nothing to take points off
            for g in notebook.grades:
                if g.cell.cell_type == "code":
                    g.auto_score, g.needs_manual_grade = 0.0, True
                    withheld += 1
        gb.db.commit()
    return withheld


def put_in_gradebook(course, record):
    """Write what ``record`` decided into the course's gradebook, as a worker would have.

    For a record graded elsewhere (a Dask worker, a shard of the class): the student and the
    submission are created if missing; each graded cell gets ``auto_score`` = its
    ``Score.final``; ``needs_manual_grade`` is set as nbgrader's ``SaveAutoGrades`` and
    ``Worker._save`` set it (a manual score or no automatic one; a flagged cell; every test cell
    of a tampered submission). A record with status ``error`` has its scores withheld
    (``withhold``). When the record carries ``lateness`` with a ``"penalty"`` (points off the
    notebook), it becomes nbgrader's ``late_submission_penalty``.

    Inputs:
    - course: a ``Course``
    - record: a ``Record`` with a ``notebook`` (records of units never started have none: nothing
      is written)
    Returns the number of grades written.
    """
    import warnings
    from datetime import datetime

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    if not record.notebook:
        return 0
    lateness = getattr(record, "lateness", None) or {}
    flagged = {f.cell for f in record.actionable_flags}
    whole = any(f.severity == "tampering" for f in record.flags)
    written = 0
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.update_or_create_student(record.student)
        when = {}
        if lateness.get("timestamp"):
            when["timestamp"] = datetime.fromisoformat(str(lateness["timestamp"]))
        with warnings.catch_warnings():      # nbgrader's add_submission makes SQLAlchemy note its autoflush
            warnings.simplefilter("ignore", SAWarning)
            gb.update_or_create_submission(record.assignment, record.student, **when)
        notebook = gb.find_submission_notebook(Path(record.notebook).stem, record.assignment, record.student)
        if record.status != "error":
            for g in notebook.grades:
                entry = record.scores.get(g.name)
                if entry is None:
                    continue
                g.auto_score = entry.final
                g.needs_manual_grade = bool(
                    g.manual_score is not None or entry.final is None
                    or (entry.kind == "test" and record.status == "graded" and (g.name in flagged or whole)))
                written += 1
        if lateness.get("penalty") is not None:
            notebook.late_submission_penalty = float(lateness["penalty"])
        gb.db.commit()
    if record.status == "error":
        written = withhold(course, record.assignment, record.student)
    return written
