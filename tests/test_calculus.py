"""Tests for solutions_lib.calculus: chain rule examples, small graphs and Jacobians.

The finite-difference reference below is deliberately local and independent of the
library (and of autograder.checks), so a bug there cannot hide a bug here.
"""
import numpy as np
import pytest

from solutions_lib import calculus as C
from solutions_lib.activations import sigmoid, sigmoid_grad, softmax, softmax_grad
from solutions_lib.layers import dense_backward, dense_forward


def fd_jacobian(f, x, h=1e-6):
    """Central-difference Jacobian (f(x).size, x.size) of f at x, in float64."""
    x = np.array(x, dtype=np.float64)
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        plus = np.asarray(f(x + e.reshape(x.shape)), dtype=np.float64).ravel()
        minus = np.asarray(f(x - e.reshape(x.shape)), dtype=np.float64).ravel()
        cols.append((plus - minus) / (2 * h))
    return np.stack(cols, axis=1)


def fd_elementwise(f, x, h=1e-6):
    """Central-difference derivative of an elementwise scalar function."""
    x = np.asarray(x, dtype=np.float64)
    return (f(x + h) - f(x - h)) / (2 * h)


XS = np.array([-1.3, -0.4, 0.1, 0.5, 0.9, 1.2])


# ---------------------------------------------------------------- multivariate chain rule
def test_chain_example_values_and_hand_derivative_at_half():
    x = 0.5
    y = np.sin(x) ** 4 * np.exp(x ** 3) + 5 * np.sin(x) + 7 * x ** 3
    assert C.chain_example(x) == pytest.approx(y, rel=1e-14)
    # 4 sin³x cos x e^{x³} + 3x² sin⁴x e^{x³} + 5 cos x + 21 x² at x = 0.5
    assert C.chain_example_grad(x) == pytest.approx(10.121138461031224, rel=1e-12)


def test_chain_example_grad_against_finite_differences():
    np.testing.assert_allclose(C.chain_example_grad(XS), fd_elementwise(C.chain_example, XS),
                               rtol=1e-7, atol=1e-8)
    assert C.chain_example_grad(XS.reshape(2, 3)).shape == (2, 3)


def test_product_example_and_hand_derivative_at_half():
    assert C.product_example(0.5) == pytest.approx(np.sin(0.5) * 0.125, rel=1e-14)
    # x³ cos x + 3x² sin x at x = 0.5
    assert C.product_example_grad(0.5) == pytest.approx(0.46926697418944885, rel=1e-12)
    np.testing.assert_allclose(C.product_example_grad(XS), fd_elementwise(C.product_example, XS),
                               rtol=1e-7, atol=1e-9)


def test_chain_examples_accept_integers_and_do_not_mutate():
    x = np.array([0, 1, 2])
    assert C.chain_example_grad(x).dtype == np.float64
    np.testing.assert_array_equal(x, [0, 1, 2])
    assert C.chain_example_grad(0) == pytest.approx(5.0)      # only the 5 z1 term survives


# ---------------------------------------------------------------- computation graph v = (x + y) z
def test_graph_known_numbers():
    v, cache = C.graph_forward(-2.0, 5.0, -4.0)
    assert v == -12.0                                          # q = 3
    dx, dy, dz = C.graph_backward(1.0, cache)
    assert (dx, dy, dz) == (-4.0, -4.0, 3.0)
    dx, dy, dz = C.graph_backward(0.5, cache)                  # the upstream gradient scales all
    assert (dx, dy, dz) == (-2.0, -2.0, 1.5)


def test_graph_backward_against_finite_differences():
    rng = np.random.default_rng(0)
    x, y, z, dv = rng.normal(size=4)
    _, cache = C.graph_forward(x, y, z)
    grads = C.graph_backward(dv, cache)
    inputs = np.array([x, y, z])
    J = fd_jacobian(lambda t: C.graph_forward(*t)[0], inputs)    # (1, 3)
    np.testing.assert_allclose(grads, dv * J[0], rtol=1e-7)


