"""Preprocessing: train/validation/test splits, standardization, whitening, one-hot labels.

Reference implementations of the preprocessing formulas of the notes, Wolter II, eqs. (20)–(23).
Conventions:
- Batch-first: a data matrix X has shape (N, D), one example per row, labels y shape (N,).
- Statistics (mean, standard deviation, covariance) are *fitted on the training data only* and
  then applied unchanged to validation and test data. Fitting them on all data would let
  information about the test set leak into training.
- Nothing here changes its inputs; every function returns new arrays.

The loaders live in ``autograder.datasets`` (the module students get) and are re-exported here,
so ``solutions_lib.data`` is the one place to look for everything about data.
"""
import numpy as np

from autograder.datasets import (  # noqa: F401 -- re-exported
    default_split_sizes,
    load_digits,
    load_mnist,
    noisy_cosine,
    noisy_cosines,
    read_idx,
    write_idx,
)

__all__ = [
    "load_mnist",
    "read_idx",
    "write_idx",
    "load_digits",
    "noisy_cosine",
    "noisy_cosines",
    "default_split_sizes",
    "train_val_test_split",
    "fit_standardizer",
    "standardize",
    "standardize_splits",
    "covariance",
    "fit_whitening",
    "whiten",
    "one_hot",
    "from_one_hot",
]


def _matrix(X, what):
    """X as a float64 array of shape (N, D) with N >= 1, or a ValueError saying what to do."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"{what}: X must have shape (N, D), one example per row; got shape {X.shape}. "
            "For one feature use X.reshape(-1, 1); for images flatten them, X.reshape(len(X), -1)."
        )
    if X.shape[0] < 1:
        raise ValueError(f"{what}: X has no rows (shape {X.shape}); statistics need at least one example")
    return X.astype(np.float64)


def _check_features(X, vec, name, what):
    """Check that vec has shape (D,) with D = X's last axis (X (N, D), or one example (D,))."""
    if X.ndim not in (1, 2) or vec.shape != (X.shape[-1],):
        raise ValueError(
            f"{what}: X must have shape (N, D) (or (D,) for one example) and {name} shape (D,); "
            f"got X {X.shape} and {name} {vec.shape}. Fit {name} on training data of the same D."
        )


