"""The dense layer and dropout, forward and backward.

The notes write one example as a column vector: h̄ = W x + b, h = f(h̄), with W of shape
(n_out, n_in). Code works on a batch of N examples stored as *rows* of X (N, n_in), so the
same layer reads H̄ = X Wᵀ + b, H = f(H̄), H̄ and H of shape (N, n_out). Row n of H̄ is exactly
(W x_n + b)ᵀ: nothing changes but the layout.

The backward pass, Wolter II, eqs. (5)–(6), with Δ = dH the upstream gradient (N, n_out):
    dH̄ = f'(H̄) ⊙ Δ                   (N, n_out)
    dW = dH̄ᵀ X                        (n_out, n_in)   -- Wolter II, eq. (5): [f'(h̄) ⊙ Δ] xᵀ, summed over rows
    db = Σ_n dH̄_n                     (n_out,)        -- Wolter II, eq. (5), summed over the batch
    dX = dH̄ W                         (N, n_in)       -- Wolter II, eq. (6): Wᵀ [f'(h̄) ⊙ Δ], as rows
Summing over the batch in dW and db is right because the loss is already averaged over the
batch (its gradient carries the 1/N).
"""
import numpy as np

from .activations import _float, get_activation


def _check_dense_shapes(X, W, b):
    if X.ndim != 2:
        raise ValueError(
            f"X must have shape (N, n_in), one example per row; got shape {X.shape}. "
            "For a single example use x.reshape(1, -1)."
        )
    if W.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(
            f"W must have shape (n_out, n_in) = (n_out, {X.shape[1]}) to match X {X.shape}; "
            f"got {W.shape}"
        )
    if b.shape != (W.shape[0],):
        raise ValueError(f"b must have shape (n_out,) = ({W.shape[0]},); got {b.shape}")


def dense_forward(X, W, b, activation="linear"):
    """Forward pass of a dense layer, H = f(X Wᵀ + b).

    Inputs:
    - X: (N, n_in) inputs, one example per row.
    - W: (n_out, n_in) weights (the notes' layout).
    - b: (n_out,) biases.
    - activation: name of f, e.g. "linear", "sigmoid", "relu", "tanh".
    Returns:
    - H: (N, n_out) outputs.
    - cache: (X, W, b, Z, activation) with Z = X Wᵀ + b (N, n_out), for the backward pass.
    """
    X, W, b = np.asarray(X), np.asarray(W), np.asarray(b)
    _check_dense_shapes(X, W, b)
    f, _ = get_activation(activation)
    Z = X @ W.T + b
    return f(Z), (X, W, b, Z, activation)


def dense_backward(dH, cache):
    """Backward pass of a dense layer, Wolter II, eqs. (5)–(6) batch-first.

    Inputs:
    - dH: (N, n_out) upstream gradient Δ = dLoss/dH.
    - cache: from ``dense_forward``.
    Returns (dX, dW, db):
    - dX: (N, n_in), dW: (n_out, n_in), db: (n_out,).
    """
    X, W, b, Z, activation = cache
    _, f_grad = get_activation(activation)
    dZ = f_grad(Z) * dH
    return dZ @ W, dZ.T @ X, dZ.sum(axis=0)


def dropout_forward(X, p, rng, train=True):
    """Inverted dropout: during training zero each unit with probability p, scale the rest by 1/(1-p).

    Scaling at training time keeps the expected activation unchanged, so at test time the layer
    is the identity.
    Inputs:
    - X: array of any shape (usually (N, n_units)).
    - p: drop probability, 0 <= p < 1.
    - rng: a numpy.random.Generator (seeded by the caller, so runs are reproducible).
    - train: False at evaluation time (then nothing is dropped).
    Returns:
    - out: array of X's shape.
    - cache: the mask (X's shape, values 0 or 1/(1-p)), or None when nothing was dropped.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability p must be in [0, 1); got {p}")
    X = _float(X)
    if not train or p == 0.0:
        return X.copy(), None
    mask = (rng.random(X.shape) >= p).astype(X.dtype) / X.dtype.type(1.0 - p)
    return X * mask, mask


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout: dX = dout ⊙ mask (the same units, the same scale).

    Inputs: dout, upstream gradient of the output's shape; cache from ``dropout_forward``.
    Output: dX, same shape.
    """
    dout = np.asarray(dout)
    return dout.copy() if cache is None else dout * cache
