"""Tests of the tests: the mutation operators of ``autograder/instructor/mutants.py`` on small
snippets, the mutants of the real answer cells, what "named" means, the equivalence check, the
test quality page, and (slow) a fixed sample of mutants graded in the sandbox: its kill rate must
not drop below the landed one (``bench/mutants_landed.json``).
"""
import ast
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest

from autograder import checks
from autograder.instructor import mutants, nbcells, report
from autograder.instructor.synthetic import answers

ROOT = Path(__file__).resolve().parents[1]
LANDED = ROOT / "bench" / "mutants_landed.json"


def apply(operator, expression):
    """The operator's replacements of the top node of ``expression``, unparsed."""
    node = ast.parse(expression, mode="eval").body
    tree = ast.parse(expression)
    mutants._mark_indices(tree)
    if isinstance(node, ast.Constant):                   # an index constant is marked in the tree
        node = tree.body[0].value
    return [ast.unparse(new) for new, _ in operator(node)]


@pytest.mark.parametrize("operator, expression, expected", [
    (mutants.swap_operands, "a - b", ["b - a"]),
    (mutants.swap_operands, "X @ W", ["W @ X"]),
    (mutants.swap_operands, "a + b", []),                          # commutative: no mutant
    (mutants.flip_sign, "a + b", ["a - b"]),
    (mutants.flip_sign, "-x", ["x"]),
    (mutants.drop_term, "a + b", ["a", "b"]),
    (mutants.drop_term, "a - b", ["a"]),
    (mutants.transpose, "dZ.T", ["dZ"]),
    (mutants.transpose, "X @ W.T", ["X.T @ W.T"]),                 # W.T's .T goes away as a node of its own
    (mutants.transpose, "A @ B", ["A.T @ B", "A @ B.T"]),
    (mutants.change_axis, "x.sum(axis=0)", ["x.sum(axis=1)", "x.sum()"]),
    (mutants.change_axis, "np.max(z, axis=-1)", ["np.max(z, axis=0)", "np.max(z)"]),
    (mutants.change_axis, "np.sum(z)", []),
    (mutants.toggle_keepdims, "np.max(z, axis=1, keepdims=True)", ["np.max(z, axis=1)"]),
    (mutants.toggle_keepdims, "z.sum(axis=0)", ["z.sum(axis=0, keepdims=True)"]),
    (mutants.shift_index, "x[0]", ["x[1]", "x[-1]"]),
    (mutants.shift_index, "x[1:, :-1]", ["x[2:, :-1]", "x[0:, :-1]", "x[1:, :-2]"]),
    (mutants.shift_index, "x[-1]", ["x[-2]"]),
    (mutants.scale, "0.5", ["1.0", "0.25"]),
    (mutants.scale, "1", []),
    (mutants.scale, "d / N", ["d", "d * N"]),
    (mutants.scale, "lam * W", ["lam"]),
    (mutants.swap_function, "np.sum(x)", ["np.mean(x)"]),
    (mutants.swap_function, "x.max(axis=1)", ["x.min(axis=1)"]),
    (mutants.swap_function, "np.argmax(p)", ["np.argmin(p)"]),
    (mutants.swap_function, "np.dot(a, b)", []),
    (mutants.swap_compare, "z > 0", ["z >= 0"]),
    (mutants.swap_compare, "0 <= i < n", ["0 < i < n", "0 <= i <= n"]),
    (mutants.drop_derivative, "f_grad(Z) * dH", ["dH"]),
    (mutants.drop_derivative, "dH * sigmoid_prime(Z)", ["dH"]),
    (mutants.drop_derivative, "W * dH", []),
])
def test_each_operator_on_a_snippet(operator, expression, expected):
    assert apply(operator, expression) == expected


def test_an_index_constant_is_shifted_not_scaled():
    """x[2] is an index (shifted by one), not a number to double."""
    tree = ast.parse("x[2]")
    mutants._mark_indices(tree)
    const = tree.body[0].value.slice
    assert mutants.scale(const) == []
    assert [ast.unparse(n) for n, _ in mutants.shift_index(tree.body[0].value)] == ["x[3]", "x[1]"]


CELL = '''def f(x, W):
    """Docstring with a - b in it."""
    y = x - 1
    ### BEGIN SOLUTION
    z = x @ W.T
    return z.sum(axis=0)
    ### END SOLUTION
'''


