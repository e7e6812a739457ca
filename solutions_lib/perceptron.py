"""The perceptron, logic gates, and the XOR problem.

A perceptron is one neuron with a hard threshold: h(x) = sign(wᵀx + b), where
sign(z) = +1 for z >= 0 and -1 otherwise (so sign(0) = +1, as in the notes).

Conventions (as in the rest of ``solutions_lib``):
- Batch-first: X has shape (N, D), one example per row, so the N pre-activations are the
  vector X w + b of shape (N,).
- Functions never change their inputs; they return new arrays.
- Labels of the perceptron are -1/+1. Truth tables of logic gates and of XOR are 0/1.
- Randomness comes from ``rng``: a ``numpy.random.Generator`` or an int seed. ``None`` means
  the fixed seed 0, so that calling a function twice gives the same result.

What is here:
- ``perceptron_predict``, ``perceptron_step``, ``perceptron_train``: the classic learning rule.
- ``linearly_separable_data``: a seeded 2-D toy set the rule can learn (it lives in
  ``autograder.datasets``, because students need it too; re-exported here).
- ``LOGIC_GATES`` / ``logic_gate``: AND, OR, NAND as single perceptrons.
- ``XOR_INPUTS`` / ``XOR_TARGETS``: the XOR truth table, which no single perceptron can fit.
- ``xor_network`` / ``xor_network_linear``: the two-layer ReLU network of the notes, and the
  same network with the ReLU removed (which collapses to one linear map and fails).
- ``xor_three_perceptrons``: the "design challenge": XOR from three sign perceptrons.
- ``single_neuron``: one neuron f(X w + b) whose activation decides whether it is a
  perceptron, logistic regression or linear regression.
"""
import numpy as np

from autograder.datasets import as_generator, linearly_separable_data  # noqa: F401  (re-exported)

from .activations import get_activation, relu, sign


# ---------------------------------------------------------------- helpers
def _const(values):
    """A read-only float array, for module constants that nobody should change by accident."""
    a = np.array(values, dtype=np.float64)
    a.flags.writeable = False
    return a


def _float_matrix(X, name="X"):
    """X as a 2-D float array, or a ValueError that says how to fix the shape."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"{name} must have shape (N, D), one example per row; got shape {X.shape}. "
            "For a single example use x.reshape(1, -1)."
        )
    return X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64)


def _check_weights(X, w):
    w = np.asarray(w)
    if w.shape != (X.shape[1],):
        raise ValueError(
            f"w must have shape (D,) = ({X.shape[1]},) to match X of shape {X.shape}; "
            f"got {w.shape}"
        )
    return w


# ---------------------------------------------------------------- the perceptron
def perceptron_predict(X, w, b):
    """Perceptron output sign(X w + b), with sign(0) = +1.

    Inputs:
    - X: (N, D) inputs, one example per row.
    - w: (D,) weights.
    - b: float, the bias.
    Output: (N,) array with values in {-1.0, +1.0}.
    """
    X = _float_matrix(X)
    w = _check_weights(X, w)
    return sign(X @ w + b)


def perceptron_step(x, y, w, b, lr=1.0):
    """One step of the perceptron learning rule on a single example.

    If the example is misclassified (sign(wᵀx + b) != y) the weights move towards it:
    w_new = w + lr · y · x and b_new = b + lr · y. A correctly classified example leaves
    them unchanged.
    Inputs:
    - x: (D,) one example.
    - y: its label, -1 or +1.
    - w: (D,) current weights; b: float, current bias.
    - lr: learning rate (step size), > 0.
    Returns (w_new, b_new): a new (D,) array and a float. ``w`` itself is not modified.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if x.ndim != 1 or x.shape != w.shape:
        raise ValueError(
            f"perceptron_step works on one example: x and w must both have shape (D,); "
            f"got x {x.shape} and w {w.shape}"
        )
    prediction = 1.0 if x @ w + b >= 0 else -1.0
    if prediction == y:
        return w.copy(), float(b)
    return w + lr * y * x, float(b + lr * y)


