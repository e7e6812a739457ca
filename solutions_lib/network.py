"""A multilayer dense network for classification: parameters, forward, backward, training.

The network with sizes (n0, n1, ..., nL) has L dense layers. Layer l maps n_{l-1} inputs to n_l
outputs with W_l of shape (n_l, n_{l-1}) (the notes' layout) and b_l of shape (n_l,):

    A_0 = X                                  (N, n0)  one example per row
    H_l = f(A_{l-1} W_lᵀ + b_l)              (N, n_l) for the hidden layers l < L
    A_l = dropout(H_l)                       (training only; the identity at test time)
    logits = A_{L-1} W_Lᵀ + b_L              (N, C)   C = n_L classes, no activation
    loss = softmax cross-entropy(logits, Y) averaged over the batch + (λ/2) Σ_l ||W_l||²

Parameters live in a dict {"W1": (n1, n0), "b1": (n1,), "W2": ..., ...}; gradients come back
in a dict with the same keys and shapes. ``forward``/``backward``/``loss_and_grads`` are the
readable reference, built from ``layers`` and ``losses``. ``MLP`` trains such a network with
minibatches; inside ``fit`` a fused, allocation-light version of the same computation runs
(``_FusedStep``), and the tests check that one step of it equals ``loss_and_grads`` followed
by the optimizer.
"""
import math
import time

import numpy as np
from tqdm.auto import tqdm

from .activations import get_activation, softmax
from .layers import dense_backward, dense_forward, dropout_backward, dropout_forward
from .losses import l2_penalty, l2_penalty_grad, softmax_cross_entropy, softmax_cross_entropy_grad
from .optim import make_optimizer

INITS = ("uniform", "he", "xavier")


# ---------------------------------------------------------------- parameters
def num_layers(params):
    """Number L of dense layers in a parameter dict with keys W1, b1, ..., WL, bL."""
    L = sum(1 for k in params if k.startswith("W"))
    expected = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    if L == 0 or set(params) != expected:
        raise ValueError(f"params must have keys W1, b1, ..., WL, bL; got {sorted(params)}")
    return L


