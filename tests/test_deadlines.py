"""Due dates, late penalties and extensions (``course/deadlines.yml``, ``deadlines.py``).

The policy in numbers (on time, 1.5 days late = two started days = 20 %, past the last day or
the cutoff = everything, an extension), the errors of a malformed file, the due date in the
release, and one small class graded for real: the penalties nbgrader writes into the
gradebook and the ledger, and what a changed extension or due date grades again.
"""
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest

from autograder.instructor import build, deadlines, feedback, intake, nbcells, pool, records, report, sandbox
from autograder.instructor.synthetic import answers, classroom

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = nbcells.assignments(ROOT)
DAY = timedelta(days=1)

SMALL = """
timezone: Europe/Berlin
policy: {percent_per_day: 10, max_days: 5}
assignments:
  02_xor:
    due: 2027-01-22 23:59
    cutoff: 2027-01-25 23:59
extensions:
  ext:
    02_xor: 2 days
"""


def _deadlines(text=SMALL):
    import yaml

    return deadlines.parse(yaml.safe_load(text), ASSIGNMENTS)


# ------------------------------------------------------------------------------ the policy
def test_the_course_file_gives_every_assignment_a_due_date():
    course = deadlines.load(ROOT / "course" / deadlines.FILE_NAME, ASSIGNMENTS)
    assert sorted(course.assignments) == ASSIGNMENTS
    first = course.for_unit("01_perceptron", "anyone")
    assert first.due == datetime(2027, 1, 15, 22, 59, tzinfo=timezone.utc)      # 23:59 in Berlin, winter
    assert (first.policy.percent_per_day, first.policy.max_days) == (10, 5)
    assert course.for_unit("08_generalisation", "x").cutoff == datetime(2027, 3, 14, 22, 59, tzinfo=timezone.utc)


@pytest.mark.parametrize("late, percent", [
    (timedelta(0), 0), (-DAY, 0), (timedelta(seconds=1), 10), (DAY, 10), (1.5 * DAY, 20),
    (2 * DAY, 20), (2 * DAY + timedelta(seconds=1), 30),
    (3 * DAY, 30), (3 * DAY + timedelta(minutes=1), 100),          # past the cutoff (due + 3 days)
])
def test_penalty_per_started_day_and_zero_past_the_cutoff(late, percent):
    deadline = _deadlines().for_unit("02_xor", "someone")
    assert 100 * deadline.fraction(late.total_seconds()) == percent
    assert deadline.penalty(8.0, late.total_seconds()) == 8.0 * percent / 100


def test_past_the_last_day_of_the_policy_is_zero():
    deadline = _deadlines(SMALL.replace("    cutoff: 2027-01-25 23:59\n", "")).for_unit("02_xor", "x")
    assert deadline.penalty(8.0, 5 * 86400) == 4.0                   # 5 days: 50 %
    assert deadline.penalty(8.0, 5 * 86400 + 1) == 8.0 and deadline.past_limit(5 * 86400 + 1) == "max-days"


def test_an_extension_moves_the_due_date_and_the_cutoff():
    course = _deadlines()
    plain, ext = course.for_unit("02_xor", "someone"), course.for_unit("02_xor", "ext")
    assert ext.extension == 2 * DAY and ext.effective_due == plain.due + 2 * DAY
    submitted = plain.due + 1.5 * DAY                                # late for everyone else
    late = deadlines.lateness(ext, submitted)
    assert (late["seconds_late"], late["percent"], late["extension"]) == (0, 0, 2 * 86400)
    assert deadlines.lateness(plain, submitted)["percent"] == 20
    four = plain.due + 4 * DAY                                       # past the cutoff, not past ext's
    assert (deadlines.lateness(plain, four)["percent"], deadlines.lateness(ext, four)["percent"]) == (100, 20)
    assert plain.key() != ext.key(), "the extension is part of the unit's fingerprint"


