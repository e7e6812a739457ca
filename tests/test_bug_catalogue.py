"""The bug catalogue: typical student bugs, each a small wrong implementation.

Every bug must be rejected by the check a test cell would run, and where the catalogue names
words, the failure message must contain them (it names the bug). Correct variants written in
other styles (loops, einsum, float32 input, other stable formulas) must pass. The catalogue
runs over 50 seeds: no result may depend on the seed.

References come from solutions_lib, as in the hidden tests; the checks themselves never see it.
"""
import numpy as np
import pytest

from autograder import checks
from solutions_lib import activations as A
from solutions_lib import calculus, layers, losses

SEEDS = range(50)


# ---------------------------------------------------------------- helpers building test cases
def dense_case(activation, backward, seed, dtype=np.float64, mode="auto"):
    checks.check_dense_backward(lambda X, W, b: layers.dense_forward(X, W, b, activation),
                                backward, seed=seed, dtype=dtype, mode=mode)


def backward_with(dz_of):
    """A dense backward that is right except for how it forms dZ from (dH, Z, activation)."""
    def backward(dH, cache):
        X, W, b, Z, act = cache
        dZ = dz_of(dH, Z, act)
        return dZ @ W, dZ.T @ X, dZ.sum(axis=0)
    return backward


def correct_dz(dH, Z, act):
    return A.get_activation(act)[1](Z) * dH


def batch(seed, n=5, k=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, k)), rng.standard_normal((n, k)), rng


def grad_case(loss, grad, seed, k=3, targets="real"):
    """Check grad(h, y) against finite differences of loss(h, y) on a random batch (5, k).

    targets: "real" (random reals), "binary" (0/1) or "onehot" (one-hot rows).
    """
    H, Y, _ = batch(seed, k=k)
    if targets == "binary":
        Y = (Y > 0).astype(float)
    elif targets == "onehot":
        Y = np.eye(k)[np.arange(len(H)) % k]
    checks.check_gradient(lambda h: loss(h, Y), lambda h: grad(h, Y), H)


# ---------------------------------------------------------------- the bugs
def bug_transposed_dW(dH, cache):
    X, W, b, Z, act = cache
    dZ = correct_dz(dH, Z, act)
    return dZ @ W, X.T @ dZ, dZ.sum(axis=0)


def bug_bias_wrong_axis(dH, cache):
    X, W, b, Z, act = cache
    dZ = correct_dz(dH, Z, act)
    return dZ @ W, dZ.T @ X, dZ.sum(axis=1)


def bug_bias_not_summed(dH, cache):
    X, W, b, Z, act = cache
    dZ = correct_dz(dH, Z, act)
    return dZ @ W, dZ.T @ X, dZ


def bug_in_place(dH, cache):
    X, W, b, Z, act = cache
    dH *= A.get_activation(act)[1](Z)            # mutates the caller's upstream gradient
    return dH @ W, dH.T @ X, dH.sum(axis=0)


def bug_layer_averages(dH, cache):
    X, W, b, Z, act = cache
    dZ = correct_dz(dH, Z, act)
    return dZ @ W, dZ.T @ X / X.shape[0], dZ.sum(axis=0) / X.shape[0]


def bug_float32(dH, cache):
    X, W, b, Z, act = cache
    dZ = correct_dz(dH, Z, act).astype(np.float32)
    return (dZ @ W.astype(np.float32), dZ.T @ X.astype(np.float32), dZ.sum(axis=0))


def bug_sign(dH, cache):
    X, W, b, Z, act = cache
    dZ = -correct_dz(dH, Z, act)
    return dZ @ W, dZ.T @ X, dZ.sum(axis=0)


