"""Partial credit graded for real: a Worker grades submissions of 04_dense_backprop (student
code sandboxed, tests in the grader's process) and every test cell's score is checked exactly.

- the wrong db axis costs db's share only: 3 of 4 for dense_backward, full marks elsewhere;
- a student who binds names like the tally (``tally``, ``Tally``, ``score``), prints and
  displays numbers, pushes a number through the display hook and returns numbers gains nothing.
"""
import nbformat
import pytest

from autograder.instructor import build, records, sandbox, worker
from autograder.instructor.synthetic import answers, classroom

from test_isolation import NAME, ROOT

pytestmark = pytest.mark.slow
LIMITS = sandbox.Limits(cell_timeout=30, notebook_timeout=120)

WRONG_DB = [b for b in answers.load_bugs()[NAME] if b["phrase"] == "summed over the wrong axis"][0]

#: The wrong db axis, and every way of showing the grader a number the student can think of.
FORGER = WRONG_DB["source"].replace("def dense_backward(dH, cache):\n", '''class Tally:
    """A tally that gives full marks (the grader's own is never replaced by it)."""
    def __init__(self, points=4):
        self.points = points

    def score(self):
        return float(self.points)


tally = Tally(4)


def dense_backward(dH, cache):
    print(4.0)                                         # a number on stdout
    get_ipython().display_pub.publish({"text/plain": "4.0"})      # a display_data of a number
    get_ipython().displayhook(4.0)                     # an execute_result in the student's process
''')
#: A dense_backward that returns the cell's points instead of gradients.
NUMBER = "def dense_backward(dH, cache):\n    print(4.0)\n    return 4.0\n"


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """graded[student] -> (record, autograded notebook), each graded once by one Worker."""
    out = build.scratch_course(tmp_path_factory.mktemp("course"), [NAME], root=ROOT)
    course = records.Course(out / "course")
    release = nbformat.read(course.release_notebook(NAME), as_version=4)
    source = nbformat.read(course.source_notebook(NAME), as_version=4)
    submissions = {"wrong-db": {"dense_backward": WRONG_DB["source"]}, "forger": {"dense_backward": FORGER},
                   "number": {"dense_backward": NUMBER},
                   "tally-number": {"dense_backward": "tally = 4.0\n" + WRONG_DB["source"]},
                   "data-name": {"dense_backward": "score = 4.0\n" + WRONG_DB["source"]}}
    w = worker.Worker(course.dir, LIMITS, index=9, feedback=False)

    class Graded(dict):
        def __missing__(self, student):
            folder = tmp_path_factory.mktemp(student) / NAME
            nb = answers.with_answers(release, source, submissions[student])
            classroom.write_submission(folder, {f"{NAME}.ipynb": nb})
            record = w.grade(records.Unit(student, NAME, str(folder)))
            self[student] = record, nbformat.read(course.autograded_notebook(record), as_version=4)
            return self[student]
    try:
        yield Graded()
    finally:
        w.close()


def _tests(record):
    assert record.status == "graded", record.error
    return {gid: s for gid, s in record.scores.items() if s.kind == "test"}


def _cell(nb, gid):
    (cell,) = [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == gid]
    return cell


def test_the_wrong_db_axis_gets_3_of_4(graded):
    record, nb = graded["wrong-db"]
    tests = _tests(record)
    assert (tests["test_dense_backward"].nbgrader, tests["test_dense_backward"].final) == (3.0, 3.0)
    assert tests["test_dense_backward"].max == 4.0
    others = {gid: (s.final, s.max) for gid, s in tests.items() if gid != "test_dense_backward"}
    assert all(final == maximum for final, maximum in others.values()), others
    text = "".join(o.get("text", "") for o in _cell(nb, "test_dense_backward").outputs)
    assert text.startswith("3 of 4 points:"), text
    assert "✗ db by hand (0.25): db (linear) has shape (4,) but should have shape (2,)" in text
    assert "✓ dX (random layers) (0.5)" in text and "✓ dW (784 → 128) (0.5)" in text
    # the number nbgrader read is the grader's execute_result, the only one in the cell
    results = [o for o in _cell(nb, "test_dense_backward").outputs if o.get("output_type") == "execute_result"]
    assert [r["data"]["text/plain"] for r in results] == ["3.0"]


def test_a_forged_tally_and_numbers_shown_by_the_student_gain_nothing(graded):
    record, nb = graded["forger"]
    tests = _tests(record)
    outputs = _cell(nb, "test_dense_backward").outputs
    assert (tests["test_dense_backward"].nbgrader, tests["test_dense_backward"].final) == (3.0, 3.0), outputs
    shown = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "4.0" in shown, "the student's prints reach the cell's output (as text, not as a score)"
    assert any(o.get("output_type") == "display_data" for o in outputs), "the student's display is shown"
    results = [o for o in outputs if o.get("output_type") == "execute_result"]
    assert [r["data"]["text/plain"] for r in results] == ["3.0"], (
        "the student's execute_result (displayhook) never becomes one of the test cell")


def test_a_function_that_returns_the_points_gets_nothing(graded):
    record, nb = graded["number"]
    tests = _tests(record)
    assert tests["test_dense_backward"].final == 0.0
    text = "".join(o.get("text", "") for o in _cell(nb, "test_dense_backward").outputs)
    assert "\n0 of 4 points:\n" in text, text        # after the student's own prints
    assert all(s.final == s.max for gid, s in _tests(record).items() if gid != "test_dense_backward")



def test_a_tally_bound_to_a_number_gains_nothing(graded):
    record, _ = graded["tally-number"]
    assert _tests(record)["test_dense_backward"].final == 3.0


def test_a_plain_data_name_in_an_answer_cell_keeps_its_function(graded):
    """`score = 4.0` above `def dense_backward` in the answer cell: the number is fetched while the
    student process serves, the function is bound too, and the answer keeps its 3 of 4 (this once
    hung the grader's install until the cell time limit and lost the function)."""
    record, _ = graded["data-name"]
    assert _tests(record)["test_dense_backward"].final == 3.0
