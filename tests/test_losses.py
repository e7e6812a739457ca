"""Tests for solutions_lib.losses: values, gradients, batch averaging, stability, shapes."""
import warnings

import numpy as np
import pytest

from solutions_lib import losses as L
from solutions_lib.activations import sigmoid, sigmoid_grad, softmax
from finite_differences import fd_gradient

N, K = 3, 5          # distinct, so a transposed or mis-averaged gradient cannot pass


def one_hot(labels, k):
    return np.eye(k)[labels]


rng = np.random.default_rng(0)
H = rng.normal(scale=2.0, size=(N, K))                      # signed predictions / logits
Y_REAL = rng.normal(size=(N, K))                            # signed regression targets
P_PROB = rng.uniform(0.05, 0.95, size=(N, K))               # probabilities away from 0 and 1
Y_BIN = rng.integers(0, 2, size=(N, K)).astype(float)       # 0/1 targets
Y_SOFT = rng.uniform(0.0, 1.0, size=(N, K))                 # soft targets in [0, 1]
Y_HOT = one_hot([1, 4, 0], K)

CASES = [
    ("mse", L.mse, L.mse_grad, H, Y_REAL),
    ("bce", L.binary_cross_entropy, L.binary_cross_entropy_grad, P_PROB, Y_BIN),
    ("bce_soft", L.binary_cross_entropy, L.binary_cross_entropy_grad, P_PROB, Y_SOFT),
    ("sigmoid_ce", L.sigmoid_cross_entropy, L.sigmoid_cross_entropy_grad, H, Y_BIN),
    ("ce", L.cross_entropy, L.cross_entropy_grad, P_PROB, Y_HOT),
    ("softmax_ce", L.softmax_cross_entropy, L.softmax_cross_entropy_grad, H, Y_HOT),
]


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("name, loss, grad, pred, y", CASES, ids=[c[0] for c in CASES])
def test_grad_matches_finite_differences(name, loss, grad, pred, y):
    g = grad(pred, y)
    assert g.shape == pred.shape
    np.testing.assert_allclose(g, fd_gradient(lambda p: loss(p, y), pred), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name, loss, grad, pred, y", CASES, ids=[c[0] for c in CASES])
def test_inputs_are_not_mutated(name, loss, grad, pred, y):
    p0, y0 = pred.copy(), y.copy()
    loss(pred, y)
    grad(pred, y)
    np.testing.assert_array_equal(pred, p0)
    np.testing.assert_array_equal(y, y0)


# ---------------------------------------------------------------- single example = the notes
def test_mse_single_example_is_half_sum_of_squares():
    h, y = np.array([0.5, -1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    expected = 0.5 * np.sum((y - h) ** 2)                    # eq. (3)
    assert L.mse(h, y) == pytest.approx(expected)
    assert L.mse(h[None, :], y[None, :]) == pytest.approx(expected)
    np.testing.assert_allclose(L.mse_grad(h, y), h - y)     # eq. (4)
    np.testing.assert_allclose(L.mse_grad(h[None, :], y[None, :]), [h - y])


def test_cross_entropy_single_example_is_eq_18_and_19():
    o, y = np.array([0.3, -1.2, 2.0]), np.array([1.0, 0.0, 1.0])
    p = sigmoid(o)
    expected = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))   # eq. (18)
    assert L.binary_cross_entropy(p, y) == pytest.approx(expected, rel=1e-12)
    assert L.sigmoid_cross_entropy(o, y) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(L.sigmoid_cross_entropy_grad(o, y), p - y)   # eq. (19)
    np.testing.assert_allclose(L.sigmoid_cross_entropy_grad(o[None], y[None]), [p - y])


# ---------------------------------------------------------------- averaging over the batch
@pytest.mark.parametrize("name, loss, grad, pred, y", CASES, ids=[c[0] for c in CASES])
def test_loss_is_averaged_over_the_batch(name, loss, grad, pred, y):
    one_p, one_y = pred[:1], y[:1]
    two_p, two_y = np.repeat(one_p, 2, axis=0), np.repeat(one_y, 2, axis=0)
    assert loss(two_p, two_y) == pytest.approx(loss(one_p, one_y), rel=1e-12)
    # each of the two copies carries half the gradient of the single example
    np.testing.assert_allclose(grad(two_p, two_y), np.repeat(grad(one_p, one_y) / 2, 2, axis=0))
    # and the loss of the whole batch is the mean of the per-example losses
    per_example = [loss(pred[n:n + 1], y[n:n + 1]) for n in range(N)]
    assert loss(pred, y) == pytest.approx(np.mean(per_example), rel=1e-12)


# ---------------------------------------------------------------- relations between losses
def test_sigmoid_cross_entropy_equals_bce_of_sigmoid():
    o = rng.uniform(-6, 6, size=(N, K))
    assert L.sigmoid_cross_entropy(o, Y_SOFT) == pytest.approx(
        L.binary_cross_entropy(sigmoid(o), Y_SOFT), rel=1e-10)


def test_sigmoid_cross_entropy_grad_is_sigma_minus_y_over_n():
    o = rng.uniform(-6, 6, size=(N, K))
    g = L.sigmoid_cross_entropy_grad(o, Y_BIN)
    np.testing.assert_allclose(g, (sigmoid(o) - Y_BIN) / N)
    # the chain rule through p = σ(o) gives the same: σ'(o) cancels the 1/(p(1-p))
    chained = L.binary_cross_entropy_grad(sigmoid(o), Y_BIN) * sigmoid_grad(o)
    np.testing.assert_allclose(g, chained, rtol=1e-8)


def test_softmax_cross_entropy_equals_cross_entropy_of_softmax():
    z = rng.normal(scale=3.0, size=(N, K))
    assert L.softmax_cross_entropy(z, Y_HOT) == pytest.approx(
        L.cross_entropy(softmax(z), Y_HOT), rel=1e-12)
    np.testing.assert_allclose(L.softmax_cross_entropy_grad(z, Y_HOT), (softmax(z) - Y_HOT) / N)


# ---------------------------------------------------------------- stability
def test_cross_entropies_finite_at_probabilities_zero_and_one():
    p = np.array([[0.0, 1.0, 0.0, 1.0]])
    y = np.array([[1.0, 0.0, 0.0, 1.0]])     # two hopeless, two perfect predictions
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = [L.binary_cross_entropy(p, y), L.cross_entropy(p, y)]
        grads = [L.binary_cross_entropy_grad(p, y), L.cross_entropy_grad(p, y)]
    assert all(np.isfinite(v) and v > 20 for v in values)
    assert all(np.all(np.isfinite(g)) for g in grads)
    # a perfect prediction costs (almost) nothing
    assert L.binary_cross_entropy(np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]])) < 1e-9


