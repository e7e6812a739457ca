"""Tests of the tests: mutants of every reference answer, graded as student submissions.

    nn-course mutants [--assignment A ...] [--sample N --seed S] [--jobs J] [--out DIR]

For every answer cell of the source notebooks (the code between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` is the reference answer), ``mutants_of`` makes small wrong versions of
the reference on its AST (``ast`` + ``ast.unparse``), one change each: the operators of
``OPERATORS``, one small function per operator, each taking one AST node and returning its
replacements. Only nodes inside a solution region are changed.

Every mutant is handed in as a student's submission: the release notebook with the reference
answers, the one answer cell replaced by the mutant, and the answer cells after its test
cells left as released (``raise NotImplementedError()``: nothing after its tests runs for
long; ``whole=True`` keeps them). A scratch copy of the course (its own release and
gradebook, ``prepare``) grades them all with the grading pool (``pool.Pool``, the pool
``pool.grade`` drives, without feedback): the student's cells in the sandboxed student kernel,
the tests in the grader kernel, exactly as a class is graded. One student with all the
reference answers is graded with them per assignment; if it loses a point, nothing is judged.

A mutant is then
- **killed** when one of its exercise's test cells (``exercise_tests``; with ``whole``, any
  test cell) scores less than its maximum;
- **named** (a killed mutant) when the first line of at least one failing test's message
  (``Record.diagnoses``) contains a word of the mutant's kind (``NAMES``: "transposed" for a
  transpose, "sign" for a flipped sign, "factor" or "batch size" for a factor ...). A message
  that only says "dW does not match: relative error 3e-01, worst at index (1, 2)" names
  nothing, nor does "is not implemented yet" or a Python error;
- **equivalent** (a survivor) when it gives the reference's results on every input the
  notebook's tests call it with and on random perturbations of them (``equivalence``: the
  source notebook's cells run in a child process, reference and mutant side by side);
- otherwise **survived**, with its diff and an input where it differs from the reference.

The kill rate of an exercise is killed / (mutants - equivalent); the naming rate is named /
killed. ``run`` writes ``test-quality.json`` and ``index.html`` into ``--out`` (default
``course/report/test-quality``, which the class report links) and returns the summary.
"""
import ast
import copy
import difflib
import html
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import build, nbcells, pool, sandbox
from .records import Course, Unit, read_ledger
from .synthetic import answers

#: Limits while grading mutants: a mutant that loops forever (a shifted loop bound) costs seconds.
MUTANT_LIMITS = sandbox.Limits(cell_timeout=15, notebook_timeout=90)
REFERENCE = "reference"


# ------------------------------------------------------------------------------ the operators
# Each operator: node -> [(replacement node, what changed)]. The replacement is a new node; the
# node itself is never changed. ``KIND`` says which kind of change it makes (``NAMES``).
_NON_COMMUTATIVE = (ast.Sub, ast.Div, ast.MatMult, ast.FloorDiv, ast.Mod, ast.Pow)
_NEIGHBOURS = {"sum": "mean", "mean": "sum", "max": "min", "min": "max", "maximum": "minimum",
               "minimum": "maximum", "argmax": "argmin", "argmin": "argmax", "exp": "expm1", "log": "log1p",
               "log1p": "log", "zeros": "ones", "ones": "zeros", "zeros_like": "ones_like",
               "ones_like": "zeros_like", "std": "var", "var": "std", "abs": "square", "sqrt": "square",
               "tanh": "sin", "where": "where", "cumsum": "cumprod"}
_COMPARE_NEIGHBOURS = {ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
                       ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}
_DERIVATIVE_WORDS = ("grad", "prime", "deriv", "dsig", "d_")


def _c(node):
    return copy.deepcopy(node)


def _text(node):
    return ast.unparse(node)


def swap_operands(node):
    """a - b -> b - a, A @ B -> B @ A, a / b -> b / a (non-commutative operators only)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, _NON_COMMUTATIVE):
        return [(ast.BinOp(_c(node.right), _c(node.op), _c(node.left)), f"operands of {_text(node)} swapped")]
    return []


def flip_sign(node):
    """a + b <-> a - b, -x -> x, and a returned array or number negated."""
    out = []
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        out.append((ast.BinOp(_c(node.left), op, _c(node.right)), f"sign in {_text(node)} flipped"))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        out.append((_c(node.operand), f"minus of {_text(node)} removed"))
    return out


def drop_term(node):
    """a + b -> a and -> b; a - b -> a (one term of a sum dropped)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        out = [(_c(node.left), f"term {_text(node.right)} of {_text(node)} dropped")]
        if isinstance(node.op, ast.Add):
            out.append((_c(node.right), f"term {_text(node.left)} of {_text(node)} dropped"))
        return out
    return []


def transpose(node):
    """x.T -> x, and an operand of @ transposed: A @ B -> A.T @ B, A @ B.T."""
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return [(_c(node.value), f".T of {_text(node)} removed")]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
        out = []
        for side in ("left", "right"):
            operand = getattr(node, side)
            if isinstance(operand, ast.Attribute) and operand.attr == "T":
                continue                                    # removing it is the case above
            new = _c(node)
            setattr(new, side, ast.Attribute(_c(operand), "T", ast.Load()))
            out.append((new, f"{_text(operand)} transposed in {_text(node)}"))
        return out
    return []