# ---------------------------------------------------------------- one sigmoid neuron
def test_neuron_forward_and_backward():
    w, x, b = np.array([0.3, -1.2, 2.0]), np.array([1.5, 0.4, -0.7]), 0.25
    f, cache = C.neuron_forward(w, x, b)
    assert f == pytest.approx(float(sigmoid(w @ x + b)))
    df = -1.7
    dw, dx, db = C.neuron_backward(df, cache)
    assert dw.shape == (3,) and dx.shape == (3,)
    np.testing.assert_allclose(dw, df * fd_jacobian(lambda t: C.neuron_forward(t, x, b)[0], w)[0],
                               rtol=1e-6)
    np.testing.assert_allclose(dx, df * fd_jacobian(lambda t: C.neuron_forward(w, t, b)[0], x)[0],
                               rtol=1e-6)
    fd_b = fd_jacobian(lambda t: C.neuron_forward(w, x, t[0])[0], [b])[0, 0]
    assert db == pytest.approx(df * fd_b, rel=1e-6)
    np.testing.assert_array_equal(w, [0.3, -1.2, 2.0])


def test_neuron_gives_the_numbers_of_doans_deck():
    # notebook 3's inputs reproduce the deck's ∂f/∂w₁ ≈ -0.24… and ∂f/∂x₁ ≈ 0.48…
    f, cache = C.neuron_forward(np.array([2.0, -3.0]), np.array([-1.0, -2.0]), -3.6)
    dw, dx, db = C.neuron_backward(1.0, cache)
    assert f == pytest.approx(0.598687660112452)
    assert -0.25 < dw[0] < -0.24 and 0.48 < dx[0] < 0.49
    assert dx[0] / dw[0] == pytest.approx(-2.0)


def test_neuron_at_zero_preactivation():
    # s = 0: f = 0.5 and σ'(0) = 0.25, so dw = 0.25 x and dx = 0.25 w
    w, x = np.array([2.0, -1.0]), np.array([1.0, 2.0])
    f, cache = C.neuron_forward(w, x, 0.0)
    assert f == 0.5
    dw, dx, db = C.neuron_backward(1.0, cache)
    np.testing.assert_allclose(dw, 0.25 * x)
    np.testing.assert_allclose(dx, 0.25 * w)
    assert db == 0.25
    with pytest.raises(ValueError):
        C.neuron_forward(w, np.ones(3), 0.0)


# ---------------------------------------------------------------- fork: gradients add up
@pytest.mark.parametrize("x, a, c", [(0.7, 1.5, -2.0), (-1.1, -0.3, 0.8), (0.2, 2.0, 3.0)])
def test_fork_backward_against_finite_differences(x, a, c):
    J, cache = C.fork_forward(x, a, c)
    assert J == pytest.approx(a * x ** 2 + np.sin(c * x ** 2))
    fd = fd_elementwise(lambda t: C.fork_forward(t, a, c)[0], x)
    assert C.fork_backward(cache) == pytest.approx(fd, rel=1e-7)
    # keeping only one branch ("=" instead of "+=") would give a different answer
    last_branch_only = np.cos(c * x ** 2) * c * 2 * x
    first_branch_only = a * 2 * x
    assert abs(C.fork_backward(cache) - last_branch_only) > 1e-3
    assert abs(C.fork_backward(cache) - first_branch_only) > 1e-3


def test_fork_works_elementwise():
    x = np.array([0.3, -0.8, 1.1])
    _, cache = C.fork_forward(x, 0.5, 1.5)
    np.testing.assert_allclose(C.fork_backward(cache),
                               fd_elementwise(lambda t: C.fork_forward(t, 0.5, 1.5)[0], x),
                               rtol=1e-7)


# ---------------------------------------------------------------- analytic Jacobians
Z = np.array([-2.0, -0.3, 0.4, 1.7, 3.0])


def test_sigmoid_jacobian():
    J = C.sigmoid_jacobian(Z)
    assert J.shape == (5, 5)
    np.testing.assert_allclose(J, fd_jacobian(sigmoid, Z), atol=1e-9)
    np.testing.assert_allclose(np.diag(J), sigmoid_grad(Z))
    assert np.count_nonzero(J - np.diag(np.diag(J))) == 0
    with pytest.raises(ValueError, match="1-D"):
        C.sigmoid_jacobian(Z.reshape(1, -1))