# ---------------------------------------------------------------- splitting
def train_val_test_split(X, y, sizes, seed=0, stratify=True):
    """Split a data set into disjoint training, validation and test parts.

    Inputs:
    - X: (N, ...) examples, one per row (any number of further axes, e.g. (N, 784)).
    - y: (N,) labels.
    - sizes: (n_train, n_val, n_test), non-negative integers with sum <= N (examples left over
      are not used), e.g. ``default_split_sizes(N)``.
    - seed: int seed of the numpy Generator that shuffles; the same seed gives the same split.
    - stratify: if True (for classification), the parts are cut one after the other, each
      taking from every class its share of the examples still left, rounded (the largest
      fractional parts up, so that the part gets its size). Part k then holds between
      floor(q) - 1 and ceil(q) + 1 examples of class c, where q = n_k · N_c / N and N_c is the
      number of examples of class c. If False, a plain random split.
    Returns (X_train, y_train, X_val, y_val, X_test, y_test): new arrays (copies) of shapes
    (n_train, ...), (n_train,), (n_val, ...), (n_val,), (n_test, ...), (n_test,), each part in
    random order. The inputs are not changed.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 1 or len(X) < 1:
        raise ValueError(
            f"train_val_test_split: X must hold at least one example, one per row; got shape {X.shape}"
        )
    n = len(X)
    if y.shape != (n,):
        raise ValueError(
            f"train_val_test_split: y must have shape (N,) = ({n},), one label per row of X; got "
            f"{y.shape}. For one-hot labels pass from_one_hot(Y)."
        )
    if (
        len(sizes) != 3
        or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in sizes)
    ):
        raise ValueError(
            f"train_val_test_split: sizes must be three non-negative integers (n_train, n_val, "
            f"n_test); got {sizes!r}"
        )
    sizes = tuple(int(s) for s in sizes)
    if sum(sizes) > n:
        raise ValueError(
            f"train_val_test_split: sizes {sizes} sum to {sum(sizes)} but there are only {n} "
            f"examples; make them smaller, e.g. default_split_sizes({n}) = {default_split_sizes(n)}"
        )
    rng = np.random.default_rng(seed)
    if stratify:
        classes = np.unique(y)
        members = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
        left = np.array([len(m) for m in members])      # examples of each class still left
        taken = np.zeros_like(left)
        parts = []
        for size in sizes:                              # each part takes its share of what is left
            share = left * size / max(1, left.sum())
            count = np.floor(share).astype(int)
            order = np.argsort(count - share, kind="stable")   # the largest fractional parts round up
            count[order[:size - count.sum()]] += 1
            parts.append(rng.permutation(np.concatenate([m[t:t + n] for m, t, n in zip(members, taken, count)])))
            taken, left = taken + count, left - count
    else:
        order = rng.permutation(n)
        ends = np.cumsum(sizes)
        parts = [order[a:b] for a, b in zip([0, ends[0], ends[1]], ends)]
    out = []
    for idx in parts:
        out += [X[idx], y[idx]]      # fancy indexing copies
    return tuple(out)


# ---------------------------------------------------------------- standardization, Wolter II, eq. (20)
def fit_standardizer(X_train, eps=1e-8):
    """Per-feature mean and standard deviation of the training data, for Wolter II, eq. (20).

    Input: X_train (N, D), training examples only (never validation or test data).
    - eps: a feature whose standard deviation is below eps (e.g. an MNIST border pixel that is
      always 0) gets sigma = 1, so it is only centered instead of divided by ~0.
    Returns (mu, sigma), float64 arrays of shape (D,); sigma is the population standard
    deviation (divides by N, like the covariance of Wolter II, eq. (21)).
    """
    X = _matrix(X_train, "fit_standardizer")
    mu = X.mean(axis=0)
    sigma = X.std(axis=0)
    sigma[sigma < eps] = 1.0
    return mu, sigma


def standardize(X, mu, sigma):
    """Eq. (20) of Wolter II: X_n = (X - mu) / sigma, with mu, sigma from ``fit_standardizer`` on training data.

    Inputs: X (N, D) (or one example (D,)); mu (D,); sigma (D,).
    Output: float64 array of X's shape.
    """
    X = np.asarray(X, dtype=np.float64)
    mu, sigma = np.asarray(mu, dtype=np.float64), np.asarray(sigma, dtype=np.float64)
    _check_features(X, mu, "mu", "standardize")
    _check_features(X, sigma, "sigma", "standardize")
    return (X - mu) / sigma


def standardize_splits(X_train, X_val, X_test, eps=1e-8):
    """Standardize the three parts of a split with the *training* statistics, Wolter II, eq. (20).

    mu and sigma come from ``fit_standardizer(X_train, eps)`` only; the same (mu, sigma) is then
    applied to all three parts. Fitting on the validation or test part, or on all data, would
    let information about held-out data leak into training.
    Inputs: X_train (N_train, D), X_val (N_val, D), X_test (N_test, D).
    Returns (X_train_n, X_val_n, X_test_n): float64 arrays of the inputs' shapes. Only the
    training part has mean 0 and standard deviation 1 per feature (up to constant features).
    """
    mu, sigma = fit_standardizer(X_train, eps)
    return standardize(X_train, mu, sigma), standardize(X_val, mu, sigma), standardize(X_test, mu, sigma)


# ---------------------------------------------------------------- whitening, Wolter II, eqs. (21)–(22)
def covariance(X):
    """Eq. (21) of Wolter II: the covariance matrix C = (1/N) (X - μ)ᵀ (X - μ), μ the mean row of X.

    Note the 1/N (population covariance), not the 1/(N-1) of ``np.cov``'s default; it equals
    ``np.cov(X, rowvar=False, bias=True)``.
    Input: X (N, D). Output: C (D, D), symmetric.
    """
    X = _matrix(X, "covariance")
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / X.shape[0]


def fit_whitening(X_train, method="zca", eps=1e-8, n_components=None):
    """Fit a whitening transform on training data: whiten(X) = (X - mu) @ W has covariance ≈ I.

    With the eigendecomposition C = U diag(λ) Uᵀ of the training covariance (Wolter II, eq. (21)),
    eigenvalues sorted from largest to smallest:
    - "pca": W = U diag(1/sqrt(λ + eps)). The new features are the coordinates along the
      principal axes, each rescaled to variance 1; with n_components = k only the first k
      columns are kept (the k directions of largest variance), so W is (D, k).
    - "zca": W = U diag(1/sqrt(λ + eps)) Uᵀ, symmetric (D, D). It rotates the PCA-whitened data
      back, so the whitened data stays as close as possible to the original (whitened images
      still look like images).
    Eq. (22) of Wolter II is garbled; the rescaling is by 1/sqrt(λ + eps) of the eigenvalues λ
    of C (for a symmetric positive semidefinite C these are also its singular values).
    eps keeps directions of (almost) zero variance from being divided by ~0. The notes use
    1e-8; for raw MNIST, where many pixels never vary, a larger eps (e.g. 0.1 for pixels scaled
    to [0, 1]) keeps such pixels in *test* images from being amplified ten-thousandfold.

    Inputs: X_train (N, D) training examples; method "zca" or "pca"; eps >= 0;
    n_components (only for "pca"): None for all D, else an integer 1..D.
    Returns (mu, W): mu (D,) the training mean, W (D, D) or (D, n_components).
    Eigenvector signs are fixed so that the largest-magnitude entry of each column of U is
    positive, which makes PCA results reproducible across machines.
    """
    X = _matrix(X_train, "fit_whitening")
    D = X.shape[1]
    if method not in ("zca", "pca"):
        raise ValueError(f"fit_whitening: method must be 'zca' or 'pca'; got {method!r}")
    if n_components is not None:
        if method != "pca":
            raise ValueError(
                "fit_whitening: n_components only works with method='pca' (ZCA rotates back into "
                "all D input dimensions); use method='pca' or leave n_components=None"
            )
        if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
                or not 1 <= n_components <= D:
            raise ValueError(
                f"fit_whitening: n_components must be an integer from 1 to D = {D}; got {n_components!r}"
            )
    if not eps >= 0:
        raise ValueError(f"fit_whitening: eps must be >= 0; got {eps!r}")

    mu = X.mean(axis=0)
    lam, U = np.linalg.eigh(covariance(X))           # ascending
    lam, U = lam[::-1], U[:, ::-1]                   # descending
    lam = np.clip(lam, 0.0, None)                    # rounding can make zero eigenvalues slightly negative
    biggest = np.argmax(np.abs(U), axis=0)
    U = U * np.sign(U[biggest, np.arange(D)])        # sign convention, see docstring
    scale = 1.0 / np.sqrt(lam + eps)
    if method == "pca":
        W = U * scale                                # = U @ diag(scale): scales column j by scale[j]
        if n_components is not None:
            W = W[:, :n_components]
    else:
        W = (U * scale) @ U.T
        W = (W + W.T) / 2                            # exactly symmetric despite rounding
    return mu, np.ascontiguousarray(W)


def whiten(X, mu, W):
    """Apply a whitening fitted by ``fit_whitening``: (X - mu) @ W.

    Inputs: X (N, D) (or one example (D,)); mu (D,); W (D, K).
    Output: float64 (N, K) (or (K,)).
    """
    X = np.asarray(X, dtype=np.float64)
    mu, W = np.asarray(mu, dtype=np.float64), np.asarray(W, dtype=np.float64)
    _check_features(X, mu, "mu", "whiten")
    if W.ndim != 2 or W.shape[0] != mu.shape[0]:
        raise ValueError(f"whiten: W must have shape (D, K) with D = {mu.shape[0]}; got {W.shape}")
    return (X - mu) @ W


# ---------------------------------------------------------------- labels, Wolter II, eq. (23)
def one_hot(y, num_classes=None):
    """One-hot encode integer labels, Wolter II, eq. (23): row n has a 1 in column y[n] and 0 elsewhere.

    Labels must be integers 0..num_classes-1 (for labels 1..K as in the notes pass y - 1).
    Inputs: y (N,) integer labels; num_classes C, default max(y) + 1.
    Output: float64 (N, C).
    """
    y = np.asarray(y)
    if y.size == 0 and y.dtype == np.float64:
        y = y.astype(np.int64)                       # np.asarray([]) is float64
    if y.ndim != 1:
        raise ValueError(
            f"one_hot: y must have shape (N,), one integer label per example; got {y.shape}. "
            "If y is already one-hot, use it as it is (or from_one_hot(y) to get the labels)."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"one_hot: labels must be integers; got dtype {y.dtype}. If they are whole numbers "
            "stored as floats, pass y.astype(int)."
        )
    if y.size and y.min() < 0:
        raise ValueError(f"one_hot: labels must be >= 0; got {y.min()}. Shift them so they start at 0.")
    if num_classes is None:
        if y.size == 0:
            raise ValueError("one_hot: y is empty, so the number of classes is unknown; pass num_classes")
        num_classes = int(y.max()) + 1
    elif isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be a positive integer; got {num_classes!r}")
    elif y.size and y.max() >= num_classes:
        raise ValueError(
            f"one_hot: label {y.max()} is out of range for num_classes={num_classes} (labels must "
            f"be 0..{num_classes - 1}); increase num_classes or check the labels"
        )
    Y = np.zeros((y.shape[0], int(num_classes)), dtype=np.float64)
    Y[np.arange(y.shape[0]), y] = 1.0
    return Y


def from_one_hot(Y):
    """Labels from one-hot rows (or from class scores/probabilities): the argmax of each row.

    Input: Y (N, C). Output: int64 (N,). Ties go to the smallest class index.
    """
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[1] < 1:
        raise ValueError(f"from_one_hot: Y must have shape (N, C) with C >= 1; got {Y.shape}")
    return np.argmax(Y, axis=1).astype(np.int64)
