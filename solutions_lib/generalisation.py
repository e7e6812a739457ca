"""Generalisation: penalties, data augmentation, early stopping and what one hidden layer can represent.

The reference for notebook 8. Regularisation, in the notes' words, is any change to a learning
algorithm that is meant to lower its generalisation error but not its training error.

- ``l1_penalty``, ``l1_penalty_grad``: λ Σ |W| and its subgradient λ sign(W) (the formulas live
  in ``losses``; they are re-exported here so that the notebook's tests find all of its
  references in one module).
- ``shift_images``: data augmentation by random shifts of whole images, labels unchanged.
- ``early_stopping_epoch``: the epoch whose weights early stopping keeps, and when it stops.
- ``relu_interpolant`` and ``relu_net``: a one-hidden-layer ReLU network built by hand that
  equals the piecewise-linear interpolation of a function between given knots; the
  constructive half of "enough hidden units can represent any continuous function".
- ``tent_map_depth``: a deep, narrow ReLU network with 2^L linear pieces from 2 L units.
"""
import math

import numpy as np

from .losses import l1_penalty, l1_penalty_grad  # noqa: F401  (re-exported)

__all__ = ["l1_penalty", "l1_penalty_grad", "shift_images", "early_stopping_epoch",
           "relu_interpolant", "relu_net", "tent_map_depth"]


# ---------------------------------------------------------------- data augmentation
def shift_images(images, labels, max_shift, rng):
    """Shift every square image by a random whole number of pixels; the labels stay as they are.

    For image n one pair (dy_n, dx_n) is drawn; all pairs come from a single call
    ``shifts = rng.integers(-max_shift, max_shift + 1, size=(N, 2))``, column 0 the shift down
    (rows), column 1 the shift right (columns). The shifted image is
    out[r, c] = image[r - dy, c - dx] where that pixel exists, and 0 where it would come from
    outside the image (nothing wraps around). The generator is drawn from even for
    max_shift = 0, so that the state it is left in does not depend on max_shift.

    Inputs:
    - images: (N, D) array, one flattened square image (D = side², e.g. 784 = 28²) per row,
      background 0 (raw pixels, before standardising).
    - labels: (N,) array of labels.
    - max_shift: int >= 0, the largest shift in either direction.
    - rng: a numpy.random.Generator.
    Returns (shifted, new_labels): shifted (N, D) of images' dtype, new arrays (the inputs are
    not changed); new_labels a copy of labels.
    """
    images = np.asarray(images)
    if images.ndim != 2:
        raise ValueError(f"images must have shape (N, D); got {images.shape}")
    N, D = images.shape
    side = math.isqrt(D)
    if side * side != D:
        raise ValueError(f"each row must be a flattened square image; D = {D} is not a square")
    if int(max_shift) != max_shift or max_shift < 0:
        raise ValueError(f"max_shift must be a whole number >= 0; got {max_shift}")
    s = int(max_shift)
    shifts = rng.integers(-s, s + 1, size=(N, 2))
    padded = np.zeros((N, side + 2 * s, side + 2 * s), dtype=images.dtype)
    padded[:, s:s + side, s:s + side] = images.reshape(N, side, side)
    out = np.empty((N, side, side), dtype=images.dtype)
    for n, (dy, dx) in enumerate(shifts):
        out[n] = padded[n, s - dy:s - dy + side, s - dx:s - dx + side]
    return out.reshape(N, D), np.array(labels, copy=True)


# ---------------------------------------------------------------- early stopping
def early_stopping_epoch(val_losses, patience):
    """Which epoch's weights early stopping keeps, and after which epoch it stops training.

    Epochs are counted from 1. An epoch is the new best when its validation loss is strictly
    lower than that of every epoch before it (so the first of several equal minima wins).
    Training stops after the first epoch e with e - best_epoch >= patience; if that never
    happens, all epochs run.

    Inputs: val_losses, a sequence of E >= 1 numbers (the validation loss after each epoch);
    patience, an int >= 1.
    Returns (best_epoch, stop_epoch), two ints with 1 <= best_epoch <= stop_epoch <= E.
    Only epochs up to stop_epoch are looked at: what comes later was never trained.
    """
    losses = [float(v) for v in val_losses]
    if not losses:
        raise ValueError("val_losses must hold at least one epoch")
    if patience < 1:
        raise ValueError(f"patience must be >= 1; got {patience}")
    best, best_loss = 1, losses[0]
    for epoch, loss in enumerate(losses[1:], start=2):
        if loss < best_loss:
            best, best_loss = epoch, loss
        elif epoch - best >= patience:
            return best, epoch
    return best, len(losses)


# ---------------------------------------------------------------- what one hidden layer can represent
def relu_net(x, W, b, v, c):
    """A network with one hidden layer of ReLU units and one linear output, for scalar inputs.

    f(x) = Σ_k v_k relu(W_k x + b_k) + c, i.e. the notes' h = relu(W x + b), out = vᵀ h + c.
    Inputs: x (M,) points; W (m, 1), b (m,), v (m,) for m hidden units; c a number.
    Output: f(x), shape (M,), float64.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    H = np.maximum(x @ np.asarray(W, dtype=np.float64).T + np.asarray(b, dtype=np.float64), 0.0)
    return H @ np.asarray(v, dtype=np.float64) + float(c)


def relu_interpolant(knots, values):
    """Weights of a one-hidden-layer ReLU network equal to the piecewise-linear interpolant.

    With knots x_0 < x_1 < ... < x_K and values y_k, segment k (from x_k to x_{k+1}) has slope
    s_k = (y_{k+1} - y_k) / (x_{k+1} - x_k). Unit k is relu(x - x_k): it switches on at x_k.
    The output weight of unit 0 is s_0 and that of unit k >= 1 is the change of slope
    s_k - s_{k-1} at x_k; the output bias is y_0. Then, for x_0 <= x <= x_K,

        f(x) = y_0 + Σ_{k=0}^{K-1} v_k relu(x - x_k)  equals  np.interp(x, knots, values).

    (Left of x_0 every unit is off and f = y_0; right of x_K the last slope continues.)
    Inputs: knots (K + 1,) strictly increasing, K >= 1; values (K + 1,).
    Returns (W, b, v, c): W (K, 1) all ones, b (K,) = -x_0 ... -x_{K-1}, v (K,), c = y_0 a float;
    all float64. Evaluate with ``relu_net``.
    """
    x = np.asarray(knots, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"knots and values must be 1-D of the same length >= 2; got {x.shape}, {y.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("knots must be strictly increasing")
    slopes = np.diff(y) / np.diff(x)
    v = np.diff(slopes, prepend=0.0)
    W = np.ones((len(slopes), 1))
    b = -x[:-1]
    return W, b, v, float(y[0])


def tent_map_depth(x, depth):
    """The tent map t(x) = 1 - |2x - 1| applied ``depth`` times, as a deep ReLU network.

    One hidden layer of two ReLU units computes t on [0, 1]: t(x) = 2 relu(x) - 4 relu(x - 1/2).
    Stacking ``depth`` such layers (2 * depth units in all) gives a sawtooth with 2^depth linear
    pieces; one hidden layer needs about 2^depth units for the same function.
    Inputs: x (M,) points in [0, 1]; depth >= 0. Output: (M,) float64.
    """
    h = np.asarray(x, dtype=np.float64)
    for _ in range(depth):
        h = 2.0 * np.maximum(h, 0.0) - 4.0 * np.maximum(h - 0.5, 0.0)
    return h
