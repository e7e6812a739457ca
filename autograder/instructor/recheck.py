"""The re-check: the instructor's notebook, run with only the student's definitions.

nbgrader's run of a submission executes the student's code and the tests in one kernel, where
the code can change what the tests rely on. The re-check runs, in a fresh kernel:

- ``clean_notebook(source_nb, student_nb, release_nb)``: the instructor's own cells (hidden
  tests included) and, from the student, only definitions (functions, classes, constants,
  scientific imports). A definition with a ``tampering`` finding of the scan is replaced by a
  stub that raises, so the exercises that need it fail. The integrity probe (``probe.py``)
  runs after the set-up, every cell of student code and every test cell;
- ``results(executed)``: {grade_id: Result} of its test cells. A test passes only if it raised
  nothing and every probe up to it found the environment intact (``Result.tampered``: a
  probe failed).

The grader keeps, per test cell, the lower of nbgrader's score and the re-check's.
"""
import ast
import copy
from dataclasses import dataclass

import nbformat

from .integrity import ALLOWED_IMPORTS, banned_names, provided_names, scan_cell, student_cells, to_python
from .nbcells import grade_id, is_answer, is_test
from .probe import PROBE, setup_source
from .records import Flag

#: Metadata of the cells the re-check adds: "probe", or the role of a student cell.
ROLE = "nn_recheck"


@dataclass
class Result:
    """How one test cell fared in the re-check. tampered: an integrity probe failed before it."""
    passed: bool
    message: str = ""
    tampered: bool = False


def _clean_source(label, source, provided, banned=()):
    """(definitions-only source, [Flag] of what was left out) of one student cell."""
    tree, found = scan_cell(label, source, provided, banned)
    if tree is None:
        return "", [f for _, f in found]
    bad = [(node, f) for node, f in found if f.severity == "tampering"]
    python = to_python(source).splitlines()
    kept, left_out = [], []
    for node in tree.body:
        reasons = [f.message for n, f in bad if n is not None and _contains(node, n)]
        text = "\n".join(python[node.lineno - 1:node.end_lineno])
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if reasons:
                kept.append(_stub(node.name, reasons[0]))
                left_out.append(Flag("left-out", f"`{node.name}` was replaced by a stub in the "
                                        f"re-check: it {reasons[0]}", severity="tampering", cell=label,
                                        evidence=f"line {node.lineno}"))
            else:
                kept.append(text)
        elif _is_definition(node, provided) and not reasons:
            kept.append(text)
        else:
            left_out.append(Flag("left-out", "a statement that is not a definition was left out "
                                    "of the re-check", evidence=f"line {node.lineno}: "
                                    f"{python[node.lineno - 1].strip()[:120]}", cell=label))
    if any(f.kind == "magic" for _, f in found):
        left_out.append(Flag("left-out", "IPython magics and shell commands were left out of the "
                                "re-check", severity="tampering", cell=label))
    return "\n\n".join(kept), left_out


def _contains(outer, inner):
    return any(node is inner for node in ast.walk(outer))


def _is_definition(node, provided):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        return all(m.split(".")[0] in ALLOWED_IMPORTS for m in modules)
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t for target in targets for t in ast.walk(target)]
        return all(isinstance(t, (ast.Name, ast.Tuple, ast.List, ast.Load, ast.Store)) for t in names) and not any(
            isinstance(t, ast.Name) and (t.id in provided or t.id.startswith("__")) for t in names)
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)   # a docstring


def _stub(name, reason):
    message = f"{name} was left out of the re-check: it {reason}"
    return (f"def {name}(*args, **kwargs):\n"
            f"    raise RuntimeError({message!r})")