@pytest.mark.parametrize("text, says", [
    ("assignments:\n  02_xor: {due: 2027-01-22}\n", "no time of day"),
    ("assignments:\n  02_xor: {due: friday 17:00}\n", "YYYY-MM-DD HH:MM"),
    ("assignments:\n  02_xor: {}\n", "write its due date"),
    ("assignments:\n  09_rnn: {due: 2027-01-22 23:59}\n", "not an assignment of this course"),
    ("assignments:\n  02_xor: {due: 2027-01-22 23:59, duedate: 2027-01-22 23:59}\n", "unknown key 'duedate'"),
    ("timezone: Mars/Olympus\n", "unknown timezone"),
    ("policy: {percent_per_day: 10 %}\n", "percent_per_day must be a number"),
    ("policy: {percent_per_day: 10, max_days: -1}\n", "max_days must be"),
    ("assignments:\n  02_xor: {due: 2027-01-22 23:59, cutoff: 2027-01-20 23:59}\n", "before the due date"),
    ("assignments:\n  02_xor: {due: 2027-01-22 23:59}\nextensions:\n  no: {02_xor: 1 day}\n", "put it in quotes"),
    ("assignments:\n  02_xor: {due: 2027-01-22 23:59}\nextensions:\n  bo: {02_xor: a week}\n", "write `2 days`"),
    ("assignments:\n  02_xor: {due: 2027-01-22 23:59}\nextensions:\n  bo: {01_perceptron: 1 day}\n", "has no due date"),
    ("assignments: [02_xor]\n", "assignments must map"),
    ("assignments:\n  02_xor: {due: 2027-01-22 23:59\n", "not valid YAML"),
])
def test_a_malformed_file_says_what_to_fix(tmp_path, text, says):
    path = tmp_path / deadlines.FILE_NAME
    path.write_text(text, encoding="utf-8")
    with pytest.raises(deadlines.DeadlineError, match=says) as err:
        deadlines.load(path, ASSIGNMENTS)
    assert str(path) in str(err.value), "the message names the file"


