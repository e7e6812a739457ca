"""A deliberately naive finite-difference gradient for the reference-library tests.

It is independent of autograder.checks on purpose: the reference is tested against this
loop, and the checks are tested against the reference, so neither vouches for itself.
"""
import numpy as np


def fd_gradient(scalar_fn, x, h=1e-6):
    """Central-difference gradient of a scalar function of the array x (shape of x)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        g[idx] = (scalar_fn(x + e) - scalar_fn(x - e)) / (2 * h)
    return g
