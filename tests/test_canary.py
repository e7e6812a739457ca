"""The canary: a grader that cannot grade the reference answers refuses to grade anyone.

Each worker grades the reference answers of every assignment it will grade before its first
unit (``autograder/instructor/canary.py``). These tests break the grader the ways a new
instructor could (a memory limit too tight for a kernel, a broken kit) and check that the run
stops with the assignment, the cell, the error and the fix, having graded nothing; and that the
case which once gave a whole class 0 (the course installed editable from a checkout under
/tmp, graded from another folder, with bubblewrap) grades correctly.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from nbtools import needs_isolation

from autograder.instructor import build, canary, cli, pool, records, sandbox
from autograder.instructor.synthetic import answers, classroom

ROOT = Path(__file__).resolve().parents[1]
NAME = "01_perceptron"
LIMITS = sandbox.Limits(cell_timeout=20, notebook_timeout=60)


def _course(root, names=(NAME,)):
    """A course of its own at ``root`` with only the assignments ``names``: release, gradebook."""
    return build.scratch_course(root, list(names), root=ROOT)


def _class(root, students=("ada",)):
    """A submitted/ folder of students who hand in the reference answers of NAME."""
    release, source = (root / part / NAME for part in ("release", "source_notebooks"))
    import nbformat

    subs = root / "submitted"
    nb = answers.with_answers(nbformat.read(release / f"{NAME}.ipynb", as_version=4),
                              nbformat.read(source / f"{NAME}.ipynb", as_version=4))
    for student in students:
        classroom.write_submission(subs / student / NAME, {f"{NAME}.ipynb": nb}, release)
    return subs


def _ledger(root):
    return list((root / "grading" / "ledger").rglob("*.json")) if (root / "grading" / "ledger").exists() else []




# ------------------------------------------------------------------------------ the message
@pytest.mark.parametrize("error, events, says", [
    ("ModuleNotFoundError: No module named 'solutions_lib'", [], "solutions_lib' is installed from"),
    ("ModuleNotFoundError: No module named 'scipy'", [], "install scipy in the Python that grades"),
    ("RuntimeError: Kernel died before replying to kernel_info", ["no-kernel"], "--memory-mb, now 3072"),
    ("DeadKernelError: your code's process had ended", ["dead-kernel"], "raise --memory-mb (now 3072)"),
    ("CellTimeoutError: the cell ran past its time limit", ["cell-timeout"], "raise --cell-timeout (now 60 s)"),
    ("NotebookTimeLimit: not run", ["notebook-time-limit"], "raise --notebook-timeout (now 180 s)"),
    ("AssertionError: w does not match", [], "the reference answer fails its own test"),
])
def test_the_likely_fix_fits_the_error(error, events, says):
    miss = canary.Miss(NAME, "test_predict", 0.0, 2.0, error, events)
    assert says in canary.likely_fix(miss, sandbox.Limits())
    text = canary.explain([miss], sandbox.Limits())
    assert "Nothing was graded" in text and f"{NAME}, cell test_predict: 0 of 2 points" in text and error in text


def test_a_missing_course_package_says_where_it_is_installed():
    miss = canary.Miss(NAME, "test_x", 0.0, 1.0, "ModuleNotFoundError: No module named 'solutions_lib'", [])
    import solutions_lib
    assert str(Path(solutions_lib.__file__).parent.parent) in canary.likely_fix(miss, sandbox.Limits())


# ------------------------------------------------------------------------------ the run stops
@pytest.mark.slow
def test_a_memory_limit_too_low_stops_the_run_and_grades_nothing(tmp_path, capsys):
    """A kernel cannot start in 400 MB: the command exits 3 with the assignment, the error and
    the fix, and not one unit is in the ledger or the gradebook."""
    needs_isolation()
    root = _course(tmp_path / "c")
    subs = _class(root, ("ada", "bob"))
    code = cli.main(["grade", str(subs), "--course", str(root / "course"), "--jobs", "1", "--memory-mb", "400",
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert f"- {NAME}, cell (every cell: the notebook did not run)" in err
    assert "Kernel died before replying to kernel_info" in err and "--memory-mb, now 400" in err
    assert _ledger(root) == []
    from nbgrader.api import Gradebook
    with Gradebook(records.Course(root / "course").db_url) as gb:
        assert gb.assignment_submissions(NAME) == []


@pytest.mark.slow
def test_a_broken_kit_stops_the_run_with_the_cell_and_its_error(tmp_path):
    """The release's kit (copied into every submission) with a check that always fails: the
    canary names the first test cell, its error, and the advice to check the kit."""
    needs_isolation()
    root = _course(tmp_path / "c")
    subs = _class(root)
    checks = root / "release" / NAME / "autograder" / "checks.py"
    checks.write_text(checks.read_text() + "\n\ndef check_close(*args, **kwargs):\n"
                      "    raise AssertionError('the kit is broken')\n")
    with pytest.raises(canary.CanaryFailed) as err:
        pool.grade(subs, root / "course", jobs=1, limits=LIMITS, progress=False, log=lambda *a: None)
    text = str(err.value)
    assert f"- {NAME}, cell test_" in text and "error: " in text and "the kit is broken" in text
    assert "the release's kit is current" in text
    assert _ledger(root) == []


# ------------------------------------------------------------------------------ the case that gave 0
@pytest.mark.slow
def test_an_editable_install_under_tmp_grades_correctly_from_another_folder(tmp_path):
    """The course installed with `pip install -e` from a checkout under /tmp (pytest's tmp_path
    is there), `nn-course grade` run from another folder, bubblewrap installed: the reference
    answers get every point (this once gave every student 0 and reported success)."""
    needs_isolation()
    assert str(tmp_path).startswith("/tmp/"), "the case is a checkout under /tmp"
    checkout = tmp_path / "checkout"
    for part in ("autograder", "solutions_lib"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("README.md", "LICENSE"):
        shutil.copy(ROOT / part, checkout)
    _course(checkout)
    subs = _class(checkout, ("ada", "bob"))
    venv = tmp_path / "venv"                  # a venv of its own, seeing this one's packages (no network)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "our-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps",
                    "-e", str(checkout)], check=True, capture_output=True)
    where = subprocess.run([str(python), "-c", "import solutions_lib, autograder; "
                            "print(solutions_lib.__file__); print(autograder.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path).stdout.split()
    assert all(w.startswith(str(checkout)) for w in where), where    # really the editable checkout
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(venv / "bin" / "nn-course"), "grade", str(subs), "--course", str(checkout / "course"),
                           "--jobs", "1", "--cell-timeout", "20", "--notebook-timeout", "60", "--no-progress"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "graded 2, already graded 0, failed 0" in done.stdout
    course = records.Course(checkout / "course")
    for student in ("ada", "bob"):
        record = records.read_ledger(course, NAME, student)
        assert record.status == "graded" and record.isolated
        tests = {g: s for g, s in record.scores.items() if s.kind == "test"}
        assert tests and all(s.final == s.max for s in tests.values()), {g: (s.final, s.max) for g, s in tests.items()}