def test_losses_from_logits_finite_at_plus_minus_1000():
    o = np.array([[1000.0, -1000.0, 1000.0, -1000.0]])
    yb = np.array([[0.0, 1.0, 1.0, 0.0]])
    z = np.array([[1000.0, -1000.0, 0.0]])
    yz = np.array([[0.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert L.sigmoid_cross_entropy(o, yb) == pytest.approx(2000.0)   # two wrong by 1000
        assert L.softmax_cross_entropy(z, yz) == pytest.approx(2000.0)
        assert L.softmax_cross_entropy(z, np.array([[1.0, 0.0, 0.0]])) == pytest.approx(0.0)
        np.testing.assert_allclose(L.sigmoid_cross_entropy_grad(o, yb), [[1.0, -1.0, 0.0, 0.0]])
        np.testing.assert_allclose(L.softmax_cross_entropy_grad(z, yz), [[1.0, -1.0, 0.0]])


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("name, loss, grad, pred, y", CASES, ids=[c[0] for c in CASES])
def test_column_vs_flat_shape_mismatch_raises(name, loss, grad, pred, y):
    col, flat = pred[:, :1], y[:, 0]                 # (N, 1) predictions, (N,) targets
    for fn in (loss, grad):
        with pytest.raises(ValueError, match="reshape"):
            fn(col, flat)


# ---------------------------------------------------------------- penalties
def test_l2_penalty_and_grad():
    W = rng.normal(size=(4, 3))
    assert L.l2_penalty(W, 0.1) == pytest.approx(0.05 * np.sum(W ** 2))
    np.testing.assert_allclose(L.l2_penalty_grad(W, 0.1), 0.1 * W)
    np.testing.assert_allclose(L.l2_penalty_grad(W, 0.1),
                               fd_gradient(lambda t: L.l2_penalty(t, 0.1), W), rtol=1e-6)
    assert L.l2_penalty(np.zeros(3), 5.0) == 0.0


def test_l1_penalty_and_grad():
    W = rng.uniform(0.1, 2.0, size=(4, 3)) * rng.choice([-1.0, 1.0], size=(4, 3))
    assert L.l1_penalty(W, 0.2) == pytest.approx(0.2 * np.sum(np.abs(W)))
    np.testing.assert_allclose(L.l1_penalty_grad(W, 0.2), 0.2 * np.sign(W))
    np.testing.assert_allclose(L.l1_penalty_grad(W, 0.2),
                               fd_gradient(lambda t: L.l1_penalty(t, 0.2), W), rtol=1e-6)
    np.testing.assert_array_equal(L.l1_penalty_grad(np.zeros(2), 1.0), 0.0)


def test_penalties_do_not_mutate():
    W = np.array([[1.0, -2.0], [0.5, 0.0]])
    W0 = W.copy()
    for fn in (L.l1_penalty, L.l1_penalty_grad, L.l2_penalty, L.l2_penalty_grad):
        fn(W, 0.3)
    np.testing.assert_array_equal(W, W0)
