"""The denoising network of the notes, Wolter II, eqs. (15)–(17): a sigmoid layer and a linear read-out.

For one noisy signal x of length n and m hidden neurons the notes write

    h = σ(W x + b)        W (m, n), b (m,), h (m,)      Wolter II, eq. (15)
    y_net = W_y h         W_y (n, m), y_net (n,)        Wolter II, eq. (16)

Batch-first, with N signals as the rows of X (N, n) and their clean versions as the rows of T:

    H̄ = X Wᵀ + b          (N, m)
    H = σ(H̄)              (N, m)
    Y = H W_yᵀ            (N, n)
    loss = (1/N) Σ_k ½ ||Y_k − T_k||²            (``losses.mse``: averaged over the batch)

The backward pass, with Δ = dY the upstream gradient (N, n), Wolter II, eqs. (5)–(6) and (13):

    dW_y = Δᵀ H                        (n, m)
    dH   = Δ W_y                       (N, m)
    dH̄   = σ'(H̄) ⊙ dH = H (1 − H) ⊙ dH (N, m)
    dW   = dH̄ᵀ X,  db = Σ_k dH̄_k,  dX = dH̄ W

Training is plain gradient descent, Wolter II, eq. (17) with the sign of DESIGN.md: θ ← θ − ε ∇θ for
θ = W, b, W_y, from U[−0.1, 0.1] initial values, for 500 steps.
"""
import numpy as np

from .activations import sigmoid
from .losses import mse, mse_grad


def _check_shapes(X, W, b, Wy):
    if X.ndim != 2:
        raise ValueError(f"X must have shape (N, n), one signal per row; got {X.shape}. "
                         "For one signal use x.reshape(1, -1).")
    n = X.shape[1]
    if W.ndim != 2 or W.shape[1] != n:
        raise ValueError(f"W must have shape (m, n) = (m, {n}) to match X {X.shape}; got {W.shape}")
    m = W.shape[0]
    if b.shape != (m,):
        raise ValueError(f"b must have shape (m,) = ({m},); got {b.shape}")
    if Wy.shape != (n, m):
        raise ValueError(f"W_y must have shape (n, m) = ({n}, {m}); got {Wy.shape}")


def init_denoiser(n, m, rng=None, scale=0.1):
    """Initial parameters, every entry drawn from U[−scale, scale] (the notes' U[−0.1, 0.1]).

    Inputs: n, the signal length; m, the number of hidden neurons; rng, a numpy Generator or
    an int seed (None: seed 0); scale > 0. Draws W first, then b, then W_y.
    Returns (W, b, Wy): W (m, n), b (m,), Wy (n, m), float64.
    """
    if n < 1 or m < 1:
        raise ValueError(f"n and m must be positive; got n={n}, m={m}")
    rng = np.random.default_rng(0 if rng is None else rng)
    W = rng.uniform(-scale, scale, size=(m, n))
    b = rng.uniform(-scale, scale, size=m)
    Wy = rng.uniform(-scale, scale, size=(n, m))
    return W, b, Wy


def denoiser_forward(X, W, b, Wy):
    """Forward pass, Wolter II, eqs. (15)–(16) for a batch: Y = σ(X Wᵀ + b) W_yᵀ.

    Inputs: X (N, n) noisy signals, one per row; W (m, n); b (m,); Wy (n, m).
    Returns:
    - Y: (N, n) the denoised signals.
    - cache: (X, W, b, Wy, H) with H = σ(X Wᵀ + b) (N, m), for ``denoiser_backward``.
    """
    X, W, b, Wy = (np.asarray(a, dtype=np.float64) for a in (X, W, b, Wy))
    _check_shapes(X, W, b, Wy)
    H = sigmoid(X @ W.T + b)
    return H @ Wy.T, (X, W, b, Wy, H)


def denoiser_backward(dY, cache):
    """Backward pass: the gradients of a loss L from dY = ∂L/∂Y.

    Inputs: dY (N, n); cache from ``denoiser_forward``.
    Returns (dX, dW, db, dWy): (N, n), (m, n), (m,), (n, m), the shapes of X, W, b, Wy.
    """
    X, W, b, Wy, H = cache
    dY = np.asarray(dY, dtype=np.float64)
    dWy = dY.T @ H
    dZ = (dY @ Wy) * H * (1.0 - H)         # σ'(H̄) = σ(H̄)(1 − σ(H̄)) = H(1 − H), Wolter II, eq. (13)
    return dZ @ W, dZ.T @ X, dZ.sum(axis=0), dWy


def denoiser_step(X, T, W, b, Wy, lr):
    """One step of gradient descent on the batch MSE, Wolter II, eq. (17): θ ← θ − lr ∇θ.

    Inputs: X (N, n) noisy signals; T (N, n) the clean targets; W, b, Wy as in the forward
    pass; lr = ε > 0, the step size.
    Returns (W_new, b_new, Wy_new, loss): new arrays (the inputs are not changed), and the
    loss ``mse(Y, T)`` of the parameters *before* the step.
    """
    Y, cache = denoiser_forward(X, W, b, Wy)
    _, dW, db, dWy = denoiser_backward(mse_grad(Y, T), cache)
    return W - lr * dW, b - lr * db, Wy - lr * dWy, mse(Y, T)


def train_denoiser(X, T, m=16, steps=500, lr=0.1, rng=None):
    """Train a denoiser from U[−0.1, 0.1] initial values with ``steps`` gradient-descent steps.

    Inputs: X (N, n) noisy signals; T (N, n) clean targets; m hidden neurons; steps >= 1;
    lr > 0; rng, a numpy Generator or int seed for ``init_denoiser`` (None: seed 0).
    Returns ((W, b, Wy), losses): the trained parameters and the (steps,) array of the loss
    before each step.
    """
    X, T = np.asarray(X, dtype=np.float64), np.asarray(T, dtype=np.float64)
    if X.shape != T.shape:
        raise ValueError(f"X and T must have the same shape (N, n); got {X.shape} and {T.shape}")
    W, b, Wy = init_denoiser(X.shape[1], m, rng)
    losses = np.empty(steps)
    for k in range(steps):
        W, b, Wy, losses[k] = denoiser_step(X, T, W, b, Wy, lr)
    return (W, b, Wy), losses


def rmse(Y, T):
    """Root mean squared error over all entries, sqrt(mean((Y − T)²)): the per-sample error.

    A noisy input has an RMSE of about its noise level σ against the clean signal, so a
    denoiser is judged by how far below σ it brings it.
    """
    Y, T = np.asarray(Y, dtype=np.float64), np.asarray(T, dtype=np.float64)
    if Y.shape != T.shape:
        raise ValueError(f"Y and T must have the same shape; got {Y.shape} and {T.shape}")
    return float(np.sqrt(np.mean((Y - T) ** 2)))