def one_entry_off(dH, cache):
    """Subtle: one typical entry of dW (of median magnitude) is 1 % off."""
    dX, dW, db = layers.dense_backward(dH, cache)
    dW = dW.copy()
    median_entry = np.argsort(np.abs(dW), axis=None)[dW.size // 2]
    dW.flat[median_entry] *= 1.01
    return dX, dW, db


def dropped_unit(dH, cache):
    """Subtle: the gradient of one unit (a row of dW) is lost."""
    dX, dW, db = layers.dense_backward(dH, cache)
    dW = dW.copy()
    dW[min(5, dW.shape[0] - 1)] = 0
    return dX, dW, db


def mse_sum_not_mean(h, y):
    return h - y                                  # forgot / N


def mse_grad_flattens_y(h, y):
    return (h - y.reshape(-1)) / h.shape[0]       # (N, 1) - (N,) -> (N, N)


def mse_grad_wrong_sign(h, y):
    return (y - h) / h.shape[0]


def mse_lost_half(h, y):
    return float(np.sum((h - y) ** 2) / h.shape[0])


def softmax_naive(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def bce_log_zero(o, y):
    p = 1 / (1 + np.exp(-o))
    return float(-np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / o.shape[0])


def sce_naive_overflow(o, y):
    return float(np.sum(np.log(1 + np.exp(-o)) + (1 - y) * o) / o.shape[0])


def sce_grad_extra_sigmoid_prime(o, y):
    return (A.sigmoid(o) - y) * A.sigmoid_grad(o) / o.shape[0]


def relu_grad_returns_relu(z):
    return np.maximum(z, 0)


def fork_forward(x, a=0.7, c=1.3):
    """J = sum(a z1 + sin(c z1)) with z1 = x²: z1 forks into two branches."""
    z1 = x ** 2
    return float(np.sum(a * z1 + np.sin(c * z1)))


def fork_backward(x, a=0.7, c=1.3):
    dz1 = np.zeros_like(x)
    dz1 += a                                      # branch 1
    dz1 += c * np.cos(c * x ** 2)                 # branch 2: gradients add up at a fork
    return dz1 * 2 * x


def fork_backward_overwrites(x, a=0.7, c=1.3):
    dz1 = a * np.ones_like(x)
    dz1 = c * np.cos(c * x ** 2)                  # `=` instead of `+=`: branch 1 is lost
    return dz1 * 2 * x


M = np.array([[1.0, 2.0, 0.0, -1.0], [0.5, -1.0, 3.0, 0.0], [0.0, 1.0, 1.0, 2.0], [-2.0, 0.0, 0.5, 1.0]])


def tanh_of_affine(x):
    return np.tanh(M @ x)


def tanh_of_affine_jacobian(x):
    return (1 - np.tanh(M @ x) ** 2)[:, None] * M


def tanh_of_affine_jacobian_transposed(x):
    return tanh_of_affine_jacobian(x).T


def dropout_backward_unscaled(dout, cache):
    return dout * (cache > 0)                     # forgot the 1/(1-p) the forward applied


# Each entry: (id, a function running the check for one seed, words the message must contain or None)
CATALOGUE = [
    ("missing transpose in dW", lambda s: dense_case("sigmoid", bug_transposed_dW, s), "transposed"),
    ("missing f'", lambda s: dense_case("sigmoid", backward_with(lambda dH, Z, a: dH), s),
     "f′(h̄) is missing"),
    ("sigma' fed z instead of sigma(z)",
     lambda s: dense_case("sigmoid", backward_with(lambda dH, Z, a: Z * (1 - Z) * dH), s), "fed h̄"),
    ("sigma' evaluated at the output",
     lambda s: dense_case("sigmoid", backward_with(lambda dH, Z, a: A.sigmoid_grad(A.sigmoid(Z)) * dH), s),
     "output h = f(h̄)"),
    ("tanh' fed z", lambda s: dense_case("tanh", backward_with(lambda dH, Z, a: (1 - Z ** 2) * dH), s),
     "1 − t²"),
    ("ReLU mask on the gradient", lambda s: dense_case("relu", backward_with(lambda dH, Z, a: dH * (dH > 0)), s),
     "mask is taken from the upstream gradient"),
    ("in-place mutation of dout", lambda s: dense_case("sigmoid", bug_in_place, s), "in place"),
    ("layer divides by N again", lambda s: dense_case("tanh", bug_layer_averages, s), "batch size"),
    ("bias summed on the wrong axis", lambda s: dense_case("relu", bug_bias_wrong_axis, s), "wrong axis"),
    ("bias not summed over the batch", lambda s: dense_case("relu", bug_bias_not_summed, s), "batch axis"),
    ("float32 computation", lambda s: dense_case("sigmoid", bug_float32, s), "float32"),
    ("wrong sign in backward", lambda s: dense_case("tanh", bug_sign, s), "wrong sign"),
    ("one entry of dW 1 % off", lambda s: dense_case("sigmoid", one_entry_off, s), None),
    ("one unit's gradient dropped", lambda s: dense_case("sigmoid", dropped_unit, s), "row"),
    ("sum instead of mean (mse grad)",
     lambda s: grad_case(losses.mse, mse_sum_not_mean, s), "batch size"),
    ("lost 1/2 in the mse",
     lambda s: checks.check_forward(mse_lost_half, losses.mse, batch(s)[:2]), "½"),
    ("(N,) vs (N,1) broadcasting",
     lambda s: grad_case(losses.mse, mse_grad_flattens_y, s, k=1), "broadcast"),
    ("wrong sign in mse grad",
     lambda s: grad_case(losses.mse, mse_grad_wrong_sign, s), "wrong sign"),
    ("exp overflow in softmax",
     lambda s: checks.check_forward(softmax_naive, A.softmax, (1000 + 100 * batch(s)[0],)), "overflow"),
    ("exp overflow in sigmoid cross-entropy",
     lambda s: checks.check_forward(sce_naive_overflow, losses.sigmoid_cross_entropy,
                                    (batch(s)[0] * 1000, (batch(s)[1] > 0).astype(float))), "overflow"),
    ("log(0) in the cross-entropy",
     lambda s: checks.check_forward(bce_log_zero, losses.sigmoid_cross_entropy,
                                    (batch(s)[0] * 1000, (batch(s)[1] > 0).astype(float))), "log(0)"),
    ("sigma' applied again after the fused CE gradient",
     lambda s: grad_case(losses.sigmoid_cross_entropy, sce_grad_extra_sigmoid_prime, s, targets="binary"),
     "σ′ factor too many"),
    ("relu_grad returns relu", lambda s: checks.check_activation(A.relu, relu_grad_returns_relu, seed=s),
     "not its derivative"),
    ("= instead of += at a fork",
     lambda s: checks.check_gradient(fork_forward, fork_backward_overwrites,
                                     np.random.default_rng(s).uniform(-1, 1, size=4)), None),
    ("transposed Jacobian",
     lambda s: checks.check_jacobian(tanh_of_affine, tanh_of_affine_jacobian_transposed,
                                     np.random.default_rng(s).standard_normal(4)), "transposed"),
    ("dropout backward without the 1/(1-p) scale",
     lambda s: checks.check_layer(
         lambda X, s=s: layers.dropout_forward(X, 0.2, np.random.default_rng(s)),
         dropout_backward_unscaled, {"X": np.random.default_rng(s).standard_normal((6, 4))}),
     "constant ≈ 0.8"),
]


@pytest.mark.parametrize("bug_id,run,words", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bug_is_rejected_and_named(bug_id, run, words):
    with pytest.raises(AssertionError) as err:
        run(0)
    message = str(err.value)
    assert message.strip(), "the failure must come with a message"
    if words:
        assert words in message, f"{bug_id}: message does not name the bug:\n{message}"


def test_catalogue_size_and_named_kinds():
    assert len(CATALOGUE) >= 15
    assert sum(1 for c in CATALOGUE if c[2]) >= 10


@pytest.mark.slow
def test_catalogue_is_not_flaky_over_50_seeds():
    outcomes = {}
    for bug_id, run, words in CATALOGUE:
        for seed in SEEDS:
            try:
                run(seed)
                outcomes.setdefault(bug_id, []).append(f"seed {seed}: passed")
            except AssertionError as err:
                if words and words not in str(err):
                    outcomes.setdefault(bug_id, []).append(f"seed {seed}: not named: {err}")
    assert not outcomes, outcomes


# ---------------------------------------------------------------- correct variants must pass
def backward_loops(dH, cache):
    X, W, b, Z, act = cache
    fp = A.get_activation(act)[1]
    N, n_in = X.shape
    n_out = W.shape[0]
    dX, dW, db = np.zeros_like(X), np.zeros_like(W), np.zeros_like(b)
    for n in range(N):
        for i in range(n_out):
            dz = fp(Z[n, i]) * dH[n, i]
            db[i] += dz
            for j in range(n_in):
                dW[i, j] += dz * X[n, j]
                dX[n, j] += dz * W[i, j]
    return dX, dW, db


def backward_einsum(dH, cache):
    X, W, b, Z, act = cache
    dZ = np.einsum("ni,ni->ni", A.get_activation(act)[1](Z), dH)
    return np.einsum("ni,ij->nj", dZ, W), np.einsum("ni,nj->ij", dZ, X), np.einsum("ni->i", dZ)


def backward_relu_ge(dH, cache):
    """ReLU derivative taken as 1 at the kink: equally valid."""
    X, W, b, Z, act = cache
    dZ = (Z >= 0) * dH
    return dZ @ W, dZ.T @ X, dZ.sum(axis=0)


def softmax_logsumexp(z):
    m = z.max(axis=-1, keepdims=True)
    return np.exp(z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True)))


def sigmoid_via_tanh(z):
    return 0.5 * (1 + np.tanh(z / 2))


def sigmoid_grad_via_tanh(z):
    s = sigmoid_via_tanh(z)
    return s * (1 - s)


def relu_grad_ge(z):
    return (z >= 0).astype(float)


def mse_grad_mean(h, y):
    return 2 * np.mean(0.5 * (h - y)[..., None], axis=-1) / h.shape[0]


CORRECT = [
    ("loops", lambda s: dense_case("sigmoid", backward_loops, s)),
    ("einsum", lambda s: dense_case("tanh", backward_einsum, s)),
    ("reference relu", lambda s: dense_case("relu", layers.dense_backward, s)),
    ("relu with >= at the kink", lambda s: dense_case("relu", backward_relu_ge, s)),
    ("float32 input", lambda s: dense_case("sigmoid", layers.dense_backward, s, dtype=np.float32)),
    ("fast mode", lambda s: dense_case("sigmoid", layers.dense_backward, s, mode="fast")),
    ("full mode", lambda s: dense_case("relu", layers.dense_backward, s, mode="full")),
    ("logsumexp softmax", lambda s: checks.check_forward(softmax_logsumexp, A.softmax,
                                                         (1000 + 100 * batch(s)[0],))),
    ("sigmoid via tanh", lambda s: checks.check_activation(sigmoid_via_tanh, sigmoid_grad_via_tanh, seed=s)),
    ("relu_grad >= 0, tested at the kink",
     lambda s: checks.check_activation(A.relu, relu_grad_ge, z=np.array([[-1.0, 0.0, 2.0]]), seed=s)),
    ("relu_grad > 0, tested at the kink",
     lambda s: checks.check_activation(A.relu, A.relu_grad, z=np.array([[-1.0, 0.0, 2.0]]), seed=s)),
    ("mse grad via mean", lambda s: grad_case(losses.mse, mse_grad_mean, s)),
    ("fused CE grad", lambda s: grad_case(losses.sigmoid_cross_entropy, losses.sigmoid_cross_entropy_grad,
                                          s, targets="binary")),
    ("softmax CE grad", lambda s: grad_case(losses.softmax_cross_entropy, losses.softmax_cross_entropy_grad,
                                            s, targets="onehot")),
    ("fork with +=", lambda s: checks.check_gradient(
        fork_forward, fork_backward, np.random.default_rng(s).uniform(-1, 1, size=4))),
    ("Jacobian", lambda s: checks.check_jacobian(tanh_of_affine, tanh_of_affine_jacobian,
                                                 np.random.default_rng(s).standard_normal(4))),
    ("softmax Jacobian", lambda s: checks.check_jacobian(A.softmax, calculus.softmax_jacobian,
                                                         np.random.default_rng(s).standard_normal(4))),
    ("dropout", lambda s: checks.check_layer(
        lambda X, s=s: layers.dropout_forward(X, 0.5, np.random.default_rng(s)),
        layers.dropout_backward, {"X": np.random.default_rng(s).standard_normal((6, 4))})),
]


@pytest.mark.parametrize("variant,run", CORRECT, ids=[c[0] for c in CORRECT])
def test_correct_variant_passes(variant, run):
    run(0)


@pytest.mark.slow
def test_correct_variants_pass_over_50_seeds():
    failures = []
    for variant, run in CORRECT:
        for seed in SEEDS:
            try:
                run(seed)
            except AssertionError as err:
                failures.append(f"{variant}, seed {seed}: {err}")
    assert not failures, failures[:5]


def test_every_bug_of_the_class_says_what_it_costs():
    """bugs.json (the synthetic class's typical bugs): each states the points its test cell keeps
    (``score``, checked exactly by the demo and tests/test_grading.py) and its cost in words
    ("db summed over the wrong axis: −1 of 4"), which must agree with the cell's points."""
    import nbformat
    from autograder.instructor import nbcells
    from autograder.instructor.synthetic import answers
    for name, bugs in answers.load_bugs().items():
        (path,) = nbcells.notebooks(nbcells.REPOSITORY / "source_notebooks" / name)
        points = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
                  for c in nbformat.read(path, as_version=4).cells if "nbgrader" in c.metadata
                  and "points" in c.metadata["nbgrader"]}
        for bug in bugs:
            maximum = points[bug["fails"]]
            assert 0 <= bug["score"] < maximum, bug
            assert (bug["score"] * 16).is_integer(), "shares are multiples of 1/16"
            assert bug["cost"].endswith(f": −{maximum - bug['score']:g} of {maximum:g}"), bug["cost"]
