"""The student install's own JupyterLab, in the browser: what the README's setup gives a student.

JupyterLab runs from the student environment (tests/student_env.py: a fresh venv, ``pip install
-r requirements.txt`` and the README's setup commands; no settings of the tests' own). A student
there sees the Validate button and the Assignment List and none of the instructor tools; an
answered assignment runs, its slider moves its figure, and Validate reports success.
"""
import shutil
import tempfile
from pathlib import Path

import pytest

import labdriver
from autograder.instructor import nbcells

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NAME = nbcells.assignments(labdriver.ROOT)[0]


@pytest.fixture(scope="module")
def student_lab(chromium_path, student_env, student_release):
    work = Path(tempfile.mkdtemp(prefix="nn-student-lab-"))
    server = labdriver.JupyterLab(student_release, work, python=student_env.python, student_view=False)
    yield server
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


def test_the_student_install_runs_and_validates_an_assignment_with_student_tools_only(
        browser, student_lab, screenshots):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        notebook = labdriver.Notebook(page, student_lab, f"{NAME}/{NAME}_answered.ipynb")
        assert labdriver.student_tools_problems(notebook.nbgrader_tools()) == []
        notebook.run_all()
        assert notebook.problems() == []
        key, before, after, ms = notebook.move(0)
        assert after != before, f"{key} did not move the first slider"
        report, seconds = notebook.validate()
        notebook.screenshot(screenshots / f"student-install-{NAME}-validate.png")
        assert report["success"], f"Validate in the student install ({seconds:.0f} s):\n{report['text'][:2000]}"
    finally:
        context.close()
        student_lab.shut_down_kernels()