def init_params(sizes, rng, init="uniform", scale=0.1, dtype=np.float64):
    """Random initial weights and zero biases for a network with layer sizes ``sizes``.

    Inputs:
    - sizes: (n0, n1, ..., nL), the number of units per layer, inputs first; at least 2 entries.
    - rng: a numpy.random.Generator (or an int seed, turned into one).
    - init: how W_l (n_l, n_{l-1}) is drawn, with fan_in = n_{l-1}, fan_out = n_l:
        "uniform": U[-scale, scale], the notes' U[-0.1, 0.1] for the default scale;
        "he":      normal, mean 0, std √(2 / fan_in)  (He et al. 2015, for ReLU units);
        "xavier":  U[-a, a] with a = √(6 / (fan_in + fan_out))  (Glorot & Bengio 2010).
      ``scale`` is used by "uniform" only.
    - dtype: floating dtype of the arrays.
    Returns: dict {"W1": (n1, n0), "b1": (n1,), ..., "WL": (nL, n_{L-1}), "bL": (nL,)}.
    Layers are drawn in order W1, W2, ..., so the same seed gives the same weights.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must list at least 2 positive layer sizes; got {sizes}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    rng = np.random.default_rng(rng)
    params = {}
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        if init == "uniform":
            W = rng.uniform(-scale, scale, size=(n_out, n_in))
        elif init == "he":
            W = rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_out, n_in))
        else:
            a = math.sqrt(6.0 / (n_in + n_out))
            W = rng.uniform(-a, a, size=(n_out, n_in))
        params[f"W{l}"] = W.astype(dtype)
        params[f"b{l}"] = np.zeros(n_out, dtype=dtype)
    return params


def _hidden_activations(activations, L):
    """Names of the L - 1 hidden activations: one name for all, or one per hidden layer."""
    names = [activations] * (L - 1) if isinstance(activations, str) else list(activations)
    if len(names) != L - 1:
        raise ValueError(
            f"a network with {L} layers has {L - 1} hidden activations; got {len(names)}: {names}"
        )
    for name in names:
        get_activation(name)  # raises a ValueError for an unknown name
    return names


# ---------------------------------------------------------------- reference forward / backward
def forward(params, X, activations, dropout=0.0, rng=None, train=False):
    """Forward pass of the whole network.

    Inputs:
    - params: dict from ``init_params`` (L layers).
    - X: (N, n0) inputs, one example per row.
    - activations: hidden activation name (e.g. "relu") for every hidden layer, or a list of
      L - 1 names. The last layer has none: it returns logits.
    - dropout: drop probability p for the outputs of every hidden layer (inverted dropout).
    - rng: numpy.random.Generator for the dropout masks (needed when train and dropout > 0);
      one mask is drawn per hidden layer, layer 1 first.
    - train: dropout is applied only when True.
    Returns:
    - logits: (N, C) with C = n_L.
    - caches: one (dense_cache, dropout_cache or None) per layer, for ``backward``.
    """
    L = num_layers(params)
    names = _hidden_activations(activations, L)
    drop = train and dropout > 0.0
    if drop and rng is None:
        raise ValueError("dropout during training needs a numpy.random.Generator rng")
    A, caches = X, []
    for l in range(1, L + 1):
        act = names[l - 1] if l < L else "linear"
        A, dense_cache = dense_forward(A, params[f"W{l}"], params[f"b{l}"], act)
        drop_cache = None
        if drop and l < L:
            A, drop_cache = dropout_forward(A, dropout, rng, train=True)
        caches.append((dense_cache, drop_cache))
    return A, caches


def backward(dlogits, caches):
    """Backward pass: gradients of the loss w.r.t. every parameter.

    Inputs: dlogits (N, C), the gradient of the loss w.r.t. the logits; caches from ``forward``.
    Returns: dict {"W1": (n1, n0), "b1": (n1,), ...}, the keys and shapes of the params.
    """
    grads = {}
    dA = dlogits
    for l in range(len(caches), 0, -1):
        dense_cache, drop_cache = caches[l - 1]
        if drop_cache is not None:
            dA = dropout_backward(dA, drop_cache)
        dA, grads[f"W{l}"], grads[f"b{l}"] = dense_backward(dA, dense_cache)
    return {k: grads[k] for l in range(1, len(caches) + 1) for k in (f"W{l}", f"b{l}")}


def loss_and_grads(params, X, Y_onehot, activations, l2=0.0, dropout=0.0, rng=None):
    """Training loss and its gradients for one batch.

    loss = softmax cross-entropy of the logits against Y, averaged over the N examples,
           + (l2 / 2) Σ_l Σ W_l²   (weights only, not biases).
    Inputs: params; X (N, n0); Y_onehot (N, C); activations as in ``forward``; l2 = λ >= 0;
    dropout p and rng as in ``forward`` (dropout is on: this is the training loss).
    Returns: (loss: float, grads: dict with the params' keys, shapes and dtypes).
    """
    logits, caches = forward(params, X, activations, dropout=dropout, rng=rng, train=True)
    loss = softmax_cross_entropy(logits, Y_onehot)
    grads = backward(softmax_cross_entropy_grad(logits, Y_onehot), caches)
    for k, p in params.items():
        if l2 and k.startswith("W"):
            loss += l2_penalty(p, l2)
            grads[k] = grads[k] + l2_penalty_grad(p, l2)
        grads[k] = grads[k].astype(p.dtype, copy=False)
    return loss, grads


# ---------------------------------------------------------------- fused training step
class _FusedStep:
    """The computation of ``loss_and_grads`` for the training loop, with preallocated buffers.

    Same formulas in the same order as forward/dense_forward/backward/dense_backward, but:
    buffers are reused between steps (np.take/np.matmul with out=), ReLU works in place and its
    derivative is read from H > 0 (which is Z > 0), the softmax gradient overwrites the logits,
    and the first layer's dX (never needed) is not computed.
    """

    def __init__(self, params, activations, l2, dropout):
        self.L = num_layers(params)
        self.names = _hidden_activations(activations, self.L)
        self.l2, self.dropout = l2, dropout
        self.sizes = [params["W1"].shape[1]] + [params[f"W{l}"].shape[0] for l in range(1, self.L + 1)]
        self.dtype = params["W1"].dtype
        self.grads = {k: np.empty_like(p) for k, p in params.items()}
        self._tmp = {k: np.empty_like(p) for k, p in params.items() if k.startswith("W")}
        self._buffers = {}

    def _get_buffers(self, n):
        buf = self._buffers.get(n)
        if buf is None:
            buf = self._buffers[n] = {
                "X": np.empty((n, self.sizes[0]), self.dtype),
                "Z": [None] + [np.empty((n, s), self.dtype) for s in self.sizes[1:]],
                "dA": [None] + [np.empty((n, s), self.dtype) for s in self.sizes[1:-1]],
                "rows": np.arange(n),
            }
        return buf

    def __call__(self, params, X, y, idx, rng):
        """Loss of the batch X[idx], y[idx]; leaves the gradients in ``self.grads``."""
        n, L = len(idx), self.L
        buf = self._get_buffers(n)
        A = np.take(X, idx, axis=0, out=buf["X"])
        yb = y[idx]
        inputs, hidden, masks = [None] * (L + 1), [None] * (L + 1), [None] * (L + 1)
        # forward
        for l in range(1, L + 1):
            Z = buf["Z"][l]
            np.matmul(A, params[f"W{l}"].T, out=Z)
            Z += params[f"b{l}"]
            inputs[l] = A
            if l == L:
                break
            if self.names[l - 1] == "relu":
                H = np.maximum(Z, 0.0, out=Z)           # Z's buffer now holds H
            else:
                H = get_activation(self.names[l - 1])[0](Z)
            hidden[l] = H
            if self.dropout > 0.0:
                A, masks[l] = dropout_forward(H, self.dropout, rng, train=True)
            else:
                A = H
        # softmax cross-entropy and its gradient (softmax(z) - Y) / n, in the logits' buffer
        P, rows = buf["Z"][L], buf["rows"]
        P -= P.max(axis=1, keepdims=True)
        true_shifted = P[rows, yb]
        np.exp(P, out=P)
        s = P.sum(axis=-1, keepdims=True)
        loss = -float(np.sum(true_shifted - np.log(s[:, 0]), dtype=np.float64)) / n
        P /= s
        P[rows, yb] -= 1.0
        P /= n
        # backward
        dZ, g = P, self.grads
        for l in range(L, 0, -1):
            W = params[f"W{l}"]
            np.matmul(dZ.T, inputs[l], out=g[f"W{l}"])
            np.sum(dZ, axis=0, out=g[f"b{l}"])
            if self.l2:
                loss += 0.5 * self.l2 * float(np.vdot(W, W))
                g[f"W{l}"] += np.multiply(W, self.l2, out=self._tmp[f"W{l}"])
            if l == 1:
                break
            dA = np.matmul(dZ, W, out=buf["dA"][l - 1])
            if masks[l - 1] is not None:
                dA *= masks[l - 1]
            name = self.names[l - 2]
            if name == "relu":
                dA *= hidden[l - 1] > 0
            else:
                dA *= get_activation(name)[1](buf["Z"][l - 1])
            dZ = dA
        return loss


# ---------------------------------------------------------------- the estimator
class MLP:
    """Multilayer perceptron classifier with a scikit-learn-like API.

    Parameters
    - sizes: (n0, ..., nL) layer sizes; n0 = features, nL = number of classes C.
    - hidden_activation: activation of every hidden layer (the output layer gives logits).
    - init, init_scale: see ``init_params`` ("uniform" U[-init_scale, init_scale], "he", "xavier").
    - l2: λ of the penalty (λ/2) Σ W² added to the batch-averaged cross-entropy.
    - dropout: drop probability of every hidden layer's outputs during training.
    - optimizer: "sgd", "momentum" or "adam"; lr its learning rate; momentum for "momentum".
    - batch_size, epochs: minibatch size; maximum number of passes over the training data.
    - patience: early stopping. With validation data, stop after ``patience`` epochs without a
      better validation accuracy and restore the parameters of the best epoch. None: train all
      epochs and keep the last parameters.
    - seed: seeds the one numpy.random.Generator used for everything, in this order: the
      initial weights, then per epoch one permutation of the training set, then per minibatch
      the dropout masks (layer 1 first).
    - dtype: floating dtype of the parameters and of the computation (float32 is fast).
    - progress: show a tqdm progress bar over epochs with the loss and validation accuracy.

    Attributes after ``fit``: params_ (dict), history_ (lists with one entry per epoch:
    "loss", the mean training loss over the epoch's minibatches incl. the penalty;
    "val_accuracy", the accuracy on the validation data if given (else empty); "epoch_time",
    seconds spent in the epoch's training steps, without the validation), best_epoch_ (1-based, or None without
    validation data), n_epochs_ (epochs run).
    """

    def __init__(self, sizes=(784, 128, 64, 10), hidden_activation="relu", init="he",
                 init_scale=0.1, l2=0.0, dropout=0.0, optimizer="adam", lr=1e-3, momentum=0.9,
                 batch_size=128, epochs=20, patience=None, seed=0, dtype=np.float32,
                 progress=True):
        self.sizes = tuple(int(s) for s in sizes)
        self.hidden_activation = hidden_activation
        self.init, self.init_scale = init, init_scale
        self.l2, self.dropout = l2, dropout
        self.optimizer, self.lr, self.momentum = optimizer, lr, momentum
        self.batch_size, self.epochs, self.patience = batch_size, epochs, patience
        self.seed, self.dtype, self.progress = seed, np.dtype(dtype), progress
        if len(self.sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output size; got {sizes}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
        if not np.issubdtype(self.dtype, np.floating):
            raise ValueError(f"dtype must be a floating type; got {self.dtype}")
        if l2 < 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"need l2 >= 0 and 0 <= dropout < 1; got l2={l2}, dropout={dropout}")
        if batch_size < 1 or epochs < 1 or (patience is not None and patience < 1):
            raise ValueError("batch_size, epochs and patience must be positive integers")
        get_activation(hidden_activation)
        make_optimizer(optimizer, lr, **self._optimizer_kwargs())  # validates the name and lr

    def get_params(self, deep=True):
        """The constructor arguments, as in scikit-learn."""
        keys = ("sizes", "hidden_activation", "init", "init_scale", "l2", "dropout", "optimizer",
                "lr", "momentum", "batch_size", "epochs", "patience", "seed", "dtype", "progress")
        return {k: getattr(self, k) for k in keys}

    def __repr__(self):
        return "MLP(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    def _optimizer_kwargs(self):
        return {"momentum": self.momentum} if self.optimizer == "momentum" else {}

    # ------------------------------------------------------------ input checks
    def _inputs(self, X):
        """X as a C-contiguous (N, n0) array of self.dtype; a copy only if it must convert."""
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must have shape (N, {self.sizes[0]}); got {X.shape}")
        if not np.all(np.isfinite(X)):
            row = int(np.argwhere(~np.isfinite(X))[0, 0])
            raise ValueError(f"X contains NaN or inf (first in row {row}): remove or impute those "
                             "values before training or predicting")
        return X

    def _labels(self, y, n):
        """y as a (n,) integer array of class indices 0 .. C-1."""
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match X; got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
                raise ValueError("y must hold integer class labels 0 .. C-1")
        y = y.astype(np.intp, copy=False)
        C = self.sizes[-1]
        if n and (y.min() < 0 or y.max() >= C):
            raise ValueError(f"labels must lie in 0 .. {C - 1}; got {y.min()} .. {y.max()}")
        return y

    # ------------------------------------------------------------ training
    def fit(self, X, y, X_val=None, y_val=None):
        """Train on X (N, n0) with integer labels y (N,); optional validation data.

        X and y are never modified (X is converted to self.dtype, copying only if needed).
        Returns self.
        """
        X = self._inputs(X)
        y = self._labels(y, X.shape[0])
        has_val = X_val is not None
        if has_val:
            X_val = self._inputs(X_val)
            y_val = self._labels(y_val, X_val.shape[0])
        elif self.patience is not None:
            raise ValueError("early stopping (patience) needs validation data X_val, y_val")
        rng = np.random.default_rng(self.seed)
        self.params_ = init_params(self.sizes, rng, self.init, self.init_scale, self.dtype)
        opt = make_optimizer(self.optimizer, self.lr, **self._optimizer_kwargs())
        step = _FusedStep(self.params_, self.hidden_activation, self.l2, self.dropout)
        self.history_ = {"loss": [], "val_accuracy": [], "epoch_time": []}
        self.best_epoch_, best_acc, best_params = None, -1.0, None
        N, bs = X.shape[0], self.batch_size
        bar = tqdm(range(1, self.epochs + 1), desc="MLP.fit", unit="epoch",
                   disable=not self.progress, leave=False)
        for epoch in bar:
            t0 = time.perf_counter()
            perm = rng.permutation(N)
            total = 0.0
            for start in range(0, N, bs):
                idx = perm[start:start + bs]
                total += step(self.params_, X, y, idx, rng) * len(idx)
                opt.step(self.params_, step.grads)
            self.history_["epoch_time"].append(time.perf_counter() - t0)
            self.history_["loss"].append(total / N)
            if not np.isfinite(total):
                bar.close()
                raise FloatingPointError(
                    f"training diverged in epoch {epoch}: the loss is {total / N}. Lower the "
                    f"learning rate (lr={self.lr}) or standardise the inputs.")
            self.n_epochs_ = epoch
            if not has_val:
                bar.set_postfix(loss=f"{total / N:.4f}")
                continue
            acc = self.score(X_val, y_val)
            self.history_["val_accuracy"].append(acc)
            bar.set_postfix(loss=f"{total / N:.4f}", val_acc=f"{acc:.4f}")
            if acc > best_acc:
                best_acc, self.best_epoch_ = acc, epoch
                if self.patience is not None:
                    best_params = {k: p.copy() for k, p in self.params_.items()}
            elif self.patience is not None and epoch - self.best_epoch_ >= self.patience:
                break
        bar.close()
        if best_params is not None:
            self.params_ = best_params
        return self

    # ------------------------------------------------------------ prediction
    def _check_fitted(self):
        if not hasattr(self, "params_"):
            raise RuntimeError("this MLP is not fitted yet: call fit(X, y) first")

    def decision_function(self, X):
        """Logits (N, C) for inputs X (N, n0); no dropout."""
        self._check_fitted()
        return forward(self.params_, self._inputs(X), self.hidden_activation)[0]

    def predict_proba(self, X):
        """Class probabilities (N, C), rows summing to 1."""
        return softmax(self.decision_function(X))

    def predict(self, X):
        """Predicted class labels (N,), integers 0 .. C-1."""
        return np.argmax(self.decision_function(X), axis=1)

    def score(self, X, y):
        """Accuracy: the fraction of examples whose predicted label equals y. A float in [0, 1]."""
        X = self._inputs(X)
        y = self._labels(y, X.shape[0])
        return float(np.mean(self.predict(X) == y))
