"""Tests of solutions_lib.network: initialisation, gradients by finite differences, the fused
training step against the reference forward/backward, and the MLP estimator."""
import numpy as np
import pytest

from solutions_lib import network as nw
from solutions_lib.optim import make_optimizer

SIZES = (7, 5, 4, 3)          # distinct sizes, so a transposed matrix cannot go unnoticed
N = 6


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    params = nw.init_params(SIZES, rng, init="uniform", scale=0.8)
    for k in params:                                   # non-zero biases, so db is tested too
        if k.startswith("b"):
            params[k] = rng.normal(scale=0.5, size=params[k].shape)
    X = rng.normal(size=(N, SIZES[0])) * 1.5           # random signed inputs
    y = rng.integers(0, SIZES[-1], size=N)
    return params, X, np.eye(SIZES[-1])[y], y


def _numerical_grads(f, params, h=1e-5):
    grads = {}
    for k, p in params.items():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            fp = f(params)
            p[i] = old - h
            fm = f(params)
            p[i] = old
            g[i] = (fp - fm) / (2 * h)
        grads[k] = g
    return grads


def _rel_error(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-12)


# ---------------------------------------------------------------- init
def test_init_shapes_dtypes_and_biases():
    params = nw.init_params((784, 128, 64, 10), np.random.default_rng(0), dtype=np.float32)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert params["W1"].shape == (128, 784) and params["b1"].shape == (128,)
    assert params["W2"].shape == (64, 128) and params["W3"].shape == (10, 64)
    assert all(p.dtype == np.float32 for p in params.values())
    assert all(np.all(params[f"b{l}"] == 0) for l in (1, 2, 3))


def test_init_ranges():
    rng = np.random.default_rng(1)
    u = nw.init_params((784, 128), rng)["W1"]                  # the notes' U[-0.1, 0.1]
    assert np.abs(u).max() <= 0.1 and np.abs(u).max() > 0.099
    assert abs(u.mean()) < 0.002 and u.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.02)
    u3 = nw.init_params((50, 40), rng, scale=0.3)["W1"]
    assert 0.29 < np.abs(u3).max() <= 0.3
    he = nw.init_params((784, 128), rng, init="he")["W1"]
    assert he.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02) and abs(he.mean()) < 0.001
    xa = nw.init_params((784, 128), rng, init="xavier")["W1"]
    bound = np.sqrt(6 / (784 + 128))
    assert np.abs(xa).max() <= bound and np.abs(xa).max() > 0.99 * bound
    with pytest.raises(ValueError):
        nw.init_params((3, 2), rng, init="zeros")


@pytest.mark.parametrize("init", nw.INITS)
def test_init_reproducible_by_seed(init):
    a = nw.init_params(SIZES, np.random.default_rng(5), init=init)
    b = nw.init_params(SIZES, np.random.default_rng(5), init=init)
    c = nw.init_params(SIZES, np.random.default_rng(6), init=init)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["W1"], c["W1"])


# ---------------------------------------------------------------- forward / backward
def test_forward_matches_explicit_formula():
    params, X, _, _ = _problem()
    H1 = np.tanh(X @ params["W1"].T + params["b1"])
    H2 = np.maximum(H1 @ params["W2"].T + params["b2"], 0)
    expected = H2 @ params["W3"].T + params["b3"]
    logits, caches = nw.forward(params, X, ["tanh", "relu"])
    assert logits.shape == (N, SIZES[-1]) and len(caches) == 3
    np.testing.assert_allclose(logits, expected, rtol=1e-12)
    # at evaluation time dropout does nothing
    np.testing.assert_array_equal(
        nw.forward(params, X, ["tanh", "relu"], dropout=0.5, rng=np.random.default_rng(0))[0],
        logits)


def test_loss_value_includes_l2_on_weights_only():
    params, X, Y, y = _problem()
    logits = nw.forward(params, X, "sigmoid")[0]
    log_p = logits - logits.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    ce = -log_p[np.arange(N), y].mean()
    penalty = 0.5 * 0.3 * sum(np.sum(params[f"W{l}"] ** 2) for l in (1, 2, 3))
    loss, _ = nw.loss_and_grads(params, X, Y, "sigmoid", l2=0.3)
    assert loss == pytest.approx(ce + penalty, rel=1e-12)


