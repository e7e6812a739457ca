"""Gradient-descent update rules: plain SGD, SGD with momentum, and Adam.

Two faces of the same formulas:

- Pure functions ``sgd_update``, ``momentum_update``, ``adam_update`` take a parameter array, its
  gradient and the optimizer state, and return *new* arrays. They never change their inputs, so
  they are what a notebook exercise asks for and what a test compares against.
- Small classes ``SGD``, ``Momentum``, ``Adam`` with one method ``step(params, grads)``. They own
  a dict of parameter arrays (for example ``{"W1": ..., "b1": ..., "W2": ...}``) and update it
  IN PLACE, keeping their state (velocities, moments, step count) per key. This is the one place
  where mutation is intended: a training loop then allocates nothing per step.

Each formula is written once, in a private ``_..._into`` function that writes its results into
given output arrays. The pure function calls it with freshly allocated outputs, the class with
the parameter and state arrays themselves as outputs, so the two can never disagree.

Shapes: ``w``, ``dw`` and every state array have one and the same shape (any shape).
Dtypes: float32 parameters stay float32 (Python-float hyperparameters do not upcast them).
"""
import math

import numpy as np


# ---------------------------------------------------------------- helpers
def _arrays(w, **others):
    """Return w and the named other inputs as arrays of one floating dtype, of w's shape."""
    arrays = [np.asarray(w)] + [np.asarray(a) for a in others.values()]
    dtype = np.result_type(*arrays)
    if not np.issubdtype(dtype, np.floating):
        dtype = np.float64
    arrays = [a.astype(dtype, copy=False) for a in arrays]
    for name, a in zip(others, arrays[1:]):
        if a.shape != arrays[0].shape:
            raise ValueError(f"{name} has shape {a.shape} but w has shape {arrays[0].shape}")
    return arrays


def _check_lr(lr):
    if not lr > 0:
        raise ValueError(f"the learning rate must be positive; got {lr}")


# ---------------------------------------------------------------- the formulas (written once)
def _sgd_into(w, dw, lr, out_w, tmp):
    """out_w = w - lr * dw.  ``tmp`` is a scratch array of w's shape (may not alias w or dw)."""
    np.multiply(dw, lr, out=tmp)
    np.subtract(w, tmp, out=out_w)


def _momentum_into(w, dw, v, lr, momentum, out_w, out_v, tmp):
    """out_v = momentum * v - lr * dw;  out_w = w + out_v.  (out_w may be w, out_v may be v.)"""
    np.multiply(dw, lr, out=tmp)
    np.multiply(v, momentum, out=out_v)
    np.subtract(out_v, tmp, out=out_v)
    np.add(w, out_v, out=out_w)


def _adam_scalars(t, lr, beta1, beta2, eps):
    """Fold Adam's bias corrections into two scalars.

    With m̂ = m / (1 - β1ᵗ) and v̂ = v / (1 - β2ᵗ),
        lr · m̂ / (√v̂ + ε)  =  step · m / (√v + ε_t)
    exactly, for step = lr √(1 - β2ᵗ) / (1 - β1ᵗ) and ε_t = ε √(1 - β2ᵗ). So the corrected
    moments never have to be stored as arrays.
    """
    if t < 1 or int(t) != t:
        raise ValueError(f"Adam's step count t starts at 1 and is an integer; got {t}")
    c2 = math.sqrt(1.0 - beta2 ** t)
    return lr * c2 / (1.0 - beta1 ** t), eps * c2


def _adam_into(w, dw, m, v, t, lr, beta1, beta2, eps, out_w, out_m, out_v, tmp):
    """One Adam step written into out_w, out_m, out_v (each may alias its input)."""
    step, eps_t = _adam_scalars(t, lr, beta1, beta2, eps)
    # m ← β1 m + (1 - β1) dw
    np.multiply(dw, 1.0 - beta1, out=tmp)
    np.multiply(m, beta1, out=out_m)
    np.add(out_m, tmp, out=out_m)
    # v ← β2 v + (1 - β2) dw²
    np.multiply(dw, dw, out=tmp)
    np.multiply(tmp, 1.0 - beta2, out=tmp)
    np.multiply(v, beta2, out=out_v)
    np.add(out_v, tmp, out=out_v)
    # w ← w - lr m̂ / (√v̂ + ε)   (= w - step · m / (√v + ε_t))
    np.sqrt(out_v, out=tmp)
    np.add(tmp, eps_t, out=tmp)
    np.divide(out_m, tmp, out=tmp)
    np.multiply(tmp, step, out=tmp)
    np.subtract(w, tmp, out=out_w)


# ---------------------------------------------------------------- pure functions
def sgd_update(w, dw, lr):
    """Plain gradient descent, W ← W − ε ∇W.

    Inputs: w parameters (any shape), dw gradient of the loss w.r.t. w (same shape), lr = ε > 0.
    Returns: w_new = w - lr * dw, a new array of w's shape. Nothing is modified.
    """
    _check_lr(lr)
    w, dw = _arrays(w, dw=dw)
    out = np.empty_like(w)
    _sgd_into(w, dw, lr, out, np.empty_like(w))
    return out


