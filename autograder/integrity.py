"""Is a submission honest? A scan of the students' cells, and a clean notebook to re-check it.

nbgrader grades a test cell as passed when it raises nothing, in the same kernel that ran the
student's code. So ``np.allclose = lambda *a, **k: True`` in an answer cell, a class whose
``__eq__`` always says yes, a patched ``checks.check_close`` or an edited ``sys.modules``
earns full marks. Two defences, used together by ``autograder.grading``:

1. ``scan(cells, provided)``: a static scan of every cell the student wrote (answer cells and
   cells they added; locked cells are restored by nbgrader anyway). It parses the code and
   reports what answers in this course never need, each as a ``Finding`` with the cell and
   the line as evidence:
   - severity ``tampering``: changing a module (``np.allclose = ...``, ``setattr``, ``del``),
     rebinding what the notebook provides (``np``, ``checks``, a given helper through
     ``global``), dunder attributes and methods (``__eq__``, ``__code__``, ``__builtins__``),
     subclasses of numbers or arrays, ``exec``/``eval``/``open``/``__import__``/``globals``,
     imports beyond the scientific ones (``os``, ``sys``, ``builtins``, ``importlib``,
     ``ctypes``, ``solutions_lib`` ...), shell escapes and magics, strings that name the
     gradebook, the source notebooks or the reference solutions;
   - severity ``review``: using the autograder's checks inside an answer, ``exit()``,
     relative paths, redefining a helper the notebook gives.
2. ``clean_notebook(source_nb, student_nb, provided)``: the notebook the grader re-runs in a
   fresh kernel: the instructor's own cells (with the hidden tests) and, from the student,
   only definitions (functions, classes, constants, scientific imports). A definition with
   a ``tampering`` finding is replaced by a stub that raises, so the exercises that need it
   fail. After every cell an *integrity probe* checks that numpy, the builtins, the checks
   and the modules the notebook bound are the objects they were at the start; a student
   function that patches something when it is called is caught there.

A test cell counts in the re-check only if it raised nothing and every probe up to it found
the environment intact. The grader keeps, per test cell, the lower of nbgrader's score and
the re-check's.
"""
import ast
import copy

import nbformat

from .build import nbgrader_meta

from .intake import Finding

#: Modules an answer may import (top-level package names).
ALLOWED_IMPORTS = {
    "numpy", "math", "cmath", "itertools", "functools", "collections", "operator", "typing",
    "dataclasses", "fractions", "decimal", "statistics", "random", "string", "re", "copy",
    "enum", "abc", "numbers", "heapq", "bisect", "warnings", "time", "matplotlib", "tqdm",
    "scipy",
}
#: Names whose use in an answer is tampering (or a way to it).
FORBIDDEN_NAMES = {
    "exec", "eval", "compile", "open", "__import__", "globals", "locals", "vars", "setattr",
    "delattr", "breakpoint", "get_ipython", "__builtins__", "__builtin__", "input", "memoryview",
}
REVIEW_NAMES = {"exit", "quit"}
#: Dunder names an answer may use.
ALLOWED_DUNDERS = {"__init__", "__call__", "__repr__", "__str__", "__len__", "__iter__",
                   "__getitem__", "__name__", "__doc__", "__main__"}
#: Base classes that let an object pretend to be a number or an array.
FAKE_BASES = {"ndarray", "float", "int", "complex", "bool", "str", "list", "tuple", "dict",
              "generic", "float64", "number", "matrix", "MaskedArray"}
ALLOWED_DECORATORS = {"staticmethod", "classmethod", "property", "lru_cache", "cache", "wraps",
                      "vectorize", "dataclass"}
#: Words that, in a string, point at what a submission must not touch.
TELLTALE_STRINGS = ("solutions_lib", "gradebook", "source_notebooks", "nbgrader", "autograded",
                    "submitted/", ".git", "BEGIN HIDDEN", "BEGIN SOLUTION")
KIT_MODULES = {"checks", "widgets", "datasets", "autograder"}