def test_affine_jacobians_are_W_and_identity():
    rng = np.random.default_rng(1)
    W, b, x = rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=5)
    J = C.affine_jacobian(W, x)
    assert J.shape == (3, 5)                          # numerator layout: (out, in)
    np.testing.assert_allclose(J, fd_jacobian(lambda t: W @ t + b, x), atol=1e-9)
    np.testing.assert_array_equal(C.affine_jacobian(W), W)
    J[0, 0] += 1.0
    assert W[0, 0] != J[0, 0]                         # a copy, not W itself
    Jb = C.affine_jacobian_wrt_b(3)
    np.testing.assert_allclose(Jb, fd_jacobian(lambda t: W @ x + t, b), atol=1e-9)
    with pytest.raises(ValueError, match="n_in"):
        C.affine_jacobian(W, np.ones(3))


def test_softmax_jacobian():
    J = C.softmax_jacobian(Z)
    assert J.shape == (5, 5)
    np.testing.assert_allclose(J, fd_jacobian(softmax, Z), atol=1e-9)
    np.testing.assert_allclose(J, J.T, atol=1e-15)
    np.testing.assert_allclose(J.sum(axis=1), 0.0, atol=1e-15)
    big = C.softmax_jacobian(np.array([1000.0, -1000.0, 0.0]))
    assert np.all(np.isfinite(big))


# ---------------------------------------------------------------- vector-Jacobian products
def test_vjp_is_transposed_jacobian_times_upstream():
    rng = np.random.default_rng(2)
    J, dout = rng.normal(size=(3, 4)), rng.normal(size=3)
    np.testing.assert_allclose(C.vjp_from_jacobian(J, dout), J.T @ dout)
    D = rng.normal(size=(6, 3))
    out = C.vjp_from_jacobian(J, D)
    assert out.shape == (6, 4)
    np.testing.assert_allclose(out, np.stack([J.T @ d for d in D]))
    square = rng.normal(size=(4, 4))                 # not symmetric: Jᵀ dout != J dout
    d4 = rng.normal(size=4)
    np.testing.assert_allclose(C.vjp_from_jacobian(square, d4), square.T @ d4)
    with pytest.raises(ValueError, match="n_out"):
        C.vjp_from_jacobian(J, rng.normal(size=4))


def test_vjp_matches_softmax_and_sigmoid_backward():
    dout = np.array([0.3, -1.2, 0.8, 2.0, -0.5])
    np.testing.assert_allclose(C.vjp_from_jacobian(C.softmax_jacobian(Z), dout),
                               softmax_grad(Z[None, :], dout[None, :])[0], atol=1e-15)
    np.testing.assert_allclose(C.vjp_from_jacobian(C.sigmoid_jacobian(Z), dout),
                               sigmoid_grad(Z) * dout, atol=1e-15)


def test_vjp_matches_dense_layer_backward():
    rng = np.random.default_rng(3)
    W, b, x = rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=5)
    dh = rng.normal(size=3)
    _, cache = dense_forward(x[None, :], W, b, "linear")
    dX, dW, db = dense_backward(dh[None, :], cache)
    np.testing.assert_allclose(C.vjp_from_jacobian(C.affine_jacobian(W, x), dh), dX[0])
    np.testing.assert_allclose(C.vjp_from_jacobian(C.affine_jacobian_wrt_b(3), dh), db)
    # with a sigmoid: chain the two Jacobians, then take the vjp
    _, cache = dense_forward(x[None, :], W, b, "sigmoid")
    dX, _, _ = dense_backward(dh[None, :], cache)
    J = C.sigmoid_jacobian(W @ x + b) @ C.affine_jacobian(W)
    np.testing.assert_allclose(C.vjp_from_jacobian(J, dh), dX[0], atol=1e-15)


def test_numerical_jacobian_is_reexported_from_the_autograder():
    from autograder import checks

    assert C.numerical_jacobian is checks.numerical_jacobian
    J = C.numerical_jacobian(softmax, Z.copy())
    assert J.shape == (5, 5)
    np.testing.assert_allclose(J, C.softmax_jacobian(Z), atol=1e-8)
