"""The integrity scan: what in a student's cells answers in this course never need.

nbgrader grades a test cell as passed when it raises nothing, in the same kernel that ran the
student's code. So ``np.allclose = lambda *a, **k: True`` in an answer cell, a class whose
``__eq__`` always says yes, a patched ``checks.check_close`` or an edited ``sys.modules``
earns full marks there. ``scan(cells, provided)`` parses every cell the student wrote (answer
cells and cells they added; locked cells are restored by nbgrader anyway) and reports, each
as a ``Flag`` with the cell and the line as evidence:

- severity ``tampering``: changing a module (``np.allclose = ...``, ``setattr``, ``del``),
  rebinding what the notebook provides (``np``, ``checks``, a given helper through
  ``global``), dunder attributes and methods (``__eq__``, ``__code__``, ``__builtins__``),
  subclasses of numbers or arrays, ``exec``/``eval``/``open``/``__import__``/``globals``,
  imports beyond the scientific ones (``os``, ``sys``, ``builtins``, ``importlib``,
  ``ctypes``, ``solutions_lib`` ...), shell escapes and magics, strings that name the
  gradebook, the source notebooks or the reference solutions;
- severity ``review``: using the autograder's checks inside an answer, ``exit()``,
  relative paths, redefining a helper the notebook gives.

The scan is evidence for a human, never the wall: the wall is the split execution
(``split/``), where student code has no way to the tests, tolerances or references.
``provided_names`` says what the notebook's locked cells give, ``student_cells`` what the
student wrote.
"""
import ast

from .nbcells import grade_id, is_answer, is_locked, kit_modules
from .records import Flag

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
#: The kit's modules, and the kit itself: what a notebook imports from ``autograder``.
KIT_MODULES = set(kit_modules()) | {"autograder"}


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
        if is_answer(cell):
            answers |= _top_level_names(cell.source)
    for cell in source_nb.cells:
        if cell.cell_type != "code" or not is_locked(cell):
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
    for kit in kit_modules():
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
        self.found.append((node, Flag(kind, message, evidence=f"line {line}: {text[:160]}",
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
        elif node.id in KIT_MODULES and node.id != "autograder" and self.provided.get(node.id) == "module":
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
    """Flags for ``cells``: [(grade_id or label, source)], the code the student wrote.

    ``provided``: ``provided_names(source_nb)``. Returns [Flag], most severe first.
    """
    banned = banned_names(source for _, source in cells)
    findings = []
    for label, source in cells:
        for _, finding in scan_cell(label, source, provided, banned)[1]:
            findings.append(finding)
    order = {"tampering": 0, "review": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.severity])


def scan_cell(label, source, provided, banned=()):
    """(ast or None, [(node, Flag)]) for one cell."""
    python = to_python(source)
    lines = python.splitlines()
    try:
        tree = ast.parse(python)
    except SyntaxError as err:
        return None, [(None, Flag("syntax-error", f"the cell does not parse: {err.msg}",
                                     evidence=f"line {err.lineno}", severity="info", cell=label))]
    scanner = _Scanner(label, provided, lines, banned)
    scanner.visit(tree)
    if python.strip() != source.strip() and any(
            line.lstrip().startswith(("%", "!")) for line in source.splitlines()):
        scanner.found.append((None, Flag("magic", "uses IPython magics or shell commands "
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
    expected = {grade_id(c): c for c in source_nb.cells if grade_id(c)}
    cells, anchor = [], None
    for cell in student_nb.cells:
        gid = grade_id(cell)
        if gid in expected:
            anchor = gid
            if cell.cell_type == "code" and is_answer(expected[gid]):
                cells.append((gid, gid, cell.source))
        elif cell.cell_type == "code" and cell.source.strip():
            cells.append((anchor, f"added after {anchor or 'the start'}", cell.source))
    return cells
