"""Tests for solutions_lib.perceptron: the learning rule, logic gates and XOR."""
import numpy as np
import pytest

from solutions_lib import perceptron as P
from solutions_lib.activations import sigmoid

XOR_TABLE = np.array([0.0, 1.0, 1.0, 0.0])
TRUTH = {
    "AND": [0.0, 0.0, 0.0, 1.0],
    "OR": [0.0, 1.0, 1.0, 1.0],
    "NAND": [1.0, 1.0, 1.0, 0.0],
}


# ---------------------------------------------------------------- predict and step
def test_predict_sign_with_sign_zero_plus_one():
    X = np.array([[0.0, 0.0], [1.0, 2.0], [-3.0, 1.0], [1.0, -1.0]])
    w = np.array([1.0, 1.0])
    # pre-activations 0, 3, -2, 0 (the zeros must give +1)
    out = P.perceptron_predict(X, w, 0.0)
    assert out.shape == (4,)
    np.testing.assert_array_equal(out, [1.0, 1.0, -1.0, 1.0])
    np.testing.assert_array_equal(P.perceptron_predict(X, w, -1.0), [-1.0, 1.0, -1.0, -1.0])


def test_predict_rejects_bad_shapes():
    with pytest.raises(ValueError, match="reshape"):
        P.perceptron_predict(np.array([1.0, 2.0]), np.array([1.0, 1.0]), 0.0)
    with pytest.raises(ValueError, match=r"\(D,\)"):
        P.perceptron_predict(np.ones((3, 2)), np.ones(3), 0.0)


def test_step_leaves_correct_example_alone_and_moves_towards_a_wrong_one():
    w = np.array([1.0, -2.0])
    x = np.array([3.0, 1.0])                       # w·x + b = 1.5 > 0: predicted +1
    w_new, b_new = P.perceptron_step(x, 1.0, w, 0.5, lr=0.1)
    np.testing.assert_array_equal(w_new, w)
    assert b_new == 0.5
    w_new, b_new = P.perceptron_step(x, -1.0, w, 0.5, lr=0.1)
    np.testing.assert_allclose(w_new, w - 0.1 * x)
    assert b_new == pytest.approx(0.4)
    np.testing.assert_array_equal(w, [1.0, -2.0])  # not modified in place


def test_step_treats_zero_activation_as_plus_one():
    w, x = np.zeros(2), np.array([1.0, 1.0])
    w_new, b_new = P.perceptron_step(x, 1.0, w, 0.0)       # sign(0) = +1 = y: no update
    np.testing.assert_array_equal(w_new, w)
    assert b_new == 0.0
    w_new, b_new = P.perceptron_step(x, -1.0, w, 0.0, lr=2.0)
    np.testing.assert_array_equal(w_new, [-2.0, -2.0])
    assert b_new == -2.0


# ---------------------------------------------------------------- training
def test_train_converges_on_separable_data():
    X, y = P.linearly_separable_data(n=40, rng=1)
    w, b, errors = P.perceptron_train(X, y, rng=3)
    assert errors[-1] == 0
    assert all(e > 0 for e in errors[:-1])
    assert len(errors) < 100
    np.testing.assert_array_equal(P.perceptron_predict(X, w, b), y)


def test_train_is_reproducible_by_seed_and_does_not_touch_inputs():
    X, y = P.linearly_separable_data(n=30, rng=7, margin=0.1)
    X0, y0 = X.copy(), y.copy()
    w1, b1, e1 = P.perceptron_train(X, y, lr=0.5, rng=11)
    w2, b2, e2 = P.perceptron_train(X, y, lr=0.5, rng=np.random.default_rng(11))
    np.testing.assert_array_equal(w1, w2)
    assert b1 == b2 and e1 == e2
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_visiting_order_depends_on_seed():
    X, y = P.linearly_separable_data(n=40, rng=2, margin=0.05)
    results = {tuple(np.round(P.perceptron_train(X, y, rng=s)[0], 12)) for s in range(5)}
    assert len(results) > 1


def test_train_counts_mistakes_and_stops_at_max_epochs_on_xor():
    y = 2.0 * XOR_TABLE - 1.0
    w, b, errors = P.perceptron_train(P.XOR_INPUTS, y, max_epochs=25, rng=0)
    assert len(errors) == 25
    assert min(errors) > 0                          # never a clean epoch: XOR is not separable
    assert np.any(P.perceptron_predict(P.XOR_INPUTS, w, b) != y)


