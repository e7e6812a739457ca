"""Chain rule, computation graphs and Jacobians, worked out in code.

Everything here is small on purpose: each function is one example from the notes, so that a
notebook can show the forward pass, the backward pass, and a finite-difference check side by
side.

Conventions:
- Scalar examples (``chain_example`` ...) work elementwise on arrays of any shape.
- Jacobians are in *numerator layout*: for y = f(x) with y ∈ R^n and x ∈ R^m, the Jacobian
  ∂y/∂x has shape (n, m), row i holding the partial derivatives of y_i.
- A backward function takes the gradient of the final scalar J with respect to its output
  (the "upstream" gradient) and returns the gradients with respect to its inputs, each with the
  shape of that input. By the chain rule this is the transposed Jacobian times the upstream
  gradient: ∇_x J = (∂y/∂x)ᵀ ∇_y J (see ``vjp_from_jacobian``).
- Where a value feeds several later nodes (a fork), its gradient is the *sum* of what comes
  back along each branch: accumulate with ``+=``.
- Nothing here changes its inputs.

For checking any of these numerically use ``numerical_jacobian`` (central differences),
re-exported from ``autograder.checks`` so that the course has a single implementation.
"""
import numpy as np

from autograder.checks import numerical_jacobian  # noqa: F401  (re-exported)

from .activations import _float, sigmoid, softmax


# ---------------------------------------------------------------- multivariate chain rule
def chain_example(x):
    """The notes' example y = z1⁴ e^{z2} + 5 z1 + 7 z2 with z1 = sin x and z2 = x³.

    Input: x, array of any shape (elementwise). Output: y, same shape.
    """
    x = _float(x)
    z1, z2 = np.sin(x), x ** 3
    return z1 ** 4 * np.exp(z2) + 5.0 * z1 + 7.0 * z2


def chain_example_grad(x):
    """dy/dx for ``chain_example`` by the multivariate chain rule.

    x reaches y along two paths, through z1 and through z2, so
        dy/dx = ∂y/∂z1 · dz1/dx + ∂y/∂z2 · dz2/dx
              = (4 z1³ e^{z2} + 5) · cos x + (z1⁴ e^{z2} + 7) · 3x².
    Input: x, array of any shape. Output: dy/dx, same shape.
    """
    x = _float(x)
    z1, z2 = np.sin(x), x ** 3
    dy_dz1 = 4.0 * z1 ** 3 * np.exp(z2) + 5.0
    dy_dz2 = z1 ** 4 * np.exp(z2) + 7.0
    dz1_dx, dz2_dx = np.cos(x), 3.0 * x ** 2
    return dy_dz1 * dz1_dx + dy_dz2 * dz2_dx


def product_example(x):
    """The notes' second example y = z1 z2 with z1 = sin x and z2 = x³ (elementwise)."""
    x = _float(x)
    return np.sin(x) * x ** 3


def product_example_grad(x):
    """dy/dx for ``product_example``: ∂y/∂z1 = z2 and ∂y/∂z2 = z1, so

        dy/dx = z2 · cos x + z1 · 3x² = x³ cos x + 3x² sin x

    (the product rule falls out of the chain rule). Input and output of x's shape.
    """
    x = _float(x)
    z1, z2 = np.sin(x), x ** 3
    return z2 * np.cos(x) + z1 * 3.0 * x ** 2


# ---------------------------------------------------------------- computation graphs
def graph_forward(x, y, z):
    """Forward pass of the graph q = x + y, v = q · z.

    Inputs: x, y, z numbers (or arrays of one shape, elementwise).
    Returns (v, cache) with cache = (q, z) holding what the backward pass needs.
    """
    x, y, z = _float(x), _float(y), _float(z)
    q = x + y
    return q * z, (q, z)


def graph_backward(dv, cache):
    """Backward pass of ``graph_forward``.

    Local derivatives: ∂v/∂q = z, ∂v/∂z = q (a product sends each input the *other* input),
    ∂q/∂x = ∂q/∂y = 1 (a sum passes the gradient on unchanged).
    Inputs: dv, the upstream gradient ∂J/∂v (1 when v itself is the output); cache.
    Returns (dx, dy, dz): ∂J/∂x = ∂J/∂y = z · dv and ∂J/∂z = q · dv.
    """
    q, z = cache
    dq = z * dv
    dz = q * dv
    return dq * 1.0, dq * 1.0, dz


def neuron_forward(w, x, b):
    """One sigmoid neuron f = σ(w·x + b) as a graph: s = w·x + b, f = σ(s) (Doan's deck).

    The deck's results ∂f/∂w₁ ≈ -0.24 and ∂f/∂x₁ ≈ 0.48 come out for w = (2, -3),
    x = (-1, -2), b = -3.6 (s = 0.4), the inputs notebook 3 uses.
    Inputs: w (D,) weights, x (D,) one input, b float bias.
    Returns (f, cache): f a float, cache = (w, x, f).
    """
    w, x = _float(w), _float(x)
    if w.ndim != 1 or w.shape != x.shape:
        raise ValueError(f"w and x must both have shape (D,); got w {w.shape} and x {x.shape}")
    f = float(sigmoid(w @ x + b))
    return f, (w, x, f)