def to_python(source):
    """Cell source with IPython syntax (magics, ``!shell``) turned into plain Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _top_level_names(source):
    try:
        tree = ast.parse(to_python(source))
    except SyntaxError:
        return set()
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def provided_names(source_nb):
    """{name: 'module' or 'value'}: what the notebook's locked cells define at top level.

    The functions the answer cells define are left out (hidden tests swap them for the
    reference while they run, which is not the notebook providing them).
    """
    names, answers = {}, set()
    for cell in source_nb.cells:
        if cell.cell_type == "code" and nbgrader_meta(cell).get("solution"):
            answers |= _top_level_names(cell.source)
    for cell in source_nb.cells:
        meta = nbgrader_meta(cell)
        if cell.cell_type != "code" or not meta.get("locked") or meta.get("solution"):
            continue
        try:
            tree = ast.parse(to_python(cell.source))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    bound = (alias.asname or alias.name).split(".")[0]
                    kind = "module" if isinstance(node, ast.Import) or alias.name in KIT_MODULES else "value"
                    names[bound] = kind
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.setdefault(node.name, "value")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            names.setdefault(name.id, "value")
    for kit in ("checks", "widgets", "datasets"):
        if kit in names:
            names[kit] = "module"
    return {name: kind for name, kind in names.items() if name not in answers}


# ------------------------------------------------------------------------------ the scan
class _Scanner(ast.NodeVisitor):
    def __init__(self, cell, provided, lines, banned=()):
        self.cell, self.provided, self.lines, self.found = cell, provided, lines, []
        self.banned = set(banned)             # names bound by forbidden imports anywhere
        self.depth = 0

    def flag(self, node, severity, kind, message):
        line = getattr(node, "lineno", 0)
        text = self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""
        self.found.append((node, Finding(kind, message, evidence=f"line {line}: {text[:160]}",
                                         severity=severity, cell=self.cell)))

    # what the student imports
    def visit_Import(self, node):
        for alias in node.names:
            self._check_import(node, alias.name)
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        self._check_import(node, node.module or "")
        self.generic_visit(node)

    def _check_import(self, node, module):
        top = module.split(".")[0]
        if top in ALLOWED_IMPORTS:
            return
        if top in ("autograder", "checks"):
            self.flag(node, "review", "uses-checks", f"imports {module}: the autograder's checks "
                      "are for the tests, not for answers.")
        else:
            self.flag(node, "tampering", "forbidden-import", f"imports {module or 'a relative module'}, "
                      "which no answer in this course needs (it can reach the files, the "
                      "interpreter or the reference solutions).")

    # names and attributes
    def visit_Name(self, node):
        if node.id in self.banned and isinstance(node.ctx, ast.Load):
            self.flag(node, "tampering", "forbidden-import", f"uses `{node.id}`, imported from a "
                      "module no answer in this course needs.")
        elif node.id in FORBIDDEN_NAMES:
            self.flag(node, "tampering", "forbidden-name", f"uses {node.id}, a way around the tests.")
        elif node.id in REVIEW_NAMES:
            self.flag(node, "review", "exit", f"calls {node.id}(), which stops the kernel.")
        elif node.id in ("checks", "widgets", "datasets") and self.provided.get(node.id) == "module":
            if isinstance(node.ctx, ast.Load):
                self.flag(node, "review", "uses-checks", f"uses the notebook's `{node.id}` module "
                          "inside an answer; answers should compute their results themselves.")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr.startswith("__") and node.attr.endswith("__") and node.attr not in ALLOWED_DUNDERS:
            self.flag(node, "tampering", "dunder", f"touches {node.attr}, which reaches into how "
                      "Python compares, imports or runs code.")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str):
            for word in TELLTALE_STRINGS:
                if word in node.value:
                    self.flag(node, "tampering", "telltale-string", f"names {word!r}, which a "
                              "submission has no business reading.")
                    break
            else:
                if "../" in node.value or node.value.startswith("/"):
                    self.flag(node, "review", "path", "uses a file path outside its folder.")

    # changing things
    def _targets(self, node, targets, verb):
        """Flag assignments into a module the tests use, and rebinding what the notebook gives."""
        for target in targets:
            if isinstance(target, (ast.Tuple, ast.List)):
                self._targets(node, target.elts, verb)
            elif isinstance(target, ast.Starred):
                self._targets(node, [target.value], verb)
            elif isinstance(target, (ast.Attribute, ast.Subscript)):
                base = target.value                  # the object changed: a.b.c = ..., a[i] = ...
                while isinstance(base, (ast.Attribute, ast.Subscript)):
                    base = base.value
                if isinstance(base, ast.Name) and self.provided.get(base.id) == "module":
                    self.flag(node, "tampering", "patch", f"{verb} part of the module "
                              f"`{base.id}` that the tests use.")
            elif isinstance(target, ast.Name) and self.depth == 0 and target.id in self.provided:
                kind = self.provided[target.id]
                self.flag(node, "tampering" if kind == "module" else "review", "rebinds",
                          f"rebinds `{target.id}`, which the notebook provides.")

    def visit_Assign(self, node):
        self._targets(node, node.targets, "changes")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._targets(node, [node.target], "changes")
        self.generic_visit(node)

    def visit_AnnAssign(self, node):
        self._targets(node, [node.target], "changes")
        self.generic_visit(node)

    def visit_Delete(self, node):
        self._targets(node, node.targets, "deletes")
        self.generic_visit(node)

    def visit_Global(self, node):
        for name in node.names:
            if name in self.provided:
                self.flag(node, "tampering" if self.provided[name] == "module" else "review",
                          "rebinds", f"declares `global {name}` and so can rebind what the "
                          "notebook provides.")
        self.generic_visit(node)

    visit_Nonlocal = visit_Global

    # definitions
    def _definition(self, node):
        if self.depth == 0 and node.name in self.provided:
            kind = self.provided[node.name]
            self.flag(node, "tampering" if kind == "module" else "review", "rebinds",
                      f"defines `{node.name}`, which the notebook already provides.")
        for deco in node.decorator_list:
            name = deco.func if isinstance(deco, ast.Call) else deco
            name = name.attr if isinstance(name, ast.Attribute) else getattr(name, "id", "")
            if name not in ALLOWED_DECORATORS:
                self.flag(node, "tampering", "decorator", f"decorates `{node.name}` with "
                          f"`{name or '...'}`, which runs code when it is defined.")
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_FunctionDef(self, node):
        if node.name.startswith("__") and node.name.endswith("__") and node.name not in ALLOWED_DUNDERS:
            self.flag(node, "tampering", "dunder", f"defines the special method {node.name}, which "
                      "changes how comparisons, conversions or attribute lookups behave.")
        self._definition(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        for base in node.bases:
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
            if name in FAKE_BASES:
                self.flag(node, "tampering", "fake-value", f"class `{node.name}` subclasses "
                          f"{name}, which lets an object pretend to be a number or an array.")
        self._definition(node)


def banned_names(sources):
    """Names that the code in ``sources`` binds by importing modules answers may not use."""
    names = set()
    for source in sources:
        try:
            tree = ast.parse(to_python(source))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            allowed = ALLOWED_IMPORTS | {"autograder", "checks"}     # the kit: "review", above
            if isinstance(node, ast.Import):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names
                          if a.name.split(".")[0] not in allowed}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] not in allowed:
                names |= {a.asname or a.name for a in node.names}
    return names


def scan(cells, provided):
    """Findings for ``cells``: [(grade_id or label, source)], the code the student wrote.

    ``provided``: ``provided_names(source_nb)``. Returns [Finding], most severe first.
    """
    banned = banned_names(source for _, source in cells)
    findings = []
    for label, source in cells:
        for _, finding in _scan_cell(label, source, provided, banned)[1]:
            findings.append(finding)
    order = {"tampering": 0, "review": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _scan_cell(label, source, provided, banned=()):
    """(ast or None, [(node, Finding)]) for one cell."""
    python = to_python(source)
    lines = python.splitlines()
    try:
        tree = ast.parse(python)
    except SyntaxError as err:
        return None, [(None, Finding("syntax-error", f"the cell does not parse: {err.msg}",
                                     evidence=f"line {err.lineno}", severity="info", cell=label))]
    scanner = _Scanner(label, provided, lines, banned)
    scanner.visit(tree)
    if python.strip() != source.strip() and any(
            line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        scanner.found.append((None, Finding("magic", "uses IPython magics or shell commands "
                                            "(% or !), which answers do not need.",
                                            severity="tampering", cell=label)))
    return tree, scanner.found


# ------------------------------------------------------------------------------ student cells
def student_cells(student_nb, source_nb):
    """The code the student wrote, as [(anchor grade_id, label, source)].

    Answer cells are labelled by their grade_id; a cell the student added is labelled
    ``added after <grade_id>`` and anchored to the nbgrader cell before it. Locked cells are
    not included: nbgrader restores them.
    """
    expected = {nbgrader_meta(c).get("grade_id"): c for c in source_nb.cells if nbgrader_meta(c).get("grade_id")}
    cells, anchor = [], None
    for cell in student_nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in expected:
            anchor = grade_id
            source_meta = nbgrader_meta(expected[grade_id])
            if cell.cell_type == "code" and source_meta.get("solution"):
                cells.append((grade_id, grade_id, cell.source))
        elif cell.cell_type == "code" and cell.source.strip():
            cells.append((anchor, f"added after {anchor or 'the start'}", cell.source))
    return cells


# ------------------------------------------------------------------------------ the re-check
PROBE_SETUP = '''\
def __nn_make_probe():
    """Snapshot what the tests rely on; the returned check() raises if any of it changed."""
    import builtins, sys, types
    import numpy, numpy.linalg, numpy.random, numpy.testing
    try:
        from autograder import checks as kit
    except Exception:
        kit = None
    names = ("abs all any bool callable dict enumerate float getattr hasattr id int isinstance "
             "issubclass iter len list map max min next print range repr round set sorted str "
             "sum tuple type zip object Exception AssertionError ValueError TypeError "
             "NotImplementedError").split()
    watched = {"numpy": numpy, "numpy.linalg": numpy.linalg, "numpy.random": numpy.random,
               "numpy.testing": numpy.testing}
    if kit is not None:
        watched["autograder.checks"] = kit
    snapshot = {m: {n: v for n, v in vars(mod).items() if callable(v)} for m, mod in watched.items()}
    snapshot["builtins"] = {n: getattr(builtins, n) for n in names}
    watched["builtins"] = builtins
    codes = {(m, n): v.__code__ for m, items in snapshot.items() for n, v in items.items()
             if isinstance(v, types.FunctionType)}
    bound = {}
    shell = get_ipython()

    def check():
        problems = []
        for m, items in snapshot.items():
            now = vars(watched[m])
            for n, v in items.items():
                if now.get(n) is not v:
                    problems.append(f"{m}.{n} was replaced")
                elif (m, n) in codes and v.__code__ is not codes[m, n]:
                    problems.append(f"the code of {m}.{n} was replaced")
        for m, mod in watched.items():
            if m != "builtins" and sys.modules.get(m) is not mod:
                problems.append(f"sys.modules[{m!r}] was replaced")
        for name, value in list(shell.user_ns.items()):
            if name in bound and value is not bound[name]:
                problems.append(f"the notebook's `{name}` was rebound")
            elif isinstance(value, types.ModuleType):
                bound.setdefault(name, value)
        for name in bound:
            if name not in shell.user_ns:
                problems.append(f"the notebook's `{name}` was deleted")
        if numpy.allclose(0.0, 1.0) or (1 == 2) or not (1 != 2):
            problems.append("comparisons no longer tell different numbers apart")
        if problems:
            raise AssertionError("integrity check: " + "; ".join(sorted(set(problems))[:6]))
    return check


__nn_check_integrity = __nn_make_probe()
del __nn_make_probe
__nn_check_integrity()
'''
PROBE = "__nn_check_integrity()"
#: Metadata of the cells the re-check adds: {"role": "probe", "after": index in the clean notebook}.
ROLE = "nn_recheck"


def _clean_source(label, source, provided, banned=()):
    """(definitions-only source, [Finding] of what was left out) of one student cell."""
    tree, found = _scan_cell(label, source, provided, banned)
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
                left_out.append(Finding("left-out", f"`{node.name}` was replaced by a stub in the "
                                        f"re-check: it {reasons[0]}", severity="tampering", cell=label,
                                        evidence=f"line {node.lineno}"))
            else:
                kept.append(text)
        elif _is_definition(node, provided) and not reasons:
            kept.append(text)
        else:
            left_out.append(Finding("left-out", "a statement that is not a definition was left out "
                                    "of the re-check", evidence=f"line {node.lineno}: "
                                    f"{python[node.lineno - 1].strip()[:120]}", cell=label))
    if any(f.kind == "magic" for _, f in found):
        left_out.append(Finding("left-out", "IPython magics and shell commands were left out of the "
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


def clean_notebook(source_nb, student_nb, release_nb, provided=None):
    """The re-check notebook, and [Finding] of what it left out.

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
    banned = banned_names(source for _, _, source in written)
    for anchor, label, source in written:
        if label == anchor:
            answers.setdefault(anchor, []).append(source)
        else:
            added.setdefault(anchor, []).append((label, source))
    stubs = {nbgrader_meta(c).get("grade_id"): c.source for c in release_nb.cells if nbgrader_meta(c).get("solution")}
    nb = nbformat.v4.new_notebook(metadata=copy.deepcopy(source_nb.metadata))
    left_out = []

    first_answer = next((i for i, c in enumerate(source_nb.cells) if c.cell_type == "code" and nbgrader_meta(c).get("solution")),
                        len(source_nb.cells))
    setup_done = max((i for i, c in enumerate(source_nb.cells[:first_answer]) if c.cell_type == "code"), default=-1)

    def add(cell, role=None, probe=True):
        """Append ``cell``, then a probe (after the set-up, student code and tests: where it counts)."""
        if role:
            cell.metadata[ROLE] = role
        nb.cells.append(cell)
        if cell.cell_type == "code" and probe:
            check = nbformat.v4.new_code_cell(PROBE)
            check.metadata[ROLE] = "probe"
            nb.cells.append(check)

    setup = nbformat.v4.new_code_cell(PROBE_SETUP)
    setup.metadata[ROLE] = "probe"
    nb.cells.append(setup)
    for label, source in added.get(None, []):
        code, dropped = _clean_source(label, source, provided, banned)
        left_out += dropped
        add(nbformat.v4.new_code_cell(code), "added")
    for index, cell in enumerate(source_nb.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        meta = nbgrader_meta(cell)
        if cell.cell_type == "code" and meta.get("solution"):
            parts = []
            for source in answers.get(grade_id, [stubs.get(grade_id, "raise NotImplementedError()")]):
                code, dropped = _clean_source(grade_id, source, provided, banned)
                left_out += dropped
                parts.append(code)
            clean = copy.deepcopy(cell)
            clean.source = "\n\n".join(parts)
            clean.outputs = []
            add(clean, "answer")
        elif cell.cell_type == "code":
            clean = copy.deepcopy(cell)
            clean.outputs = []
            add(clean, probe=index == setup_done or bool(meta.get("grade")))
        for label, source in added.get(grade_id, []) if grade_id else []:
            code, dropped = _clean_source(label, source, provided, banned)
            left_out += dropped
            add(nbformat.v4.new_code_cell(code), "added")
    return nb, left_out


def recheck_results(executed):
    """{grade_id: (passed, message)} for the test cells of an executed re-check notebook.

    A test passes when it raised nothing and no integrity probe failed before its own probe.
    """
    results, broken = {}, None
    cells = executed.cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if cell.metadata.get(ROLE) == "probe":
            if error is not None and broken is None:
                broken = f"{error.get('ename')}: {error.get('evalue')}"
            continue
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            probe = cells[i + 1] if i + 1 < len(cells) else None
            probe_error = next((o for o in (probe or {}).get("outputs", []) if o.get("output_type") == "error"), None)
            if broken is None and probe_error is not None:
                broken = f"{probe_error.get('ename')}: {probe_error.get('evalue')}"
            if broken is not None:
                results[meta["grade_id"]] = (False, broken)
            elif error is not None:
                results[meta["grade_id"]] = (False, f"{error.get('ename')}: {error.get('evalue')}")
            elif probe is not None and probe.metadata.get(ROLE) == "probe" and probe.get("execution_count") is None:
                results[meta["grade_id"]] = (False, "the re-check did not get this far (time limit)")
            else:
                results[meta["grade_id"]] = (True, "")
    return results
