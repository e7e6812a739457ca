"""The student's experience in a real browser: JupyterLab in Debian's Chromium, driven by Playwright.

For every assignment of the release (a scratch build, see conftest.py):

- answered: the release notebook with the reference answers pasted in. Run > Run All Cells;
  no error and no stderr anywhere; every control of every ``@widgets.interactive`` figure is on
  screen; each is moved with the keyboard and the figure it drives changes (the time from the
  key press to the new figure is recorded for docs/benchmarks.md); still no error; nbgrader's
  Validate button reports success.
- handed out: the release notebook as students get it. Validate lists every graded test cell
  as failed, each with the checks' "is not implemented yet" message, and nothing else fails
  but the written answers nobody wrote.
- a student sees the Validate button and the Assignment List, and none of nbgrader's
  instructor tools.

Screenshots of every figure and every Validate dialog go to tests/browser/screenshots/.
"""
import os

import nbformat
import pytest

import labdriver
from autograder.instructor import nbcells

pytestmark = pytest.mark.browser

NAMES = nbcells.assignments(labdriver.ROOT)
NOT_IMPLEMENTED = "is not implemented yet"
SUCCESS = "Success! Your notebook passes all the tests."
NO_RESPONSE = "You did not provide a response."
#: A move slower than this is broken, whatever the load (targets: median 200 ms, worst 1 s;
#: bench/bench_sliders.py measures those).
SLOW_MOVE_MS = 5000


@pytest.mark.parametrize("name", NAMES)
def test_answered_notebook_runs_clean_and_every_slider_moves_its_figure(
        name, page, lab, student_release, screenshots, latencies, loads, slider_presses):
    path = f"{name}/{name}_answered.ipynb"
    expected = labdriver.expected_controls(nbformat.read(student_release / path, as_version=4))
    notebook = labdriver.Notebook(page, lab, path)
    notebook.run_all()
    problems = notebook.problems()
    assert not problems, f"{name}: Run All leaves errors on screen:\n" + "\n".join(problems)

    controls = notebook.controls()
    per_figure = [sum(1 for c in controls if c["interact"] == i) for i in range(len(expected))]
    assert per_figure == [count for _, count in expected] and len(controls) == sum(per_figure), (
        f"{name}: the notebook declares {expected} (function, controls) but the page shows "
        f"{len(controls)} controls in {len({c['interact'] for c in controls})} interactive figures")

    moves = []
    for k, control in enumerate(controls):
        function = expected[control["interact"]][0]
        what = f"{function}: {control['label'] or control['kind']}"
        for _ in range(slider_presses):
            try:
                key, before, after, ms = notebook.move(k)
            except AssertionError as err:
                raise AssertionError(f"{name}, {what}: {err}") from None
            assert after != before, f"{name}, {what}: {key} did not change the value ({before})"
            assert ms is not None and ms < SLOW_MOVE_MS, (
                f"{name}, {what}: the figure took {ms} ms to follow {key} (the target is 200 ms; "
                "see docs/benchmarks.md)")
            moves.append((what, control["kind"], ms))
    latencies[name] = moves
    loads[name] = os.getloadavg()[0]

    for i in range(len(expected)):
        notebook.screenshot(screenshots / f"{name}-figure-{i + 1}.png", interact=i)
    if not expected:
        notebook.screenshot(screenshots / f"{name}-top.png")
    problems = notebook.problems()
    assert not problems, f"{name}: moving the sliders put errors on screen:\n" + "\n".join(problems)

    report, seconds = notebook.validate()
    notebook.screenshot(screenshots / f"{name}-validate-answered.png")
    assert report["success"] and SUCCESS in report["text"], (
        f"{name}: Validate with the reference answers does not report "
                               f"success ({seconds:.0f} s):\n{report['text'][:3000]}")
    assert not page.js_errors, f"{name}: JavaScript errors on the page: {page.js_errors[:3]}"


@pytest.mark.parametrize("name", NAMES)
def test_validate_reports_every_exercise_as_not_implemented_when_handed_out(
        name, page, lab, student_release, screenshots):
    path = f"{name}/{name}.ipynb"
    release = nbformat.read(student_release / path, as_version=4)
    tests = {c.source.strip() for c in labdriver.test_cells(release)}
    notebook = labdriver.Notebook(page, lab, path)
    report, seconds = notebook.validate()
    notebook.screenshot(screenshots / f"{name}-validate-handed-out.png")
    assert not report["success"] and report["failed"], (
        f"{name}: Validate does not report failures on the notebook as handed out:\n"
        f"{report['text'][:3000]}")
    failed = {source: error for source, error in report["failed"]}
    missing = [t.splitlines()[0] for t in tests if t not in failed]
    assert not missing, f"{name}: Validate does not list these test cells as failing: {missing}"
    silent = [t.splitlines()[0] for t in tests if NOT_IMPLEMENTED not in failed[t]]
    assert not silent, (f"{name}: these test cells fail without the {NOT_IMPLEMENTED!r} message: "
                        f"{silent}")
    others = [(s.splitlines()[0] if s else "", e[-300:]) for s, e in report["failed"]
              if s not in tests and NO_RESPONSE not in e]
    assert not others, f"{name}: Validate reports other failures too: {others}"


def test_a_student_sees_validate_and_the_assignment_list_but_no_instructor_tools(page, lab):
    """The lab of these tests is set up as the students' commands set up theirs (see labdriver)."""
    tools = labdriver.Notebook(page, lab, f"{NAMES[0]}/{NAMES[0]}.ipynb").nbgrader_tools()
    assert labdriver.student_tools_problems(tools) == []
