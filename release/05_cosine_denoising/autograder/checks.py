"""Checks that the notebooks' test cells call.

Students have this module, so it contains no reference solution: every check compares a
student's result with *numerical differentiation of a forward function that is passed in*
(in visible tests the student's own forward pass, in hidden tests the reference one), with
known values written in the test cell, or with a reference function passed in.

When a check fails it raises ``AssertionError`` with a message a student can act on
("dW has shape (7, 5) but should have shape (5, 7): it is transposed ..."). Messages never
reveal expected values: only shapes, sizes of errors and the worst index.

Main entry points
-----------------
numerical_gradient(f, x)                 central differences of a scalar function, float64
numerical_jacobian(f, x)                 (m, n) Jacobian in numerator layout
relative_error(a, b)                     max |a - b| / max(|a|, |b|)
check_shape(actual, shape), check_dtype(actual, dtype), check_finite(actual)
check_close(actual, expected, name)      a value against a known one
check_forward(fn, reference, args)       an output against a reference function's output or a value
call(fn, *args)                          a student's result, with the same failure messages
check_activation(f, f_grad)              an elementwise derivative against f
check_gradient(f, grad, x)               a scalar function's gradient
check_jacobian(f, jac, x)                a Jacobian
check_gradients(forward, grads, inputs, dout)   gradients of sum(dout * forward(**inputs))
check_layer(forward, backward, inputs)   a (forward, backward) pair in the (out, cache) style
check_dense_backward(forward, backward)  a dense layer f(X Wᵀ + b), with bug diagnosis

Gradient checks have two modes: ``mode="full"`` compares every entry (arrays up to
``FULL_MAX_ENTRIES`` entries; larger ones in blocks of rows, each block along a random
direction), ``mode="fast"`` compares a few random directional derivatives (for big layers).
``mode="auto"`` is full for small arrays and fast for big ones.
"""
import contextlib
import inspect
import math
import re
import sys
import warnings

import numpy as np

try:                                   # small matrix products are fastest on one BLAS thread;
    from threadpoolctl import ThreadpoolController  # waking idle OpenBLAS threads between the
except ImportError:                    # many tiny calls of a gradient check costs 10x
    ThreadpoolController = None
_controller = []                       # created on first use: it scans the loaded libraries


def _one_blas_thread():
    """Context in which BLAS uses one thread (a no-op without threadpoolctl)."""
    if ThreadpoolController is None:
        return contextlib.nullcontext()
    if not _controller:
        _controller.append(ThreadpoolController())
    return _controller[0].limit(limits=1, user_api="blas")

__all__ = [
    "numerical_gradient", "numerical_jacobian", "relative_error", "diagnose",
    "check_shape", "check_dtype", "check_finite", "check_close", "check_forward", "check_activation",
    "check_gradient", "check_jacobian", "check_gradients", "check_layer",
    "check_dense_backward", "not_implemented_message", "call", "raised_by", "Tally",
]

#: Central-difference step. In float64 it gives ~1e-10 relative error on smooth functions.
H = 1e-5
#: Gradients with at most this many entries in all are checked entry by entry in "full" mode.
FULL_MAX_ENTRIES = 4096
#: Larger arrays are split into at most this many blocks of rows in "full" mode.
FULL_BLOCKS = 16
#: Number of random directions in "fast" mode.
FAST_DIRECTIONS = 5
#: Relative tolerance by the precision of the student's result.
RTOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 2e-3, np.dtype(np.float16): 5e-2}


# ====================================================================== calling student code
def not_implemented_message(name):
    """The message every check gives for a function that still raises NotImplementedError."""
    return (f"{name} is not implemented yet: replace `raise NotImplementedError()` in its "
            "cell with your code, run that cell, then run this test again.")


def _name(fn):
    return getattr(fn, "__name__", None) or "your function"


def raised_by(err, fallback=None):
    """Name of the function whose body raised ``err``: the innermost frame of its traceback.

    When a test calls ``lambda X, W, b: dense_forward(X, W, b, "relu")`` the message should
    name ``dense_forward``, not the lambda.
    """
    where = getattr(err, "__nn_raised_in__", None)      # raised in the student's process (grading)
    if where:
        return where if not where.startswith("<") else fallback
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_code.co_name if tb is not None else None
    return name if name and not name.startswith("<") else fallback


def _call(fn, *args, **kwargs):
    """Call student code. Returns (result, warnings it emitted).

    NotImplementedError becomes a short AssertionError; other errors propagate unchanged so
    the student sees their own traceback.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn(*args, **kwargs)
        except NotImplementedError as err:
            raise AssertionError(not_implemented_message(raised_by(err, _name(fn)))) from None
    return result, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def call(fn, *args):
    """Call ``fn(*args)`` the way every check does, and return its result.

    For test cells that need a student's result to test it further (a trained perceptron,
    a truth table): a function that still raises ``NotImplementedError`` gives the short
    "not implemented yet" failure, one that changes its arguments in place or returns None
    fails with a message saying so. The arguments are passed as copies.
    """
    return _call_checked(fn, args, _name(fn))[0]


def _arg_names(fn, n):
    """Names of the first n positional parameters of fn ("argument i" where unknown)."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"argument {i}" for i in range(n)]


def _call_checked(fn, args, name, arg_names=None):
    """Call student code on copies of ``args``; fail if it changes an argument or returns None.

    Returns (result, the RuntimeWarnings it emitted).
    """
    args = tuple(args)
    mine = _copy_tree(args)
    result, warned = _call(fn, *mine)
    arg_names = arg_names or _arg_names(fn, len(args))
    for before, after, arg in zip(args, mine, arg_names):
        if _mutated(before, after):
            _fail(_mutation_message(name, arg))
    if result is None:
        _fail(_none_message(f"the result of {name}"))
    return result, warned


def _none_message(what):
    """The one message for a result that is None: the function has no ``return`` (or returns nothing)."""
    return f"{what} is None: did you forget `return`?"


def _fail(messages):
    if isinstance(messages, str):
        messages = [messages]
    raise AssertionError("\n".join(messages))


def _copy_tree(x):
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, dict):
        return {k: _copy_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_copy_tree(v) for v in x)
    return x


def _mutated(before, after):
    """True if an array (or a container of arrays) changed."""
    if isinstance(before, np.ndarray):
        return not (isinstance(after, np.ndarray) and before.shape == after.shape
                    and (np.array_equal(before, after)        # fast; NaN-aware only if needed
                         or np.array_equal(before, after, equal_nan=True)))
    if isinstance(before, dict):
        return any(_mutated(before[k], after.get(k)) for k in before)
    if isinstance(before, (list, tuple)):
        return any(_mutated(b, a) for b, a in zip(before, after))
    return False


def _mutation_message(fn_name, arg_name):
    return (f"{fn_name} changed its input `{arg_name}` in place (for example with `{arg_name} *= ...`, "
            f"`{arg_name}[...] = ...` or `np.exp(..., out={arg_name})`). The caller still needs "
            "the original: compute into a new array instead (`d = dout * ...`).")


