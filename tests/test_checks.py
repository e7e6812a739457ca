"""Tests of autograder.checks itself: numerics, messages, isolation from solutions_lib."""
import re
import subprocess
import sys

import numpy as np
import pytest

from autograder import checks
from solutions_lib import layers
from test_bug_catalogue import dropped_unit, one_entry_off


def test_checks_do_not_import_solutions_lib():
    code = "import autograder.checks, sys; assert 'solutions_lib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_checks_source_has_no_reference_solution():
    import inspect
    src = inspect.getsource(checks)
    assert "solutions_lib" not in src
    # the dense backward formulas (dW = dZᵀ X, dX = dZ W) must not be spelled out in code
    assert not re.search(r"\.T\s*@\s*X\b", src)
    assert not re.search(r"dZ\s*@\s*W\b", src)


def test_numerical_gradient_is_accurate_in_float64():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    g = checks.numerical_gradient(lambda v: np.sum(np.sin(v) * v ** 2), x)
    exact = np.cos(x) * x ** 2 + 2 * x * np.sin(x)
    assert checks.relative_error(g, exact) < 1e-9
    assert g.dtype == np.float64


def test_numerical_gradient_does_not_change_x_and_accepts_float32():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    before = x.copy()
    g = checks.numerical_gradient(lambda v: float(np.sum(v ** 2)), x)
    assert np.array_equal(x, before)
    assert np.allclose(g, 2 * before, atol=1e-6)


def test_numerical_jacobian_numerator_layout():
    W = np.arange(12.0).reshape(3, 4)
    J = checks.numerical_jacobian(lambda v: W @ v, np.ones(4))
    assert J.shape == (3, 4)              # (outputs, inputs)
    assert np.allclose(J, W, atol=1e-8)


def test_relative_error():
    assert checks.relative_error(np.ones(3), np.ones(3)) == 0.0
    assert checks.relative_error(np.zeros(2), np.zeros(2)) == 0.0
    assert checks.relative_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 2.2)


def test_not_implemented_gives_short_message():
    def sigmoid_grad(z):
        raise NotImplementedError()
    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.check_activation(np.tanh, sigmoid_grad)
    with pytest.raises(AssertionError, match="not implemented yet"):
        checks.check_dense_backward(lambda X, W, b: layers.dense_forward(X, W, b, "relu"),
                                    lambda dH, c: (_ for _ in ()).throw(NotImplementedError()))


def test_none_return_is_named():
    with pytest.raises(AssertionError, match="forget `return`"):
        checks.check_forward(lambda x: None, lambda x: x, (np.ones(3),))


def test_forward_mutation_is_caught():
    def f(x):
        x *= 2
        return x
    with pytest.raises(AssertionError, match="in place"):
        checks.check_forward(f, lambda x: 2 * x, (np.ones((2, 3)),))


def test_messages_never_reveal_expected_values():
    rng = np.random.default_rng(3)
    expected = rng.uniform(1, 9, size=(4, 3))
    wrong = expected + rng.uniform(0.1, 0.5, size=(4, 3))
    with pytest.raises(AssertionError) as err:
        checks.check_close(wrong, expected, "dW")
    msg = str(err.value)
    for v in expected.ravel():
        for fmt in ("{:.2f}", "{:.3g}", "{:.4g}"):
            assert fmt.format(v) not in msg
    assert "index" in msg


def test_scalar_mismatch_does_not_give_the_value_away():
    with pytest.raises(AssertionError) as err:
        checks.check_close(3.7, 2.5, "loss")
    assert "≈" not in str(err.value) and "2.5" not in str(err.value)
    assert checks.diagnose(np.float64(3.7), np.float64(2.5), "loss").startswith("loss does not match")
    assert "row 0" in checks.diagnose(np.zeros((1, 3)), np.ones((1, 3)), "dW")


def test_check_close_known_value_and_factor():
    checks.check_close(2.5, 2.5, "loss")
    with pytest.raises(AssertionError, match="twice"):
        checks.check_close(5.0, 2.5, "loss")


@pytest.mark.parametrize("mode", ["full", "fast"])
def test_big_layer_checks_catch_small_defects(mode):
    """784 -> 128 sigmoid layer, batch 32: the full and the fast check both catch one entry 1 %
    off and a dropped unit, and pass the correct gradient."""
    def fwd(X, W, b):
        return layers.dense_forward(X, W, b, "sigmoid")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 784))
    W = rng.standard_normal((128, 784)) * 0.05
    b = rng.standard_normal(128) * 0.1
    inputs = {"X": X, "W": W, "b": b}
    checks.check_dense_backward(fwd, layers.dense_backward, inputs=inputs, mode=mode)

    for bug in (one_entry_off, dropped_unit):
        with pytest.raises(AssertionError, match="dW"):
            checks.check_dense_backward(fwd, bug, inputs=inputs, mode=mode, seed=1)


