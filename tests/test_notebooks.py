"""The notebooks as students and nbgrader meet them.

For every assignment:
- the source notebook runs top to bottom with its solutions: no error, every test passes;
- the release as handed out: every graded test fails with the "not implemented yet" message
  and no other cell errors (widgets print a one-line note);
- the release with the reference answers pasted in, in a kernel that cannot import
  solutions_lib: everything passes (students have all the release needs);
- nbgrader autograde of submissions made from the release: reference answers get full marks,
  a blank notebook gets 0 (also when it comes back with an always-passing copy of the
  checks), and one typical bug costs exactly its exercise, with feedback that names the bug.
"""
import concurrent.futures
import html
import json
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

import nbtools
from autograder.instructor import build, nbcells
from autograder.instructor.synthetic import answers

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = nbcells.assignments(ROOT)
pytestmark = pytest.mark.slow

#: Typical bugs per assignment: the answer cell each replaces, the test cell that must fail
#: (and no other), and words the feedback must show the student. Each bug is graded as a
#: submission of its own ("bug0", "bug1", ...).
BUGS = answers.load_bugs()
BUG_CASES = [(name, i) for name in sorted(BUGS) for i in range(len(BUGS[name]))]


def test_every_assignment_has_a_typical_bug():
    assert sorted(BUGS) == ASSIGNMENTS


# ---------------------------------------------------------------- the student's side
@pytest.fixture(scope="module")
def student_folders():
    folders = {}
    yield lambda name: folders.setdefault(name, nbtools.StudentFolder(name))
    for folder in folders.values():
        folder.close()


@pytest.fixture(scope="module")
def source_runs():
    """The source notebooks executed with their solutions, once each: name -> (nb, seconds)."""
    runs = {}
    return lambda name: runs[name] if name in runs else runs.setdefault(name, nbtools.run_source(name))


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_source_runs_clean_with_its_solutions(name, source_runs):
    executed, seconds = source_runs(name)
    assert nbtools.errors(executed) == []
    assert seconds <= 60, (f"{name} took {seconds:.0f} s (target 30 s); slowest steps: "
                           f"{nbtools.slowest_steps(executed)}")
    scores = {nbtools.nbgrader_meta(c)["grade_id"]: (_result(c), float(nbtools.nbgrader_meta(c)["points"]))
              for c in executed.cells if nbtools.is_test(c)}
    assert scores and all(got == points for got, points in scores.values()), (
        "with the solutions every test cell returns its points (its parts' shares add up to them)", scores)


def _result(cell):
    """The number a test cell returned (its execute_result), or None."""
    results = [o for o in cell.get("outputs", []) if o.get("output_type") == "execute_result"]
    return float(results[0]["data"]["text/plain"]) if results else None


def test_mnist_classification_reaches_93_percent_over_five_seeds(source_runs):
    """The issue's bar: mean test accuracy of the five seeded runs >= 93 % on the 5k split."""
    executed, _ = source_runs("07_mnist_classification")
    (cell,) = [c for c in executed.cells if nbtools.nbgrader_meta(c).get("grade_id") == "five_runs"]
    text = nbtools.cell_text(cell)
    found = re.search(r"Mean test accuracy over 5 seeds: ([0-9.]+) % ± ([0-9.]+) %", text)
    assert found, f"the five-runs cell should print its mean test accuracy; it printed:\n{text}"
    assert float(found.group(1)) >= 93.0, text


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_fails_only_in_graded_tests(name, student_folders):
    student = student_folders(name)
    executed, _, used = student.run(student.release())
    assert str(student.folder) in used, "the release must import its own autograder kit"
    assert nbtools.errors(executed) == [], "no cell raises in the release: test cells print their parts"
    tests = [c for c in executed.cells if nbtools.is_test(c)]
    assert tests
    for cell in tests:
        grade_id, text = nbtools.nbgrader_meta(cell)["grade_id"], nbtools.cell_text(cell)
        # every graded test fails before any code is written: 0 points, every part says why
        assert _result(cell) == 0.0, (grade_id, text)
        assert text.startswith("0 of ") and "✓" not in text, (grade_id, text)
        assert nbtools.NOT_IMPLEMENTED in text and "Traceback" not in text, (grade_id, text)
    widget_cells = [c for c in executed.cells if "widget" in c.metadata.get("tags", [])]
    for cell in widget_cells:
        text = nbtools.cell_text(cell)
        assert "Error" not in text


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_with_reference_answers_passes_without_solutions_lib(name, student_folders):
    student = student_folders(name)
    source = nbformat.read(nbtools.source_notebook(name), as_version=4)
    executed, _, _ = student.run(nbtools.with_answers(student.release(), source))
    assert nbtools.errors(executed) == []
    for cell in (c for c in executed.cells if nbtools.is_test(c)):
        # every visible part passes: no number (nbgrader's validate counts the cell as passed)
        text = nbtools.cell_text(cell)
        assert _result(cell) is None and "✗" not in text and "–" not in text, text
        assert "hidden tests worth" in text, text
    # headless (NN_COURSE_HEADLESS): every figure with sliders is drawn once, no slider is built
    assert nbtools.widget_views(executed) == [], "a headless run must not build sliders (it can hang)"
    silent = [i for i in nbtools.interactive_cells(executed)
              if nbtools.HEADLESS_NOTE not in nbtools.cell_text(executed.cells[i])]
    assert not silent, f"cells {silent} should say that they drew their figure without sliders"