def _keyword(call, name):
    return next((k for k in call.keywords if k.arg == name), None)


def _int_value(node):
    """The integer a node spells (2, or -1, which the AST writes as -(1)), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _int_value(node.operand)
        return None if inner is None else -inner
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None


def change_axis(node):
    """axis=0 <-> axis=1, axis=-1 -> axis=0, and the axis dropped (a reduction over everything)."""
    if not isinstance(node, ast.Call):
        return []
    kw = _keyword(node, "axis")
    k = _int_value(kw.value) if kw is not None else None
    if k is None:
        return []
    out = []
    for other in {0: (1,), 1: (0,), -1: (0,)}.get(k, (0,)):
        new = _c(node)
        _keyword(new, "axis").value = ast.Constant(other)
        out.append((new, f"axis={k} -> axis={other} in {_text(node)}"))
    new = _c(node)
    new.keywords = [k2 for k2 in new.keywords if k2.arg != "axis"]
    out.append((new, f"axis={k} dropped in {_text(node)}"))
    return out


def toggle_keepdims(node):
    """keepdims=True removed; keepdims=True added to a reduction along an axis."""
    if not isinstance(node, ast.Call):
        return []
    kw = _keyword(node, "keepdims")
    new = _c(node)
    if kw is not None:
        new.keywords = [k for k in new.keywords if k.arg != "keepdims"]
        return [(new, f"keepdims removed in {_text(node)}")]
    if _keyword(node, "axis") is not None:
        new.keywords.append(ast.keyword("keepdims", ast.Constant(True)))
        return [(new, f"keepdims=True added in {_text(node)}")]
    return []


def _index_slots(sl):
    """Where a subscript's index holds an integer (directly, in a tuple, or as a slice bound):
    [(holder, field name or list position, the integer)], in source order."""
    parts = list(enumerate(sl.elts)) if isinstance(sl, ast.Tuple) else [(None, sl)]
    slots = []
    for position, part in parts:
        if isinstance(part, ast.Slice):
            candidates = [(part, "lower", part.lower), (part, "upper", part.upper)]
        else:
            candidates = [(sl.elts if position is not None else None, position, part)]
        slots += [(holder, where, _int_value(n)) for holder, where, n in candidates
                  if n is not None and _int_value(n) is not None]
    return slots


def shift_index(node):
    """An integer index or slice bound shifted by one: x[0] -> x[1], x[1:] -> x[2:], x[:-1] -> x[:-2]."""
    if not isinstance(node, ast.Subscript):
        return []
    out = []
    for i, (_, _, k) in enumerate(_index_slots(node.slice)):
        for step in (1, -1):
            if k < 0 and k + step == 0:
                continue                        # x[:-1] -> x[:0] empties it: not a shift
            new = _c(node)
            holder, where, _ = _index_slots(new.slice)[i]
            value = ast.Constant(k + step)
            if holder is None:
                new.slice = value
            elif isinstance(holder, list):
                holder[where] = value
            else:
                setattr(holder, where, value)
            out.append((new, f"index {k} -> {k + step} in {_text(node)}"))
    return out


def scale(node):
    """A number constant times 2 or divided by 2; a factor dropped: a / N -> a, a * b -> a."""
    out = []
    if isinstance(node, ast.Constant) and type(node.value) in (int, float) and node.value not in (0, 1) \
            and not getattr(node, "_in_index", False):
        for factor, word in ((2, "times 2"), (0.5, "halved")):
            out.append((ast.Constant(node.value * factor), f"constant {node.value!r} {word}"))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.Mult)):
        out.append((_c(node.left), f"factor {_text(node.right)} of {_text(node)} dropped"))
        if isinstance(node.op, ast.Div):
            out.append((ast.BinOp(_c(node.left), ast.Mult(), _c(node.right)),
                        f"{_text(node)}: multiplied instead of divided"))
    return out


def _called_name(call):
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def swap_function(node):
    """A function replaced by its neighbour: sum <-> mean, max <-> min, argmax <-> argmin, log <-> log1p ..."""
    if not isinstance(node, ast.Call):
        return []
    name = _called_name(node)
    other = _NEIGHBOURS.get(name)
    if other is None or other == name:
        return []
    new = _c(node)
    if isinstance(new.func, ast.Attribute):
        new.func.attr = other
    else:
        new.func.id = other
    return [(new, f"{name} -> {other} in {_text(node)}")]


def swap_compare(node):
    """> <-> >=, < <-> <=, == <-> != (one comparison's boundary or sense changed)."""
    if not isinstance(node, ast.Compare):
        return []
    out = []
    for i, op in enumerate(node.ops):
        other = _COMPARE_NEIGHBOURS.get(type(op))
        if other is not None:
            new = _c(node)
            new.ops[i] = other()
            out.append((new, f"comparison in {_text(node)} changed to {_text(new)}"))
    return out


def _is_derivative_call(node):
    name = _called_name(node) if isinstance(node, ast.Call) else None
    return bool(name) and any(w in name.lower() for w in _DERIVATIVE_WORDS)


def drop_derivative(node):
    """f'(z) * d -> d: the call of the activation's derivative removed from a product."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        out = []
        for keep, drop in (("right", "left"), ("left", "right")):
            if _is_derivative_call(getattr(node, drop)):
                out.append((_c(getattr(node, keep)), f"derivative {_text(getattr(node, drop))} removed from {_text(node)}"))
        return out
    return []


#: (operator, kind): the kind decides which words of a failing message name the change.
OPERATORS = [
    (swap_operands, "swap"),
    (flip_sign, "sign"),
    (drop_term, "term"),
    (transpose, "transpose"),
    (change_axis, "axis"),
    (toggle_keepdims, "axis"),
    (shift_index, "index"),
    (scale, "factor"),
    (swap_function, "function"),
    (swap_compare, "compare"),
    (drop_derivative, "derivative"),
]
#: What a failing message must say (lower case) to name a change of each kind. A shape message
#: names an axis change only when it says which axis ("summed over the wrong axis", "batch axis",
#: "broadcast"); "relative error ... worst at index (i, j)" names nothing.
NAMES = {
    "swap": ("transposed", "transpose", "sign", "order", "swapped", "opposite", "negated", "negative"),
    "sign": ("sign", "negated", "negative", "opposite", "minus", "subtract"),
    "term": ("missing", "dropped", "forgot", "forgotten", "term", "without", "left out"),
    "transpose": ("transposed", "transpose", ".t goes", "order of the matrix product", "permuted", "permutation"),
    "axis": ("axis", "keepdims", "broadcast", "summed over"),
    "index": ("shift", "shifted", "off by one", "off-by-one", "one place", "permuted", "permutation", "neighbour"),
    "factor": ("factor", "times", "batch size", "½", "twice", "half", "scaled", "sum where", "mean where"),
    "function": ("mean", "sum", "max", "min", "maximum", "minimum", "argmax", "argmin", "log", "log1p", "exp",
                 "expm1", "factor", "batch size", "std", "var", "ones", "zeros"),
    "compare": ("boundary", "at 0", "at zero", "tie", "equal", ">=", "<=", "strict"),
    "derivative": ("f′", "f'", "derivative", "σ′", "sigmoid_grad", "mask"),
}


def named(kind, messages):
    """Does the first line of one of the failing messages name a change of this kind
    (``NAMES``; a word made of letters matches whole words only: "exp" is not in "expected")?"""
    patterns = [re.compile(r"\b" + re.escape(w) + r"\b" if w.isalpha() else re.escape(w)) for w in NAMES[kind]]
    firsts = [m.strip().splitlines()[0].lower() for m in messages if m and m.strip()]
    return any(p.search(line) for p in patterns for line in firsts)


# ------------------------------------------------------------------------------ making mutants
@dataclass
class Mutant:
    """One wrong version of one answer cell."""
    assignment: str
    exercise: str                    # the answer cell's grade_id
    index: int                       # its number among the exercise's mutants
    operator: str
    kind: str
    change: str
    source: str                      # the whole answer cell, mutated
    diff: str = ""
    status: str = ""                 # killed, survived, equivalent, not graded
    named: bool = False
    failed: dict = field(default_factory=dict)    # {test grade_id: first line of its message}
    witness: str = ""                # a survivor: where it differs from the reference

    @property
    def student(self):
        return f"m-{self.exercise}-{self.index:03d}".replace("_", "-")


def solution_lines(cell_source):
    """The stripped answer (as ``answers.strip_markers`` gives it) and the set of its line
    numbers (1-based) that lie between ### BEGIN SOLUTION and ### END SOLUTION."""
    inside, lines, number = False, set(), 0
    for line in cell_source.splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
            continue
        if "### END SOLUTION" in line:
            inside = False
            continue
        number += 1
        if inside:
            lines.add(number)
    return answers.strip_markers(cell_source), lines


def _mark_indices(tree):
    """Integer constants of an index are shifted (shift_index), never scaled."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            for part in parts:
                for inner in ast.walk(part):
                    if isinstance(inner, ast.Constant) and type(inner.value) is int:
                        inner._in_index = True


def _parents(tree):
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _replace(parent, old, new):
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
            return
        if isinstance(value, list) and any(v is old for v in value):
            value[[i for i, v in enumerate(value) if v is old][0]] = new
            return
    raise ValueError("node not found in its parent")


def _statement(node, parents):
    while not isinstance(node, ast.stmt):
        node = parents[node]
    return node


def _splice(source, stmt, new_stmt):
    """The cell's source with the lines of ``stmt`` replaced by ``new_stmt``, unparsed."""
    lines = source.splitlines()
    indent = " " * stmt.col_offset
    text = [indent + line for line in ast.unparse(ast.fix_missing_locations(new_stmt)).splitlines()]
    return "\n".join(lines[:stmt.lineno - 1] + text + lines[stmt.end_lineno:])


def mutants_of(cell_source, assignment="", exercise=""):
    """Every mutant of one answer cell: a list of Mutant, distinct, each differing from the
    reference, each still valid Python. Only nodes inside a solution region change."""
    source, solution = solution_lines(cell_source)
    tree = ast.parse(source)
    _mark_indices(tree)
    parents = _parents(tree)
    reference = ast.unparse(tree)
    seen, found = {reference}, []
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or isinstance(node, ast.stmt):
            continue                                        # operators change expressions
        if not set(range(node.lineno, node.end_lineno + 1)) <= solution:
            continue
        if isinstance(node, ast.Constant) and isinstance(parents.get(node), ast.Expr):
            continue                                        # a docstring
        for operator, kind in OPERATORS:
            for new, change in operator(node):
                stmt = _statement(node, parents)
                new_stmt = copy.deepcopy(stmt)
                # the same node in the copy: the walks of a tree and of its copy go in step
                twin = next(n for n, m in zip(ast.walk(new_stmt), ast.walk(stmt)) if m is node)
                if twin is new_stmt:
                    new_stmt = new
                else:
                    _replace(_parents(new_stmt)[twin], twin, new)
                mutated = _splice(source, stmt, new_stmt)
                try:
                    key = ast.unparse(ast.parse(mutated))
                except SyntaxError:
                    continue
                if key in seen:
                    continue
                seen.add(key)
                found.append(Mutant(assignment, exercise, len(found), operator.__name__, kind, change, mutated,
                                    diff=_diff(source, mutated)))
    return found


def _diff(before, after):
    lines = lambda text: (text.rstrip("\n") + "\n").splitlines(True)  # noqa: E731
    return "".join(difflib.unified_diff(lines(before), lines(after), "reference", "mutant", n=1))


def all_mutants(source_dir, assignments_, sample=None, seed=0, per_assignment=None):
    """{assignment: [Mutant]} for the answer cells of the given assignments, and [(assignment,
    exercise)] of every answer cell (also those without a mutant). With ``sample``, at most
    that many mutants per exercise; with ``per_assignment``, at most that many per assignment;
    both drawn with ``random.Random(seed)``."""
    rng = random.Random(seed)
    out, exercises = {}, []
    for assignment in assignments_:
        (path,) = nbcells.notebooks(Path(source_dir) / assignment)
        nb = nbformat.read(path, as_version=4)
        out[assignment] = []
        for cell in nb.cells:
            if not nbcells.is_answer(cell):
                continue
            exercises.append((assignment, nbcells.grade_id(cell)))
            found = mutants_of(cell.source, assignment, nbcells.grade_id(cell))
            if sample is not None and len(found) > sample:
                found = sorted(rng.sample(found, sample), key=lambda m: m.index)
            out[assignment] += found
        if per_assignment is not None and len(out[assignment]) > per_assignment:
            keep = set(map(id, rng.sample(out[assignment], per_assignment)))
            out[assignment] = [m for m in out[assignment] if id(m) in keep]
    return out, exercises


# ------------------------------------------------------------------------------ grading them
def prepare(out, assignments_, root=None, log=print):
    """A scratch copy of the course in ``out`` with only these assignments: source notebooks,
    nbgrader config, its own release and gradebook (nbgrader's generate_assignment). Returns
    its ``Course``."""
    out = Path(out).resolve()
    if out.exists():
        shutil.rmtree(out)
    log(f"building a scratch course with {len(assignments_)} assignments in {out} ...")
    build.scratch_course(out, assignments_, root=root)
    return Course(out / "course")


def exercise_tests(source_nb):
    """{exercise: (its test cells' grade_ids, the answer cells a submission needs for them)}.

    An exercise's tests are the test cells after its answer cell, from the first one to the
    next answer cell after it; they need every answer cell before the first of them."""
    cells = source_nb.cells
    out = {}
    for i, cell in enumerate(cells):
        if not nbcells.is_answer(cell):
            continue
        first = next((j for j in range(i + 1, len(cells)) if nbcells.is_test(cells[j])), None)
        if first is None:
            out[nbcells.grade_id(cell)] = ([], set())
            continue
        tests = []
        for later in cells[first:]:
            if nbcells.is_answer(later):
                break
            if nbcells.is_test(later):
                tests.append(nbcells.grade_id(later))
        out[nbcells.grade_id(cell)] = (tests, {nbcells.grade_id(c) for c in cells[:first] if nbcells.is_answer(c)})
    return out


def write_submissions(course, mutants, folder, whole=False):
    """Every mutant as a student's submission of the release notebook: the reference answers,
    the mutant's answer cell replaced by the mutant; plus one student with all the reference
    answers per assignment. Unless ``whole``, the answer cells the exercise's tests do not
    need (the later ones) stay as released (``raise NotImplementedError()``): what runs after
    its tests then fails at once instead of training a network for nothing. Returns the units."""
    units = []
    for assignment, found in mutants.items():
        release = nbformat.read(course.release_notebook(assignment), as_version=4)
        source = nbformat.read(course.source_notebook(assignment), as_version=4)
        needs = exercise_tests(source)
        name = course.notebook_name(assignment)
        for student, m in [(REFERENCE, None)] + [(m.student, m) for m in found]:
            nb = answers.with_answers(release, source, {m.exercise: m.source} if m else {})
            if m is not None and not whole:
                given = {nbcells.grade_id(c): c.source for c in release.cells if nbcells.is_answer(c)}
                for cell in nb.cells:
                    gid = nbcells.grade_id(cell)
                    if nbcells.is_answer(cell) and gid not in needs[m.exercise][1] and gid in given:
                        cell.source = given[gid]
            target = Path(folder) / student / assignment
            target.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target / name)
            units.append(Unit(student, assignment, str(target)))
    return units


