"""Tests for solutions_lib.generalisation: the L1 subgradient, shifted images, early stopping,
the hand-built ReLU interpolant and the deep tent map."""
import numpy as np
import pytest

from finite_differences import fd_gradient
from solutions_lib import generalisation as G


# ---------------------------------------------------------------- L1
def test_l1_penalty_value_and_scale():
    W = np.array([[1.5, -2.0, 0.0], [0.25, 0.0, -0.75]])
    assert G.l1_penalty(W, 0.1) == pytest.approx(0.1 * 4.5)
    assert G.l1_penalty(W, 0.0) == 0.0
    assert isinstance(G.l1_penalty(W, 0.3), float)


def test_l1_subgradient_matches_finite_differences_away_from_zero():
    rng = np.random.default_rng(3)
    W = rng.normal(size=(4, 7))
    W[np.abs(W) < 0.05] = 0.5                     # keep every entry well away from the kink
    lam = 0.37
    numeric = fd_gradient(lambda w: G.l1_penalty(w, lam), W)
    np.testing.assert_allclose(G.l1_penalty_grad(W, lam), numeric, rtol=1e-7, atol=1e-9)


def test_l1_subgradient_is_zero_at_zero_and_lies_between_the_one_sided_slopes():
    W = np.array([0.0, -0.0, 2.0, -3.0])
    lam = 0.5
    g = G.l1_penalty_grad(W, lam)
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.5, -0.5])
    h = 1e-6                                      # one-sided slopes of λ|w| at 0 are ±λ
    right = (G.l1_penalty([h], lam) - G.l1_penalty([0.0], lam)) / h
    left = (G.l1_penalty([0.0], lam) - G.l1_penalty([-h], lam)) / h
    assert -lam - 1e-9 <= left <= g[0] <= right <= lam + 1e-9


# ---------------------------------------------------------------- shift_images
def _digit_like(N=6, side=10, seed=0):
    """Images with ink only in the middle (a 3-pixel empty border), as uint8."""
    rng = np.random.default_rng(seed)
    imgs = np.zeros((N, side, side), dtype=np.uint8)
    imgs[:, 3:side - 3, 3:side - 3] = rng.integers(1, 256, size=(N, side - 6, side - 6))
    return imgs.reshape(N, side * side)


def test_shift_images_moves_each_image_by_the_drawn_pair_without_wrapping():
    X = _digit_like()
    y = np.arange(6)
    out, labels = G.shift_images(X, y, 2, np.random.default_rng(5))
    shifts = np.random.default_rng(5).integers(-2, 3, size=(6, 2))
    assert out.shape == X.shape and out.dtype == X.dtype
    np.testing.assert_array_equal(labels, y)
    for n, (dy, dx) in enumerate(shifts):
        img, got = X[n].reshape(10, 10), out[n].reshape(10, 10)
        want = np.zeros_like(img)
        for r in range(10):
            for c in range(10):
                if 0 <= r - dy < 10 and 0 <= c - dx < 10:
                    want[r, c] = img[r - dy, c - dx]
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(out.astype(np.int64).sum(axis=1), X.astype(np.int64).sum(axis=1))


def test_shift_images_cuts_off_what_leaves_the_image():
    X = np.zeros((1, 16))
    X[0, 15] = 1.0                                 # bottom-right pixel of a 4x4 image
    rng = np.random.default_rng(0)
    for _ in range(20):
        out, _ = G.shift_images(X, [0], 1, rng)
        assert out.sum() in (0.0, 1.0)             # moved inside, or gone; never wrapped to the top
        assert out.reshape(4, 4)[0].sum() == 0 and out.reshape(4, 4)[:, 0].sum() == 0


def test_shift_images_zero_shift_is_identity_and_leaves_inputs_alone():
    X = _digit_like(seed=1).astype(np.float32)
    before = X.copy()
    out, _ = G.shift_images(X, np.zeros(6), 0, np.random.default_rng(2))
    np.testing.assert_array_equal(out, X)
    np.testing.assert_array_equal(X, before)
    assert out is not X


def test_shift_images_uses_the_generator_once():
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    G.shift_images(_digit_like(), np.arange(6), 2, rng_a)
    rng_b.integers(-2, 3, size=(6, 2))
    assert rng_a.random() == rng_b.random()


def test_shift_images_rejects_non_square_rows():
    with pytest.raises(ValueError):
        G.shift_images(np.zeros((2, 10)), [0, 1], 1, np.random.default_rng(0))


# ---------------------------------------------------------------- early stopping
@pytest.mark.parametrize("losses, patience, expected", [
    ([3.0, 2.0, 1.5, 1.6, 1.7, 1.8, 1.2], 3, (3, 6)),
    ([3.0, 2.0, 1.5, 1.6, 1.7, 1.4, 1.8], 3, (6, 7)),       # a late new best resets the count
    ([1.0, 1.0, 1.0], 2, (1, 3)),                             # equal is not better
    ([5.0, 4.0, 3.0], 1, (3, 3)),                             # never stops early
    ([2.0], 4, (1, 1)),
])
def test_early_stopping_epoch(losses, patience, expected):
    assert G.early_stopping_epoch(losses, patience) == expected


# ---------------------------------------------------------------- the ReLU interpolant
def test_relu_interpolant_equals_np_interp_between_the_knots():
    rng = np.random.default_rng(4)
    knots = np.sort(rng.uniform(-3, 3, size=9))
    values = rng.normal(size=9)
    W, b, v, c = G.relu_interpolant(knots, values)
    assert W.shape == (8, 1) and b.shape == (8,) and v.shape == (8,) and isinstance(c, float)
    x = np.concatenate([knots, rng.uniform(knots[0], knots[-1], size=200)])
    np.testing.assert_allclose(G.relu_net(x, W, b, v, c), np.interp(x, knots, values), atol=1e-12)


def test_relu_interpolant_error_on_sin_falls_like_one_over_m_squared():
    x = np.linspace(-np.pi, np.pi, 2001)
    errors = []
    for m in (8, 16, 32, 64):
        knots = np.linspace(-np.pi, np.pi, m + 1)
        errors.append(np.max(np.abs(G.relu_net(x, *G.relu_interpolant(knots, np.sin(knots))) - np.sin(x))))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5)), ratios     # halving the spacing quarters the error
    assert errors[-1] < (2 * np.pi / 64) ** 2 / 8 + 1e-12      # the bound h² max|f''| / 8


def test_relu_interpolant_rejects_unsorted_knots():
    with pytest.raises(ValueError):
        G.relu_interpolant([0.0, 2.0, 1.0], [0.0, 1.0, 2.0])


def test_tent_map_depth_has_two_to_the_depth_pieces():
    x = np.linspace(0, 1, 2 ** 12 + 1)
    for depth in range(5):
        h = G.tent_map_depth(x, depth)
        slopes = np.round(np.diff(h) / np.diff(x), 6)
        pieces = 1 + int(np.sum(slopes[1:] != slopes[:-1]))
        assert pieces == 2 ** depth
        assert h.min() >= 0 and h.max() <= 1
