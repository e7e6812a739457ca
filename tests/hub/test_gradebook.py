"""The grading pipeline on a PostgreSQL gradebook, as on SQLite; several graders at once.

A scratch course (``hub init --db-url``'s course config) grades three submissions of
01_perceptron (the reference answers, the release untouched, one catalogued bug) once with
SQLite and once with PostgreSQL, with the same expectations: workers, ledger reconciliation,
report and feedback all run unchanged. Then grading runs again (``--force``) while another
grader writes manual grades and comments through nbgrader's API, as the formgrader does:
neither is lost.
"""
import os
import shutil
import threading
import time
from pathlib import Path

import nbformat
import pytest

from autograder.instructor import build, nbcells, pool, records, sandbox
from autograder.instructor.synthetic import answers, classroom

pytestmark = pytest.mark.hub

ROOT = Path(__file__).resolve().parents[2]
NAME = "01_perceptron"
LIMITS = sandbox.Limits(cell_timeout=20, notebook_timeout=60)
BUG = answers.load_bugs()[NAME][0]


def _course(out, db_url):
    """A course folder as `nn-course hub install` makes it, with its gradebook at ``db_url``."""
    from autograder.instructor.hub import deploy

    for part in ("source_notebooks",):
        shutil.copytree(ROOT / part, out / part, ignore=shutil.ignore_patterns(build.KIT, "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", out)
    settings = deploy.Settings(str(out / "deploy"), db_url=db_url, repo=str(ROOT), course_root=str(out))
    deploy.init(settings)
    (out / "course").mkdir()
    shutil.copy(out / "deploy" / "course" / "nbgrader_config.py", out / "course" / "nbgrader_config.py")
    build.generate(out)
    return out / "course"


def _submissions(out):
    (src,) = nbcells.notebooks(ROOT / "source_notebooks" / NAME)
    source = nbformat.read(src, as_version=4)
    release = nbformat.read(out.parent / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    subs = out.parent / "submissions"
    rel_folder = out.parent / "release" / NAME
    classroom.write_submission(subs / "ref" / NAME, {f"{NAME}.ipynb": answers.with_answers(release, source)},
                               rel_folder)
    classroom.write_submission(subs / "blank" / NAME, {f"{NAME}.ipynb": release}, rel_folder)
    bug = answers.with_answers(release, source, {BUG["answer"]: BUG["source"]})
    classroom.write_submission(subs / "bug" / NAME, {f"{NAME}.ipynb": bug}, rel_folder)
    return subs


def _scores(course_dir):
    course = records.Course(course_dir)
    return {(r.student, g): s.final for r in records.ledger_records(course) if r.assignment == NAME
            for g, s in r.tests.items()}, course


def _grade_and_check(tmp_path, db_url):
    course_dir = _course(tmp_path, db_url)
    subs = _submissions(course_dir)
    summary = pool.grade(subs, course_dir, jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)
    assert summary.failed == []
    scores, course = _scores(course_dir)
    tests = sorted({g for (_, g) in scores})
    assert tests, "01_perceptron has graded test cells"
    maxima = {g: s.max for r in records.ledger_records(course) if r.student == "ref" and r.assignment == NAME
              for g, s in r.tests.items()}
    assert all(scores[("ref", g)] == maxima[g] for g in tests), "the reference answers get every point"
    assert all(scores[("blank", g)] == 0 for g in tests), "the release untouched gets none"
    assert scores[("bug", BUG["fails"])] == BUG["score"], f"the bug ({BUG['cost']}) keeps {BUG['score']} of {BUG['fails']}"
    assert sum(scores[("bug", g)] == maxima[g] for g in tests) >= len(tests) - 2, "and (almost) nothing else"
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:      # the gradebook holds the final scores
        for student in ("ref", "blank", "bug"):
            sub = gb.find_submission_notebook(NAME, NAME, student)
            for g in sub.grades:
                if (student, g.name) in scores:
                    assert g.auto_score == scores[(student, g.name)]
    from autograder.instructor import report

    index = report.report(course_dir, log=lambda *a: None)
    assert index.is_file() and (course.root / "feedback" / "ref" / NAME / f"{NAME}.html").is_file()
    assert pool.reconcile(course) == []
    return course_dir, scores, course


@pytest.fixture(scope="module")
def isolation():
    if not sandbox.isolation_available() and os.environ.get("CI", "").lower() == "true":
        pytest.fail("bubblewrap is missing (apt-get install bubblewrap)", pytrace=False)


def test_grading_on_sqlite(tmp_path, isolation):
    course_dir, scores, course = _grade_and_check(tmp_path, "")
    assert course.db_url.startswith("sqlite:///")
    test_grading_on_sqlite.scores = scores


def test_grading_on_postgresql_gives_the_same_grades(tmp_path, postgres, isolation):
    url = postgres("grading")
    course_dir, scores, course = _grade_and_check(tmp_path, url)
    assert course.db_url.startswith("postgresql+psycopg://")
    if getattr(test_grading_on_sqlite, "scores", None):
        assert scores == test_grading_on_sqlite.scores, "SQLite and PostgreSQL give the same grades"


def test_manual_grades_written_while_grading_runs_are_kept(tmp_path, postgres, isolation):
    """Two graders: `nn-course grade --force` and the formgrader's API writing manual grades."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    url = postgres("graders")
    course_dir = _course(tmp_path, url)
    subs = _submissions(course_dir)
    pool.grade(subs, course_dir, jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)
    before, course = _scores(course_dir)
    config = nbcells.load_config(course_dir)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    gb = api.gradebook
    written = {}
    errors = []
    done = threading.Event()

    def formgrader():                  # what the formgrader's PUT /api/grade and /api/comment do
        try:
            k = 0
            while not done.is_set() or k < 3:
                for student in ("ref", "blank", "bug"):
                    sub = gb.find_submission_notebook(NAME, NAME, student)
                    for grade in sub.grades:
                        if grade.cell.cell_type == "markdown":
                            grade.manual_score = float((k + len(student)) % 2)
                            written[(student, grade.name)] = grade.manual_score
                    for comment in sub.comments:
                        comment.manual_comment = f"round {k}: see me"
                        written[(student, "comment", comment.name)] = comment.manual_comment
                    gb.db.commit()
                k += 1
                time.sleep(0.2)
        except Exception as err:       # noqa: BLE001  (reported below)
            errors.append(repr(err))
            gb.db.rollback()

    thread = threading.Thread(target=formgrader)
    thread.start()
    try:
        summary = pool.grade(subs, course_dir, jobs=2, limits=LIMITS, force=True, progress=False,
                                log=lambda *a: None)
    finally:
        done.set()
        thread.join(timeout=60)
    api.gradebook.close()
    assert errors == [] and summary.failed == []
    after, _ = _scores(course_dir)
    assert after == before, "grading again gave the same automatic scores"
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as fresh:
        for student in ("ref", "blank", "bug"):
            sub = fresh.find_submission_notebook(NAME, NAME, student)
            for grade in sub.grades:
                if (student, grade.name) in written:
                    assert grade.manual_score == written[(student, grade.name)], "a manual grade was lost"
                elif (student, grade.name) in after:
                    assert grade.auto_score == after[(student, grade.name)], "an automatic grade was lost"
            for comment in sub.comments:
                assert comment.manual_comment == written[(student, "comment", comment.name)]