def neuron_backward(df, cache):
    """Backward pass of ``neuron_forward``.

    ds = df · σ'(s) = df · f (1 - f)   (the sigmoid's derivative from its own output)
    dw = ds · x,   dx = ds · w,   db = ds   (s = w·x + b is linear in each of them).
    Inputs: df, upstream gradient ∂J/∂f (a number; 1 when f is the output); cache.
    Returns (dw, dx, db): dw (D,), dx (D,), db float.
    """
    w, x, f = cache
    ds = df * f * (1.0 - f)
    return ds * x, ds * w, float(ds)


def fork_forward(x, a, c):
    """A graph with a fork: z1 = x² feeds two branches, which join again in J.

        z1 = x²,   z2 = a · z1,   z3 = sin(c · z1),   J = z2 + z3.

    Inputs: x, a, c numbers (or arrays of one shape). Returns (J, cache), cache = (x, a, c, z1).
    """
    x, a, c = _float(x), _float(a), _float(c)
    z1 = x ** 2
    z2 = a * z1
    z3 = np.sin(c * z1)
    return z2 + z3, (x, a, c, z1)


def fork_backward(cache):
    """dJ/dx for ``fork_forward``, with the gradients of the two branches added at the fork.

    z1 is used twice, so ∂J/∂z1 = ∂J/∂z2 · ∂z2/∂z1 + ∂J/∂z3 · ∂z3/∂z1: start from 0 and
    accumulate each branch with ``+=``. Writing ``=`` instead silently keeps only the last
    branch, the classic backpropagation bug.
    Input: cache from ``fork_forward``. Output: dJ/dx, shape of x.
    """
    x, a, c, z1 = cache
    dz2 = dz3 = 1.0                                # J = z2 + z3
    dz1 = np.zeros_like(z1)
    dz1 += dz2 * a                                 # branch through z2 = a z1
    dz1 += dz3 * np.cos(c * z1) * c                # branch through z3 = sin(c z1)
    return dz1 * 2.0 * x                           # z1 = x²


# ---------------------------------------------------------------- analytic Jacobians
def _vector(z, name):
    z = _float(z)
    if z.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector; got shape {z.shape}")
    return z


def sigmoid_jacobian(z):
    """Jacobian of s = σ(z) (elementwise) w.r.t. z, for a 1-D z of length n.

    s_i depends on z_i alone, so the Jacobian is diagonal: diag(σ(z) (1 - σ(z))).
    Output: (n, n).
    """
    s = sigmoid(_vector(z, "z"))
    return np.diag(s * (1.0 - s))


def affine_jacobian(W, x=None):
    """Jacobian of h = W x + b w.r.t. x: the matrix W itself, shape (n_out, n_in).

    It does not depend on x; if x is given it is only checked to have shape (n_in,).
    Inputs: W (n_out, n_in), optional x (n_in,). Output: a copy of W, (n_out, n_in).
    """
    W = _float(W)
    if W.ndim != 2:
        raise ValueError(f"W must have shape (n_out, n_in); got {W.shape}")
    if x is not None and np.shape(x) != (W.shape[1],):
        raise ValueError(f"x must have shape (n_in,) = ({W.shape[1]},); got {np.shape(x)}")
    return W.copy()


def affine_jacobian_wrt_b(n):
    """Jacobian of h = W x + b w.r.t. b: the identity, shape (n, n) with n = n_out."""
    return np.eye(n)


def softmax_jacobian(z):
    """Jacobian of s = softmax(z) w.r.t. z for a 1-D z of length n.

    ∂s_i/∂z_j = s_i (δ_ij - s_j), i.e. diag(s) - s sᵀ. Unlike σ it is not diagonal: every
    output depends on every input through the normalising sum. Output: (n, n), symmetric,
    rows summing to 0.
    """
    s = softmax(_vector(z, "z"))
    return np.diag(s) - np.outer(s, s)


def vjp_from_jacobian(J, dout):
    """Turn a Jacobian into a backward pass: dx = Jᵀ dout (a vector-Jacobian product).

    With y = f(x), J = ∂y/∂x of shape (n_out, n_in) in numerator layout, and dout = ∇_y L,
    the chain rule gives ∇_x L = Jᵀ ∇_y L. Real layers never build J (it can be huge and
    mostly zero); they compute Jᵀ dout directly, e.g. ``activations.softmax_grad``.
    Inputs: J (n_out, n_in); dout (n_out,), or (N, n_out) for a batch of upstream gradients
    that share one J. Output: (n_in,), or (N, n_in).
    """
    J, dout = _float(J), _float(dout)
    if J.ndim != 2 or dout.shape[-1:] != (J.shape[0],):
        raise ValueError(
            f"dout must end in n_out = {J.shape[0] if J.ndim == 2 else '?'} to match the "
            f"Jacobian of shape {J.shape} (n_out, n_in); got dout {dout.shape}"
        )
    return dout @ J
