"""Run the course notebooks the way students and nbgrader do, for the notebook tests.

Also a command for notebook authors:

    .venv/bin/python tests/nbtools.py 01_perceptron

runs the three student-side checks of one assignment (source passes; release fails only in
its graded tests, with the "not implemented yet" message; release + reference answers
passes without ``solutions_lib``) and prints what went wrong and how long each took.
"""
import copy
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.instructor import build, nbcells  # noqa: E402
from autograder.instructor.synthetic import answers  # noqa: E402

NOT_IMPLEMENTED = "is not implemented yet"

#: Installed in the kernel of a "student" run: solutions_lib cannot be imported there.
BLOCK_SOLUTIONS = textwrap.dedent('''
    import importlib.abc, sys

    class _NoSolutions(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "solutions_lib":
                raise ModuleNotFoundError(f"No module named {name!r} (students do not have it)")
            return None

    sys.meta_path.insert(0, _NoSolutions())
''')


nbgrader_meta = nbcells.nbgrader_meta


def needs_isolation():
    """Skip a test that needs the sandbox when bubblewrap is missing; under CI, fail it instead."""
    import pytest
    from autograder.instructor import sandbox

    if sandbox.isolation_available():
        return
    message = ("bubblewrap is not installed (apt-get install bubblewrap; .ci/run does it): the sandbox "
               "of the student's process cannot be tested")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def is_test(cell):
    return nbcells.is_test(cell)


def source_notebook(name):
    """Path of the (single) source notebook of assignment ``name``."""
    (path,) = nbcells.notebooks(ROOT / "source_notebooks" / name)
    return path


def run_source(name):
    """Execute the source notebook of ``name`` with its solutions; returns (notebook, seconds).

    The source folder's copy of the student kit (made by the build, ignored by git) is
    refreshed first: a copy left from an older build would shadow the current ``autograder``.
    """
    path = source_notebook(name)
    build.add_kit(path.parent)
    return execute(nbformat.read(path, as_version=4), path.parent)


def execute(nb, cwd, env=None, timeout=120, kernel_name="python3"):
    """Execute a notebook (a NotebookNode, copied) in ``cwd``; errors are recorded, not raised.

    The kernel runs headless (``NN_COURSE_HEADLESS=1``: widget figures are drawn once, no
    slider is built) with this process's environment and ``env`` on top; a variable set to
    None in ``env`` is removed. ``timeout`` is the limit per cell, in seconds.
    Returns (executed notebook, seconds).
    """
    nb = copy.deepcopy(nb)
    kernel_env = dict(os.environ)
    kernel_env.pop("NBGRADER_EXECUTION", None)
    kernel_env["NN_COURSE_HEADLESS"] = "1"      # draw widget figures once, build no sliders
    for key, value in (env or {}).items():
        if value is None:
            kernel_env.pop(key, None)
        else:
            kernel_env[key] = value
    kernel_env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    marks = []
    hook = lambda what: (lambda **kw: marks.append((what, kw.get("cell_index"), time.perf_counter())))  # noqa: E731
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}},
                            on_notebook_start=hook("kernel ready"), on_cell_start=hook("cell start"),
                            on_cell_executed=hook("cell done"), on_notebook_complete=hook("all cells done"))
    start = time.perf_counter()
    old_env = dict(os.environ)
    os.environ.clear()
    os.environ.update(kernel_env)       # the kernel inherits the environment of this process
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    end = time.perf_counter()
    nb.metadata["timeline"] = [(what, index, round(t - start, 2)) for what, index, t in marks] + [
        ("kernel shut down", None, round(end - start, 2))]
    return nb, end - start


def slowest_steps(nb, k=3):
    """The k longest gaps in an executed notebook's timeline, for messages about slow runs."""
    line = [("launch", None, 0.0)] + nb.metadata.get("timeline", [])
    gaps = sorted(((b[2] - a[2], f"{a[0]} {a[1] if a[1] is not None else ''} -> {b[0]} "
                    f"{b[1] if b[1] is not None else ''}") for a, b in zip(line, line[1:])), reverse=True)
    return "; ".join(f"{text.strip()}: {gap:.1f} s" for gap, text in gaps[:k])


