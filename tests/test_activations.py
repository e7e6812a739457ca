"""Tests for solutions_lib.activations: values, derivatives, stability, dtypes."""
import warnings

import numpy as np
import pytest

from solutions_lib import activations as A
from finite_differences import fd_gradient

NAMES = sorted(set(A.ACTIVATIONS) - {"identity"})


def away_from_zero(rng, shape, low=0.1, high=3.0):
    """Random signed values with |z| >= low, so no kink (ReLU, step, leaky ReLU, ELU) is hit."""
    return rng.uniform(low, high, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def fd_elementwise(f, z, h=1e-6):
    return (f(z + h) - f(z - h)) / (2 * h)


# ---------------------------------------------------------------- derivatives
@pytest.mark.parametrize("name", NAMES)
def test_grad_matches_finite_differences(name):
    f, f_grad = A.get_activation(name)
    z = away_from_zero(np.random.default_rng(0), (4, 3))
    np.testing.assert_allclose(f_grad(z), fd_elementwise(f, z), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("f, f_grad", [(A.leaky_relu, A.leaky_relu_grad), (A.elu, A.elu_grad)])
def test_grad_with_custom_alpha(f, f_grad):
    z = away_from_zero(np.random.default_rng(1), (6,))
    g = fd_elementwise(lambda t: f(t, alpha=0.3), z)
    np.testing.assert_allclose(f_grad(z, alpha=0.3), g, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- known values
def test_sigmoid_known_values():
    assert A.sigmoid(0.0) == 0.5
    assert A.sigmoid_grad(0.0) == 0.25
    z = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(A.sigmoid(z), 1.0 / (1.0 + np.exp(-z)), rtol=1e-15)
    np.testing.assert_allclose(A.sigmoid(-z), 1.0 - A.sigmoid(z), atol=1e-15)


def test_tanh_is_a_rescaled_sigmoid():
    z = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(A.tanh(z), 2.0 * A.sigmoid(2.0 * z) - 1.0, atol=1e-14)
    np.testing.assert_allclose(A.tanh_grad(z), 4.0 * A.sigmoid_grad(2.0 * z), atol=1e-14)


def test_threshold_and_piecewise_linear_values():
    z = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(A.relu(z), [0.0, 0.0, 3.0])
    np.testing.assert_array_equal(A.relu_grad(np.array([-2.0, 3.0])), [0.0, 1.0])
    np.testing.assert_array_equal(A.sign(z), [-1.0, 1.0, 1.0])       # sign(0) = +1
    np.testing.assert_array_equal(A.step(z), [0.0, 1.0, 1.0])        # step(0) = 1
    np.testing.assert_array_equal(A.step_grad(z), 0.0)
    np.testing.assert_array_equal(A.sign_grad(z), 0.0)
    np.testing.assert_allclose(A.leaky_relu(z), [-0.02, 0.0, 3.0])
    np.testing.assert_allclose(A.leaky_relu(z, alpha=0.5), [-1.0, 0.0, 3.0])
    np.testing.assert_allclose(A.elu(z), [np.expm1(-2.0), 0.0, 3.0])
    np.testing.assert_array_equal(A.linear(z), z)
    np.testing.assert_array_equal(A.linear_grad(z), 1.0)


def test_get_activation():
    assert A.get_activation("relu") == (A.relu, A.relu_grad)
    with pytest.raises(ValueError, match="unknown activation"):
        A.get_activation("softplus")


# ---------------------------------------------------------------- numerical stability
def test_sigmoid_is_stable_at_large_logits():
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, g = A.sigmoid(z), A.sigmoid_grad(z)
        s32 = A.sigmoid(z.astype(np.float32))
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(g)) and np.all(np.isfinite(s32))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert 0.0 < s[1] < 1e-20 and s[3] == pytest.approx(1.0)
    np.testing.assert_array_equal(g[[0, -1]], 0.0)


def test_softmax_is_stable_at_large_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
    dout = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, -1.0], [2.0, 0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = A.softmax(z)
        g = A.softmax_grad(z, dout)
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    assert np.all(np.isfinite(g))


def test_other_activations_do_not_warn_at_large_inputs():
    z = np.array([-1000.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in NAMES:
            f, f_grad = A.get_activation(name)
            assert np.all(np.isfinite(f(z))) and np.all(np.isfinite(f_grad(z))), name


# ---------------------------------------------------------------- softmax
def test_softmax_rows_sum_to_one_and_shift_invariance():
    z = np.random.default_rng(2).normal(scale=3.0, size=(5, 4))
    s = A.softmax(z)
    assert s.shape == (5, 4)
    np.testing.assert_allclose(s.sum(axis=1), 1.0, rtol=1e-14)
    assert np.all(s > 0)
    np.testing.assert_allclose(A.softmax(z + 7.0), s, rtol=1e-12)
    e = np.exp(z)
    np.testing.assert_allclose(s, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(A.softmax(z.T, axis=0), s.T, rtol=1e-14)


def test_softmax_grad_is_the_jacobian_product():
    rng = np.random.default_rng(3)
    z, dout = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    g = A.softmax_grad(z, dout)
    for n in range(3):
        s = A.softmax(z[n])
        J = np.diag(s) - np.outer(s, s)              # ∂s_i/∂z_j
        np.testing.assert_allclose(g[n], J.T @ dout[n], atol=1e-15)
    # and against finite differences of the scalar Σ dout ⊙ softmax(z)
    np.testing.assert_allclose(g, fd_gradient(lambda t: np.sum(dout * A.softmax(t)), z),
                               rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- inputs, dtypes
ALL_FUNCS = [A.step, A.step_grad, A.sign, A.sign_grad, A.linear, A.linear_grad, A.sigmoid,
             A.sigmoid_grad, A.tanh, A.tanh_grad, A.relu, A.relu_grad, A.leaky_relu,
             A.leaky_relu_grad, A.elu, A.elu_grad, A.softmax]


@pytest.mark.parametrize("f", ALL_FUNCS, ids=lambda f: f.__name__)
def test_input_is_never_mutated(f):
    z = np.array([[-1.5, 0.0, 2.0], [0.3, -0.7, 4.0]])
    z0 = z.copy()
    out = f(z)
    np.testing.assert_array_equal(z, z0)
    out[...] = 123.0                                  # the result is not a view of the input
    np.testing.assert_array_equal(z, z0)


def test_softmax_grad_does_not_mutate():
    z, dout = np.array([[1.0, 2.0, 3.0]]), np.array([[0.5, -1.0, 2.0]])
    z0, d0 = z.copy(), dout.copy()
    A.softmax_grad(z, dout)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(dout, d0)


@pytest.mark.parametrize("f", ALL_FUNCS, ids=lambda f: f.__name__)
def test_float32_stays_float32(f):
    z = np.array([[-1.5, 0.0, 2.0]], dtype=np.float32)
    assert f(z).dtype == np.float32
    assert A.softmax_grad(z, np.ones_like(z) * np.float32(0.5)).dtype == np.float32


@pytest.mark.parametrize("f", ALL_FUNCS, ids=lambda f: f.__name__)
def test_integer_input_works(f):
    zi = np.array([[-2, 0, 3]])
    out = f(zi)
    assert np.issubdtype(out.dtype, np.floating)
    np.testing.assert_allclose(out, f(zi.astype(np.float64)))
