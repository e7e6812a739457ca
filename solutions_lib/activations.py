"""Activation functions and their derivatives.

Every function works elementwise on an array of any shape (softmax: along the last axis),
returns a new array, never changes its input, and keeps the input's floating dtype
(integers become float64).

Naming: ``f(z)`` is the activation, ``f_grad(z)`` its derivative df/dz evaluated at the
*pre-activation* z (the h̄ of the notes), so the backward pass of a layer is
``dz = f_grad(z) * dh``.
"""
import numpy as np


def _float(z):
    """Return z as a float array (float64 unless it already is a float type)."""
    z = np.asarray(z)
    return z if np.issubdtype(z.dtype, np.floating) else z.astype(np.float64)


# ---------------------------------------------------------------- threshold units
def step(z):
    """Heaviside step: 1 where z >= 0, else 0.

    Input: z, array of any shape. Output: array of z's shape.
    """
    z = _float(z)
    return (z >= 0).astype(z.dtype)


def step_grad(z):
    """Derivative of the step function: 0 everywhere (undefined at 0, taken as 0).

    This is why a network of step units cannot be trained by gradient descent.
    """
    return np.zeros_like(_float(z))


def sign(z):
    """Sign unit of the perceptron: +1 where z >= 0, else -1 (note: sign(0) = +1).

    Input: z, array of any shape. Output: array of z's shape with values in {-1, +1}.
    """
    z = _float(z)
    return np.where(z >= 0, 1.0, -1.0).astype(z.dtype)


def sign_grad(z):
    """Derivative of the sign unit: 0 everywhere (0 at the jump by convention)."""
    return np.zeros_like(_float(z))


# ---------------------------------------------------------------- linear
def linear(z):
    """Identity activation f(z) = z (a neuron without a nonlinearity). Returns a copy."""
    return _float(z).copy()


def linear_grad(z):
    """Derivative of the identity: 1 everywhere."""
    return np.ones_like(_float(z))


# ---------------------------------------------------------------- smooth units
def sigmoid(z):
    """Logistic sigmoid σ(z) = 1 / (1 + exp(-z)), stable for any z (no overflow at ±1000).

    For z >= 0 it evaluates 1 / (1 + e^{-z}); for z < 0 the equal form e^{z} / (1 + e^{z}),
    so exp never sees a large positive argument.
    Input: z, array of any shape. Output: array of z's shape, values in [0, 1].
    """
    z = _float(z)
    e = np.exp(-np.abs(z))                       # in (0, 1]: never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def sigmoid_grad(z):
    """σ'(z) = σ(z) (1 - σ(z)), Wolter I, eq. (8) = Wolter II, eq. (13); σ'(0) = 0.25."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """Hyperbolic tangent, tanh(z) = 2σ(2z) - 1. Output in [-1, 1], shape of z."""
    return np.tanh(_float(z))


def tanh_grad(z):
    """tanh'(z) = 1 - tanh(z)^2."""
    t = np.tanh(_float(z))
    return 1.0 - t * t


def relu(z):
    """Rectified linear unit max(0, z). Output has z's shape."""
    z = _float(z)
    return np.maximum(z, 0.0).astype(z.dtype, copy=False)


def relu_grad(z):
    """ReLU'(z) = H(z), the Heaviside step (Wolter I, eq. (9) = Wolter II, eq. (14)):
    1 where z > 0, else 0.

    At the kink z = 0 any value in [0, 1] is a valid subgradient; we use 0 (as PyTorch does).
    Virtue's and Doan's decks write 1 for z >= 0, i.e. 1 at the kink, which is as valid.
    """
    z = _float(z)
    return (z > 0).astype(z.dtype)


def leaky_relu(z, alpha=0.01):
    """Leaky ReLU (Doan's deck): z where z >= 0, alpha * z elsewhere. ``alpha`` is the negative slope."""
    z = _float(z)
    return np.where(z >= 0, z, alpha * z).astype(z.dtype, copy=False)


def leaky_relu_grad(z, alpha=0.01):
    """Derivative of leaky ReLU: 1 where z >= 0, alpha elsewhere."""
    z = _float(z)
    return np.where(z >= 0, 1.0, alpha).astype(z.dtype)


def elu(z, alpha=1.0):
    """Exponential linear unit (Doan's deck): z where z >= 0, alpha (e^z - 1) elsewhere."""
    z = _float(z)
    return np.where(z >= 0, z, alpha * np.expm1(np.minimum(z, 0.0))).astype(z.dtype, copy=False)


def elu_grad(z, alpha=1.0):
    """Derivative of ELU: 1 where z >= 0, alpha e^z elsewhere."""
    z = _float(z)
    return np.where(z >= 0, 1.0, alpha * np.exp(np.minimum(z, 0.0))).astype(z.dtype, copy=False)


# ---------------------------------------------------------------- softmax
def softmax(z, axis=-1):
    """Softmax along ``axis`` (default: the last, i.e. per row of a (N, C) batch).

    softmax(z)_i = exp(z_i) / sum_j exp(z_j). Shifting z by its maximum first leaves the
    result unchanged and keeps exp from overflowing, so logits of ±1000 are fine.
    Input: z of shape (..., C). Output: same shape, each slice along ``axis`` sums to 1.
    """
    z = _float(z)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_grad(z, dout):
    """Backward pass of softmax along the last axis (a vector-Jacobian product).

    Softmax is not elementwise, so its derivative is a Jacobian diag(s) - s sᵀ per row;
    applied to an upstream gradient this is  dz = s ⊙ (dout - Σ_j dout_j s_j).
    Inputs: z (N, C) logits, dout (N, C) gradient of the loss w.r.t. softmax(z).
    Output: dz (N, C).
    """
    s = softmax(z)
    return s * (dout - np.sum(dout * s, axis=-1, keepdims=True))


#: The elementwise activations by name, as (f, f_grad) pairs. Layers look them up here.
ACTIVATIONS = {
    "linear": (linear, linear_grad),
    "identity": (linear, linear_grad),
    "sigmoid": (sigmoid, sigmoid_grad),
    "tanh": (tanh, tanh_grad),
    "relu": (relu, relu_grad),
    "leaky_relu": (leaky_relu, leaky_relu_grad),
    "elu": (elu, elu_grad),
    "step": (step, step_grad),
    "sign": (sign, sign_grad),
}


def get_activation(name):
    """Return the pair (f, f_grad) for an activation name such as "sigmoid" or "relu"."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None