def test_mutants_change_only_the_solution_region():
    """Code outside BEGIN/END SOLUTION (the given lines, the docstring) never changes; each mutant
    is valid Python, differs from the reference and from every other mutant, and carries its diff."""
    found = mutants.mutants_of(CELL, "A", "f")
    reference = answers.strip_markers(CELL)
    assert found and len({m.source for m in found}) == len(found)
    for m in found:
        ast.parse(m.source)
        assert m.source != reference
        assert "    y = x - 1" in m.source and "Docstring with a - b" in m.source
        assert m.diff.startswith("--- reference") and "+    " in m.diff
    changes = {m.change for m in found}
    assert ".T of W.T removed" in changes and "axis=0 -> axis=1 in z.sum(axis=0)" in changes
    assert {m.kind for m in found} >= {"transpose", "axis", "function", "swap"}


def test_every_answer_cell_of_the_course_gives_valid_mutants():
    """Every source notebook's answer cells: mutants parse and differ from the reference; the
    sample is deterministic for a seed and has at most N per exercise."""
    names = nbcells.assignments(ROOT)
    every, exercises = mutants.all_mutants(ROOT / "source_notebooks", names)
    assert len(exercises) >= 40 and sum(map(len, every.values())) > 300
    for found in every.values():
        for m in found:
            ast.parse(m.source)
    one, _ = mutants.all_mutants(ROOT / "source_notebooks", names, sample=2, seed=5)
    two, _ = mutants.all_mutants(ROOT / "source_notebooks", names, sample=2, seed=5)
    assert [m.student for v in one.values() for m in v] == [m.student for v in two.values() for m in v]
    per = {}
    for v in one.values():
        for m in v:
            per[m.exercise] = per.get(m.exercise, 0) + 1
    assert max(per.values()) == 2


@pytest.mark.parametrize("kind, message, expected", [
    ("transpose", "AssertionError: dW has shape (7, 5) but should have shape (5, 7): it is transposed.", True),
    ("derivative", "AssertionError: dW (relu): it looks like f′(h̄) is missing: multiply dH ...", True),
    ("factor", "AssertionError: the output of mse_grad is the expected value times a constant ≈ 9", True),
    ("axis", "AssertionError: db has shape (4,) but should have shape (5,): it was summed over the wrong axis.", True),
    ("sign", "AssertionError: dX has the wrong sign everywhere.", True),
    # the generic messages name nothing, whatever the kind
    ("transpose", "AssertionError: dW does not match: relative error 3.1e-01, worst at index (1, 2).", False),
    ("index", "AssertionError: dW does not match: relative error 3.1e-01, worst at index (1, 2).", False),
    ("function", "AssertionError: the output of l2_penalty does not match the expected value (relative error 7.5e-01).", False),
    ("transpose", "ValueError: matmul: Input operand 1 has a mismatch in its core dimension 0", False),
    ("factor", "", False),
])
def test_what_named_means(kind, message, expected):
    assert mutants.named(kind, [message]) is expected


def test_the_equivalence_check_tells_a_rewrite_from_a_bug():
    """A rewrite that computes the same (np.sum(dZ, axis=0) for dZ.sum(axis=0)) is equivalent on
    the test cell's inputs and their perturbations; a real bug is not, with an input as witness."""
    path = ROOT / "source_notebooks" / "04_dense_backprop" / "04_dense_backprop.ipynb"
    cell = next(c for c in nbformat.read(path, as_version=4).cells if nbcells.grade_id(c) == "dense_backward")
    reference = answers.strip_markers(cell.source)
    same = mutants.Mutant("04_dense_backprop", "dense_backward", 0, "-", "-", "-",
                          reference.replace("dZ.sum(axis=0)", "np.sum(dZ, axis=0)"))
    bug = mutants.Mutant("04_dense_backprop", "dense_backward", 1, "-", "-", "-",
                         reference.replace("dZ.sum(axis=0)", "dZ.mean(axis=0)"))
    verdicts = mutants.equivalence(path, "dense_backward", [same, bug])
    assert verdicts[0][0] is True and verdicts[0][1] > 10
    assert verdicts[1][0] is False and "dense_backward(" in verdicts[1][2]


def test_the_page_and_the_class_report_link():
    """test-quality.json and index.html hold the table and every survivor's diff; the class
    report links the page when it is there."""
    m = [mutants.Mutant("A", "f", 0, "transpose", "transpose", "W transposed", "src", diff="-x\n+y\n",
                        status="killed", named=True, failed={"test_f": "it is transposed"}),
         mutants.Mutant("A", "f", 1, "scale", "factor", "constant 2 halved", "src", diff="-2\n+1\n",
                        status="survived", witness="f(array(3,)): differs")]
    rows = mutants.summarise({"A": m}, [("A", "f"), ("A", "g")])
    assert [(r.exercise, r.mutants, r.killed, r.survived) for r in rows] == [("f", 2, 1, 1), ("g", 0, 0, 0)]
    assert rows[0].kill_rate == 0.5 and rows[0].naming_rate == 1.0 and rows[1].kill_rate is None
    assert "(all)" in mutants.table(rows)
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = mutants.write_page(Path(tmp), rows, {"A": m}, {"sample": None, "seed": 0})
        data = json.loads(path.read_text())
        assert data["total"][0]["kill_rate"] == 0.5 and len(data["mutants"]) == 2
        page = (Path(tmp) / "index.html").read_text()
        assert "constant 2 halved" in page and "+1" in page
    course = SimpleNamespace(course_id="c", assignments=[], root=Path("/nowhere"))
    assert "test-quality/index.html" in report._html(course, [], {}, {}, False, quality=True)
    assert "test-quality" not in report._html(course, [], {}, {}, False)