def grade_units(course, units, jobs=None, limits=MUTANT_LIMITS, progress=True):
    """Grade exactly these units with the grading pool (as ``pool.grade`` does, without
    feedback and without the empty units of students who sent nothing); returns the Summary."""
    for assignment in {u.assignment for u in units}:
        build.add_kit(course.source / assignment)
    summary = pool.Summary()
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(units)))
    pool.Pool(course, limits, jobs, feedback=False).run(units, summary, progress)
    return summary


def judge(course, mutants, whole=False):
    """Set each mutant's status from the ledger: killed (one of its exercise's test cells, or
    with ``whole`` any test cell, below its maximum; with the failing messages and whether
    they name the change) or survived. Raises ValueError when the reference answers of an
    assignment lose a point (then nothing can be judged)."""
    for assignment, found in mutants.items():
        ref = read_ledger(course, assignment, REFERENCE)
        if ref is None or ref.status != "graded" or any(not s.full for s in ref.tests.values()):
            lost = {g: s.final for g, s in (ref.tests.items() if ref else []) if not s.full}
            raise ValueError(f"{assignment}: the reference answers did not get full marks in the scratch course "
                             f"({ref.status if ref else 'not graded'}; {lost}; {ref.diagnoses if ref else ''}): "
                             "fix the notebook or the grader before judging its tests.")
        needs = exercise_tests(nbformat.read(course.source_notebook(assignment), as_version=4))
        for m in found:
            record = read_ledger(course, assignment, m.student)
            if record is None or record.status != "graded":
                m.status = "not graded"
                m.failed = {"": (record.error.strip().splitlines() or ["?"])[-1] if record else "no ledger record"}
                continue
            judged = record.tests if whole else {g: s for g, s in record.tests.items() if g in needs[m.exercise][0]}
            lost = [g for g, s in judged.items() if not s.full]
            if lost:
                m.status = "killed"
                m.failed = {g: (record.diagnoses.get(g) or "").strip().splitlines()[0][:300]
                            if (record.diagnoses.get(g) or "").strip() else "" for g in lost}
                m.named = named(m.kind, list(m.failed.values()))
            else:
                m.status = "survived"