def test_relu_kink_never_fails_correct_code():
    """Inputs exactly at the kink: any subgradient in [0, 1] is accepted."""
    z = np.array([[0.0, -1.0, 1.0, 0.0]])
    checks.check_activation(lambda v: np.maximum(v, 0), lambda v: (v > 0).astype(float), z=z)
    checks.check_activation(lambda v: np.maximum(v, 0), lambda v: (v >= 0).astype(float), z=z)
    x = np.array([[0.0, 2.0], [-3.0, 0.0]])
    checks.check_gradient(lambda v: float(np.sum(np.maximum(v, 0) * [[1.0, 2.0], [3.0, 4.0]])),
                          lambda v: (v > 0) * np.array([[1.0, 2.0], [3.0, 4.0]]), x)
    with pytest.raises(AssertionError):   # but a value outside [0, 1] at the kink is wrong
        checks.check_activation(lambda v: np.maximum(v, 0), lambda v: (v > 0) + 2.0 * (v == 0), z=z)


def test_float32_inputs_get_float32_tolerance():
    checks.check_dense_backward(lambda X, W, b: layers.dense_forward(X, W, b, "tanh"),
                                layers.dense_backward, dtype=np.float32)


def test_check_shape():
    checks.check_shape(np.zeros((2, 3)), (2, 3))
    with pytest.raises(AssertionError, match="transposed"):
        checks.check_shape(np.zeros((3, 2)), (2, 3), "dW")
    with pytest.raises(AssertionError, match="return"):
        checks.check_shape(None, (2, 3))


def test_check_dtype():
    checks.check_dtype(np.zeros(3), np.float64)
    with pytest.raises(AssertionError, match="integer array"):
        checks.check_dtype(np.zeros(3, dtype=int), np.float64, "dW")
    with pytest.raises(AssertionError, match="float32 but should be float64"):
        checks.check_dtype(np.zeros(3, dtype=np.float32), np.float64, "dW")
    with pytest.raises(AssertionError, match="return"):
        checks.check_dtype(None)


def test_check_finite():
    checks.check_finite(np.ones(3))
    with pytest.raises(AssertionError, match="NaN or inf"):
        checks.check_finite(np.array([1.0, np.nan]))


def test_diagnose_returns_none_for_equal_arrays():
    a = np.arange(6.0).reshape(2, 3)
    assert checks.diagnose(a, a.copy()) is None


def test_wrong_number_of_gradients():
    def backward(dH, cache):
        return layers.dense_backward(dH, cache)[:2]
    with pytest.raises(AssertionError, match="should return 3"):
        checks.check_dense_backward(lambda X, W, b: layers.dense_forward(X, W, b), backward)


def test_not_implemented_names_the_function_that_raised_not_the_lambda():
    def dense_forward(X, W, b, activation):
        raise NotImplementedError()

    def dense_backward(dH, cache):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match=r"^dense_forward is not implemented yet"):
        checks.check_dense_backward(lambda X, W, b: dense_forward(X, W, b, "relu"), dense_backward)


def test_call_returns_the_result_or_explains():
    def double(x):
        return 2 * x

    def todo(x):
        raise NotImplementedError()

    def in_place(x):
        x *= 2
        return x

    assert checks.call(double, 3) == 6
    with pytest.raises(AssertionError, match="todo is not implemented yet"):
        checks.call(todo, 1)
    with pytest.raises(AssertionError, match="changed its input"):
        checks.call(in_place, np.ones(3))
    with pytest.raises(AssertionError, match="is None: did you forget `return`"):
        checks.call(lambda x: None, 1)


def test_check_forward_takes_a_known_value():
    checks.check_forward(np.sum, 6.0, (np.array([1.0, 2.0, 3.0]),))
    with pytest.raises(AssertionError, match="twice the expected value"):
        checks.check_forward(lambda x: 2 * np.sum(x), 6.0, (np.array([1.0, 2.0, 3.0]),))


def test_mutation_message_names_the_parameter():
    def perceptron_step(x, y, w, b):
        w += y * x
        return w, b

    with pytest.raises(AssertionError, match="changed its input `w` in place"):
        checks.call(perceptron_step, np.ones(2), 1.0, np.zeros(2), 0.0)