def momentum_update(w, dw, v, lr, momentum=0.9):
    """SGD with (heavy-ball) momentum, in the CS231n form.

        v_new = momentum * v - lr * dw
        w_new = w + v_new
    Inputs: w, dw, v (the velocity, zeros before the first step), all of one shape; lr > 0;
    momentum in [0, 1) (0 gives plain SGD).
    Returns: (w_new, v_new), new arrays. Nothing is modified.
    (PyTorch writes v ← μ v + dw, w ← w − lr v: the same trajectory for a constant lr.)
    """
    _check_lr(lr)
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1); got {momentum}")
    w, dw, v = _arrays(w, dw=dw, v=v)
    w_new, v_new = np.empty_like(w), np.empty_like(w)
    _momentum_into(w, dw, v, lr, momentum, w_new, v_new, np.empty_like(w))
    return w_new, v_new


def adam_update(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step of Adam (Kingma & Ba, 2015) with bias correction.

        m_new = β1 m + (1 - β1) dw              first moment (mean of the gradient)
        v_new = β2 v + (1 - β2) dw²             second moment (uncentred variance)
        m̂ = m_new / (1 - β1ᵗ),  v̂ = v_new / (1 - β2ᵗ)
        w_new = w - lr m̂ / (√v̂ + ε)
    Inputs: w, dw, m, v of one shape (m = v = 0 before the first step); t the number of this
    step, t = 1 on the first step; lr > 0; 0 <= beta1, beta2 < 1; eps > 0.
    Returns: (w_new, m_new, v_new), new arrays. Nothing is modified.
    On the first step m̂ = dw and v̂ = dw², so every weight moves by about lr · sign(dw).
    """
    _check_lr(lr)
    w, dw, m, v = _arrays(w, dw=dw, m=m, v=v)
    w_new, m_new, v_new = np.empty_like(w), np.empty_like(w), np.empty_like(w)
    _adam_into(w, dw, m, v, t, lr, beta1, beta2, eps, w_new, m_new, v_new, np.empty_like(w))
    return w_new, m_new, v_new


# ---------------------------------------------------------------- optimizer classes
class _Optimizer:
    """Base class: keeps per-parameter scratch and state arrays, created on the first step."""

    def __init__(self, lr):
        _check_lr(lr)
        self.lr = lr
        self._tmp = {}

    def _scratch(self, key, p):
        tmp = self._tmp.get(key)
        if tmp is None or tmp.shape != p.shape or tmp.dtype != p.dtype:
            tmp = self._tmp[key] = np.empty_like(p)
        return tmp

    @staticmethod
    def _check(params, grads):
        if set(grads) != set(params):
            raise ValueError(
                f"grads has keys {sorted(grads)} but params has keys {sorted(params)}"
            )
        for key, p in params.items():
            if not isinstance(p, np.ndarray) or not np.issubdtype(p.dtype, np.floating):
                raise TypeError(f"params[{key!r}] must be a floating numpy array to update in place")
            if np.shape(grads[key]) != p.shape:
                raise ValueError(
                    f"grads[{key!r}] has shape {np.shape(grads[key])}, params[{key!r}] {p.shape}"
                )

    def step(self, params, grads):
        """Update every array of the dict ``params`` in place from ``grads`` (same keys, shapes)."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class SGD(_Optimizer):
    """Plain gradient descent on a dict of parameters: p ← p − lr ∇p, in place."""

    def step(self, params, grads):
        """params: dict name -> array (modified in place); grads: dict name -> gradient array."""
        self._check(params, grads)
        for key, p in params.items():
            g = np.asarray(grads[key], dtype=p.dtype)
            _sgd_into(p, g, self.lr, p, self._scratch(key, p))


class Momentum(_Optimizer):
    """SGD with momentum (formula of ``momentum_update``); velocities start at zero."""

    def __init__(self, lr, momentum=0.9):
        super().__init__(lr)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")
        self.momentum = momentum
        self.velocity = {}

    def step(self, params, grads):
        """params: dict name -> array (modified in place); grads: dict name -> gradient array."""
        self._check(params, grads)
        for key, p in params.items():
            g = np.asarray(grads[key], dtype=p.dtype)
            v = self.velocity.get(key)
            if v is None:
                v = self.velocity[key] = np.zeros_like(p)
            _momentum_into(p, g, v, self.lr, self.momentum, p, v, self._scratch(key, p))


class Adam(_Optimizer):
    """Adam (formula of ``adam_update``); moments start at zero, ``t`` counts the steps taken."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"beta1 and beta2 must be in [0, 1); got {beta1}, {beta2}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m, self.v = {}, {}

    def step(self, params, grads):
        """params: dict name -> array (modified in place); grads: dict name -> gradient array."""
        self._check(params, grads)
        self.t += 1
        for key, p in params.items():
            g = np.asarray(grads[key], dtype=p.dtype)
            if key not in self.m:
                self.m[key], self.v[key] = np.zeros_like(p), np.zeros_like(p)
            m, v = self.m[key], self.v[key]
            _adam_into(p, g, m, v, self.t, self.lr, self.beta1, self.beta2, self.eps,
                       p, m, v, self._scratch(key, p))


#: Optimizer classes by name, for ``MLP(optimizer="adam")`` and friends.
OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make_optimizer(name, lr, **kwargs):
    """Return a fresh optimizer object by name ("sgd", "momentum", "adam")."""
    try:
        cls = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}") from None
    return cls(lr, **kwargs)
