"""Loss functions, their gradients, and weight penalties.

Conventions (see DESIGN.md):
- Batch-first: predictions and targets have shape (N, K), one row per example. A 1-D array of
  length K is one example, i.e. the batch of size 1.
- Every loss is *averaged over the batch* and summed over the K outputs of one example, so for
  N = 1 it is exactly the single-example formula of the notes.
- ``loss_grad(pred, y)`` is d loss / d pred, with the shape of ``pred``.
- Predictions and targets must have the same shape: a (N,) target against (N, 1) predictions
  would broadcast to an (N, N) matrix, so it raises a ValueError instead.
"""
import numpy as np

from .activations import sigmoid, softmax

#: Probabilities are clipped to [EPS, 1 - EPS] before a log, so log(0) never happens.
EPS = 1e-12


def _pair(pred, y, what):
    """Return (pred, y) as float arrays of one shape and the batch size N."""
    pred = np.asarray(pred)
    pred = pred if np.issubdtype(pred.dtype, np.floating) else pred.astype(np.float64)
    y = np.asarray(y, dtype=pred.dtype)
    if pred.shape != y.shape:
        raise ValueError(
            f"{what}: predictions have shape {pred.shape} but targets have shape {y.shape}; "
            "they must be equal (reshape, e.g. y.reshape(-1, 1), rather than let numpy broadcast)"
        )
    n = pred.shape[0] if pred.ndim > 1 else 1
    return pred, y, n


# ---------------------------------------------------------------- regression
def mse(h, y):
    """Mean squared error with the ½ of Wolter II, eq. (3), averaged over the batch.

    C = (1/N) Σ_n ½ ||y_n - h_n||².
    Inputs: h (N, K) network outputs, y (N, K) targets (or both (K,) for one example).
    Output: float.
    """
    h, y, n = _pair(h, y, "mse")
    d = h - y
    return float(0.5 * np.sum(d * d) / n)


def mse_grad(h, y):
    """Gradient of ``mse`` w.r.t. h: (h - y) / N, Wolter II, eq. (4) for N = 1. Shape of h."""
    h, y, n = _pair(h, y, "mse_grad")
    return (h - y) / n


# ---------------------------------------------------------------- binary classification
def binary_cross_entropy(p, y):
    """Cross-entropy of Wolter II, eq. (18) on probabilities p = σ(o), averaged over the batch.

    C = -(1/N) Σ_n Σ_k [ y ln p + (1 - y) ln(1 - p) ], with p clipped to [EPS, 1 - EPS]
    so that p = 0 or 1 gives a large finite loss instead of inf/NaN.
    Inputs: p (N, K) probabilities, y (N, K) targets in [0, 1]. Output: float.
    """
    p, y, n = _pair(p, y, "binary_cross_entropy")
    p = np.clip(p, EPS, 1.0 - EPS)
    return float(-np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p)) / n)


def binary_cross_entropy_grad(p, y):
    """Gradient of ``binary_cross_entropy`` w.r.t. p: (p - y) / (p (1 - p)) / N (p clipped)."""
    p, y, n = _pair(p, y, "binary_cross_entropy_grad")
    p = np.clip(p, EPS, 1.0 - EPS)
    return (p - y) / (p * (1.0 - p)) / n


def sigmoid_cross_entropy(o, y):
    """Cross-entropy of Wolter II, eq. (18) computed from the logits o, with p = σ(o) fused in.

    Uses -[y ln σ(o) + (1-y) ln(1-σ(o))] = max(o, 0) - y o + ln(1 + e^{-|o|}), which is
    finite for any o (no σ that rounds to exactly 0 or 1).
    Inputs: o (N, K) logits (pre-activations), y (N, K) targets in [0, 1]. Output: float.
    """
    o, y, n = _pair(o, y, "sigmoid_cross_entropy")
    return float(np.sum(np.maximum(o, 0.0) - y * o + np.log1p(np.exp(-np.abs(o)))) / n)


def sigmoid_cross_entropy_grad(o, y):
    """Gradient w.r.t. the logits: (σ(o) - y) / N, eq. (19) of Wolter II for N = 1.

    The σ'(o) of the chain rule cancels against the 1/(p(1-p)) of the loss: do not multiply
    by σ'(o) again.
    """
    o, y, n = _pair(o, y, "sigmoid_cross_entropy_grad")
    return (sigmoid(o) - y) / n


# ---------------------------------------------------------------- multi-class classification
def cross_entropy(p, y):
    """Categorical cross-entropy on probabilities: -(1/N) Σ_n Σ_k y_nk ln p_nk.

    Inputs: p (N, C) probabilities (rows sum to 1), y (N, C) one-hot targets. Output: float.
    p is clipped at EPS so a zero probability gives a large finite loss.
    """
    p, y, n = _pair(p, y, "cross_entropy")
    return float(-np.sum(y * np.log(np.clip(p, EPS, None))) / n)


def cross_entropy_grad(p, y):
    """Gradient of ``cross_entropy`` w.r.t. p: -y / p / N (p clipped at EPS)."""
    p, y, n = _pair(p, y, "cross_entropy_grad")
    return -y / np.clip(p, EPS, None) / n


def softmax_cross_entropy(z, y):
    """Categorical cross-entropy of softmax(z), computed stably from the logits z.

    ln softmax(z)_k = z_k - max(z) - ln Σ_j exp(z_j - max(z)).
    Inputs: z (N, C) logits, y (N, C) one-hot targets. Output: float.
    """
    z, y, n = _pair(z, y, "softmax_cross_entropy")
    shifted = z - np.max(z, axis=-1, keepdims=True)
    log_p = shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))
    return float(-np.sum(y * log_p) / n)


def softmax_cross_entropy_grad(z, y):
    """Gradient w.r.t. the logits: (softmax(z) - y) / N. Shape (N, C)."""
    z, y, n = _pair(z, y, "softmax_cross_entropy_grad")
    return (softmax(z) - y) / n


# ---------------------------------------------------------------- penalties
def l2_penalty(W, lam):
    """L2 weight penalty (λ/2) Σ W², as in J' = J + (λ/2) θᵀθ. Input: W any shape. Output: float."""
    W = np.asarray(W, dtype=float)
    return float(0.5 * lam * np.sum(W * W))


def l2_penalty_grad(W, lam):
    """Gradient of ``l2_penalty``: λ W (shape of W)."""
    return lam * np.asarray(W, dtype=float)


def l1_penalty(W, lam):
    """L1 weight penalty λ Σ |W|. Output: float."""
    return float(lam * np.sum(np.abs(np.asarray(W, dtype=float))))


def l1_penalty_grad(W, lam):
    """(Sub)gradient of ``l1_penalty``: λ sign(W), taking 0 at W = 0."""
    return lam * np.sign(np.asarray(W, dtype=float))