# ------------------------------------------------------------------------------ equivalence
def equivalence(source_notebook, exercise, survivors, timeout=300):
    """For the survivors of one exercise: are they equal to the reference on every input its
    test cell calls the exercise's functions with, and on 3 random perturbations of each?

    Runs in a child process (``python -m autograder.instructor.mutants --equivalence``): the
    source notebook's cells before the answer cell (given cells, earlier reference answers),
    then the reference answer; the test cell after it records every call of the answer's
    functions. Each survivor is defined beside the reference and called on copies of the same
    inputs. Returns {mutant index: (equivalent, calls compared, witness)}.
    """
    job = {"notebook": str(Path(source_notebook).resolve()), "exercise": exercise,
           "mutants": {str(m.index): m.source for m in survivors}}
    env = dict(os.environ, NN_COURSE_HEADLESS="1", MPLBACKEND="Agg", OPENBLAS_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            done = subprocess.run([sys.executable, "-m", "autograder.instructor.mutants", "--equivalence",
                                   json.dumps(job)], capture_output=True, text=True, timeout=timeout, cwd=tmp,
                                  env=env)
        except subprocess.TimeoutExpired:
            return {m.index: (False, 0, f"the equivalence check took more than {timeout} s") for m in survivors}
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        why = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {m.index: (False, 0, f"the equivalence check failed: {why}") for m in survivors}
    return {int(k): tuple(v) for k, v in answer.items()}


def _strip_magics(source):
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _defined_functions(source):
    return [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]


def _same(a, b):
    """Equal results: arrays and numbers within 1e-9 relative (NaN equals NaN), containers entry by entry."""
    import numpy as np

    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, np.generic, int, float, bool)) and isinstance(b, (np.ndarray, np.generic, int, float, bool)):
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or x.dtype.kind != y.dtype.kind and {x.dtype.kind, y.dtype.kind} - {"i", "f", "u"}:
            return False
        if x.dtype.kind in "biuf":
            return bool(np.allclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True))
        return bool(np.array_equal(x, y))
    if isinstance(a, np.random.Generator) and isinstance(b, np.random.Generator):
        return a.bit_generator.state == b.bit_generator.state
    return type(a) is type(b) and (a is None or isinstance(a, str) and a == b)


