"""Executing a notebook outside a browser never builds sliders, so it cannot hang on them.

nbclient has been seen to wait out its cell timeout on a cell that builds ``ipywidgets``
sliders (here: 1 run of 02_xor in about 15, 120 s; upstream: jupyter/nbclient#312). So no
headless run may build one: nbgrader (validate, autograde) sets ``NBGRADER_EXECUTION`` itself,
and the course's own nbclient runs set ``NN_COURSE_HEADLESS``. ``autograder.widgets.interactive``
then draws once or skips, and never calls ``ipywidgets.interact``.

The probe notebook below replaces ``ipywidgets.interact`` by a function that only records the
call, so that a regression fails its test cell instead of hanging. The course notebooks
themselves are covered in test_notebooks.py (no widget in the outputs of any headless run,
nbclient or nbgrader autograde) and here (they build sliders only through
``widgets.interactive``).
"""
import re
from pathlib import Path

import nbformat
import pytest

import nbtools
from autograder.instructor import build, nbcells

ROOT = Path(__file__).resolve().parents[1]

PROBE_CELLS = [
    ("setup", "import ipywidgets\n"
              "built = []                    # every call of ipywidgets.interact, recorded instead of built\n"
              "ipywidgets.interact = lambda draw, **sliders: built.append(sorted(sliders))\n"
              "from autograder import widgets"),
    ("figure", "@widgets.interactive(a=(0.0, 1.0, 0.1), b=(0, 5, 1))\n"
               "def figure(a=0.5, b=2):\n"
               "    print('drawn with', a, b)"),
    ("test_no_sliders", "assert built == [], f'sliders were built: {built}'\n"
                        "print('no sliders built')"),
]


@pytest.fixture
def probe(tmp_path):
    """A folder with the student kit and a notebook whose last cell fails if sliders were built."""
    build.add_kit(tmp_path)
    cells = []
    for grade_id, source in PROBE_CELLS:
        cell = nbformat.v4.new_code_cell(source)
        graded = grade_id.startswith("test_")
        cell.metadata["nbgrader"] = {"grade": graded, "grade_id": grade_id, "locked": True,
                                     "schema_version": 3, "solution": False, "task": False,
                                     **({"points": 1} if graded else {})}
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    return path


def test_nbclient_headless_run_builds_no_sliders(probe):
    executed, _ = nbtools.execute(nbformat.read(probe, as_version=4), probe.parent, timeout=60)
    assert nbtools.errors(executed) == []
    assert "drawn with 0.5 2" in nbtools.cell_text(executed.cells[1]), "the figure is drawn once"
    assert nbtools.HEADLESS_NOTE in nbtools.cell_text(executed.cells[1])


def test_nbgrader_validate_builds_no_sliders(probe):
    """Real nbgrader: its Validator sets NBGRADER_EXECUTION, and the test cell must pass."""
    assert build.validate([probe], ROOT) == []


def test_the_probe_sees_sliders_when_nothing_says_headless(probe):
    """Without either variable the probe's test cell fails: the two tests above can fail."""
    executed, _ = nbtools.execute(nbformat.read(probe, as_version=4), probe.parent, timeout=60,
                                  env={"NN_COURSE_HEADLESS": None, "NBGRADER_EXECUTION": None})
    assert [(i, err.split(":")[0]) for i, _, err in nbtools.errors(executed)] == [(2, "AssertionError")]
    assert "sliders were built: [['a', 'b']]" in nbtools.errors(executed)[0][2]


#: Ways to build a widget that would bypass widgets.interactive and its headless guard.
BYPASS = re.compile(r"\bipywidgets\b|(?<![\w.])interact(?:ive|_manual)?\s*\(|\binteractive_output\b")


@pytest.mark.parametrize("name", nbcells.assignments(ROOT))
def test_notebooks_build_sliders_only_through_widgets_interactive(name):
    nb = nbformat.read(nbtools.source_notebook(name), as_version=4)
    bypass = [(i, m.group(0)) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for m in BYPASS.finditer(c.source.replace("widgets.interactive(", ""))]
    assert not bypass, (f"{name} builds widgets without widgets.interactive (cells {bypass}); "
                        "headless runs would build them and can hang")


def test_the_bypass_check_catches_a_direct_interact():
    for source in ("import ipywidgets\nipywidgets.interact(f, a=(0, 1))", "interact(f, a=1)",
                   "from ipywidgets import interactive_output"):
        assert BYPASS.search(source.replace("widgets.interactive(", "")), source
    assert not BYPASS.search("@widgets.interactive(a=(0, 1))".replace("widgets.interactive(", ""))