def test_train_rejects_zero_one_labels():
    with pytest.raises(ValueError, match="-1 or \\+1"):
        P.perceptron_train(P.XOR_INPUTS, XOR_TABLE)


def test_separable_data_shape_labels_margin_and_seed():
    X, y = P.linearly_separable_data(n=41, rng=5, margin=0.2)
    assert X.shape == (41, 2) and y.shape == (41,)
    assert set(np.unique(y)) == {-1.0, 1.0}
    assert np.sum(y == -1) == 20 and np.sum(y == 1) == 21
    assert np.all(np.abs(X) <= 1.0)
    X2, y2 = P.linearly_separable_data(n=41, rng=5, margin=0.2)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    X3, _ = P.linearly_separable_data(n=41, rng=6, margin=0.2)
    assert not np.array_equal(X, X3)


def best_margin(X, y, n_angles=3600):
    """The largest margin of any line, found by scanning the direction of its normal."""
    angles = np.linspace(0.0, 2.0 * np.pi, n_angles, endpoint=False)
    proj = X @ np.stack([np.cos(angles), np.sin(angles)])            # (n, n_angles)
    return np.max((proj[y > 0].min(axis=0) - proj[y < 0].max(axis=0)) / 2.0)


@pytest.mark.parametrize("margin", [0.05, 0.2])
def test_separable_data_keeps_the_margin(margin):
    # with many points the widest gap between the classes is close to the requested margin:
    # at least the margin (up to the angle grid), and not much more
    X, y = P.linearly_separable_data(n=400, rng=3, margin=margin)
    m = best_margin(X, y)
    assert margin - 2e-3 <= m < margin + 0.03


# ---------------------------------------------------------------- logic gates
@pytest.mark.parametrize("gate", ["AND", "OR", "NAND"])
def test_logic_gate_truth_tables(gate):
    np.testing.assert_array_equal(P.logic_gate(gate, P.XOR_INPUTS), TRUTH[gate])
    w, b = P.LOGIC_GATES[gate]
    signs = P.perceptron_predict(P.XOR_INPUTS, w, b)
    np.testing.assert_array_equal(signs, 2.0 * np.array(TRUTH[gate]) - 1.0)


def test_unknown_gate_is_a_helpful_error():
    with pytest.raises(ValueError, match="AND"):
        P.logic_gate("XOR", P.XOR_INPUTS)


def test_xor_data():
    assert P.XOR_INPUTS.shape == (4, 2) and P.XOR_TARGETS.shape == (4,)
    np.testing.assert_array_equal(P.XOR_TARGETS, XOR_TABLE)
    np.testing.assert_array_equal(P.XOR_TARGETS, P.XOR_INPUTS[:, 0] != P.XOR_INPUTS[:, 1])


def test_constants_are_read_only():
    for const in (P.XOR_INPUTS, P.XOR_TARGETS, P.XOR_W, P.XOR_B, P.XOR_V, P.LOGIC_GATES["AND"][0]):
        with pytest.raises(ValueError):
            const[0] = 5.0


# ---------------------------------------------------------------- XOR is not linearly separable
def test_xor_inequalities_have_no_solution_on_a_grid():
    # f = 1 iff θ0 + θ1 x1 + θ2 x2 > 0 must give 0, 1, 1, 0 on the four inputs:
    # θ0 <= 0, θ0 + θ2 > 0, θ0 + θ1 > 0, θ0 + θ1 + θ2 <= 0.
    g = np.linspace(-3.0, 3.0, 61)
    t0, t1, t2 = (a.ravel() for a in np.meshgrid(g, g, g, indexing="ij"))
    pre = t0[:, None] + t1[:, None] * P.XOR_INPUTS[:, 0] + t2[:, None] * P.XOR_INPUTS[:, 1]
    correct = ((pre > 0) == XOR_TABLE.astype(bool)).sum(axis=1)
    assert correct.max() == 3                       # three of four is the best any θ can do
    # the same grid solves AND, OR and NAND, so the search itself is able to succeed
    for gate, table in TRUTH.items():
        ok = ((pre > 0) == np.array(table, dtype=bool)).all(axis=1)
        assert ok.any(), gate