@pytest.mark.slow
def test_a_fixed_sample_is_killed_as_often_as_landed(tmp_path):
    """A fixed sample (LANDED's seed, a few mutants per assignment) graded for real, in the
    sandbox: its kill rate must not drop below the landed figure (a weaker test, or a grader
    that stopped failing what it should, shows up here)."""
    landed = json.loads(LANDED.read_text())
    rows, found, _ = mutants.run(sample=None, per_assignment=landed["per_assignment"], seed=landed["seed"],
                                 jobs=2, out=tmp_path / "out", work=tmp_path / "work", progress=False,
                                 log=lambda *a: None)
    (total,) = mutants.totals(rows, key=lambda r: "all")
    assert total.mutants == landed["mutants"], "the sample changed: land the new figures (see bench/mutants_landed.json)"
    survivors = [f"{m.assignment}/{m.exercise}: {m.change}" for v in found.values() for m in v if m.status == "survived"]
    assert total.kill_rate >= landed["kill_rate"] - 1e-9, (
        f"kill rate {total.kill_rate:.3f} < landed {landed['kill_rate']:.3f}; survivors: {survivors}")


def _shifted(e):
    return np.r_[e[1:], 9.0]


def _signs(e):
    return np.where(e > 6, -e, e)


def _one_row(e):
    out = e.copy()
    out[1] = [0.3, 7.0, -2.0, 5.5]
    return out


def _one_entry(e):
    out = e.ravel().copy()
    out[3] = 0.7
    return out.reshape(e.shape)


E = np.arange(1.0, 13.0).reshape(3, 4)


@pytest.mark.parametrize("actual, expected, words", [
    (np.roll(E, 1, axis=1), E, "shifted by one index along axis 1"),
    (_shifted(np.arange(1.0, 6.0)), np.arange(1.0, 6.0), "shifted by one index"),
    (_signs(E), E, "wrong sign in 6 of 12 entries"),
    (E.ravel()[::-1].reshape(3, 4), E, "right values in the wrong places"),
    (_one_row(E), E, "only row 1"),
    (_one_entry(E), E, "only entry (0, 3)"),
    (E + np.linspace(0.1, 0.9, 12).reshape(3, 4), E, "12 of 12 entries differ"),
])
def test_diagnose_says_which_entries_differ_and_how(actual, expected, words):
    """checks.diagnose's new helpers (made for the mutants that the generic message did not name)."""
    assert words in checks.diagnose(actual, expected, "X")


def test_each_exercise_is_judged_by_its_own_test_cells():
    """dense_backward is judged by test_dense_backward, which needs the answers before it; the
    answer cells after it stay as released in its mutants' submissions."""
    nb = nbformat.read(ROOT / "source_notebooks" / "04_dense_backprop" / "04_dense_backprop.ipynb", as_version=4)
    tests, needs = mutants.exercise_tests(nb)["dense_backward"]
    assert tests == ["test_dense_backward"]
    assert needs == {"dense_forward", "mse", "dense_backward"}
    course = SimpleNamespace(release_notebook=lambda a: ROOT / "release" / a / f"{a}.ipynb",
                             source_notebook=lambda a: ROOT / "source_notebooks" / a / f"{a}.ipynb",
                             notebook_name=lambda a: f"{a}.ipynb")
    m = mutants.Mutant("04_dense_backprop", "dense_backward", 0, "-", "-", "-", "def dense_backward(dH, cache):\n    return 1\n")
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        units = mutants.write_submissions(course, {"04_dense_backprop": [m]}, tmp)
        assert [u.student for u in units] == [mutants.REFERENCE, m.student]
        cells = {nbcells.grade_id(c): c.source for c in nbformat.read(Path(units[1].folder) / "04_dense_backprop.ipynb",
                                                                      as_version=4).cells if nbcells.is_answer(c)}
    assert cells["dense_backward"] == m.source
    assert "Z = X @ W.T + b" in cells["dense_forward"] and "NotImplementedError" in cells["l2_penalty"]
