"""Tests for solutions_lib.layers: the dense layer (forward/backward) and dropout."""
import numpy as np
import pytest

from solutions_lib import layers
from solutions_lib.activations import get_activation
from finite_differences import fd_gradient

N, N_IN, N_OUT = 4, 7, 5      # all distinct, and W is not square: a transpose cannot hide


def dense_problem(seed):
    """Random signed X, W, b and upstream gradient dH with no pre-activation near 0 (the
    ReLU kink), so central differences are valid for every activation."""
    rng = np.random.default_rng(seed)
    while True:
        X = rng.normal(size=(N, N_IN))
        W = rng.normal(size=(N_OUT, N_IN)) / np.sqrt(N_IN)
        b = rng.normal(size=N_OUT)
        if np.min(np.abs(X @ W.T + b)) > 1e-3:
            break
    dH = rng.normal(size=(N, N_OUT))
    return X, W, b, dH


# ---------------------------------------------------------------- forward
def test_dense_forward_known_small_case():
    X = np.array([[1.0, 2.0], [0.0, -1.0]])                  # N = 2, n_in = 2
    W = np.array([[1.0, 0.0], [0.0, -1.0], [2.0, 1.0]])      # n_out = 3
    b = np.array([0.5, 0.0, -1.0])
    H, cache = layers.dense_forward(X, W, b)
    np.testing.assert_allclose(H, [[1.5, -2.0, 3.0], [0.5, 1.0, -2.0]])
    H, _ = layers.dense_forward(X, W, b, "relu")
    np.testing.assert_allclose(H, [[1.5, 0.0, 3.0], [0.5, 1.0, 0.0]])
    H, _ = layers.dense_forward(X, W, b, "sigmoid")
    np.testing.assert_allclose(H, 1.0 / (1.0 + np.exp(-np.array([[1.5, -2.0, 3.0],
                                                                   [0.5, 1.0, -2.0]]))))


def test_dense_forward_row_n_is_W_x_plus_b():
    X, W, b, _ = dense_problem(0)
    H, _ = layers.dense_forward(X, W, b, "tanh")
    assert H.shape == (N, N_OUT)
    for n in range(N):
        np.testing.assert_allclose(H[n], np.tanh(W @ X[n] + b), rtol=1e-13)


