"""The canary: before a worker grades anyone, it grades the reference answers.

A grader that cannot run the course (a package its sandbox cannot see, a limit too tight for
the reference, a broken kit) would fail every test of every student and give a whole class 0.
So each worker, once it has started and before its first unit, grades the source notebook of
every assignment it will grade (the reference answers and the hidden tests, exactly what
nbgrader runs for a perfect submission) with the same split execution, sandbox and limits as
the students' (``grade_reference``). Every test cell must get all its points; if one does
not, the run grades nothing and stops with what ``explain`` says: which assignment, which
cell, the error, and the likely fix.

    grade_reference(config, log, notebook) -> [Miss]     one assignment, in a worker
    explain(misses, limits) -> str                       the message that stops the run
"""
import copy
import importlib.util
import os
import sys
from dataclasses import asdict, dataclass

from nbgrader.utils import determine_grade

from .nbcells import grade_id, is_test
from .nbexec import StderrIsNotFailure, error_text, failed_part_text
from .split.execute import SplitExecute

#: The course's own packages: a grading kernel that cannot import one of them cannot grade.
COURSE_PACKAGES = ("autograder", "solutions_lib")


class CanaryFailed(RuntimeError):
    """The reference answers lost points in a worker: nothing is graded (the message says why)."""


@dataclass
class Miss:
    """One test cell of a reference answer that did not get all its points."""
    assignment: str
    cell: str
    score: float
    points: float
    error: str
    events: list

    def as_dict(self):
        return asdict(self)


def grade_reference(config, log, notebook, assignment):
    """Run the reference ``notebook`` (a source notebook, nbformat 4) as a submission is run
    (``SplitExecute``, then ``StderrIsNotFailure``) and score its test cells as nbgrader does.

    config: the worker's nbgrader Config (the same kernels, sandbox and limits as a student's);
    log: the worker's ExecutionLog (reset by the caller). Returns the test cells that lost a
    point, as ``Miss``es ([] when the grader works).
    """
    nb = copy.deepcopy(notebook)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        nb, resources = SplitExecute(config=config).preprocess(nb, {})
    except Exception as err:             # noqa: BLE001  (the kernels did not start or connect)
        points = sum(float(c.metadata["nbgrader"].get("points", 0)) for c in nb.cells if is_test(c))
        return [Miss(assignment, "(every cell: the notebook did not run)", 0.0, points,
                     f"{type(err).__name__}: {err}", ["no-kernel"])]
    nb, resources = StderrIsNotFailure(config=config).preprocess(nb, resources)
    misses = []
    for index, cell in enumerate(nb.cells):
        if not is_test(cell):
            continue
        score, points = determine_grade(cell)
        if score is None or score < points:
            events = [e["kind"] for e in log.events if e.get("cell") == index]
            misses.append(Miss(assignment, grade_id(cell), float(score or 0), float(points),
                               error_text(cell) or failed_part_text(cell) or _stream_text(cell), events))
    return misses


def explain(misses, limits):
    """The message of a failed canary: each cell that lost points, its error, the likely fix."""
    lines = ["The grader's own check failed: the reference answers do not get full marks in this grader, so it "
             "would give correct students 0. Nothing was graded.", ""]
    for m in misses:
        lines.append(f"- {m.assignment}, cell {m.cell}: {m.score:g} of {m.points:g} points"
                     + (f" ({', '.join(m.events)})" if m.events else ""))
        lines.append(f"    error: {m.error or '(no error output)'}")
        lines.append(f"    likely fix: {likely_fix(m, limits)}")
    return "\n".join(lines)


def likely_fix(miss, limits):
    """What most likely makes a reference answer fail here, and what to do about it."""
    error, events = miss.error, set(miss.events)
    for name in COURSE_PACKAGES:
        if f"No module named '{name}" in error:
            return _missing_course_package(name)
    if "ModuleNotFoundError" in error or "ImportError" in error:
        module = error.split("No module named", 1)[-1].strip(" '\"")
        return (f"install {module or 'the missing module'} in the Python that grades ({sys.executable}): "
                "the sandbox sees only that Python's installation and site-packages")
    if "no-kernel" in events:
        return (f"the kernels did not start: a memory limit too low for a Python kernel (--memory-mb, now "
                f"{limits.memory_mb}), or a Python the sandbox cannot run (see the zygote logs in the "
                "worker's scratch folder, and `nn-course grade` without bubblewrap to compare)")
    if "dead-kernel" in events or "MemoryError" in error:
        return (f"the kernel ran out of memory or died: raise --memory-mb (now {limits.memory_mb}); "
                "the reference needs more than that")
    if "cell-timeout" in events or "CellTimeoutError" in error:
        return f"raise --cell-timeout (now {limits.cell_timeout} s): the reference needs longer on this machine"
    if "notebook-time-limit" in events or "NotebookTimeLimit" in error:
        return f"raise --notebook-timeout (now {limits.notebook_timeout} s): the reference needs longer on this machine"
    if "grader-died" in events:
        return "the grader's own kernel died: see the worker's log in <course>/grading/"
    return ("the reference answer fails its own test: check the source notebook's solution and tests "
            "(`nn-course build` validates them) and that the release's kit is current")


def _missing_course_package(name):
    spec = importlib.util.find_spec(name)
    where = _package_folder(spec)
    if where is None:
        return (f"'{name}' is not importable by the Python that grades ({sys.executable}): install the course "
                "there (`pip install -e .` in the checkout)")
    editable = not any(part in ("site-packages", "dist-packages") for part in where.split(os.sep))
    return (f"'{name}' is installed from {where}" + (" (an editable install: its source lives there, not in "
                                                     "site-packages)" if editable else "")
            + ", which the grading kernel cannot see: install the course without -e (`pip install .`), or "
            "from a checkout outside /tmp, and report it: the sandbox should bind it")


def _package_folder(spec):
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    return os.path.dirname(os.path.abspath(locations[0])) if locations else os.path.dirname(spec.origin or "")


def _stream_text(cell):
    text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
    return text.strip().splitlines()[-1][:300] if text.strip() else ""
