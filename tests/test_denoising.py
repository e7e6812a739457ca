"""Tests for solutions_lib.denoising (the notes' cosine denoiser) and datasets.noisy_cosines."""
import numpy as np
import pytest

from autograder.datasets import noisy_cosines
from finite_differences import fd_gradient
from solutions_lib import denoising, losses

N, n, m = 4, 7, 5     # distinct sizes: a transposed W or W_y cannot hide


def problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, n))
    W, b, Wy = (a * 10 for a in denoising.init_denoiser(n, m, rng))   # not all in σ's linear part
    return X, W, b, Wy, rng.normal(size=(N, n))


def test_init_is_uniform_in_the_notes_range_and_seeded():
    W, b, Wy = denoising.init_denoiser(64, 16, rng=3)
    assert W.shape == (16, 64) and b.shape == (16,) and Wy.shape == (64, 16)
    for a in (W, b, Wy):
        assert a.min() >= -0.1 and a.max() <= 0.1 and a.std() > 0.04
    again = denoising.init_denoiser(64, 16, rng=np.random.default_rng(3))
    assert all(np.array_equal(x, y) for x, y in zip((W, b, Wy), again))


def test_forward_is_eqs_15_and_16_row_by_row():
    X, W, b, Wy, _ = problem()
    Y, cache = denoising.denoiser_forward(X, W, b, Wy)
    assert Y.shape == (N, n)
    for k in range(N):
        h = 1.0 / (1.0 + np.exp(-(W @ X[k] + b)))
        np.testing.assert_allclose(Y[k], Wy @ h, rtol=1e-12)
    np.testing.assert_allclose(cache[4], 1.0 / (1.0 + np.exp(-(X @ W.T + b))), rtol=1e-12)


def test_backward_matches_finite_differences():
    X, W, b, Wy, dY = problem(1)
    _, cache = denoising.denoiser_forward(X, W, b, Wy)
    grads = denoising.denoiser_backward(dY, cache)
    args = [X, W, b, Wy]
    for i, g in enumerate(grads):
        def L(v, i=i):
            a = list(args)
            a[i] = v
            return float(np.sum(dY * denoising.denoiser_forward(*a)[0]))
        assert g.shape == args[i].shape
        np.testing.assert_allclose(g, fd_gradient(L, args[i]), rtol=1e-6, atol=1e-8)


def test_step_moves_against_the_gradient_and_leaves_inputs_alone():
    X, W, b, Wy, _ = problem(2)
    T = X * 0.5
    before = [a.copy() for a in (X, T, W, b, Wy)]
    W2, b2, Wy2, loss = denoising.denoiser_step(X, T, W, b, Wy, lr=0.01)
    assert all(np.array_equal(x, y) for x, y in zip(before, (X, T, W, b, Wy)))
    Y, cache = denoising.denoiser_forward(X, W, b, Wy)
    assert loss == pytest.approx(losses.mse(Y, T))
    _, dW, db, dWy = denoising.denoiser_backward(losses.mse_grad(Y, T), cache)
    np.testing.assert_allclose(W2, W - 0.01 * dW)
    np.testing.assert_allclose(b2, b - 0.01 * db)
    np.testing.assert_allclose(Wy2, Wy - 0.01 * dWy)
    Y2, _ = denoising.denoiser_forward(X, W2, b2, Wy2)
    assert losses.mse(Y2, T) < loss


def test_training_denoises_fresh_signals_far_below_the_noise_level():
    _, clean, noisy = noisy_cosines(N=100, n=64, noise=0.3, rng=0)
    (W, b, Wy), L = denoising.train_denoiser(noisy, clean, m=16, steps=500, lr=0.1, rng=1)
    assert L.shape == (500,) and L[-1] < 0.01 * L[0]
    _, clean2, noisy2 = noisy_cosines(N=200, n=64, noise=0.3, rng=99)
    Y, _ = denoising.denoiser_forward(noisy2, W, b, Wy)
    assert denoising.rmse(noisy2, clean2) == pytest.approx(0.3, rel=0.05)
    assert denoising.rmse(Y, clean2) < 0.06          # measured 0.039: 7.6 times less than the input's


def test_shape_errors_say_what_to_do():
    X, W, b, Wy, _ = problem()
    with pytest.raises(ValueError, match="reshape"):
        denoising.denoiser_forward(X[0], W, b, Wy)
    with pytest.raises(ValueError, match="W_y must have shape"):
        denoising.denoiser_forward(X, W, b, Wy.T)
    with pytest.raises(ValueError, match="same shape"):
        denoising.train_denoiser(X, X[:, :3])


def test_noisy_cosines_have_random_phases_and_the_asked_noise():
    t, clean, noisy = noisy_cosines(N=500, n=32, noise=0.2, rng=4)
    assert t.shape == (32,) and clean.shape == noisy.shape == (500, 32)
    np.testing.assert_allclose(np.sum(clean ** 2, axis=1), 16.0)   # every row a full period of cos(t + φ)
    assert np.std(clean[:, 0]) > 0.6                 # phases differ: cos(φ) spreads over [-1, 1]
    assert np.std(noisy - clean) == pytest.approx(0.2, rel=0.05)
    np.testing.assert_array_equal(noisy_cosines(rng=4)[2], noisy_cosines(rng=np.random.default_rng(4))[2])
    with pytest.raises(ValueError, match="N must be"):
        noisy_cosines(N=0)
    with pytest.raises(ValueError, match="noise"):
        noisy_cosines(noise=-1.0)