def test_xor_inequalities_sum_to_a_contradiction():
    # Adding the two strict ones gives 2θ0 + θ1 + θ2 > 0; adding the other two gives <= 0.
    rng = np.random.default_rng(0)
    theta = rng.normal(scale=3.0, size=(20000, 3))
    t0, t1, t2 = theta.T
    strict = (t0 + t1 > 0) & (t0 + t2 > 0)
    weak = (t0 <= 0) & (t0 + t1 + t2 <= 0)
    assert not np.any(strict & weak)
    assert strict.any() and weak.any()              # each half alone is satisfiable


def test_logistic_regression_cannot_fit_xor():
    rng = np.random.default_rng(1)
    for _ in range(200):
        w, b = rng.normal(scale=5.0, size=2), rng.normal(scale=5.0)
        p = P.single_neuron(P.XOR_INPUTS, w, b, "sigmoid")
        assert np.any((p > 0.5) != XOR_TABLE.astype(bool))


# ---------------------------------------------------------------- XOR networks
def test_relu_network_of_the_notes_computes_xor():
    np.testing.assert_array_equal(P.xor_network(P.XOR_INPUTS), XOR_TABLE)
    np.testing.assert_array_equal(P.XOR_W, [[1.0, 1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(P.XOR_B, [0.0, -1.0])
    np.testing.assert_array_equal(P.XOR_V, [1.0, -2.0])


def test_relu_network_uses_W_transpose_x():
    # a non-symmetric W tells X @ W (the notes' Wᵀx per row) apart from X @ W.T
    W = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]])          # (n_in, n_hidden) = (2, 3)
    b, v = np.array([0.1, -0.2, 0.3]), np.array([1.0, -1.0, 2.0])
    X = np.array([[0.5, -1.0], [2.0, 1.0]])
    expected = [v @ np.maximum(W.T @ x + b, 0.0) for x in X]
    np.testing.assert_allclose(P.xor_network(X, W, b, v), expected)
    with pytest.raises(ValueError, match="n_in"):
        P.xor_network(X, W.T, b, v)


def test_relu_network_without_relu_fails_xor():
    out = P.xor_network_linear(P.XOR_INPUTS)
    np.testing.assert_array_equal(out, [2.0, 1.0, 1.0, 0.0])
    assert np.any(out != XOR_TABLE)
    # it is one affine map: X (W v) + vᵀb
    np.testing.assert_allclose(out, P.XOR_INPUTS @ (P.XOR_W @ P.XOR_V) + P.XOR_V @ P.XOR_B)


def test_three_perceptron_xor():
    np.testing.assert_array_equal(P.xor_three_perceptrons(P.XOR_INPUTS), XOR_TABLE)
    # the hidden units are OR and NAND, the output is AND of their ±1 outputs
    z1 = P.perceptron_predict(P.XOR_INPUTS, *P.XOR_PERCEPTRON_A)
    z2 = P.perceptron_predict(P.XOR_INPUTS, *P.XOR_PERCEPTRON_B)
    np.testing.assert_array_equal((z1 + 1) / 2, TRUTH["OR"])
    np.testing.assert_array_equal((z2 + 1) / 2, TRUTH["NAND"])
    Z = np.array([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(P.perceptron_predict(Z, *P.XOR_PERCEPTRON_C), [-1, -1, -1, 1])


# ---------------------------------------------------------------- one neuron, three models
def test_single_neuron_models():
    X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, 0.0]])
    w, b = np.array([0.5, -1.0]), 0.25
    s = X @ w + b                                    # -1.25, -0.75, 0.25
    np.testing.assert_allclose(P.single_neuron(X, w, b, "linear"), s)
    np.testing.assert_allclose(P.single_neuron(X, w, b, "sigmoid"), sigmoid(s))
    np.testing.assert_array_equal(P.single_neuron(X, w, b, "step"), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(P.single_neuron(X, w, b, "sign"), P.perceptron_predict(X, w, b))
    with pytest.raises(ValueError, match="unknown activation"):
        P.single_neuron(X, w, b, "softplus")


def test_randomness_follows_the_course_rule():
    """Generator, int seed, or None meaning seed 0; anything else is a clear TypeError."""
    from solutions_lib.perceptron import linearly_separable_data
    a, _ = linearly_separable_data(10, rng=None)
    b, _ = linearly_separable_data(10, rng=0)
    c, _ = linearly_separable_data(10, rng=np.random.default_rng(0))
    assert np.array_equal(a, b) and np.array_equal(a, c)
    with pytest.raises(TypeError, match="linearly_separable_data: rng must be"):
        linearly_separable_data(10, rng="zero")
