"""Benchmark: the full and the fast gradient check on a big dense layer.

A 784 -> 128 sigmoid layer with a batch of 32, in float64. For each mode it prints the median
wall time of one complete ``check_dense_backward`` (dX, dW and db; the student's forward
evaluated as often as the mode needs), and whether the check rejects each catalogued
dense-layer bug at this size. Targets: full <= 50 ms, fast <= 10 ms, every bug caught.

    python bench/bench_gradcheck.py [--repeats 7]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from autograder import checks  # noqa: E402
from solutions_lib import layers  # noqa: E402
import test_bug_catalogue as cat  # noqa: E402


def forward(X, W, b):
    return layers.dense_forward(X, W, b, "sigmoid")


def forward_relu(X, W, b):
    return layers.dense_forward(X, W, b, "relu")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    inputs = {"X": rng.standard_normal((32, 784)), "W": rng.standard_normal((128, 784)) * 0.05,
              "b": rng.standard_normal(128) * 0.1}
    t = []
    for _ in range(20):
        t0 = time.perf_counter()
        forward(inputs["X"], inputs["W"], inputs["b"])
        t.append(time.perf_counter() - t0)
    fwd_ms = 1e3 * statistics.median(t)

    bugs = {
        "transposed dW": (forward, cat.bug_transposed_dW),
        "missing f'": (forward, cat.backward_with(lambda dH, Z, a: dH)),
        "σ' fed z": (forward, cat.backward_with(lambda dH, Z, a: Z * (1 - Z) * dH)),
        "σ' at the output": (forward, cat.backward_with(
            lambda dH, Z, a: cat.A.sigmoid_grad(cat.A.sigmoid(Z)) * dH)),
        "ReLU mask on the gradient": (forward_relu, cat.backward_with(lambda dH, Z, a: dH * (dH > 0))),
        "in-place dout": (forward, cat.bug_in_place),
        "layer divides by N": (forward, cat.bug_layer_averages),
        "bias on the wrong axis": (forward, cat.bug_bias_wrong_axis),
        "bias not summed": (forward, cat.bug_bias_not_summed),
        "float32": (forward, cat.bug_float32),
        "wrong sign": (forward, cat.bug_sign),
        "one entry 1 % off": (forward, cat.one_entry_off),
        "one unit dropped": (forward, cat.dropped_unit),
    }

    print(f"784 -> 128 sigmoid layer, batch 32, float64; one forward pass: {fwd_ms:.2f} ms "
          f"(median of 20)\n")
    print("| check | median time (ms) | target (ms) | forward calls | bugs caught |")
    print("|---|---:|---:|---:|---:|")
    for mode, target in (("full", 50), ("fast", 10)):
        calls = [0]

        def counted(X, W, b, calls=calls):
            calls[0] += 1
            return forward(X, W, b)

        times = []
        for r in range(args.repeats):
            calls[0] = 0
            t0 = time.perf_counter()
            checks.check_dense_backward(counted, layers.dense_backward, inputs=inputs, mode=mode, seed=r)
            times.append(time.perf_counter() - t0)
        caught = []
        for bug, (fwd, bwd) in bugs.items():
            try:
                checks.check_dense_backward(fwd, bwd, inputs=inputs, mode=mode)
            except AssertionError:
                caught.append(bug)
        missed = [b for b in bugs if b not in caught]
        print(f"| {mode} | {1e3 * statistics.median(times):.1f} | {target} | {calls[0]} | "
              f"{len(caught)}/{len(bugs)}{' (missed: ' + ', '.join(missed) + ')' if missed else ''} |")


if __name__ == "__main__":
    main()
