"""The bottom layer: where a course's assignments are, what kind a cell is, and its config.

Every other instructor module asks these questions through here, so that each is answered
once:

- ``find_root``, ``assignments``, ``notebooks``: the course repository, its assignments
  (folders ``source_notebooks/NN_topic``) and their notebooks;
- ``nbgrader_meta``, ``grade_id`` and the predicates ``is_answer``, ``is_test``,
  ``is_written``, ``is_locked``: what nbgrader makes of a cell;
- ``load_config``: a course's ``nbgrader_config.py``, read by nbgrader's own loader
  (traitlets), with ``CourseDirectory.root`` set to the course folder.
"""
import os
import re
from pathlib import Path

ASSIGNMENT_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")
#: The package this module belongs to, and the course repository it was installed from.
PACKAGE = Path(__file__).resolve().parents[1]
REPOSITORY = PACKAGE.parent


class CourseError(RuntimeError):
    """A course folder is not what it should be; the message says what to do."""


# ---------------------------------------------------------------- where things are
def find_root(start=None):
    """The course repository: the folder with ``course/nbgrader_config.py``.

    Looked for from ``start`` (default: the current folder) upwards, then where this package
    lives (an editable install).
    """
    here = Path(start or os.getcwd()).resolve()
    for folder in [here, *here.parents, REPOSITORY]:
        if (folder / "course" / "nbgrader_config.py").is_file() and (folder / "source_notebooks").is_dir():
            return folder
    raise CourseError("no course repository found: run this inside the repository (the folder "
                      "with course/nbgrader_config.py and source_notebooks/), or pass --root")


def assignments(root):
    """Names of the assignments, in course order: folders ``source_notebooks/NN_topic``."""
    folder = Path(root) / "source_notebooks"
    names = sorted(p.name for p in folder.iterdir()
                   if p.is_dir() and ASSIGNMENT_NAME.match(p.name) and any(p.glob("*.ipynb"))) \
        if folder.is_dir() else []
    if not names:
        raise CourseError(f"no assignments in {folder}: expected folders like 01_perceptron/ "
                          "holding the source notebooks")
    return names


def notebooks(folder):
    """The notebooks of one assignment folder, sorted."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))


def kit_modules():
    """The student kit: every module directly in ``autograder/`` (the build copies each one into
    every assignment; ``__init__`` is the kit's own and not listed). Names without ``.py``."""
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


# ---------------------------------------------------------------- cells
def nbgrader_meta(cell):
    """A cell's nbgrader metadata ({} for a cell nbgrader does not know, or a malformed one)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell):
    """A cell's nbgrader grade_id, or None (also for one that is not a string: a broken submission)."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def is_answer(cell):
    """A code cell the student writes (autograded through the tests after it)."""
    return cell.get("cell_type") == "code" and bool(nbgrader_meta(cell).get("solution"))


def is_solution(cell):
    """A cell the student writes: a code answer or a written one."""
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell):
    """A code cell with points that is not an answer: a test cell."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def is_written(cell):
    """A manually graded written answer (markdown, solution and grade)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def is_locked(cell):
    """A read-only cell the student was given (set-up, helpers, tests), not an answer."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked")) and not meta.get("solution")


# ---------------------------------------------------------------- configuration
def read_config(folder):
    """The Config of ``folder/nbgrader_config.py``, read by nbgrader's own loader (traitlets)."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()


def load_config(course_dir):
    """nbgrader's Config of the course in ``course_dir``, read from its nbgrader_config.py."""
    course_dir = Path(course_dir).resolve()
    if not (course_dir / "nbgrader_config.py").is_file():
        raise FileNotFoundError(f"{course_dir / 'nbgrader_config.py'} not found: point --course at the "
                                "folder with the course's nbgrader_config.py (course/ in this repository).")
    config = read_config(course_dir)
    config.CourseDirectory.root = str(course_dir)
    return config