def test_a_malformed_file_stops_grading_before_anything_is_graded(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(ROOT / "course" / "nbgrader_config.py", course)
    (tmp_path / "source_notebooks").symlink_to(ROOT / "source_notebooks")
    (course / deadlines.FILE_NAME).write_text("assignments:\n  02_xor: {due: soon}\n", encoding="utf-8")
    with pytest.raises(deadlines.DeadlineError, match="02_xor: due"):
        records.Course(course)


def test_without_a_file_nothing_is_late(tmp_path):
    course = deadlines.load(tmp_path / deadlines.FILE_NAME, ASSIGNMENTS)
    assert course.for_unit("02_xor", "x") is None
    assert deadlines.lateness(None, datetime(2030, 1, 1, tzinfo=timezone.utc))["penalty"] == 0


# ------------------------------------------------------------------------------ the release
def test_students_see_the_due_date_in_the_release_and_intake_is_unchanged():
    due = build.course_deadlines(ROOT)
    readme = (ROOT / "release" / "README.md").read_text(encoding="utf-8")
    for name in ASSIGNMENTS:
        (path,) = nbcells.notebooks(ROOT / "release" / name)
        nb = nbformat.read(path, as_version=4)
        header = nb.cells[1]
        assert header.id == build.DEADLINE_CELL_ID and not header.metadata.get("nbgrader")
        assert header.source.startswith(build.deadline_text(due.for_unit(name, None)))
        assert build.deadline_text(due.for_unit(name, None)) in readme
    assert "Friday 15 January 2027, 23:59 (Europe/Berlin, UTC+01:00)" in readme
    (src,) = nbcells.notebooks(ROOT / "source_notebooks" / "02_xor")
    (rel,) = nbcells.notebooks(ROOT / "release" / "02_xor")
    release, source = nbformat.read(rel, as_version=4), nbformat.read(src, as_version=4)
    nb = answers.with_answers(release, source)
    assert [f.kind for f in intake.repair_cells(nb, release)] == [], "the header is an ordinary cell to the intake"


# ------------------------------------------------------------------------------ a class, graded
LIMITS = sandbox.Limits(cell_timeout=10, notebook_timeout=40)
DUE = datetime(2027, 1, 22, 22, 59, tzinfo=timezone.utc)              # SMALL's 23:59 in Berlin
SUBMITTED = {"ontime": DUE - DAY, "late15": DUE + 1.5 * DAY, "late4": DUE + 4 * DAY,
             "ext": DUE + 1.5 * DAY, "nostamp": None}


def _stamp(moment):
    return f"{moment.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S.%f} UTC"        # nbgrader's format


@pytest.fixture(scope="module")
def late_class(tmp_path_factory):
    """A course of 01_perceptron (nobody submits it) and 02_xor, five students with the
    reference answers of 02_xor submitted at different times, graded once."""
    import os

    if not sandbox.isolation_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("bubblewrap is not installed (apt-get install bubblewrap)", pytrace=False)
        pytest.skip("bubblewrap is not installed: the grading kernels cannot run sandboxed")
    out = build.scratch_course(tmp_path_factory.mktemp("late"), ["01_perceptron", "02_xor"], root=ROOT,
                               course_files={deadlines.FILE_NAME: SMALL})
    (src,) = nbcells.notebooks(out / "source_notebooks" / "02_xor")
    (rel,) = nbcells.notebooks(out / "release" / "02_xor")
    answered = answers.with_answers(nbformat.read(rel, as_version=4), nbformat.read(src, as_version=4))
    subs = out / "submitted"
    for student, moment in SUBMITTED.items():
        files = {"02_xor.ipynb": answered}
        if moment is not None:
            files["timestamp.txt"] = _stamp(moment).encode()
        classroom.write_submission(subs / student / "02_xor", files)
    summary = pool.grade(subs, out / "course", jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)
    assert summary.graded == 10 and not summary.failed, summary
    return out, subs


def _ledger(out):
    course = records.Course(out / "course")
    return {r.student: r for r in records.ledger_records(course) if r.assignment == "02_xor"}


def _gradebook_penalties(out):
    from nbgrader.api import Gradebook

    course = records.Course(out / "course")
    with Gradebook(course.db_url, course.course_id) as gb:
        return {s: gb.find_submission("02_xor", s).late_submission_penalty for s in SUBMITTED}


def _grade_again(out, subs):
    return pool.grade(subs, out / "course", jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)


@pytest.mark.slow
def test_late_penalties_in_the_gradebook_the_ledger_the_feedback_and_the_report(late_class, tmp_path):
    out, _ = late_class
    ledger = _ledger(out)
    assert all(sum(s.final for s in r.tests.values()) == 8 for r in ledger.values()), "reference answers: 8 of 8"
    penalty = {s: r.lateness["penalty"] for s, r in ledger.items()}
    assert penalty == {"ontime": 0, "late15": 1.6, "late4": 8.0, "ext": 0, "nostamp": 0}
    assert _gradebook_penalties(out) == penalty
    assert ledger["late15"].lateness["days_late"] == 2 and ledger["late4"].lateness["past"] == "cutoff"
    assert ledger["ext"].lateness["extension"] == 2 * 86400 and ledger["ext"].lateness["seconds_late"] == 0
    assert ledger["nostamp"].lateness["timestamp"] is None, "no timestamp.txt: graded as on time"
    assert ledger["late15"].lateness["due"] == DUE.isoformat()
    missing = [r for r in records.ledger_records(records.Course(out / "course")) if r.assignment == "01_perceptron"]
    assert all(r.status == "missing" and set(r.lateness) >= {"timestamp", "due", "extension", "penalty"}
               for r in missing)
    course = records.Course(out / "course")
    text = feedback.feedback_path(course, ledger["late15"]).read_text(encoding="utf-8")
    assert "Late submission" in text and "2 started days late" in text and "20 %" in text and "1.6 points" in text
    text = feedback.feedback_path(course, ledger["late4"]).read_text(encoding="utf-8")
    assert "after the hard cutoff" in text and "0 points" in text
    assert "Late submission." not in feedback.feedback_path(course, ledger["ontime"]).read_text(encoding="utf-8")
    index = report.report(out / "course", out=tmp_path / "report", feedback=False, log=lambda *a: None)
    assert (tmp_path / "report" / "lateness.png").is_file() and "Deadlines" in index.read_text(encoding="utf-8")
    rows = [r for r in report.exercise_rows(records.ledger_records(course)) if r["assignment"] == "02_xor"]
    assert {r["student"]: r["late_penalty"] for r in rows} == penalty
    grades = (tmp_path / "report" / "grades.csv").read_text(encoding="utf-8")
    assert "late15" in grades and "1.6" in grades


@pytest.mark.slow
def test_a_changed_extension_or_due_date_grades_exactly_the_units_it_concerns(late_class):
    out, subs = late_class
    path = out / "course" / deadlines.FILE_NAME
    # late15 gets an extension: only that unit is graded again, and its penalty goes back to 0
    path.write_text(SMALL + "  late15:\n    02_xor: 36 hours\n", encoding="utf-8")
    summary = _grade_again(out, subs)
    assert (summary.graded, summary.skipped) == (1, 9)
    assert _ledger(out)["late15"].lateness["penalty"] == 0 and _gradebook_penalties(out)["late15"] in (None, 0)
    # the due date (and cutoff) of 02_xor two days later: its 5 units, none of 01_perceptron
    path.write_text(SMALL.replace("2027-01-22 23:59", "2027-01-24 23:59").replace("2027-01-25 23:59",
                                                                                 "2027-01-27 23:59")
                    + "  late15:\n    02_xor: 36 hours\n", encoding="utf-8")
    summary = _grade_again(out, subs)
    assert (summary.graded, summary.skipped) == (5, 5)
    penalty = {s: r.lateness["penalty"] for s, r in _ledger(out).items()}
    assert penalty == {"ontime": 0, "late15": 0, "late4": 1.6, "ext": 0, "nostamp": 0}   # late4: 2 days late now
    assert _gradebook_penalties(out) == penalty


def test_the_gradebook_gets_the_deadline_and_loses_an_old_penalty_and_timestamp(tmp_path, monkeypatch):
    """What nbgrader computes lateness from is written afresh before every autograde: a
    submission that is no longer late (or has no timestamp.txt now) keeps no old penalty."""
    import os
    import sys

    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))  # alembic

    path = tmp_path / deadlines.FILE_NAME
    path.write_text(SMALL, encoding="utf-8")
    course = deadlines.load(path, ASSIGNMENTS)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gb:
        gb.add_assignment("02_xor", duedate=datetime(2020, 1, 1))
        gb.add_notebook("02_xor", "02_xor")
        gb.add_student("ext")
        old = gb.add_submission("02_xor", "ext", timestamp=datetime(2030, 1, 1))
        old.notebooks[0].late_submission_penalty = 3.0
        gb.db.commit()
        deadlines.write_to_gradebook(gb, course, "02_xor", "ext", None)
        sub = gb.find_submission("02_xor", "ext")
        assert sub.assignment.duedate == DUE.replace(tzinfo=None) and sub.extension == 2 * DAY
        assert sub.timestamp is None and sub.total_seconds_late == 0 and sub.late_submission_penalty == 0
        deadlines.write_to_gradebook(gb, course, "02_xor", "ext", DUE + 3 * DAY)
        assert gb.find_submission("02_xor", "ext").total_seconds_late == 86400     # due + 2 days extension
        nothing = deadlines.load(tmp_path / "none.yml", ASSIGNMENTS)               # no file: nbgrader's own stay
        gb.find_assignment("02_xor").duedate = datetime(2020, 1, 1)
        gb.db.commit()
        deadlines.write_to_gradebook(gb, nothing, "02_xor", "ext", None)
        assert gb.find_assignment("02_xor").duedate == datetime(2020, 1, 1)
        assert gb.find_submission("02_xor", "ext").extension == 2 * DAY
