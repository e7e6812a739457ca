"""What a call across the split costs: the grader's proxy -> the student's agent -> back.

    .venv/bin/python bench/bench_split.py

The two ends run in two processes joined by a Unix socket pair, as in grading (without the
kernels around them): a small call (two small arrays in, one out), a call with a 400 x 784
float64 argument (a slice of MNIST), a call that changes its argument in place (copied
back), and a call whose student function calls a grader callback 100 times (a reference
swapped in by a hidden test). Prints microseconds per call.
"""
import importlib.util
import multiprocessing
import time
from pathlib import Path

import numpy as np

SPLIT = Path(__file__).resolve().parents[1] / "autograder" / "instructor" / "split"
STUDENT_CODE = '''
def small(x, w):
    return np.sign(x @ w)


def big(X):
    return X.sum(axis=0)


def in_place(w, dw):
    w -= 0.1 * dw
    return w


def uses_helper(x):
    total = 0.0
    for _ in range(100):
        total += helper(x)
    return total
'''


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", SPLIT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _student(sock):
    agent, wire = _load("agent"), _load("wire")
    ns = {"np": np, "helper": lambda x: 0.0}
    exec(STUDENT_CODE, ns)
    a = agent.install(ns)
    a.endpoint = wire.Endpoint(sock, a.handle)
    while True:
        a.serve()
        if not a.errors and a.overrides.get("stop"):
            return


def timed(fn, n):
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main():
    proxy, wire = _load("proxy"), _load("wire")
    grader_end, student_end = wire.pair()
    child = multiprocessing.Process(target=_student, args=(student_end,), daemon=True)
    child.start()
    ns = {}
    g = proxy.install(ns)
    g.endpoint = wire.Endpoint(grader_end, g._handle_request)
    g.install({name: "callable" for name in ("small", "big", "in_place", "uses_helper")})
    x, w = np.ones((4, 3)), np.ones(3)
    X = np.random.default_rng(0).standard_normal((400, 784))
    rows = [("small call (4x3 and 3 in, 4 out)", lambda: ns["small"](x, w), 2000),
            ("a 400 x 784 float64 argument", lambda: ns["big"](X), 200),
            ("an argument changed in place, copied back", lambda: ns["in_place"](w, x[0]), 2000)]
    for what, fn, n in rows:
        print(f"{what:<48} {timed(fn, n):9.0f} µs per call")
    ns["helper"] = lambda v: float(v)
    print(f"{'100 callbacks into the grader in one call':<48} {timed(lambda: ns['uses_helper'](1.0), 50):9.0f} µs per call")
    ns["stop"] = True
    ns["small"](x, w)
    g.end()
    child.join(5)


if __name__ == "__main__":
    main()