@pytest.mark.parametrize("activations", ["tanh", "relu", ["sigmoid", "relu"]])
@pytest.mark.parametrize("l2", [0.0, 0.1])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_gradients_match_finite_differences(activations, l2, dropout):
    params, X, Y, _ = _problem(seed=len(str(activations)))

    def loss_with_fixed_masks(p):  # a fresh generator with one seed: the same masks every call
        return nw.loss_and_grads(p, X, Y, activations, l2=l2, dropout=dropout,
                                 rng=np.random.default_rng(11))[0]

    _, grads = nw.loss_and_grads(params, X, Y, activations, l2=l2, dropout=dropout,
                                 rng=np.random.default_rng(11))
    numerical = _numerical_grads(loss_with_fixed_masks, params)
    assert list(grads) == list(params)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == params[k].dtype
        assert _rel_error(grads[k], numerical[k]) < 1e-7, k


def test_dropout_is_applied_in_training():
    params, X, Y, _ = _problem()
    l0, _ = nw.loss_and_grads(params, X, Y, "tanh")
    l1, g1 = nw.loss_and_grads(params, X, Y, "tanh", dropout=0.5, rng=np.random.default_rng(0))
    assert l0 != l1
    with pytest.raises(ValueError):
        nw.loss_and_grads(params, X, Y, "tanh", dropout=0.5)       # no rng


def test_loss_and_grads_do_not_mutate_inputs():
    params, X, Y, _ = _problem()
    copies = ({k: p.copy() for k, p in params.items()}, X.copy(), Y.copy())
    nw.loss_and_grads(params, X, Y, "relu", l2=0.1, dropout=0.3, rng=np.random.default_rng(0))
    assert all(np.array_equal(params[k], copies[0][k]) for k in params)
    np.testing.assert_array_equal(X, copies[1])
    np.testing.assert_array_equal(Y, copies[2])


# ---------------------------------------------------------------- fit == reference steps
def _reference_fit(X, y, sizes, act, init, l2, dropout, optimizer, lr, batch_size, epochs,
                   seed, dtype):
    """The training loop written with loss_and_grads + an optimizer, with MLP's rng order."""
    rng = np.random.default_rng(seed)
    params = nw.init_params(sizes, rng, init, 0.1, dtype)
    opt = make_optimizer(optimizer, lr)
    losses = []
    for _ in range(epochs):
        perm = rng.permutation(len(X))
        total = 0.0
        for s in range(0, len(X), batch_size):
            idx = perm[s:s + batch_size]
            loss, grads = nw.loss_and_grads(params, X[idx], np.eye(sizes[-1])[y[idx]], act,
                                            l2=l2, dropout=dropout, rng=rng)
            opt.step(params, grads)
            total += loss * len(idx)
        losses.append(total / len(X))
    return params, losses


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("optimizer,act,l2,dropout", [
    ("sgd", "relu", 0.0, 0.0),
    ("adam", "relu", 0.01, 0.3),
    ("momentum", "tanh", 0.05, 0.2),
])
def test_fit_steps_equal_forward_backward_plus_optimizer(dtype, optimizer, act, l2, dropout):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(40, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], size=40)
    cfg = dict(sizes=SIZES, init="he", l2=l2, dropout=dropout, optimizer=optimizer, lr=0.05,
               batch_size=16, epochs=2, seed=7, dtype=dtype)   # 3 steps per epoch, last one short
    model = nw.MLP(hidden_activation=act, progress=False, **cfg).fit(X, y)
    params, losses = _reference_fit(X, y, act=act, **cfg)
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    for k in params:
        assert model.params_[k].dtype == dtype
        np.testing.assert_allclose(model.params_[k], params[k], **tol, err_msg=k)
    np.testing.assert_allclose(model.history_["loss"], losses, rtol=1e-6)
    # and the training moved the parameters (a no-op fit would not pass the test above anyway)
    assert not np.allclose(params["W1"], nw.init_params(SIZES, np.random.default_rng(7), "he")["W1"])