# ---------------------------------------------------------------- nbgrader's side
STUDENTS = ("reference", "blank", "tampered")
#: A kit whose every check passes: what a student might send back to fool the grader.
FAKE_CHECKS = "def __getattr__(name):\n    return lambda *args, **kwargs: None\n"


def _submit(course, student, name, nb, whole_folder):
    """Put a submission where nbgrader looks: course/submitted/<student>/<assignment>/."""
    target = course / "submitted" / student / name
    if whole_folder:
        shutil.copytree(course.parent / "release" / name, target)
    else:
        target.mkdir(parents=True)
    (nb_path,) = nbcells.notebooks(course.parent / "release" / name)
    nbformat.write(nb, target / nb_path.name)


@pytest.fixture(scope="module")
def graded():
    """Autograde a reference, a blank and a buggy submission of every assignment, once.

    Returns {(assignment, student): {"scores": {grade_id: (score, max, cell_type)},
    "feedback": text of the feedback HTML, "autograded": the executed notebook}}.
    """
    from nbgrader.api import Gradebook

    tmp = Path(tempfile.mkdtemp(prefix="nn-autograde-"))
    try:
        shutil.copytree(ROOT / "source_notebooks", tmp / "source_notebooks")
        (tmp / "course").mkdir()
        shutil.copy(ROOT / "course" / "nbgrader_config.py", tmp / "course")
        shutil.copy(ROOT / "pyproject.toml", tmp)
        build.generate(tmp)                               # release + gradebook, as instructors do
        course = tmp / "course"
        for name in ASSIGNMENTS:
            source = nbformat.read(nbtools.source_notebook(name), as_version=4)
            release = nbformat.read(nbcells.notebooks(tmp / "release" / name)[0], as_version=4)
            _submit(course, "reference", name, nbtools.with_answers(release, source), True)
            _submit(course, "blank", name, release, True)
            for i, bug in enumerate(BUGS.get(name, [])):     # an LMS upload: the notebook only
                _submit(course, f"bug{i}", name,
                        nbtools.with_answers(release, source, {bug["answer"]: bug["source"]}), False)
            _submit(course, "tampered", name, release, True)
            (course / "submitted" / "tampered" / name / build.KIT / "checks.py").write_text(FAKE_CHECKS)

        def autograde(name):
            build._nbgrader(["autograde", name, "--create"], cwd=course)
            build._nbgrader(["generate_feedback", name], cwd=course)

        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(autograde, ASSIGNMENTS))
        results = {}
        with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
            for name in ASSIGNMENTS:
                (nb_path,) = nbcells.notebooks(tmp / "release" / name)
                for student in STUDENTS + tuple(f"bug{i}" for i in range(len(BUGS.get(name, [])))):
                    sub = gb.find_submission_notebook(nb_path.stem, name, student)
                    scores = {g.name: (g.score, g.max_score, g.cell.cell_type) for g in sub.grades}
                    feedback = course / "feedback" / student / name / (nb_path.stem + ".html")
                    results[name, student] = {
                        "scores": scores,
                        "feedback": html.unescape(feedback.read_text(encoding="utf-8")),
                        "autograded": nbformat.read(course / "autograded" / student / name / nb_path.name,
                                                    as_version=4),
                    }
        yield results
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _auto(scores):
    return {k: v for k, v in scores.items() if v[2] == "code"}


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograde_reference_answers_get_full_marks(name, graded):
    scores = _auto(graded[name, "reference"]["scores"])
    assert scores, "no autograded cells"
    lost = {k: v for k, v in scores.items() if v[0] != v[1]}
    assert not lost, f"reference answers lose points in {lost}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograde_builds_no_sliders(name, graded):
    """nbgrader sets NBGRADER_EXECUTION: every figure with sliders says so in one line, builds nothing."""
    executed = graded[name, "reference"]["autograded"]
    assert nbtools.widget_views(executed) == [], "autograding must not build sliders (it can hang)"
    cells = nbtools.interactive_cells(executed)
    assert cells, f"{name} has no figure with sliders"
    silent = [i for i in cells if nbtools.GRADING_NOTE not in nbtools.cell_text(executed.cells[i])]
    assert not silent, f"cells {silent} should say that they skipped their sliders"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograde_blank_notebook_gets_zero(name, graded):
    scores = _auto(graded[name, "blank"]["scores"])
    earned = {k: v for k, v in scores.items() if v[0] != 0}
    assert not earned, f"a blank notebook earns points in {earned}"


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_autograde_restores_the_kit_a_student_edited(name, graded):
    """A blank notebook sent back with an always-passing checks.py still gets 0."""
    scores = _auto(graded[name, "tampered"]["scores"])
    assert not any(v[0] for v in scores.values()), scores


@pytest.mark.parametrize("name, i", BUG_CASES)
def test_autograde_one_bug_loses_exactly_its_exercise(name, i, graded):
    bug = BUGS[name][i]
    scores = _auto(graded[name, f"bug{i}"]["scores"])
    lost = sorted(k for k, v in scores.items() if v[0] != v[1])
    assert lost == [bug["fails"]], f"the bug in {bug['answer']} should cost {bug['fails']} only"
    assert scores[bug["fails"]][0] == bug["score"], f"the bug in {bug['answer']} should keep {bug['score']} points"
    assert bug["phrase"] in graded[name, f"bug{i}"]["feedback"], (
        f"the feedback should tell the student: {bug['phrase']!r}")