class _Builder:
    """The re-check notebook, cell by cell, with a probe where one counts."""

    def __init__(self, source_nb, provided, banned):
        self.nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(source_nb.metadata))
        self.provided, self.banned, self.left_out = provided, banned, []
        setup = nbformat.v4.new_code_cell(setup_source())
        setup.metadata[ROLE] = "probe"
        self.nb.cells.append(setup)

    def add(self, cell, role=None, probe=True):
        """Append ``cell``, then a probe (after the set-up, student code and tests: where it counts)."""
        if role:
            cell.metadata[ROLE] = role
        self.nb.cells.append(cell)
        if cell.cell_type == "code" and probe:
            check = nbformat.v4.new_code_cell(PROBE)
            check.metadata[ROLE] = "probe"
            self.nb.cells.append(check)

    def definitions(self, label, sources):
        """The definitions-only code of the student's ``sources`` (one cell's parts)."""
        parts = []
        for source in sources:
            code, dropped = _clean_source(label, source, self.provided, self.banned)
            self.left_out += dropped
            parts.append(code)
        return "\n\n".join(parts)

    def add_student_cells(self, added):
        for label, source in added:
            self.add(nbformat.v4.new_code_cell(self.definitions(label, [source])), "added")


def clean_notebook(source_nb, student_nb, release_nb, provided=None):
    """The re-check notebook, and [Flag] of what it left out.

    Cells: the probe set-up, then every cell of ``source_nb`` in order (the instructor's,
    with hidden tests) except that each answer cell holds the student's definitions from
    that cell (the release's stub if they deleted it), each followed by the definitions of
    cells the student added after it. A probe follows the notebook's set-up (the code cells
    before the first answer), every cell of student code and every test cell: a change made
    anywhere shows at the next test at the latest.
    """
    provided = provided_names(source_nb) if provided is None else provided
    answers, added = {}, {}
    written = student_cells(student_nb, source_nb)
    for anchor, label, source in written:
        if label == anchor:
            answers.setdefault(anchor, []).append(source)
        else:
            added.setdefault(anchor, []).append((label, source))
    stubs = {grade_id(c): c.source for c in release_nb.cells if is_answer(c)}
    first_answer = next((i for i, c in enumerate(source_nb.cells) if is_answer(c)), len(source_nb.cells))
    setup_done = max((i for i, c in enumerate(source_nb.cells[:first_answer]) if c.cell_type == "code"), default=-1)

    out = _Builder(source_nb, provided, banned_names(source for _, _, source in written))
    out.add_student_cells(added.get(None, []))
    for index, cell in enumerate(source_nb.cells):
        gid = grade_id(cell)
        if cell.cell_type == "code":
            clean = copy.deepcopy(cell)
            clean.outputs = []
            if is_answer(cell):
                clean.source = out.definitions(gid, answers.get(gid, [stubs.get(gid, "raise NotImplementedError()")]))
                out.add(clean, "answer")
            else:
                out.add(clean, probe=index == setup_done or is_test(cell))
        if gid:
            out.add_student_cells(added.get(gid, []))
    return out.nb, out.left_out


def _error(cell):
    return next((o for o in (cell or {}).get("outputs", []) if o.get("output_type") == "error"), None)


def _text(error):
    return f"{error.get('ename')}: {error.get('evalue')}"


def results(executed):
    """{grade_id: Result} for the test cells of an executed re-check notebook.

    A test passes when it raised nothing and no integrity probe failed before its own probe.
    A probe that raised its AssertionError found something replaced (``tampered``); a probe
    that did not run to its end (time limit, dead kernel) only stops the re-check there.
    """
    found, broken = {}, None
    cells = executed.cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        error = _error(cell)
        if cell.metadata.get(ROLE) == "probe":
            if error is not None and broken is None:
                broken = Result(False, _text(error), tampered=error.get("ename") == "AssertionError")
            continue
        if not is_test(cell):
            continue
        probe = cells[i + 1] if i + 1 < len(cells) else None
        probe_error = _error(probe)
        if broken is None and probe_error is not None:
            broken = Result(False, _text(probe_error), tampered=probe_error.get("ename") == "AssertionError")
        if broken is not None:
            found[grade_id(cell)] = broken
        elif error is not None:
            found[grade_id(cell)] = Result(False, _text(error))
        elif probe is not None and probe.metadata.get(ROLE) == "probe" and probe.get("execution_count") is None:
            found[grade_id(cell)] = Result(False, "the re-check did not get this far (time limit)")
        else:
            found[grade_id(cell)] = Result(True)
    return found
