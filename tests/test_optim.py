"""Tests of solutions_lib.optim: the update rules against hand-computed steps, purity, and the
optimizer classes against the pure functions."""
import numpy as np
import pytest

from solutions_lib.optim import (
    SGD, Adam, Momentum, adam_update, make_optimizer, momentum_update, sgd_update,
)

W = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -0.25]])
DW = np.array([[0.5, 1.0, -2.0], [0.1, -0.3, 4.0]])


def _textbook_adam(w, dw, m, v, t, lr, b1, b2, eps):
    """Adam exactly as written in Kingma & Ba, Algorithm 1 (independent of the library)."""
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw ** 2
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


# ---------------------------------------------------------------- hand-computed steps
def test_sgd_first_step_by_hand():
    expected = np.array([[0.95, -2.1, 0.7], [-0.01, 3.03, -0.65]])
    np.testing.assert_allclose(sgd_update(W, DW, 0.1), expected, rtol=0, atol=1e-15)


def test_momentum_two_steps_by_hand():
    v0 = np.zeros_like(W)
    w1, v1 = momentum_update(W, DW, v0, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(v1, -0.1 * DW, atol=1e-15)
    np.testing.assert_allclose(w1, W - 0.1 * DW, atol=1e-15)   # first step = plain SGD
    dw2 = np.array([[1.0, 0.0, -1.0], [2.0, 0.5, 0.0]])
    w2, v2 = momentum_update(w1, dw2, v1, lr=0.1, momentum=0.9)
    # v2 = 0.9 * (-0.1 DW) - 0.1 dw2 ; e.g. entry [0, 0]: -0.045 - 0.1 = -0.145
    assert v2[0, 0] == pytest.approx(-0.145)
    np.testing.assert_allclose(v2, -0.09 * DW - 0.1 * dw2, atol=1e-15)
    np.testing.assert_allclose(w2, W - 0.1 * DW - 0.09 * DW - 0.1 * dw2, atol=1e-14)


def test_momentum_zero_is_sgd():
    w1, _ = momentum_update(W, DW, np.ones_like(W), lr=0.05, momentum=0.0)
    np.testing.assert_allclose(w1, sgd_update(W, DW, 0.05), atol=1e-15)


def test_adam_first_step_by_hand():
    z = np.zeros_like(W)
    w1, m1, v1 = adam_update(W, DW, z, z, t=1, lr=0.01)
    np.testing.assert_allclose(m1, 0.1 * DW, rtol=1e-14)
    np.testing.assert_allclose(v1, 0.001 * DW ** 2, rtol=1e-12)
    # bias correction: m̂ = dw, v̂ = dw², so the step is lr · dw / (|dw| + eps) ≈ lr · sign(dw)
    np.testing.assert_allclose(w1, W - 0.01 * DW / (np.abs(DW) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(w1, W - 0.01 * np.sign(DW), atol=1e-8)


def test_adam_matches_textbook_over_several_steps():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    m = v = np.zeros_like(w)
    w_ref, m_ref, v_ref = w.copy(), m.copy(), v.copy()
    for t in range(1, 6):
        dw = rng.normal(size=w.shape)
        w, m, v = adam_update(w, dw, m, v, t, lr=0.05, beta1=0.8, beta2=0.99, eps=1e-3)
        w_ref, m_ref, v_ref = _textbook_adam(w_ref, dw, m_ref, v_ref, t, 0.05, 0.8, 0.99, 1e-3)
        np.testing.assert_allclose(m, m_ref, rtol=1e-12)
        np.testing.assert_allclose(v, v_ref, rtol=1e-12)
        np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-14)


def test_adam_rejects_t_zero():
    z = np.zeros_like(W)
    with pytest.raises(ValueError):
        adam_update(W, DW, z, z, t=0)


# ---------------------------------------------------------------- purity and dtypes
@pytest.mark.parametrize("update", [
    lambda w, dw, s: sgd_update(w, dw, 0.1),
    lambda w, dw, s: momentum_update(w, dw, s[0], 0.1),
    lambda w, dw, s: adam_update(w, dw, s[0], s[1], 3),
])
def test_pure_functions_do_not_mutate_inputs(update):
    rng = np.random.default_rng(1)
    w, dw = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    state = [rng.normal(size=(3, 2)), rng.random((3, 2))]
    copies = [a.copy() for a in (w, dw, *state)]
    out = update(w, dw, state)
    for a, c in zip((w, dw, *state), copies):
        np.testing.assert_array_equal(a, c)
    for o in (out if isinstance(out, tuple) else (out,)):
        assert not any(np.shares_memory(o, a) for a in (w, dw, *state))


def test_float32_stays_float32():
    w, dw = W.astype(np.float32), DW.astype(np.float32)
    z = np.zeros_like(w)
    assert sgd_update(w, dw, 0.1).dtype == np.float32
    assert all(a.dtype == np.float32 for a in momentum_update(w, dw, z, 0.1))
    assert all(a.dtype == np.float32 for a in adam_update(w, dw, z, z, 1))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        sgd_update(W, DW.T, 0.1)
    with pytest.raises(ValueError):
        momentum_update(W, DW, np.zeros(3), 0.1)


# ---------------------------------------------------------------- classes == functions
def _params(rng, dtype=np.float64):
    return {"W1": rng.normal(size=(5, 4)).astype(dtype), "b1": rng.normal(size=5).astype(dtype),
            "W2": rng.normal(size=(3, 5)).astype(dtype), "b2": np.zeros(3, dtype)}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classes_equal_pure_functions(dtype):
    rng = np.random.default_rng(2)
    start = _params(rng, dtype)
    opts = {"sgd": SGD(0.1), "momentum": Momentum(0.1, 0.8), "adam": Adam(0.01, 0.85, 0.99, 1e-6)}
    owned = {name: {k: p.copy() for k, p in start.items()} for name in opts}
    ids = {name: {k: id(p) for k, p in d.items()} for name, d in owned.items()}
    ref = {name: {k: p.copy() for k, p in start.items()} for name in opts}
    vel = {k: np.zeros_like(p) for k, p in start.items()}
    m = {k: np.zeros_like(p) for k, p in start.items()}
    v = {k: np.zeros_like(p) for k, p in start.items()}
    for t in range(1, 5):
        grads = {k: rng.normal(size=p.shape).astype(dtype) for k, p in start.items()}
        grads_copy = {k: g.copy() for k, g in grads.items()}
        for name, opt in opts.items():
            opt.step(owned[name], grads)
        for k in start:
            ref["sgd"][k] = sgd_update(ref["sgd"][k], grads[k], 0.1)
            ref["momentum"][k], vel[k] = momentum_update(ref["momentum"][k], grads[k], vel[k], 0.1, 0.8)
            ref["adam"][k], m[k], v[k] = adam_update(ref["adam"][k], grads[k], m[k], v[k], t,
                                                     0.01, 0.85, 0.99, 1e-6)
        for name in opts:
            for k in start:
                np.testing.assert_array_equal(owned[name][k], ref[name][k], err_msg=f"{name} {k}")
        for k in grads:                                      # gradients are not touched
            np.testing.assert_array_equal(grads[k], grads_copy[k])
    assert opts["adam"].t == 4
    for name in opts:                                        # updated in place, same arrays
        assert {k: id(p) for k, p in owned[name].items()} == ids[name]
        assert all(p.dtype == dtype for p in owned[name].values())


def test_step_rejects_mismatched_grads():
    rng = np.random.default_rng(3)
    params = _params(rng)
    with pytest.raises(ValueError):
        SGD(0.1).step(params, {"W1": np.zeros((5, 4))})
    grads = {k: np.zeros_like(p) for k, p in params.items()}
    grads["W2"] = np.zeros((5, 3))
    with pytest.raises(ValueError):
        Adam().step(params, grads)


def test_make_optimizer():
    assert isinstance(make_optimizer("adam", 0.01), Adam)
    assert make_optimizer("momentum", 0.1, momentum=0.5).momentum == 0.5
    with pytest.raises(ValueError):
        make_optimizer("rmsprop", 0.1)
    with pytest.raises(ValueError):
        SGD(0.0)