# ---------------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(X))
    tr, va, te = perm[:1200], perm[1200:1500], perm[1500:]
    mu, sd = X[tr].mean(0), X[tr].std(0)
    sd[sd == 0] = 1.0
    Z = ((X - mu) / sd).astype(np.float32)
    return Z[tr], y[tr], Z[va], y[va], Z[te], y[te]


def test_mlp_learns_digits(digits):
    Xtr, ytr, Xva, yva, Xte, yte = digits
    model = nw.MLP((64, 64, 10), epochs=15, batch_size=32, lr=3e-3, seed=0, progress=False)
    model.fit(Xtr, ytr, Xva, yva)
    assert model.score(Xte, yte) > 0.9
    assert len(model.history_["loss"]) == len(model.history_["val_accuracy"]) == 15
    assert model.history_["loss"][-1] < model.history_["loss"][0] / 3
    proba = model.predict_proba(Xte)
    assert proba.shape == (len(Xte), 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(model.predict(Xte), proba.argmax(1))


def test_early_stopping_restores_best_epoch(digits):
    Xtr, ytr, Xva, yva, _, _ = digits
    cfg = dict(sizes=(64, 32, 10), batch_size=64, lr=1e-2, seed=1, progress=False)
    model = nw.MLP(epochs=200, patience=3, **cfg).fit(Xtr, ytr, Xva, yva)
    acc = model.history_["val_accuracy"]
    best = model.best_epoch_
    assert model.n_epochs_ == best + 3 < 200 and len(acc) == model.n_epochs_
    assert acc.index(max(acc)) == best - 1          # the first epoch reaching the best (ties do not count)
    assert model.score(Xva, yva) == acc[best - 1]
    # the restored parameters are those after exactly `best` epochs
    again = nw.MLP(epochs=best, **cfg).fit(Xtr, ytr, Xva, yva)
    for k in again.params_:
        np.testing.assert_array_equal(model.params_[k], again.params_[k])


def test_fit_does_not_mutate_inputs_and_is_reproducible(digits):
    Xtr, ytr, Xva, yva, _, _ = digits
    X, y = Xtr[:300].copy(), ytr[:300].copy()       # float32, C-contiguous: used without a copy
    X.flags.writeable = False                       # any write into X raises
    X0, y0 = X.copy(), y.copy()
    a = nw.MLP((64, 16, 10), epochs=2, dropout=0.2, l2=1e-3, progress=False).fit(X, y, Xva, yva)
    b = nw.MLP((64, 16, 10), epochs=2, dropout=0.2, l2=1e-3, progress=False).fit(X, y, Xva, yva)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    for k in a.params_:
        np.testing.assert_array_equal(a.params_[k], b.params_[k])
    c = nw.MLP((64, 16, 10), epochs=2, dropout=0.2, l2=1e-3, seed=1, progress=False).fit(X, y)
    assert not np.array_equal(a.params_["W1"], c.params_["W1"])


def test_mlp_input_checks():
    X, y = np.zeros((4, 3)), np.array([0, 1, 2, 1])
    with pytest.raises(ValueError):
        nw.MLP((3, 3), patience=2, progress=False).fit(X, y)              # no validation data
    with pytest.raises(ValueError):
        nw.MLP((3, 3), progress=False).fit(X, np.array([0, 1, 3, 1]))     # label out of range
    with pytest.raises(ValueError):
        nw.MLP((4, 3), progress=False).fit(X, y)                          # wrong n_features
    with pytest.raises(ValueError):
        nw.MLP((3, 3), optimizer="lbfgs")
    with pytest.raises(RuntimeError):
        nw.MLP((3, 3)).predict(X)


def test_fit_rejects_nan_inputs_with_a_clear_message():
    X = np.random.default_rng(0).random((20, 4))
    X[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf .*row 3"):
        nw.MLP(sizes=(4, 5, 3), progress=False).fit(X, np.arange(20) % 3)


def test_diverging_training_stops_with_advice():
    X = np.random.default_rng(0).random((20, 4)) * 1e30
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="Lower the learning rate"):
        nw.MLP(sizes=(4, 5, 3), optimizer="sgd", lr=1e30, progress=False, epochs=5).fit(X, np.arange(20) % 3)