# ---------------------------------------------------------------- backward
@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu"])
def test_dense_backward_against_finite_differences(activation):
    X, W, b, dH = dense_problem(1)

    def loss(X_, W_, b_):                   # a scalar whose gradient w.r.t. H is dH
        return np.sum(dH * layers.dense_forward(X_, W_, b_, activation)[0])

    _, cache = layers.dense_forward(X, W, b, activation)
    dX, dW, db = layers.dense_backward(dH, cache)
    assert dX.shape == (N, N_IN) and dW.shape == (N_OUT, N_IN) and db.shape == (N_OUT,)
    np.testing.assert_allclose(dX, fd_gradient(lambda t: loss(t, W, b), X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dW, fd_gradient(lambda t: loss(X, t, b), W), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(db, fd_gradient(lambda t: loss(X, W, t), b), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu"])
def test_batch_of_one_is_eqs_5_and_6(activation):
    X, W, b, dH = dense_problem(2)
    x = X[0].reshape(-1, 1)                         # column vectors, as in the notes
    delta = dH[0].reshape(-1, 1)                    # Δ, (n_out, 1)
    _, f_grad = get_activation(activation)
    h_bar = W @ x + b.reshape(-1, 1)                # h̄ = W x + b
    local = f_grad(h_bar) * delta                   # f'(h̄) ⊙ Δ
    dW_notes = local @ x.T                          # eq. (5): δW = [f'(h̄) ⊙ Δ] xᵀ
    db_notes = local                                # eq. (5): δb = f'(h̄) ⊙ Δ
    dx_notes = W.T @ local                          # eq. (6): δx = Wᵀ [f'(h̄) ⊙ Δ]

    _, cache = layers.dense_forward(X[:1], W, b, activation)
    dX, dW, db = layers.dense_backward(dH[:1], cache)
    np.testing.assert_allclose(dW, dW_notes, rtol=1e-13)
    np.testing.assert_allclose(db, db_notes.ravel(), rtol=1e-13)
    np.testing.assert_allclose(dX, dx_notes.T, rtol=1e-13)


def test_batch_gradients_are_sums_of_single_example_gradients():
    X, W, b, dH = dense_problem(3)
    _, cache = layers.dense_forward(X, W, b, "sigmoid")
    dX, dW, db = layers.dense_backward(dH, cache)
    singles = [layers.dense_backward(dH[n:n + 1], layers.dense_forward(X[n:n + 1], W, b,
                                                                        "sigmoid")[1])
               for n in range(N)]
    np.testing.assert_allclose(dW, sum(s[1] for s in singles), rtol=1e-12)
    np.testing.assert_allclose(db, sum(s[2] for s in singles), rtol=1e-12)
    np.testing.assert_allclose(dX, np.vstack([s[0] for s in singles]), rtol=1e-12)


def test_dense_does_not_mutate_inputs():
    X, W, b, dH = dense_problem(4)
    saved = [a.copy() for a in (X, W, b, dH)]
    _, cache = layers.dense_forward(X, W, b, "relu")
    layers.dense_backward(dH, cache)
    for a, a0 in zip((X, W, b, dH), saved):
        np.testing.assert_array_equal(a, a0)


# ---------------------------------------------------------------- shape errors
def test_bad_shapes_raise_helpful_errors():
    X, W, b, _ = dense_problem(5)
    with pytest.raises(ValueError, match=r"reshape\(1, -1\)"):
        layers.dense_forward(X[0], W, b)                    # one example as a 1-D vector
    with pytest.raises(ValueError, match=r"\(n_out, n_in\)"):
        layers.dense_forward(X, W.T, b)                     # W transposed
    with pytest.raises(ValueError, match=r"b must have shape \(n_out,\) = \(5,\)"):
        layers.dense_forward(X, W, b.reshape(-1, 1))        # b as a column
    with pytest.raises(ValueError, match="unknown activation"):
        layers.dense_forward(X, W, b, "softplus")


# ---------------------------------------------------------------- dropout
def test_dropout_drops_about_p_and_rescales_the_rest():
    p = 0.3
    X = np.random.default_rng(6).uniform(1.0, 2.0, size=(200, 50))
    out, mask = layers.dropout_forward(X, p, np.random.default_rng(0))
    dropped = out == 0
    assert abs(dropped.mean() - p) < 0.02                   # 10 000 units: ~4 standard errors
    np.testing.assert_allclose(out[~dropped], X[~dropped] / (1 - p), rtol=1e-15)
    assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}
    assert out.mean() == pytest.approx(X.mean(), rel=0.03)  # the expectation is kept


def test_dropout_eval_mode_and_p_zero_are_identity():
    X = np.random.default_rng(7).normal(size=(6, 4))
    for kwargs in ({"p": 0.5, "train": False}, {"p": 0.0, "train": True}):
        out, cache = layers.dropout_forward(X, rng=np.random.default_rng(0), **kwargs)
        np.testing.assert_array_equal(out, X)
        out[0, 0] = 99.0
        assert X[0, 0] != 99.0                             # a copy, not the input
        dout = np.random.default_rng(8).normal(size=X.shape)
        np.testing.assert_array_equal(layers.dropout_backward(dout, cache), dout)


def test_dropout_backward_uses_the_same_mask():
    p = 0.4
    rng = np.random.default_rng(9)
    X, dout = rng.normal(size=(8, 6)), rng.normal(size=(8, 6))
    out, mask = layers.dropout_forward(X, p, np.random.default_rng(1))
    dX = layers.dropout_backward(dout, mask)
    kept = mask != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_array_equal(dX[~kept], 0.0)
    np.testing.assert_allclose(dX[kept], dout[kept] / (1 - p), rtol=1e-15)
    # with the mask fixed dropout is linear, X ↦ X ⊙ mask: check by finite differences
    np.testing.assert_allclose(dX, fd_gradient(lambda t: np.sum(dout * t * mask), X), rtol=1e-6,
                               atol=1e-9)


def test_dropout_is_reproducible_by_seed_and_keeps_dtype():
    X = np.ones((10, 10), dtype=np.float32)
    out1, m1 = layers.dropout_forward(X, 0.5, np.random.default_rng(42))
    out2, m2 = layers.dropout_forward(X, 0.5, np.random.default_rng(42))
    out3, _ = layers.dropout_forward(X, 0.5, np.random.default_rng(43))
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(m1, m2)
    assert not np.array_equal(out1, out3)
    assert out1.dtype == np.float32
    np.testing.assert_array_equal(X, 1.0)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        layers.dropout_forward(np.ones((2, 2)), p, np.random.default_rng(0))