def perceptron_train(X, y, lr=1.0, max_epochs=100, rng=None):
    """Train a perceptron with the classic learning rule.

    Start from w = 0, b = 0. In every epoch visit all examples once, in a random order
    (drawn from ``rng``), and apply ``perceptron_step`` to each. Stop after the first epoch in
    which no example was misclassified, or after ``max_epochs`` epochs. If the data are
    linearly separable the rule is guaranteed to stop (perceptron convergence theorem);
    otherwise it keeps changing the weights until ``max_epochs``.
    Inputs:
    - X: (N, D) inputs, one example per row.
    - y: (N,) labels in {-1, +1} (not 0/1: convert with 2 * y - 1).
    - lr: learning rate, > 0.
    - max_epochs: the most passes over the data.
    - rng: numpy Generator or int seed for the visiting order (None: seed 0).
    Returns (w, b, errors_per_epoch):
    - w: (D,) learned weights; b: float, learned bias.
    - errors_per_epoch: list of ints, the number of misclassified examples (= updates) in each
      epoch; its last entry is 0 exactly when training converged.
    """
    X = _float_matrix(X)
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape (N,) = ({X.shape[0]},); got {y.shape}")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError(
            "perceptron labels must be -1 or +1; got values "
            f"{np.unique(y).tolist()} (for 0/1 labels use 2 * y - 1)"
        )
    if lr <= 0:
        raise ValueError(f"learning rate lr must be positive; got {lr}")
    rng = as_generator(rng, "perceptron")
    w, b = np.zeros(X.shape[1]), 0.0
    errors_per_epoch = []
    for _ in range(max_epochs):
        errors = 0
        for i in rng.permutation(X.shape[0]):
            w_new, b_new = perceptron_step(X[i], y[i], w, b, lr)
            errors += int(b_new != b)     # every update moves b by ±lr, so this counts mistakes
            w, b = w_new, b_new
        errors_per_epoch.append(errors)
        if errors == 0:
            break
    return w, b, errors_per_epoch


# ---------------------------------------------------------------- logic gates
#: Perceptron weights (w, b) for logic gates on inputs x in {0, 1}²: sign(w·x + b) is +1
#: exactly when the gate is true. The bias puts the threshold halfway between the counts
#: of ones that should give "false" and those that should give "true".
LOGIC_GATES = {
    "AND": (_const([1.0, 1.0]), -1.5),    # true only when x1 + x2 = 2
    "OR": (_const([1.0, 1.0]), -0.5),     # true when x1 + x2 >= 1
    "NAND": (_const([-1.0, -1.0]), 1.5),  # NOT AND: true unless x1 + x2 = 2
}


def logic_gate(name, X):
    """Evaluate the logic gate ``name`` ("AND", "OR" or "NAND") with its perceptron.

    Input: X (N, 2) with entries 0 or 1. Output: (N,) float array in {0.0, 1.0}, 1 for true,
    i.e. (sign(X w + b) + 1) / 2.
    """
    try:
        w, b = LOGIC_GATES[name]
    except KeyError:
        raise ValueError(f"unknown gate {name!r}; choose one of {sorted(LOGIC_GATES)}") from None
    return (perceptron_predict(X, w, b) + 1.0) / 2.0


