"""The release build: release/ is a clean, current nbgrader build of source_notebooks/."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder.instructor import build, nbcells

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = nbcells.assignments(ROOT)
pytestmark = pytest.mark.slow          # every test here runs nbgrader at least once


def _first_release_notebook(release):
    return nbcells.notebooks(Path(release) / ASSIGNMENTS[0])[0]


def test_committed_release_equals_a_fresh_build(fresh_release):
    differ = build.compare_trees(fresh_release, ROOT / "release")
    assert not differ, (f"release/ differs from a fresh build in {differ}: do not edit release/ "
                        "by hand; run `make release` after changing source_notebooks/")


def test_fresh_release_is_clean(fresh_release):
    assert build.verify_release(ROOT, fresh_release) == []


def test_every_assignment_is_built_with_its_kit_and_no_outputs(fresh_release):
    for name in ASSIGNMENTS:
        (nb_path,) = nbcells.notebooks(fresh_release / name)
        nb = nbformat.read(nb_path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
        assert any("raise NotImplementedError()" in c.source for c in nb.cells)
        kit = sorted(p.name for p in (fresh_release / name / build.KIT).iterdir())
        assert kit == sorted(build.kit_files())
        assert kit == sorted(p.name for p in nbcells.PACKAGE.glob("*.py")), "the kit is every module of autograder/"
    assert (fresh_release / "README.md").is_file()
    env = (fresh_release / "environment.yml").read_text()
    requirements = (fresh_release / "requirements.txt").read_text()
    for listing in (env, requirements):     # nbgrader for the Validate button; never the course itself
        assert "nbgrader" in listing and "numpy" in listing and "ipywidgets" in listing
        assert "-e ." not in listing and "nn-foundations-course" not in listing
    assert "formgrader" in (fresh_release / "README.md").read_text()   # students switch it off


@pytest.mark.parametrize("tamper, expected", [
    ("solution", "leaks solution"),
    ("hidden", "leaks solution or hidden-test"),
    ("import", "solutions_lib"),
    ("output", "carries outputs"),
    ("marker", "BEGIN SOLUTION"),
    ("dropped", "graded cells differ"),
    ("kit", "differs from autograder"),
])
def test_verify_release_catches_every_kind_of_leak(course_copy, fresh_release, tamper, expected):
    import shutil

    release = course_copy / "release"
    shutil.rmtree(release)
    shutil.copytree(fresh_release, release)
    src = nbformat.read(nbcells.notebooks(course_copy / "source_notebooks" / ASSIGNMENTS[0])[0], as_version=4)
    path = _first_release_notebook(release)
    nb = nbformat.read(path, as_version=4)
    answer = next(c for c in src.cells if c.metadata.get("nbgrader", {}).get("solution")
                  and c.cell_type == "code")
    test = next(c for c in src.cells if "BEGIN HIDDEN TESTS" in c.source)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    if tamper == "solution":
        by_id[answer.metadata.nbgrader.grade_id].source = answer.source.replace(
            "### BEGIN SOLUTION", "").replace("### END SOLUTION", "")
    elif tamper == "hidden":
        hidden = build._region_lines(test.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        by_id[test.metadata.nbgrader.grade_id].source += "\n" + "\n".join(hidden)
    elif tamper == "import":
        nb.cells.append(nbformat.v4.new_code_cell("from solutions_lib import layers"))
    elif tamper == "output":
        cell = next(c for c in nb.cells if c.cell_type == "code")
        cell.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
    elif tamper == "marker":
        nb.cells.append(nbformat.v4.new_markdown_cell("### BEGIN SOLUTION"))
    elif tamper == "dropped":
        nb.cells.remove(by_id[test.metadata.nbgrader.grade_id])
    if tamper == "kit":
        (release / ASSIGNMENTS[0] / build.KIT / "checks.py").write_text("print('edited')\n")
    else:
        nbformat.write(nb, path)
    problems = build.verify_release(course_copy, release)
    assert any(expected in p for p in problems), problems


def test_build_check_fails_on_a_hand_edited_release(course_copy):
    path = _first_release_notebook(course_copy / "release")
    nb = json.loads(path.read_text())
    nb["cells"][0]["source"] = "# edited by hand\n"
    path.write_text(json.dumps(nb, indent=1))
    with pytest.raises(build.BuildError, match="differs from a fresh build"):
        build.build(course_copy, check=True, log=lambda *a: None)


def test_build_writes_release_and_gradebook_and_cli_reports_failure(course_copy):
    stale = course_copy / "release" / "99_removed"
    stale.mkdir()
    (stale / "old.ipynb").write_text("{}")
    build.build(course_copy, run_validation=False, log=lambda *a: None)
    assert not stale.exists(), "a build must not leave assignments that no longer exist"
    assert (course_copy / "course" / "gradebook.db").is_file()
    assert build.compare_trees(course_copy / "release", ROOT / "release") == []
    (course_copy / "release" / "README.md").write_text("edited\n")
    proc = subprocess.run([sys.executable, "-m", "autograder.instructor", "build", "--check",
                           "--root", str(course_copy)], capture_output=True, text=True)
    assert proc.returncode == 1 and "README.md" in proc.stderr


def test_validation_fails_when_tests_fail(course_copy):
    """nbgrader validate exits 0 on failing tests; build.validate must report them."""
    name = ASSIGNMENTS[0]
    release_nb = _first_release_notebook(course_copy / "release")
    problems = build.validate([release_nb], course_copy)
    assert problems and all("a test fails" in p for p in problems)
    assert build.validate([release_nb], course_copy, invert=True) == []
    source_nb = nbcells.notebooks(course_copy / "source_notebooks" / name)[0]
    assert build.validate([source_nb], course_copy) == []


def test_students_nbgrader_validate_prints_whole_messages(fresh_release, tmp_path):
    """`nbgrader validate` in a copy of release/ reads the release's nbgrader_config.py: no
    "No nbgrader_config.py file found" warning, and a message line longer than nbgrader's
    default width (87 characters) arrives whole, down to the part that names the bug."""
    import shutil

    name = "01_perceptron"
    copy = tmp_path / "release"
    shutil.copytree(fresh_release, copy)
    assert (copy / "nbgrader_config.py").read_text() == build.STUDENT_NBGRADER_CONFIG
    nb_path = copy / name / f"{name}.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    (cell,) = [c for c in nb.cells if nbcells.grade_id(c) == "step_sign"]
    cell.source = ("def step(z):\n    return (np.asarray(z) >= 0).astype(float)\n\n"
                   "def step_grad(z):\n    return np.zeros(np.shape(z))\n\n"
                   "def sign(z):\n    return np.sign(z).astype(float)      # np.sign(0) is 0\n\n"
                   "def sign_grad(z):\n    return np.zeros(np.shape(z))\n")
    nbformat.write(nb, nb_path)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "validate", f"{name}/{name}.ipynb"],
                          cwd=copy, capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "NN_COURSE_HEADLESS": "1"})
    assert "No nbgrader_config.py file found" not in proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines()           # the failed part, not the cell's source
             if "✗ sign" in ln and "sign(0) came out as 0" in ln]
    assert lines, proc.stdout[-3000:]
    assert len(lines[0]) > 90 and not lines[0].endswith("...")
    assert "decide with the comparison z >= 0" in lines[0], lines[0]