def _perturbed(args, rng):
    """The arguments with every float array (and float) moved by random noise of its own size."""
    import numpy as np

    def move(x):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size:
            return x + rng.standard_normal(x.shape) * (0.1 * float(np.std(x)) + 0.01)
        if isinstance(x, float):
            return x + float(rng.standard_normal()) * (0.1 * abs(x) + 0.01)
        if isinstance(x, (tuple, list)):
            return type(x)(move(v) for v in x)
        if isinstance(x, dict):
            return {k: move(v) for k, v in x.items()}
        return x
    return move(args)


def _outcome(fn, args, kwargs, seconds=10):
    import signal

    def stop(*_):
        raise TimeoutError(f"more than {seconds} s")
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        return "value", fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
    except Exception as err:                 # noqa: BLE001  (the outcome is the error's type)
        return "error", type(err).__name__
    finally:
        signal.alarm(0)


def _equivalence_child(job):
    """The child of ``equivalence``: prints one JSON line {index: [equivalent, calls, witness]}."""
    import numpy as np

    nb = nbformat.read(job["notebook"], as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    at = next(i for i, c in enumerate(cells) if nbcells.grade_id(c) == job["exercise"])
    ns = {"__name__": "__main__"}
    for cell in cells[:at]:
        if nbcells.is_test(cell):
            continue
        code = answers.strip_markers(cell.source) if nbcells.is_answer(cell) else cell.source
        try:
            exec(compile(_strip_magics(code), "<cell>", "exec"), ns)
        except Exception:                    # noqa: BLE001  (a given cell that needs a kernel: go on)
            pass
    before = dict(ns)
    reference = answers.strip_markers(cells[at].source)
    exec(compile(reference, "<answer>", "exec"), ns)
    names = _defined_functions(reference)
    calls, originals = [], {n: ns[n] for n in names if n in ns}

    def recorder(name, fn):
        def record(*args, **kwargs):
            if len(calls) < 40:
                try:
                    calls.append((name, copy.deepcopy(args), copy.deepcopy(kwargs)))
                except Exception:            # noqa: BLE001  (an argument that cannot be copied)
                    pass
            return fn(*args, **kwargs)
        return record
    test = next((c for c in cells[at + 1:] if nbcells.is_test(c)), None)
    if test is not None:
        ns.update({n: recorder(n, fn) for n, fn in originals.items()})
        try:
            exec(compile(_strip_magics(test.source), "<test>", "exec"), ns)
        except Exception:                    # noqa: BLE001  (the calls made so far still count)
            pass
        ns.update(originals)
    rng = np.random.default_rng(0)
    result = {}
    for index, source in job["mutants"].items():
        mutant_ns = dict(before)
        try:
            exec(compile(source, "<mutant>", "exec"), mutant_ns)
        except Exception as err:             # noqa: BLE001
            result[index] = [False, 0, f"the mutant's cell raises {type(err).__name__} when it runs"]
            continue
        compared, witness = 0, ""
        for name, args, kwargs in calls:
            for trial in range(4):
                a = args if trial == 0 else _perturbed(args, rng)
                k = kwargs if trial == 0 else _perturbed(kwargs, rng)
                want, got = _outcome(originals[name], a, k), _outcome(mutant_ns[name], a, k)
                compared += 1
                if want[0] != got[0] or not (_same(want[1], got[1]) if want[0] == "value" else want[1] == got[1]):
                    shapes = ", ".join(_describe(x) for x in a)
                    on = "on the test's input" if trial == 0 else "on a perturbed input"
                    witness = f"{name}({shapes}) {on}: {_difference(want, got)}"
                    break
            if witness:
                break
        result[index] = [not witness and compared > 0, compared,
                         witness or ("" if compared else "its test cell calls none of the cell's functions")]
    print(json.dumps(result))


def _describe(x):
    """An argument or result in a few characters: arrays by their shape, containers entry by entry."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return f"array{x.shape}"
    if isinstance(x, (tuple, list)):
        inner = ", ".join(_describe(v) for v in x[:6]) + (", ..." if len(x) > 6 else "")
        return f"({inner})" if isinstance(x, tuple) else f"[{inner}]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in list(x.items())[:6]) + "}"
    return repr(x)[:40]


def _difference(want, got):
    """Where two outcomes differ, in words: which part, how many entries, the first index."""
    import numpy as np

    if want[0] != got[0] or want[0] == "error":
        return f"the reference gives {_brief(want)}, the mutant {_brief(got)}"
    a, b = want[1], got[1]
    path = ""
    while isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)) and len(a) == len(b):
        i = next(i for i, (x, y) in enumerate(zip(a, b)) if not _same(x, y))
        path, a, b = f"{path}[{i}]", a[i], b[i]
    while isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        k = next(k for k in a if not _same(a[k], b[k]))
        path, a, b = f"{path}[{k!r}]", a[k], b[k]
    where = f"result{path}"
    try:
        x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return f"{where}: the reference gives {_describe(a)}, the mutant {_describe(b)}"
    if x.shape != y.shape:
        return f"{where} has shape {y.shape} instead of {x.shape}"
    bad = ~np.isclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True)
    if x.ndim == 0:
        return f"{where} is {float(y):.6g} instead of {float(x):.6g}"
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"{where} differs in {int(bad.sum())} of {bad.size} entries, first at {first}: "
            f"{y[first]:.6g} instead of {x[first]:.6g}")


def _brief(outcome):
    kind, value = outcome
    return f"an error ({value})" if kind == "error" else _describe(value)


# ------------------------------------------------------------------------------ the whole run
@dataclass
class Exercise:
    assignment: str
    exercise: str
    mutants: int = 0
    killed: int = 0
    survived: int = 0
    equivalent: int = 0
    named: int = 0
    not_graded: int = 0

    @property
    def kill_rate(self):
        judged = self.mutants - self.equivalent - self.not_graded
        return self.killed / judged if judged else None

    @property
    def naming_rate(self):
        return self.named / self.killed if self.killed else None


def summarise(mutants, exercises=()):
    """[Exercise] per answer cell (those of ``exercises`` first, in notebook order, also with no mutant)."""
    rows = {(a, x): Exercise(a, x) for a, x in exercises}
    for assignment, found in mutants.items():
        for m in found:
            row = rows.setdefault((assignment, m.exercise), Exercise(assignment, m.exercise))
            row.mutants += 1
            row.killed += m.status == "killed"
            row.survived += m.status == "survived"
            row.equivalent += m.status == "equivalent"
            row.named += m.named
            row.not_graded += m.status == "not graded"
    return list(rows.values())


def totals(rows, key=lambda r: r.assignment):
    """[Exercise] summed by ``key`` (by assignment; ``lambda r: "all"`` for one line)."""
    out = {}
    for r in rows:
        t = out.setdefault(key(r), Exercise(r.assignment if key(r) != "all" else "all", ""))
        for f in ("mutants", "killed", "survived", "equivalent", "named", "not_graded"):
            setattr(t, f, getattr(t, f) + getattr(r, f))
    return list(out.values())


def _pct(x):
    return "-" if x is None else f"{100 * x:.0f} %"


def table(rows):
    """The printed table: one line per exercise, then per assignment and in all."""
    head = f"{'assignment':<24} {'exercise':<24} {'mutants':>7} {'killed':>6} {'surv.':>5} {'equiv.':>6} " \
           f"{'kill rate':>9} {'naming':>7}"
    lines = [head, "-" * len(head)]
    for r in rows + [None] + totals(rows) + totals(rows, key=lambda r: "all"):
        if r is None:
            lines.append("-" * len(head))
            continue
        lines.append(f"{r.assignment:<24} {r.exercise or '(all)':<24} {r.mutants:>7} {r.killed:>6} {r.survived:>5} "
                     f"{r.equivalent:>6} {_pct(r.kill_rate):>9} {_pct(r.naming_rate):>7}")
    return "\n".join(lines)


def run(assignments_=None, sample=None, seed=0, jobs=None, out=None, root=None, work=None, limits=MUTANT_LIMITS,
        check_equivalence=True, progress=True, log=print, per_assignment=None, whole=False):
    """Make the mutants, grade them in a scratch course, judge them, write the page; returns
    (rows, mutants, path of test-quality.json)."""
    start = time.perf_counter()
    root = Path(root or nbcells.find_root())
    known = nbcells.assignments(root)
    chosen = list(assignments_ or known)
    unknown = [a for a in chosen if a not in known]
    if unknown:
        raise ValueError(f"no assignment {', '.join(unknown)}; there are {', '.join(known)}")
    mutants, exercises = all_mutants(root / "source_notebooks", chosen, sample=sample, seed=seed,
                                     per_assignment=per_assignment)
    count = sum(len(v) for v in mutants.values())
    log(f"{count} mutants of {len(exercises)} answer cells"
        + (f" (at most {sample} per exercise, seed {seed})" if sample is not None else "")
        + (f" (at most {per_assignment} per assignment, seed {seed})" if per_assignment is not None else ""))
    scratch = Path(work) if work else Path(tempfile.mkdtemp(prefix="nn-mutants-"))
    try:
        course = prepare(scratch / "course-copy", chosen, root=root, log=log)
        units = write_submissions(course, mutants, scratch / "submissions", whole=whole)
        log(f"grading {len(units)} submissions ({len(chosen)} with the reference answers) ...")
        summary = grade_units(course, units, jobs=jobs, limits=limits, progress=progress)
        judge(course, mutants, whole=whole)
        if check_equivalence:
            for assignment, found in mutants.items():
                by_exercise = {}
                for m in found:
                    if m.status == "survived":
                        by_exercise.setdefault(m.exercise, []).append(m)
                for exercise, survivors in by_exercise.items():
                    log(f"equivalence of {len(survivors)} survivors of {assignment}/{exercise} ...")
                    verdicts = equivalence(course.source_notebook(assignment), exercise, survivors)
                    for m in survivors:
                        equal, compared, witness = verdicts.get(m.index, (False, 0, "not checked"))
                        m.status = "equivalent" if equal else "survived"
                        m.witness = f"equal to the reference on {compared} inputs" if equal else witness
    finally:
        if not work:
            shutil.rmtree(scratch, ignore_errors=True)
    rows = summarise(mutants, exercises)
    seconds = time.perf_counter() - start
    out = Path(out) if out else root / "course" / "report" / "test-quality"
    path = write_page(out, rows, mutants, {"sample": sample, "per_assignment": per_assignment, "seed": seed,
                                           "whole": whole,
                                           "assignments": chosen,
                                           "seconds": round(seconds, 1), "graded": summary.graded,
                                           "failed": len(summary.failed), "isolated": summary.isolated})
    log(table(rows))
    log(f"{count} mutants graded in {seconds:.0f} s; test quality page: {out / 'index.html'}")
    return rows, mutants, path


# ------------------------------------------------------------------------------ the page
def write_page(out, rows, mutants, meta):
    """test-quality.json and index.html in ``out``; returns the JSON's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "named_means": "a failing test's first message line contains a word of the "
                                         "mutant's kind: " + json.dumps(NAMES, ensure_ascii=False),
            "exercises": [dict(asdict(r), kill_rate=r.kill_rate, naming_rate=r.naming_rate) for r in rows],
            "assignments": [dict(asdict(r), kill_rate=r.kill_rate, naming_rate=r.naming_rate) for r in totals(rows)],
            "total": [dict(asdict(r), kill_rate=r.kill_rate, naming_rate=r.naming_rate)
                      for r in totals(rows, key=lambda r: "all")],
            "mutants": [{k: v for k, v in asdict(m).items() if k != "source"} for v in mutants.values() for m in v]}
    path = out / "test-quality.json"
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "index.html").write_text(_html(rows, mutants, meta), encoding="utf-8")
    return path