#: The four inputs of XOR, one per row: (0,0), (0,1), (1,0), (1,1). Shape (4, 2).
XOR_INPUTS = _const([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
#: XOR of each row of XOR_INPUTS: 1 when the two inputs differ. Shape (4,).
XOR_TARGETS = _const([0.0, 1.0, 1.0, 0.0])


# ---------------------------------------------------------------- XOR with a ReLU network
#: The notes' two-layer network f(x) = vᵀ relu(Wᵀx + b) that computes XOR.
#: W is (n_in, n_hidden) = (2, 2): column j holds the input weights of hidden unit j.
XOR_W = _const([[1.0, 1.0], [1.0, 1.0]])
#: Hidden biases (n_hidden,): unit 1 computes x1 + x2, unit 2 computes x1 + x2 - 1.
XOR_B = _const([0.0, -1.0])
#: Output weights (n_hidden,): f = relu(x1 + x2) - 2 relu(x1 + x2 - 1).
XOR_V = _const([1.0, -2.0])


def _check_xor_shapes(X, W, b, v):
    X = _float_matrix(X)
    W, b, v = np.asarray(W), np.asarray(b), np.asarray(v)
    if W.ndim != 2 or W.shape[0] != X.shape[1]:
        raise ValueError(
            f"W must have shape (n_in, n_hidden) = ({X.shape[1]}, n_hidden) as in the notes' "
            f"Wᵀx; got {W.shape}"
        )
    if b.shape != (W.shape[1],) or v.shape != (W.shape[1],):
        raise ValueError(
            f"b and v must have shape (n_hidden,) = ({W.shape[1]},); got {b.shape} and {v.shape}"
        )
    return X, W, b, v


def xor_network(X, W=XOR_W, b=XOR_B, v=XOR_V):
    """The notes' two-layer ReLU network f(x) = vᵀ relu(Wᵀx + b), applied to every row of X.

    In the notes x is a column and W is (n_in, n_hidden), so the hidden pre-activation of one
    example is Wᵀx + b. With examples as rows of X the same numbers are X W + b (row n of
    X W is (Wᵀx_n)ᵀ). With the default weights the output is exactly XOR on {0, 1}².
    Inputs:
    - X: (N, n_in) inputs.
    - W: (n_in, n_hidden); b: (n_hidden,); v: (n_hidden,).
    Output: (N,) network outputs (for XOR_INPUTS: 0, 1, 1, 0).
    """
    X, W, b, v = _check_xor_shapes(X, W, b, v)
    return relu(X @ W + b) @ v


def xor_network_linear(X, W=XOR_W, b=XOR_B, v=XOR_V):
    """The same network with the ReLU removed: f(x) = vᵀ(Wᵀx + b) = (W v)ᵀx + vᵀb.

    Without the nonlinearity the two layers collapse into one affine function, which cannot
    represent XOR. With the default weights it gives 2, 1, 1, 0 on XOR_INPUTS (wrong at (0, 0)).
    Inputs and output as in ``xor_network``.
    """
    X, W, b, v = _check_xor_shapes(X, W, b, v)
    return (X @ W + b) @ v


# ---------------------------------------------------------------- XOR with three perceptrons
#: The design challenge: hidden perceptron A is OR on the inputs x ∈ {0, 1}² ...
XOR_PERCEPTRON_A = LOGIC_GATES["OR"]
#: ... hidden perceptron B is NAND on the inputs ...
XOR_PERCEPTRON_B = LOGIC_GATES["NAND"]
#: ... and the output perceptron C is AND on the hidden outputs z = (z1, z2) ∈ {-1, +1}²:
#: w_C·z + b_C is 1 when both are +1 and -1 or -3 otherwise.
XOR_PERCEPTRON_C = (_const([1.0, 1.0]), -1.0)


def xor_three_perceptrons(X):
    """XOR from three sign perceptrons: XOR(x) = AND(OR(x), NAND(x)).

    z1 = sign(w_Aᵀx + b_A) (OR), z2 = sign(w_Bᵀx + b_B) (NAND), output sign(w_Cᵀz + b_C) (AND),
    with the weights ``XOR_PERCEPTRON_A``, ``_B``, ``_C``. The hidden units see the inputs, the
    output unit sees only the hidden units' ±1 outputs.
    Input: X (N, 2) with entries 0 or 1. Output: (N,) float array in {0.0, 1.0}.
    """
    X = _float_matrix(X)
    Z = np.column_stack([
        perceptron_predict(X, *XOR_PERCEPTRON_A),
        perceptron_predict(X, *XOR_PERCEPTRON_B),
    ])
    return (perceptron_predict(Z, *XOR_PERCEPTRON_C) + 1.0) / 2.0


# ---------------------------------------------------------------- one neuron, three models
def single_neuron(X, w, b, activation):
    """One neuron f(X w + b) for every row of X.

    The activation decides which classic model it is:
    - "step" (0/1) or "sign" (-1/+1): the perceptron,
    - "sigmoid": logistic regression (the output is a probability),
    - "linear": linear regression.
    Any name known to ``activations.get_activation`` works.
    Inputs: X (N, D); w (D,); b float; activation, a name. Output: (N,).
    """
    X = _float_matrix(X)
    w = _check_weights(X, w)
    f, _ = get_activation(activation)
    return f(X @ w + b)