def _as_float_array(x):
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


# ====================================================================== numerical differentiation
def numerical_gradient(f, x, h=H):
    """Central-difference gradient of a scalar function, entry by entry, in float64.

    df/dx_i ≈ (f(x + h e_i) - f(x - h e_i)) / (2h).
    Inputs: f, a function of an array of x's shape returning a number; x, array of any shape.
    Output: array of x's shape (float64). x is not changed.
    """
    x = np.array(x, dtype=np.float64)          # a private copy that we perturb and restore
    grad = np.empty_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = float(f(x))
        flat[i] = old - h
        fm = float(f(x))
        flat[i] = old
        gflat[i] = (fp - fm) / (2.0 * h)
    return grad


def numerical_jacobian(f, x, h=H):
    """Central-difference Jacobian in numerator layout, in float64.

    J[i, j] = ∂f_i / ∂x_j ≈ (f(x + h e_j) - f(x - h e_j))_i / (2h), one pair of calls per
    input entry, each call giving a whole column.
    Inputs: f, a function of an array of x's shape returning an array (any shape, m entries);
    x, array of any shape (n entries). Output: (m, n) array. x is not changed.
    """
    x = np.array(x, dtype=np.float64)
    flat = x.reshape(-1)
    columns = []
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + h
        fp = np.array(f(x), dtype=np.float64).reshape(-1)
        flat[j] = old - h
        fm = np.array(f(x), dtype=np.float64).reshape(-1)
        flat[j] = old
        columns.append((fp - fm) / (2.0 * h))
    return np.stack(columns, axis=1)