#: The output a built widget leaves in a notebook; a headless run must never produce it.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
#: What ``widgets.interactive`` prints instead of building sliders, headless and under nbgrader.
HEADLESS_NOTE = "sliders not built in a headless run"
GRADING_NOTE = "interactive figure skipped while nbgrader runs the notebook"


def interactive_cells(nb):
    """Indices of the code cells that make a figure with sliders (``@widgets.interactive``)."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "@widgets.interactive(" in c.source]


def widget_views(nb):
    """Indices of the cells whose outputs hold a widget: sliders were built."""
    return sorted({i for i, c in enumerate(nb.cells) for out in c.get("outputs", [])
                   if WIDGET_VIEW in out.get("data", {})})


def errors(nb):
    """[(cell index, grade_id or None, 'Ename: evalue')] for every cell that raised."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append((i, nbgrader_meta(cell).get("grade_id"),
                              f"{out.get('ename')}: {out.get('evalue')}"))
    return found


def cell_text(cell):
    """Everything a code cell printed (streams and text/plain results)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}")
    return "".join(parts)


# The reference answers pasted into a release notebook: one home, synthetic/answers.py.
strip_markers = answers.strip_markers
with_answers = answers.with_answers


class StudentFolder:
    """A scratch copy of one release assignment, run by a kernel without ``solutions_lib``."""

    def __init__(self, name):
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=f"nn-student-{name}-"))
        self.folder = self.tmp / name
        build.generate(ROOT, release_dir=self.tmp, only=name)
        site = self.tmp / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(BLOCK_SOLUTIONS)
        self.env = {"PYTHONPATH": str(site)}
        (self.release_path,) = nbcells.notebooks(self.folder)

    def release(self):
        return nbformat.read(self.release_path, as_version=4)

    def run(self, nb):
        """Execute ``nb`` in the student folder; also reports which ``autograder`` it imported."""
        nb = copy.deepcopy(nb)
        probe = nbformat.v4.new_code_cell("import autograder as _a, os as _os\n"
                                          "print('AUTOGRADER', _os.path.abspath(_a.__file__))")
        nb.cells.append(probe)
        executed, seconds = execute(nb, self.folder, env=self.env)
        used = cell_text(executed.cells[-1])
        executed.cells.pop()
        return executed, seconds, used

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_assignment(name, log=print):
    """The three student-side checks of one assignment. Returns a list of problems."""
    problems = []
    src = nbformat.read(source_notebook(name), as_version=4)
    executed, seconds = run_source(name)
    log(f"source: {seconds:.1f} s")
    for i, grade_id, err in errors(executed):
        problems.append(f"source cell {i} ({grade_id}): {err}")
    if seconds > 30:
        problems.append(f"source takes {seconds:.1f} s (limit 30 s)")
    student = StudentFolder(name)
    try:
        executed, seconds, used = student.run(student.release())
        log(f"release as handed out: {seconds:.1f} s")
        if str(student.folder) not in used:
            problems.append(f"release did not import its own autograder kit ({used.strip()})")
        tests = {nbgrader_meta(c).get("grade_id") for c in executed.cells if is_test(c)}
        failed = set()
        for i, grade_id, err in errors(executed):
            if grade_id in tests:
                failed.add(grade_id)
                if NOT_IMPLEMENTED not in err:
                    problems.append(f"release test {grade_id} fails without the not-implemented "
                                    f"message: {err[:300]}")
            else:
                problems.append(f"release cell {i} ({grade_id}) errors: {err[:300]}")
        for grade_id in sorted(tests - failed):
            problems.append(f"release test {grade_id} passes before anything is written")
        filled = with_answers(student.release(), src)
        executed, seconds, _ = student.run(filled)
        log(f"release + reference answers, no solutions_lib: {seconds:.1f} s")
        for i, grade_id, err in errors(executed):
            problems.append(f"release+answers cell {i} ({grade_id}): {err[:300]}")
    finally:
        student.close()
    return problems


if __name__ == "__main__":
    total = []
    for assignment in sys.argv[1:] or nbcells.assignments(ROOT):
        print(f"== {assignment}")
        found = check_assignment(assignment)
        for p in found:
            print("  PROBLEM:", p)
        total += found
    print("OK" if not total else f"{len(total)} problems")
    sys.exit(1 if total else 0)