def test_unwritten_loss_gives_the_short_message_in_gradient_checks():
    def mse(h, y):
        raise NotImplementedError()

    def mse_grad(h, y):
        return h - y

    y = np.zeros((4, 3))
    with pytest.raises(AssertionError, match="^mse is not implemented yet"):
        checks.check_gradient(lambda h: mse(h, y), lambda h: mse_grad(h, y), np.ones((4, 3)))


# ---------------------------------------------------------------- a loss at large logits
def _clipped_cross_entropy(z, y, eps=1e-12):
    """The typical "fix" for log(0): softmax, then clip, then log."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    p = np.clip(e / e.sum(axis=-1, keepdims=True), eps, 1.0 - eps)
    return float(-np.mean(np.sum(y * np.log(p), axis=-1)))


def _naive_cross_entropy(z, y):
    """Softmax without the shift, then log: inf/inf = NaN at large logits."""
    with np.errstate(all="ignore"):
        p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        return float(-np.mean(np.sum(y * np.log(p), axis=-1)))


def test_loss_messages_at_large_logits_point_to_log_sum_exp_and_name_clipping():
    from solutions_lib import losses

    rng = np.random.default_rng(11)
    Z = 1000.0 * rng.normal(size=(6, 4))
    Y = np.eye(4)[rng.integers(0, 4, size=6)]
    checks.check_forward(_clipped_cross_entropy, losses.softmax_cross_entropy, (Z / 1000.0, Y))
    with pytest.raises(AssertionError) as err:        # relative error ~1, but now named
        checks.check_forward(_clipped_cross_entropy, losses.softmax_cross_entropy, (Z, Y))
    assert "clipping probabilities" in str(err.value) and "log-sum-exp" in str(err.value)
    with pytest.raises(AssertionError) as err:
        checks.check_forward(_naive_cross_entropy, losses.softmax_cross_entropy, (Z, Y))
    assert "NaN or inf" in str(err.value) and "log-sum-exp" in str(err.value)
    assert "clip" not in str(err.value)
    # a right answer times ½ is still named as a factor, not as clipping
    half = lambda z, y: 0.5 * losses.softmax_cross_entropy(z, y)      # noqa: E731
    with pytest.raises(AssertionError) as err:
        checks.check_forward(half, losses.softmax_cross_entropy, (Z, Y))
    assert "clip" not in str(err.value)


# ---------------------------------------------------------------------- partial credit: the tally
def _wrong_db_axis(dH, cache):
    dX, dW, db = layers.dense_backward(dH, cache)
    return dX, dW, dH.sum(axis=1)


def _relu_layer(X, W, b):
    return layers.dense_forward(X, W, b, "relu")


def test_a_tally_adds_the_shares_of_the_parts_that_pass(capsys):
    tally = checks.Tally(points=3)
    with tally.part("passes", 1):
        checks.check_close(1.0, 1.0, "one")
    with tally.part("fails", 1.5):
        checks.check_close(3.0, 1.0, "two")
    with tally.part("also passes", 0.5):
        pass
    assert tally.score() == 1.5
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "1.5 of 3 points:"
    assert "✓ passes (1)" in out and "✓ also passes (0.5)" in out
    assert "✗ fails (1.5): two does not match the expected value" in out, out


def test_a_failure_never_leaves_its_part_but_an_interrupt_does():
    tally = checks.Tally(points=2)
    with tally.part("raises", 1):
        raise ZeroDivisionError("boom")
    with tally.part("after", 1):
        pass
    assert tally.results[0][2] == "✗" and tally.results[0][3].startswith("ZeroDivisionError: boom")
    assert tally.earned() == 1
    with pytest.raises(KeyboardInterrupt):            # a time limit (nbgrader interrupts the kernel)
        with tally.part("interrupted", 0.5):
            raise KeyboardInterrupt


def test_a_part_names_the_student_function_that_raised():
    def dense_backward(dH, cache):
        return dH[5]                                  # IndexError in the student's code
    tally = checks.Tally(points=1)
    with tally.part("dX", 1):
        dense_backward(np.zeros(2), None)
    assert tally.results[0][3] == ("IndexError: index 5 is out of bounds for axis 0 with size 2 "
                                   "(raised in dense_backward)")


def test_wrong_db_axis_costs_only_the_share_of_db(capsys):
    """One check of a layer, three results: the message names db, so dX and dW keep their shares."""
    tally = checks.Tally(points=4)
    with tally.parts({"dX": 1.5, "dW": 1.5, "db": 1}):
        checks.check_dense_backward(_relu_layer, _wrong_db_axis)
    assert tally.score() == 3.0
    out = capsys.readouterr().out
    assert "✗ db (1): db has shape (4,) but should have shape (5,): it was summed over the wrong axis" in out
    assert "✓ dX (1.5)" in out and "✓ dW (1.5)" in out


def test_a_message_that_names_no_result_fails_them_all_once():
    def not_written(dH, cache):
        raise NotImplementedError()
    tally = checks.Tally(points=3)
    with tally.parts({"dX by hand": 1, "dW by hand": 1, "db by hand": 1}):
        checks.check_dense_backward(_relu_layer, not_written)
    assert tally.earned() == 0
    assert {r[3] for r in tally.results} == {checks.not_implemented_message("not_written")}


def test_keep_going_checks_every_round_of_a_loop():
    """The first round fails in db only; a later round fails in dW: both are charged."""
    def wrong_later(dH, cache):
        dX, dW, db = layers.dense_backward(dH, cache)
        return dX, (dW if dH.shape[0] == 4 else 2 * dW), db
    tally = checks.Tally(points=3)
    with tally.parts({"dX": 1, "dW": 1, "db": 1}):
        for N in (4, 6):
            with tally.keep_going():
                checks.check_dense_backward(_relu_layer, _wrong_db_axis if N == 4 else wrong_later, N=N)
    assert [r[2] for r in tally.results] == ["✓", "✗", "✗"]
    assert "twice the expected value" in tally.results[1][3]
    assert "wrong axis" in tally.results[2][3]
    with pytest.raises(RuntimeError, match="inside"):
        with tally.keep_going():
            pass


def test_a_part_whose_prerequisite_failed_is_not_charged_a_second_message():
    tally = checks.Tally(points=2)
    with tally.part("the call", 1):
        result = checks.call(lambda x: None, 1.0)     # returns None: the call fails
    with tally.part("its value", 1, needs="the call"):
        checks.check_close(result, 1.0, "the value")  # NameError: result was never bound
    assert tally.results[0][2:] == ("✗", "the result of <lambda> is None: did you forget `return`?")
    assert tally.results[1][2:] == ("–", "not checked: the call failed")
    assert tally.earned() == 0


def test_shares_and_names_are_checked():
    tally = checks.Tally(points=1)
    with tally.part("a", 1):
        pass
    with pytest.raises(ValueError, match="two parts"):
        with tally.part("a", 0.5):
            pass
    with pytest.raises(ValueError, match="> 0"):
        with tally.part("b", 0):
            pass
    with tally.part("c", 0.5):
        pass
    with pytest.raises(ValueError, match="more than its 1 points"):
        tally.score()
    with pytest.raises(ValueError, match="points"):
        checks.Tally(points=0)


def test_the_release_with_hidden_parts_stripped_passes_validation_only_when_every_part_passes(capsys):
    """Shares below the cell's points: the hidden parts were stripped (the release). All passed:
    None (nbgrader counts no output as full marks, so `validate` is happy); a failure: the
    points earned, below the maximum, so `validate` reports the cell."""
    tally = checks.Tally(points=2)
    with tally.part("visible", 1):
        pass
    assert tally.score() is None
    assert "hidden tests worth 1 more are run at grading" in capsys.readouterr().out
    tally = checks.Tally(points=2)
    with tally.part("visible", 1):
        assert False, "no"
    assert tally.score() == 0.0
    err = capsys.readouterr().err           # the one output `nbgrader validate` shows of such a cell
    assert err.startswith("0 of 1 points (hidden tests worth 1 more") and "✗ visible (1): no" in err


def test_every_test_cell_is_a_tally_whose_shares_are_its_points():
    """Static: every test cell of the source notebooks makes one Tally of its points and ends
    with its score; the shares (run in test_notebooks) add up to the points there."""
    import nbformat
    from autograder.instructor import nbcells
    cells = 0
    for name in nbcells.assignments(nbcells.REPOSITORY):
        for path in nbcells.notebooks(nbcells.REPOSITORY / "source_notebooks" / name):
            for cell in nbformat.read(path, as_version=4).cells:
                meta = cell.metadata.get("nbgrader", {})
                if not (meta.get("grade") and not meta.get("solution")):
                    continue
                cells += 1
                lines = cell.source.strip().splitlines()
                assert lines[0] == f"tally = checks.Tally(points={meta['points']})", (path.name, meta["grade_id"])
                assert lines[-1] == "tally.score()", (path.name, meta["grade_id"])
                assert "all tests passed" not in cell.source, meta["grade_id"]
    assert cells >= 45