def relative_error(a, b):
    """Largest entrywise difference relative to the largest magnitude: max|a-b| / max(|a|, |b|).

    0 for equal arrays, about 1 for unrelated ones; robust to entries near zero.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0))
    return 0.0 if scale == 0.0 else float(np.max(np.abs(a - b), initial=0.0) / scale)


# ====================================================================== diagnosis
def _fmt_index(idx):
    return "(" + ", ".join(str(int(i)) for i in idx) + ")" if len(idx) != 1 else f"[{int(idx[0])}]"


def _factor_advice(name, c, batch_size, named_only=False):
    """Words for a result that is c times the expected one, or None if c is unremarkable.

    named_only: only speak of the telling factors (-1, N, 1/N, 2, ½); for a single number any
    other "≈ c" would give the expected value away.
    """
    def near(v):
        return abs(c - v) <= 1e-3 * max(1.0, abs(v))
    if near(-1):
        return (f"{name} has the wrong sign: it is exactly -1 times the expected value. Check the "
                "order of a difference (h - y, not y - h) and, in an update, that you subtract.")
    if batch_size and batch_size > 2 and near(batch_size):
        return (f"{name} is {batch_size} times too large, exactly the batch size: the loss is "
                "averaged over the batch, so its gradient carries a 1/N. Did you sum instead of "
                "average (or forget to divide by N)?")
    if batch_size and batch_size > 2 and near(1.0 / batch_size):
        return (f"{name} is {batch_size} times too small, exactly the batch size: you divided by N "
                "once too often (the 1/N comes from the loss only, layers do not add another).")
    if near(2):
        return (f"{name} is exactly twice the expected value: is the ½ of the squared error "
                "(eq. 3) missing, or is something counted twice?")
    if near(0.5):
        return (f"{name} is exactly half the expected value: an extra ½, or the 2 from "
                "differentiating a square is missing.")
    if near(-2) or near(-0.5):
        return f"{name} is {c:g} times the expected value: both the sign and a factor 2 are off."
    if abs(c) > 1e-3 and not near(1) and not named_only:
        return f"{name} is the expected value times a constant ≈ {c:.4g}: look for a stray factor."
    return None


def _ratio_advice(name, actual, expected):
    """Words for a result that is the expected one scaled entry by entry (a stray factor)."""
    big = np.abs(expected) > 1e-3 * np.max(np.abs(expected))
    if np.count_nonzero(big) < 3:
        return None
    r = actual[big] / expected[big]
    zero_or_one = (np.abs(r) < 1e-6) | (np.abs(r - 1) < 1e-6)
    if np.all(zero_or_one) and np.any(np.abs(r) < 1e-6):
        n0 = int(np.count_nonzero(np.abs(r) < 1e-6))
        return (f"{name} is right in some entries and 0 in {n0} others: a mask zeroes entries "
                "it should keep. If this is a ReLU, take the mask from the pre-activation "
                "(h̄ > 0), not from the gradient or the output; if units are dropped, use the "
                "same mask as in the forward pass.")
    if np.all(r > 0) and np.ptp(r) > 1e-3 and np.count_nonzero(np.abs(r - 1) > 1e-6) > 1:
        if np.all(r <= 0.25 + 1e-9):
            return (f"{name} is the expected value multiplied entry by entry by numbers in "
                    "(0, ¼]: that is a σ′ factor too many. With the cross-entropy on a sigmoid "
                    "the gradient σ(o) - y already contains σ′; do not multiply by it again.")
        if np.all(r <= 1 + 1e-9):
            return (f"{name} is the expected value multiplied entry by entry by numbers in "
                    "(0, 1]: an activation derivative is applied once too often, or to the "
                    "wrong variable.")
    return None


def diagnose(actual, expected, name="result", *, batch_size=None, hypotheses=()):
    """Say, in a sentence or two, what is probably wrong with ``actual``; None if nothing is.

    Inputs:
    - actual: the student's array; expected: what it should be (same shape if correct).
    - name: how to call the result in the message, e.g. "dW".
    - batch_size: N, to recognise a result scaled by the batch size.
    - hypotheses: (message, candidate) pairs for bugs specific to the caller; the message of
      the first candidate that ``actual`` equals is returned.
    The message reveals shapes, error sizes and indices, never expected values.
    """
    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.shape != e.shape:
        return _shape_advice(name, a.shape, e.shape, batch_size)
    a = a.astype(np.float64)
    e = e.astype(np.float64)
    bad = ~np.isfinite(a)
    if np.any(bad):
        idx = np.argwhere(bad)[0]
        return (f"{name} contains NaN or inf (first at index {_fmt_index(idx)}). Typical causes: "
                "exp of a large number overflowed (use the stable form: subtract the maximum, or "
                "exp(-|z|)), or log(0) of a probability that rounded to 0: take the log from the "
                "logits with the stable log-sum-exp form, ln p_k = (z_k - m) - ln Σ_j e^(z_j - m) "
                "with m = max_j z_j, instead of the log of a probability.")
    scale = max(np.max(np.abs(e), initial=0.0), np.max(np.abs(a), initial=0.0))
    if scale == 0.0 or np.max(np.abs(a - e)) <= 1e-9 * scale:
        return None
    close = lambda u, v: np.max(np.abs(u - v), initial=0.0) <= 1e-6 * scale  # noqa: E731
    for message, candidate in hypotheses:
        candidate = np.asarray(candidate, dtype=np.float64)
        if candidate.shape == a.shape and close(a, candidate):
            return message
    if a.ndim == 2 and a.shape[0] == a.shape[1] and close(a, e.T):
        return f"{name} is the transpose of the expected one: check the order of the matrix product and where the .T goes."
    if np.max(np.abs(e)) > 0:
        c = float(np.sum(a * e) / np.sum(e * e))
        if close(a, c * e):
            advice = _factor_advice(name, c, batch_size, named_only=a.size < 3)
            if advice:
                return advice
        zero_rows = [] if a.ndim != 2 else [
            i for i in range(a.shape[0]) if np.all(a[i] == 0) and np.any(np.abs(e[i]) > 1e-9 * scale)]
        if len(zero_rows) == 1 and np.max(np.abs(np.delete(a - e, zero_rows, axis=0)),
                                          initial=0.0) <= 1e-6 * scale:
            return (f"row {zero_rows[0]} of {name} is all zeros where it should not be: the "
                    "gradient of one unit was dropped.")
        advice = _ratio_advice(name, a, e) or _pattern_advice(name, a, e, close)
        if advice:
            return advice
    if (np.all(a >= 0) and np.all(a <= e + 1e-9 * scale) and np.max(e) > 15.0
            and np.max(a) < 750.0):
        # a loss capped at -ln(eps): what np.clip(p, eps, 1 - eps) before the log gives
        return (f"{name} is too small where the expected value is large, as if the log of a "
                "probability were capped: that is what clipping probabilities (np.clip(p, eps, "
                "1 - eps)) before the log does at large logits. Drop the clip and take the log "
                "from the logits with the stable log-sum-exp form, ln p_k = (z_k - m) - "
                "ln Σ_j e^(z_j - m) with m = max_j z_j.")
    err = np.abs(a - e)
    if a.ndim == 0:
        return f"{name} does not match the expected value (relative error {float(err / scale):.1e})."
    idx = np.unravel_index(int(np.argmax(err)), err.shape)
    wrong = int(np.count_nonzero(err > 1e-6 * scale))
    return (f"{name} does not match: {wrong} of {a.size} entries differ, relative error "
            f"{float(err.max() / scale):.1e}, worst at index {_fmt_index(idx)}.")


def _pattern_advice(name, a, e, close):
    """Words for a result whose wrong entries follow a pattern: shifted by one index along an
    axis, the right values in other places, the sign wrong in some entries only, or one row,
    column or entry wrong and the rest right. None if there is no such pattern.
    ``close(u, v)``: equal up to rounding (the caller's tolerance)."""
    if a.size < 3:
        return None
    return (_shift_advice(name, a, e, close) or _sign_advice(name, a, e, close)
            or _permutation_advice(name, a, e, close) or _one_place_advice(name, a, e, close))


def _shift_advice(name, a, e, close):
    """a[i] = e[i + s] along one axis (s = ±1), for every i where both exist."""
    for axis in range(a.ndim):
        n = a.shape[axis]
        if n < 3:
            continue
        for s in (1, -1):
            inner = np.take(a, range(max(0, -s), n - max(0, s)), axis=axis)
            moved = np.take(e, range(max(0, s), n + min(0, s)), axis=axis)
            if close(inner, moved) and not close(inner, np.take(e, range(max(0, -s), n - max(0, s)), axis=axis)):
                where = f" along axis {axis}" if a.ndim > 1 else ""
                return (f"{name} is the expected result shifted by one index{where}: entry i holds what "
                        f"belongs at i{'+' if s > 0 else '-'}1. Look for an index or a slice bound that is "
                        "off by one.")
    return None


def _sign_advice(name, a, e, close):
    """The sign wrong in some entries (not all: that is -1 times, _factor_advice), right elsewhere."""
    flipped = (np.abs(a + e) <= 1e-6 * np.max(np.abs(e))) & (np.abs(e) > 1e-9 * np.max(np.abs(e)))
    same = np.abs(a - e) <= 1e-6 * np.max(np.abs(e))
    if np.all(flipped | same) and 0 < np.count_nonzero(flipped & ~same) < a.size:
        k = int(np.count_nonzero(flipped & ~same))
        return (f"{name} has the wrong sign in {k} of {a.size} entries and is right in the others: a sign "
                "that depends on a condition (a comparison, a branch, an absolute value) is the wrong way "
                "round for those entries.")
    return None


def _permutation_advice(name, a, e, close):
    """The same values as expected, in other places (a transpose, reshape or index mapping)."""
    if np.ptp(e) == 0 or not close(np.sort(a, axis=None), np.sort(e, axis=None)):
        return None
    return (f"{name} has the right values in the wrong places (a permutation of the expected entries): "
            "check the order of the axes (a transpose or a reshape of the wrong layout) and how indices "
            "are mapped to entries.")


def _one_place_advice(name, a, e, close):
    """Exactly one row, one column or one entry wrong, everything else right."""
    bad = np.abs(a - e) > 1e-6 * max(np.max(np.abs(e)), np.max(np.abs(a)))
    if a.ndim == 2 and a.shape[0] >= 3 and a.shape[1] >= 2:
        rows, cols = np.flatnonzero(bad.any(axis=1)), np.flatnonzero(bad.any(axis=0))
        if len(rows) == 1 and a.shape[1] >= 2 and np.count_nonzero(bad) > 1:
            return (f"only row {rows[0]} of {name} is wrong; the other {a.shape[0] - 1} rows are right: "
                    "what is special about that row (the first or the last, a boundary case)?")
        if len(cols) == 1 and a.shape[1] >= 3 and np.count_nonzero(bad) > 1:
            return (f"only column {cols[0]} of {name} is wrong; the other {a.shape[1] - 1} columns are right: "
                    "what is special about that column (the first or the last, a boundary case)?")
    if np.count_nonzero(bad) == 1 and a.size >= 4:
        idx = np.argwhere(bad)[0]
        return (f"only entry {_fmt_index(idx)} of {name} is wrong; the other {a.size - 1} are right: a "
                "boundary case (an input at 0, the first or the last index, a tie)?")
    return None


def _shape_advice(name, got, want, batch_size):
    msg = f"{name} has shape {got} but should have shape {want}"
    if len(got) == 2 and got == want[::-1]:
        return msg + ": it is transposed. Check the order of the matrix product and where the .T goes."
    if len(got) == 2 and got[0] == got[1] and len(want) >= 1 and want[0] == got[0] and (
            len(want) == 1 or want[1:] == (1,)):
        return (msg + ": numpy broadcast an (N,) array against an (N, 1) array into an (N, N) "
                "matrix. Give both operands the same shape (reshape(-1, 1) or ravel()).")
    if len(got) == len(want) + 1 and got[1:] == want and (batch_size is None or got[0] == batch_size):
        return (msg + ": it still has the batch axis. A parameter's gradient is summed over the "
                "batch: use .sum(axis=0).")
    if len(want) == 1 and len(got) == 1 and batch_size is not None and got[0] == batch_size:
        return (msg + ": it was summed over the wrong axis. Sum over axis 0, the batch, and keep "
                "one entry per unit.")
    if math.prod(got) == math.prod(want):
        if tuple(d for d in got if d != 1) == tuple(d for d in want if d != 1):
            return msg + ": a column vector where a flat one is expected, or the reverse (use reshape or ravel)."
        return msg + ": same number of entries, wrong layout; check the order of the axes."
    return msg + "."


# ====================================================================== value checks
def check_shape(actual, shape, name="result"):
    """Assert that ``actual`` is an array of the given shape."""
    if actual is None:
        _fail(_none_message(name))
    got = np.shape(actual)
    if got != tuple(shape):
        _fail(_shape_advice(name, got, tuple(shape), None))


def check_dtype(actual, dtype=np.float64, name="result"):
    """Assert that ``actual`` is an array of the given dtype (default float64)."""
    if actual is None:
        _fail(_none_message(name))
    got, want = np.asarray(actual).dtype, np.dtype(dtype)
    if got == want:
        return
    if np.issubdtype(want, np.floating) and np.issubdtype(got, np.integer):
        _fail(f"{name} is an integer array ({got}) but should hold floats ({want}): it was "
              "probably built from integer data (np.zeros_like of an int array, np.array([0, 1])); "
              "give it a float dtype.")
    if np.issubdtype(got, np.floating) and got.itemsize < want.itemsize:
        _fail(f"{name} is {got} but should be {want}: lower precision throws digits away "
              "(gradient checks need float64). Remove the astype/np.float32.")
    _fail(f"{name} has dtype {got} but should have dtype {want}.")


def check_finite(actual, name="result"):
    """Assert that ``actual`` contains no NaN or inf."""
    a = _as_float_array(actual)
    if not np.all(np.isfinite(a)):
        _fail(diagnose(a, np.zeros_like(a), name))


def _precision_problem(name, result, inputs):
    """A message if a float64 computation came back in lower precision, else None."""
    res = np.asarray(result)
    ins = [np.asarray(v) for v in inputs if isinstance(v, (np.ndarray, float))]
    if (np.issubdtype(res.dtype, np.floating) and res.dtype.itemsize < 8
            and ins and all(v.dtype == np.float64 for v in ins if np.issubdtype(v.dtype, np.floating))):
        return (f"{name} is {res.dtype} although the inputs are float64: that throws away half "
                "the digits (gradient checks need float64). Remove the astype/np.float32.")
    return None


def check_close(actual, expected, name="result", rtol=None, atol=1e-12, batch_size=None,
                hypotheses=()):
    """Assert that ``actual`` equals ``expected`` (a known value), with a diagnosis if not.

    Tolerance: |actual - expected| <= rtol * max|expected| + atol, entrywise; rtol defaults
    to 1e-6 for float64 results and 2e-3 for float32 ones.
    """
    if actual is None:
        _fail(_none_message(name))
    a, e = np.asarray(actual), np.asarray(expected)
    if a.shape != e.shape:
        _fail(_shape_advice(name, a.shape, e.shape, batch_size))
    a = _as_float_array(a)
    rtol = RTOL.get(a.dtype, 1e-6) if rtol is None else rtol
    e64 = e.astype(np.float64)
    if not np.all(np.isfinite(a)) and not np.array_equal(np.isfinite(a), np.isfinite(e64)):
        _fail(diagnose(a, np.nan_to_num(e64), name))
    tol = rtol * max(np.max(np.abs(e64[np.isfinite(e64)]), initial=0.0), 1.0 if e64.ndim == 0 else 0.0) + atol
    if np.all(np.abs(np.nan_to_num(a.astype(np.float64) - e64)) <= tol):
        return
    _fail(diagnose(a, e64, name, batch_size=batch_size, hypotheses=hypotheses)
          or f"{name} does not match the expected value.")


def check_forward(fn, reference, args, name=None, rtol=None, batch_size=None, hypotheses=()):
    """Call ``fn(*args)`` and ``reference(*args)`` on copies and compare the outputs.

    ``reference`` may also be the expected value itself (a number or an array written in the
    test cell), for a known small case. ``hypotheses`` are (advice, wrong value) pairs, as for
    ``check_close``: when the output matches a wrong value, the message gives that advice.
    Also fails if ``fn`` changes its inputs, returns None, returns lower precision than its
    float64 inputs, or gives NaN/inf where the reference does not.
    """
    name = name or _name(fn)
    args = tuple(args)
    out, warned = _call_checked(fn, args, name)
    expected = reference(*_copy_tree(args)) if callable(reference) else reference
    problem = _precision_problem(f"The output of {name}", out, args)
    if problem:
        _fail(problem)
    if batch_size is None and args and np.ndim(args[0]) >= 1:
        batch_size = np.shape(args[0])[0]
    try:
        check_close(out, expected, f"the output of {name}", rtol=rtol, batch_size=batch_size,
                    hypotheses=hypotheses)
    except AssertionError as err:
        hint = f" (numpy warned: {warned[0]})" if warned else ""
        raise AssertionError(str(err) + hint) from None


# ====================================================================== derivative checks
def _along(L, x, where, v, t):
    """L at x with x[where] moved by t·v; x (the check's private copy) is restored exactly."""
    if where == slice(None):
        return L(x + t * v)
    saved = x[where].copy()
    x[where] = saved + t * v
    try:
        return L(x)
    finally:
        x[where] = saved


def _central(L, x, where, v, h=H):
    """Central-difference directional derivative of L along v, applied to x[where]."""
    return (_along(L, x, where, v, h) - _along(L, x, where, v, -h)) / (2 * h)


def _one_sided_ok(L, x, where, v, s, tol, h=H):
    """At a kink any value between the one-sided derivatives is a valid (sub)gradient."""
    l0 = L(x)
    fwd = (_along(L, x, where, v, h) - l0) / h
    bwd = (l0 - _along(L, x, where, v, -h)) / h
    if abs(fwd - bwd) <= 1e3 * tol:          # smooth here: the central difference stands
        return False
    lo, hi = min(fwd, bwd), max(fwd, bwd)
    return lo - 1e-4 * abs(hi - lo) - tol <= s <= hi + 1e-4 * abs(hi - lo) + tol


def check_activation(f, f_grad, z=None, name=None, seed=0):
    """Check an elementwise activation's derivative ``f_grad`` against ``f``.

    z defaults to a (4, 6) array of values in ±4, kept away from 0 (where ReLU and the step
    have a kink), plus the extremes ±50 and ±1000 to catch overflow. The derivative is
    compared entrywise with (f(z + h) - f(z - h)) / 2h; at a kink any value between the
    one-sided derivatives passes.
    """
    name = name or _name(f_grad)
    if z is None:
        rng = np.random.default_rng(seed)
        z = rng.uniform(0.05, 4.0, size=(4, 6)) * rng.choice([-1.0, 1.0], size=(4, 6))
        z[0, :4] = [-1000.0, -50.0, 50.0, 1000.0]
    z = np.array(z, dtype=np.float64)
    fz, warned = _call_checked(f, (z,), _name(f), ["z"])
    if np.shape(fz) != z.shape:
        _fail(_shape_advice(f"the output of {_name(f)}", np.shape(fz), z.shape, None))
    if not np.all(np.isfinite(np.asarray(fz, dtype=np.float64))):
        idx = np.argwhere(~np.isfinite(np.asarray(fz, dtype=np.float64)))[0]
        _fail(f"{_name(f)} gives NaN or inf at z = {z[tuple(idx)]:g}"
              + (f" (numpy warned: {warned[0]})" if warned else "")
              + ". Large |z| overflows exp: use a form that only ever exponentiates -|z| "
                "or subtract the maximum first.")
    g, warned = _call_checked(f_grad, (z,), name, ["z"])
    g = np.asarray(g)
    if g.shape != z.shape:
        _fail(_shape_advice(name, g.shape, z.shape, None))
    problem = _precision_problem(name, g, [z])
    if problem:
        _fail(problem)
    g = g.astype(np.float64)
    if not np.all(np.isfinite(g)):
        _fail(diagnose(g, np.zeros_like(g), name))
    fp = np.asarray(f(z + H), dtype=np.float64)
    fm = np.asarray(f(z - H), dtype=np.float64)
    f0 = np.asarray(f(z), dtype=np.float64)
    num = (fp - fm) / (2 * H)
    fwd, bwd = (fp - f0) / H, (f0 - fm) / H
    tol = 1e-6 * max(1.0, np.max(np.abs(num)))
    ok = np.abs(g - num) <= tol
    kink = np.abs(fwd - bwd) > 1e-3
    lo, hi = np.minimum(fwd, bwd), np.maximum(fwd, bwd)
    ok |= kink & (g >= lo - 1e-4) & (g <= hi + 1e-4)
    if not np.all(ok):
        advice = diagnose(np.where(ok, num, g), num, name)
        if np.allclose(g, f0, atol=1e-6) and not np.allclose(num, f0, atol=1e-6):
            advice = f"{name} returns f(z) itself, not its derivative."
        _fail(advice + (f" (numpy warned: {warned[0]})" if warned else ""))


def check_gradient(f, grad, x, name=None, mode="auto", seed=0, batch_size=None, hypotheses=()):
    """Check ``grad(x)`` against the numerical gradient of the scalar function ``f`` at x.

    Inputs: f(x) -> number; grad(x) -> array of x's shape; x, array. batch_size (default
    x.shape[0]) lets the diagnosis recognise a sum where a mean was meant.
    """
    name = name or _name(grad)
    x = np.asarray(x)
    g, warned = _call_checked(grad, (x,), name, ["x"])
    if batch_size is None and x.ndim >= 2:
        batch_size = x.shape[0]
    check_gradients(lambda x: f(x), {"x": g}, {"x": x}, names={"x": name}, mode=mode, seed=seed,
                    batch_size=batch_size, hypotheses={"x": hypotheses}, warned=warned)


def check_jacobian(f, jac, x, name=None):
    """Check ``jac(x)`` (numerator layout: one row per output, one column per input)."""
    name = name or _name(jac)
    x = np.asarray(x, dtype=np.float64)
    J, _ = _call_checked(jac, (x,), name, ["x"])
    expected = numerical_jacobian(f, x)
    J = np.asarray(J)
    if J.shape != expected.shape:
        if J.shape == expected.shape[::-1]:
            _fail(f"{name} has shape {J.shape} but should have shape {expected.shape}: the "
                  "Jacobian is transposed. In numerator layout row i holds the derivatives of "
                  "output i, so the shape is (number of outputs, number of inputs).")
        _fail(_shape_advice(name, J.shape, expected.shape, None))
    tol = 1e-6 * max(1.0, float(np.max(np.abs(expected))))
    if np.max(np.abs(J.astype(np.float64) - expected)) > tol:
        if J.ndim == 2 and J.shape[0] == J.shape[1] and np.allclose(J.T, expected, atol=tol):
            _fail(f"{name} is transposed: in numerator layout row i holds the derivatives of "
                  "output i with respect to every input.")
        _fail(diagnose(J, expected, name))


# ---------------------------------------------------------------------- probes
def _probes(shape, mode, rng):
    """Directions to compare along, as [(where, v, description)]: x[where] moves along v.

    "full" cuts the rows (entries of a 1-D array) into at most FULL_BLOCKS blocks, each with a
    random direction of its own, so a wrong entry anywhere shows; "fast" uses FAST_DIRECTIONS
    random sign vectors over the whole array. Each v has unit norm.
    """
    if mode == "full":
        rows = shape[0]
        what = "rows" if len(shape) >= 2 else "entries"
        probes = []
        for blk in np.array_split(np.arange(rows), min(FULL_BLOCKS, rows)):
            where = slice(blk[0], blk[-1] + 1)
            v = rng.random((len(blk),) + tuple(shape[1:])) - 0.5
            label = f"{what} {blk[0]}..{blk[-1]}" if len(blk) > 1 else f"{what[:-1] if what == 'rows' else 'entry'} {blk[0]}"
            probes.append((where, v / np.linalg.norm(v), label))
        return probes
    return [(slice(None), _random_signs(shape, rng), f"random direction {k}")
            for k in range(FAST_DIRECTIONS)]


def _random_signs(shape, rng, out=None):
    """A unit vector of random signs ±1/√n, from raw random bits (4x cheaper than normals)."""
    n = math.prod(shape)
    bits = np.unpackbits(np.frombuffer(rng.bytes((n + 7) // 8), dtype=np.uint8), count=n)
    v = np.empty(shape) if out is None else out
    np.multiply(bits.reshape(shape), 2.0 / math.sqrt(n), out=v)
    v -= 1.0 / math.sqrt(n)
    return v


def check_gradients(forward, grads, inputs, dout=None, *, names=None, mode="auto", seed=0,
                    rtol=None, batch_size=None, hypotheses=None, warned=()):
    """Check gradients of  L = sum(dout * forward(**inputs))  (or L = forward(**inputs) when
    dout is None, for scalar outputs) against central differences of ``forward``.

    Inputs:
    - forward: function taking the arrays of ``inputs`` as keyword arguments.
    - grads: dict input name -> the gradient to check (the student's), shape of that input.
    - inputs: dict name -> array, the point of evaluation (not changed).
    - dout: upstream gradient, the shape of forward's output; None for a scalar output.
    - names: dict input name -> display name (default "d" + name).
    - mode: "full", "fast" or "auto" (full when every array has <= FULL_MAX_ENTRIES entries).
    - hypotheses: dict input name -> [(message, candidate gradient)], for ``diagnose``.
    All failing gradients are reported together in one AssertionError.
    """
    rng = np.random.default_rng(seed)
    x64 = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    d64 = None if dout is None else np.array(dout, dtype=np.float64)
    names = {k: (names or {}).get(k, "d" + k) for k in grads}
    hypotheses = hypotheses or {}
    small = sum(x64[k].size for k in grads) <= FULL_MAX_ENTRIES
    if mode == "auto":
        mode = "full" if small else "fast"
    if batch_size is None:
        first = next(iter(x64.values()))
        batch_size = first.shape[0] if first.ndim >= 2 else None

    def loss(values):
        """L with some inputs replaced: values is a dict name -> array."""
        args = dict(x64)
        args.update(values)
        out = np.asarray(forward(**args), dtype=np.float64)
        return float(np.sum(out)) if d64 is None else float(np.sum(d64 * out))

    _call(forward, **_copy_tree(x64))     # an unwritten forward: the one-line message, no traceback
    with _one_blas_thread():
        extra = [] if dout is None else [np.asarray(dout)]
        problems, ready = _ready_gradients(grads, x64, names, rtol, batch_size, list(inputs.values()) + extra)
        if not (mode == "fast" and not problems and _joint_probes_pass(ready, x64, loss, rng)):
            for key, (g64, tol_rel) in ready.items():
                L = lambda v, key=key: loss({key: v})  # noqa: E731
                if mode == "full" and small:
                    problem = _compare_entries(L, x64[key], g64, tol_rel, names[key], batch_size,
                                               hypotheses.get(key, ()))
                else:
                    problem = _compare_directions(L, x64[key], g64, tol_rel, names[key], batch_size, mode, rng)
                if problem:
                    problems.append(problem)
    if problems:
        problems = _group(problems, list(names.values()))
        if warned:
            problems.append(f"(numpy warned while running your code: {warned[0]})")
        _fail(problems)


def _ready_gradients(grads, x64, names, rtol, batch_size, inputs):
    """(problems, ready): each gradient's shape, precision and finiteness checked first.

    ready: name -> (the gradient as float64, its relative tolerance), for those that pass.
    In fast mode the values are then probed jointly (random directions over all inputs at
    once, a third of the forward passes); only if that fails is each gradient compared alone,
    to say which is wrong.
    """
    problems, ready = [], {}
    for key, g in grads.items():
        name, x = names[key], x64[key]
        if g is None:
            problems.append(_none_message(name))
            continue
        g = np.asarray(g)
        if g.shape != x.shape:
            problems.append(_shape_advice(name, g.shape, x.shape, batch_size))
            continue
        problem = _precision_problem(name, g, inputs)
        if problem:
            problems.append(problem)
            continue
        g64 = np.asarray(g, dtype=np.float64)      # read only: no copy when already float64
        if not np.all(np.isfinite(g64)):
            problems.append(diagnose(g64, np.zeros_like(g64), name))
            continue
        ready[key] = g64, rtol if rtol is not None else RTOL.get(_as_float_array(g).dtype, 1e-6)
    return problems, ready


def _compare_entries(L, x, g64, tol_rel, name, batch_size, hypotheses):
    """Every entry against the complete numerical gradient of L at x; a diagnosis, or None."""
    num = numerical_gradient(L, x)
    scale = max(np.max(np.abs(num), initial=0.0), np.max(np.abs(g64), initial=0.0))
    tol = tol_rel * scale + 1e-10
    for idx in np.argwhere(np.abs(g64 - num) > tol):   # forgive kinks (ReLU at 0) entry by entry
        idx = tuple(idx)
        if _one_sided_ok(L, x, idx, 1.0, g64[idx], tol):
            num[idx] = g64[idx]
    if np.max(np.abs(g64 - num), initial=0.0) > tol:
        return diagnose(g64, num, name, batch_size=batch_size, hypotheses=hypotheses)
    return None


def _compare_directions(L, x, g64, tol_rel, name, batch_size, mode, rng):
    """Directional derivatives of L along probes against g64's; advice, a message, or None."""
    dirs = _probes(x.shape, mode, rng)
    s = np.array([np.sum(g64[where] * v) for where, v, _ in dirs])
    d = np.array([_central(L, x, where, v) for where, v, _ in dirs])
    scale = max(np.max(np.abs(d)), np.max(np.abs(s)))
    tol = tol_rel * scale + 1e-10
    bad = [k for k in range(len(dirs)) if abs(s[k] - d[k]) > tol
           and not _one_sided_ok(L, x, dirs[k][0], dirs[k][1], s[k], tol)]
    if not bad:
        return None
    c = float(np.dot(s, d) / np.dot(d, d)) if np.dot(d, d) > 0 else 0.0
    advice = _factor_advice(name, c, batch_size) if np.max(np.abs(s - c * d)) <= 1e-6 * scale else None
    k = max(bad, key=lambda k: abs(s[k] - d[k]))
    return advice or (f"{name} does not match finite differences: relative error "
                      f"{abs(s[k] - d[k]) / scale:.1e} along {dirs[k][2]} "
                      f"({len(bad)} of {len(dirs)} probes fail). Run the check on a small input "
                      "for a diagnosis.")


def _joint_probes_pass(ready, x64, loss, rng):
    """True if the gradients agree with central differences along FAST_DIRECTIONS random
    directions that move all inputs at once (ready: name -> (gradient, rtol)).

    The perturbed inputs are written into buffers reused across probes: for big layers fresh
    temporaries (and their page faults) cost more than the forward passes.
    """
    v = {key: np.empty_like(x64[key]) for key in ready}
    plus = {key: np.empty_like(x64[key]) for key in ready}
    minus = {key: np.empty_like(x64[key]) for key in ready}
    s, d = [], []
    for _ in range(FAST_DIRECTIONS):
        total = 0.0
        for key in ready:
            _random_signs(x64[key].shape, rng, out=v[key])
            total += float(np.vdot(ready[key][0], v[key]))
            np.multiply(v[key], H, out=v[key])
            np.add(x64[key], v[key], out=plus[key])
            np.subtract(x64[key], v[key], out=minus[key])
        s.append(total)
        d.append((loss(plus) - loss(minus)) / (2 * H))
    s, d = np.array(s), np.array(d)
    tol = max(rtol for _, rtol in ready.values()) * max(np.max(np.abs(s)), np.max(np.abs(d))) + 1e-10
    return bool(np.all(np.abs(s - d) <= tol))


def _group(problems, names):
    """Merge identical advice given for several gradients: "dX, dW, db: it looks like ..."."""
    grouped = {}
    for text in problems:
        name = next((n for n in names if text.startswith(n + ": ")), None)
        key = text[len(name) + 2:] if name else text
        grouped.setdefault(key, []).append(name)
    return [(", ".join(n for n in ns if n) + ": " + key) if all(ns) else key
            for key, ns in grouped.items()]


def _split_output(result):
    """(out, cache) -> out; a bare array stays."""
    return result[0] if isinstance(result, tuple) else result


def check_layer(forward, backward, inputs, dout=None, *, names=None, mode="auto", seed=0,
                hypotheses=None, fn_names=("forward", "backward")):
    """Check a layer written as ``out, cache = forward(*inputs)``, ``grads = backward(dout, cache)``.

    Inputs:
    - forward: takes the arrays of ``inputs`` positionally, returns out or (out, cache).
    - backward: takes (dout, cache), returns the gradients in the order of ``inputs``
      (a single array when there is one input).
    - inputs: dict name -> array, in the order of forward's arguments.
    - dout: upstream gradient of out's shape (default: random signed, seeded).
    Fails if either function changes its inputs (including dout), or any gradient is wrong.
    """
    fwd_name, bwd_name = fn_names
    keys = list(inputs)
    original = {k: np.array(v) for k, v in inputs.items()}
    work = _copy_tree(original)
    result, warned = _call(forward, *[work[k] for k in keys])
    for k in keys:
        if _mutated(original[k], work[k]):
            _fail(_mutation_message(fwd_name, k))
    if result is None:
        _fail(_none_message(f"the result of {fwd_name}"))
    out = np.asarray(_split_output(result))
    cache = result[1] if isinstance(result, tuple) and len(result) > 1 else None
    problem = _precision_problem(f"The output of {fwd_name}", out, list(original.values()))
    if problem:
        _fail(problem)
    if dout is None:
        dout = np.random.default_rng(seed + 1).standard_normal(out.shape)
    dout = np.asarray(dout, dtype=out.dtype if np.issubdtype(out.dtype, np.floating) else np.float64)
    dout_work = dout.copy()
    grads, warned2 = _call(backward, dout_work, cache)
    if _mutated(dout, dout_work):
        _fail(_mutation_message(bwd_name, "dout"))
    for k in keys:
        if _mutated(original[k], work[k]):
            _fail(_mutation_message(bwd_name, k))
    if grads is None:
        _fail(_none_message(f"the result of {bwd_name}"))
    if len(keys) == 1 and not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) != len(keys):
        _fail(f"{bwd_name} returned {len(grads)} gradients; it should return {len(keys)} "
              f"({', '.join('d' + k for k in keys)}), in that order.")
    check_gradients(lambda **kw: _split_output(forward(*[kw[k] for k in keys])),
                    dict(zip(keys, grads)), original, dout, names=names, mode=mode, seed=seed,
                    hypotheses=hypotheses, warned=list(warned) + list(warned2))


# ---------------------------------------------------------------------- the dense layer
def _dense_inputs(N, n_in, n_out, rng, dtype):
    """Random X, W, b with pre-activations kept at least 1e-2 away from 0 (ReLU's kink)."""
    while True:
        X = rng.standard_normal((N, n_in))
        W = rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)
        b = rng.standard_normal(n_out) * 0.5
        if np.min(np.abs(X @ W.T + b)) > 1e-2:
            return X.astype(dtype), W.astype(dtype), b.astype(dtype)


def _dense_hypotheses(forward, X, W, b, dout):
    """Candidate gradients of typical dense-layer bugs, built numerically (no backward formula).

    A bug that multiplies dout by a wrong factor g instead of f'(h̄) yields the gradients of
    L_g = sum((dout * g) * (X Wᵀ + b)) with g held fixed; we get them by finite differences.
    """
    X, W, b, dout = (np.asarray(a, dtype=np.float64) for a in (X, W, b, dout))
    out = lambda X, W, b: np.asarray(_split_output(forward(X, W, b)), dtype=np.float64)  # noqa: E731
    Z = X @ W.T + b                                      # the pre-activation h̄ (forward, eq. 2)
    Hout = out(X, W, b)
    fprime = (out(X, W, b + H) - out(X, W, b - H)) / (2 * H)      # f'(h̄), from the forward alone
    eye = np.eye(X.shape[0])
    f_at = lambda U: out(eye, U.T.copy(), np.zeros(U.shape[1]))   # f evaluated at any (N, M) array  # noqa: E731
    fprime_at_h = (f_at(Hout + H) - f_at(Hout - H)) / (2 * H)
    wrong = []
    if np.max(np.abs(fprime - 1.0)) > 1e-6:
        wrong.append(("the activation derivative f′(h̄) is missing: multiply the upstream "
                      "gradient by f′(h̄) entry by entry first (eq. 5: δW = [f′(h̄) ⊙ Δ] xᵀ).",
                      np.ones_like(Z)))
        wrong.append(("f′ is evaluated at the layer's output h = f(h̄) instead of at its input h̄ "
                      "(for the sigmoid: σ(h̄)(1 − σ(h̄)) is right, σ′(σ(h̄)) is not).", fprime_at_h))
        wrong.append(("the derivative is written in terms of the output, s(1 − s), but fed h̄ "
                      "instead of s = σ(h̄).", Z * (1 - Z)))
        wrong.append(("the derivative is written in terms of the output, 1 − t², but fed h̄ "
                      "instead of t = tanh(h̄).", 1 - Z * Z))
        wrong.append(("f′(h̄) is applied twice.", fprime * fprime))
    wrong.append(("the ReLU mask is taken from the upstream gradient (dout > 0) instead of from "
                  "the pre-activation (h̄ > 0).", (dout > 0).astype(float)))
    hyps = {"X": [], "W": [], "b": []}
    for message, g in wrong:
        if np.allclose(g, fprime, atol=1e-6):
            continue                                    # not a bug for this activation
        C = dout * g
        affine = {"X": lambda v, C=C: np.sum(C * (v @ W.T + b)),
                  "W": lambda v, C=C: np.sum(C * (X @ v.T + b)),
                  "b": lambda v, C=C: np.sum(C * (X @ W.T + v))}
        for key, val in (("X", X), ("W", W), ("b", b)):
            hyps[key].append((f"d{key}: it looks like " + message, numerical_gradient(affine[key], val)))
    return hyps


def check_dense_backward(forward, backward, N=4, n_in=7, n_out=5, mode="auto", seed=0,
                         dtype=np.float64, inputs=None):
    """Check a dense layer's backward pass, with a diagnosis of the usual bugs.

    Inputs:
    - forward(X, W, b) -> H or (H, cache): the layer H = f(X Wᵀ + b), X (N, n_in), W (n_out,
      n_in), b (n_out,), with the activation already chosen (use a lambda).
    - backward(dH, cache) -> (dX, dW, db).
    - N, n_in, n_out: sizes of the random test (distinct, so that a transpose shows).
    - inputs: optional dict with X, W, b to test at instead of random ones.
    The upstream gradient is random and signed. Checks input mutation, shapes, NaN, float32
    and every gradient against finite differences of ``forward``; names the bug if it is one
    of the usual ones (transposed, f′ missing or misplaced, ReLU mask from the wrong variable,
    bias not summed over the batch, sum instead of mean, wrong sign, ...).
    """
    rng = np.random.default_rng(seed)
    if inputs is None:
        X, W, b = _dense_inputs(N, n_in, n_out, rng, dtype)
    else:
        X, W, b = (np.asarray(inputs[k]) for k in ("X", "W", "b"))
    dout = rng.standard_normal((X.shape[0], W.shape[0])).astype(X.dtype)
    hyps = None
    if X.size + W.size <= FULL_MAX_ENTRIES and mode != "fast":
        try:
            with _one_blas_thread():
                hyps = _dense_hypotheses(forward, X, W, b, dout)
        except NotImplementedError as err:
            raise AssertionError(not_implemented_message(raised_by(err, _name(forward)))) from None
        except Exception:   # a broken forward is reported by the check itself, not here
            hyps = None
    check_layer(forward, backward, {"X": X, "W": W, "b": b}, dout, mode=mode, seed=seed,
                hypotheses=hyps, fn_names=(_name(forward), _name(backward)))


# ====================================================================== partial credit
class Tally:
    """The points of one test cell, check by check: each named part carries a share.

    A test cell makes one tally, runs its checks in parts, and ends with ``tally.score()``::

        tally = checks.Tally(points=4)
        with tally.part("dX", 1):
            ...checks of dX...
        with tally.parts({"dX": 1, "dW": 1, "db": 1}):    # one check that names each result
            checks.check_dense_backward(...)
        tally.score()                                     # the last line: the points earned

    Inputs: points, the cell's points (its nbgrader metadata). The shares of all parts,
    hidden ones included, add up to it; in the release, where hidden parts are stripped,
    they add up to less.

    A part runs its body and records a pass, or the failure's message (an AssertionError's
    text; for any other exception its type, message and the function that raised it). The
    failure never leaves the part: the next parts still run. A part given ``needs=[names]``
    whose prerequisite failed earns nothing and says only "not checked: <name> failed",
    without a second message for the same bug.

    ``score()`` prints one line per part (✓ or ✗, the share, the message) and returns the
    points earned, a number nbgrader reads as the cell's partial credit.
    """

    def __init__(self, points):
        if not points > 0:
            raise ValueError(f"a tally needs the cell's points (> 0), got {points!r}")
        self.points = points
        self.results = []              # [(name, share, status, message)], status ✓ ✗ or –
        self._pending = []             # failure messages of the parts being run, innermost last

    def _share(self, name, share):
        if name in {r[0] for r in self.results}:
            raise ValueError(f"two parts of this test cell are called {name!r}: give each its own name")
        if not share > 0:
            raise ValueError(f"the share of part {name!r} must be > 0, got {share!r}")

    def failed(self, name):
        """True if part ``name`` ran and did not pass (or was not checked)."""
        return any(r[0] == name and r[2] != "✓" for r in self.results)

    def _missing_prerequisite(self, needs):
        if isinstance(needs, str):
            needs = [needs]
        return next((n for n in needs if self.failed(n)), None)

    def part(self, name, share, needs=()):
        """Context: the checks of its body are worth ``share`` points, all or nothing."""
        return self.parts({name: share}, needs=needs)

    @contextlib.contextmanager
    def parts(self, shares, needs=()):
        """Context for checks that report several named results at once (dX, dW, db of a layer).

        shares: dict part name -> share. When the body fails, each line of its message is
        charged to the parts whose name's first word the line names before its first ":"
        ("dW has shape ...", "dX, db: it looks like ..."); a line that names none of them (the
        function is not implemented, changed its input, ...) fails them all. Use it only for a
        check that reports every named result in one message (``check_gradients``,
        ``check_layer``, ``check_dense_backward``), or for a loop of such checks whose body is
        in ``keep_going()``: a check that stopped before looking at a result must not credit it.
        """
        for name, share in shares.items():
            self._share(name, share)
        missing = self._missing_prerequisite(needs)
        start = len(self.results)
        for name, share in shares.items():          # placeholders, so that names stay unique
            self.results.append((name, share, "✓", None))
        self._pending.append([])
        try:
            yield
        except Exception as err:        # noqa: BLE001  (a time limit or an interrupt still escapes)
            self._pending[-1].append(_failure_message(err))
        finally:
            messages = self._pending.pop()
            del self.results[start:]
        blamed = _blame(messages, list(shares))
        for name, share in shares.items():
            if missing:
                self.results.append((name, share, "–", f"not checked: {missing} failed"))
            elif name in blamed:
                self.results.append((name, share, "✗", blamed[name]))
            else:
                self.results.append((name, share, "✓", None))

    @contextlib.contextmanager
    def keep_going(self):
        """Inside a part: a failure here is recorded for the part, and the part goes on.

        For a loop of checks (several seeds, several activations): every round is checked, and
        the part fails if one round does (with the first failure's message).
        """
        if not self._pending:
            raise RuntimeError("keep_going() belongs inside a `with tally.part(...)` block")
        try:
            yield
        except Exception as err:        # noqa: BLE001
            self._pending[-1].append(_failure_message(err))

    def earned(self):
        """Points of the parts that passed."""
        return round(sum(r[1] for r in self.results if r[2] == "✓"), 9)

    def score(self):
        """Print one line per part; return the points earned (see the class docstring).

        When the shares add up to less than the cell's points (the release: its hidden parts
        are graded later) and every part passed, it returns None, so that nbgrader's validate
        does not count the cell as failed. If a part failed there, the list goes to stderr, the
        one output of a partly passing cell that ``nbgrader validate`` shows the student. (At
        grading the shares are complete and the list goes to stdout.)
        """
        total = round(sum(r[1] for r in self.results), 9)
        if total > self.points + 1e-9:
            raise ValueError(f"the shares of this test cell add up to {total:g}, more than its "
                             f"{self.points:g} points")
        earned = self.earned()
        incomplete = total < self.points - 1e-9
        out = sys.stderr if incomplete and earned < total else sys.stdout
        print(f"{earned:g} of {total:g} points" + (
            "" if total >= self.points - 1e-9 else
            f" (hidden tests worth {self.points - total:g} more are run at grading)") + ":", file=out)
        previous = None
        for name, share, status, message in self.results:
            line = f"  {status} {name} ({share:g})"
            if message:
                line += ": " + ("the same" if message == previous else message.replace("\n", "\n      "))
            previous = message
            print(line, file=out)
        if incomplete and earned == total:
            return None
        return float(earned)


def _failure_message(err):
    """The text a part records for a failure: the check's message, or the error and where it arose."""
    if isinstance(err, AssertionError):
        return str(err) or "a check failed (AssertionError without a message)"
    where = raised_by(err)
    text = f"{type(err).__name__}: {err}"
    return text + (f" (raised in {where})" if where else "")


def _blame(messages, names):
    """{part name: the lines charged to it}, from the failure messages of one part, in order.

    Each line is charged to the names whose first word it names before its first ":", a line
    that names none to all of them; a name keeps the lines of the first message that charged
    it. Notes (lines in parentheses) go with the lines of their message.
    """
    firsts = {name: re.findall(r"[A-Za-z_][A-Za-z_0-9]*", name)[:1] for name in names}
    blamed = {}
    for message in messages:
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        notes = [line for line in lines if line.startswith("(")]
        charged = {}
        for line in lines:
            if line.startswith("("):
                continue
            words = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", line.split(":", 1)[0])
            for name in [n for n in names if firsts[n] and firsts[n][0] in words] or names:
                charged.setdefault(name, []).append(line)
        if not charged:
            charged = {n: [message.strip() or "failed"] for n in names}
        for name, lines_of in charged.items():
            blamed.setdefault(name, "\n".join(lines_of + notes))
    return blamed