def _html(rows, mutants, meta):
    e = html.escape
    parts = ["<!doctype html><meta charset='utf-8'><title>Test quality: mutants of the reference answers</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left;vertical-align:top;font-size:90%}th{background:#f3f3f3}pre{margin:0;font-size:85%}"
             ".survived{background:#fee}.equivalent{background:#eef}</style>",
             "<h1>Test quality: mutants of the reference answers</h1>",
             f"<p>Every mutant is one small change of one reference answer, graded as a student's submission "
             f"(sandboxed student kernel, tests in the grader's kernel). <b>Killed</b>: it lost a point. "
             f"<b>Named</b>: a failing test's message says what kind of change it is. <b>Equivalent</b>: "
             f"equal to the reference on the tests' inputs and random perturbations of them. Kill rate = "
             f"killed / (mutants − equivalent); naming rate = named / killed. Sample: "
             f"{e(str(meta.get('sample') or 'all'))}, seed {e(str(meta.get('seed')))}; "
             f"{e(str(meta.get('seconds')))} s; sandbox {'on' if meta.get('isolated') else 'OFF'}. "
             "<a href='test-quality.json'>test-quality.json</a></p>",
             "<table><tr><th>assignment</th><th>exercise</th><th>mutants</th><th>killed</th><th>survived</th>"
             "<th>equivalent</th><th>kill rate</th><th>naming rate</th></tr>"]
    for r in rows + totals(rows) + totals(rows, key=lambda r: "all"):
        parts.append(f"<tr><td>{e(r.assignment)}</td><td>{e(r.exercise or '(all)')}</td><td>{r.mutants}</td>"
                     f"<td>{r.killed}</td><td>{r.survived}</td><td>{r.equivalent}</td><td>{_pct(r.kill_rate)}</td>"
                     f"<td>{_pct(r.naming_rate)}</td></tr>")
    parts.append("</table><h2>Survivors and equivalent mutants</h2><table><tr><th>exercise</th><th>status</th>"
                 "<th>change</th><th>diff</th><th>why</th></tr>")
    for found in mutants.values():
        for m in found:
            if m.status in ("survived", "equivalent", "not graded"):
                parts.append(f"<tr class='{e(m.status)}'><td>{e(m.assignment)}/{e(m.exercise)}</td><td>{e(m.status)}</td>"
                             f"<td>{e(m.change)}</td><td><pre>{e(m.diff)}</pre></td><td>{e(m.witness)}"
                             f"{e(' '.join(m.failed.values()))}</td></tr>")
    parts.append("</table><h2>Killed mutants: what the failing tests said</h2><table><tr><th>exercise</th>"
                 "<th>change</th><th>named</th><th>failing tests: first line of the message</th></tr>")
    for found in mutants.values():
        for m in found:
            if m.status == "killed":
                said = "<br>".join(f"<b>{e(g)}</b>: {e(msg) or '(no message)'}" for g, msg in m.failed.items())
                parts.append(f"<tr><td>{e(m.assignment)}/{e(m.exercise)}</td><td>{e(m.change)}</td>"
                             f"<td>{'yes' if m.named else 'no'}</td><td>{said}</td></tr>")
    parts.append("</table>")
    return "\n".join(parts)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--equivalence"]:
        _equivalence_child(json.loads(sys.argv[2]))
