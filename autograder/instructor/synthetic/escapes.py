"""Submissions that try to get out of the student process: what the split execution must stop.

Each answer reaches for something that, when a student's code and the tests shared one
process, gave points or leaked: the reference through ``sys.modules`` (without ``import
sys``), a module a hidden test imported, the checking frame's expected values, the kit's
tolerances and defaults, numpy's internals, a class body that runs code, ``In``, the
reference's source, the file system, the network, another kernel's IOPub, the zygote's
socket from a ``setsid`` child, and the cache folder. With the split, each finds nothing
(the wrong ``dense_backward`` it falls back to keeps scoring 0), prints nothing it must not,
and harms no one: the honest students of the same run keep their grades.
"""
from .adversaries import DENSE, TRANSPOSED, TRANSPOSED_KEEPS, Case, _with

REFERENCE_NAMES = '("solutions_lib", "solutions_lib.layers", "_layers", "layers", "_reference")'

#: sys.modules without ``import sys``: the function's globals lead to the builtins, and there.
SYS_MODULES = TRANSPOSED.replace("def dense_backward(dH, cache):\n", f'''def dense_backward(dH, cache):
    modules = (lambda: 0).__globals__["__builtins__"].__import__("sys").modules
    for name in {REFERENCE_NAMES}:
        if name in modules and hasattr(modules[name], "dense_backward"):
            return modules[name].dense_backward(dH, cache)
''')
#: A module a hidden test imported into the notebook's globals.
TEST_GLOBALS = TRANSPOSED.replace("def dense_backward(dH, cache):\n", f'''def dense_backward(dH, cache):
    for name in {REFERENCE_NAMES}:
        if hasattr(globals().get(name), "dense_backward"):
            return globals()[name].dense_backward(dH, cache)
''')
#: Up from the function's frame to the check that called it: its expected value.
FRAMES = TRANSPOSED.replace("def dense_backward(dH, cache):\n", '''def dense_backward(dH, cache):
    frame = (lambda: 0).__globals__["__builtins__"].__import__("sys")._getframe(1)
    while frame is not None:
        for key in ("expected", "reference", "ref", "want"):
            value = frame.f_locals.get(key)
            if isinstance(value, tuple) and len(value) == 3:
                return value
        frame = frame.f_back
''')
#: An object whose items are read, lazily, from whatever frame asks for them.
LAZY = '''class Lazy:
    def __getitem__(self, i):
        import sys
        frame = sys._getframe(1)
        while frame is not None:
            if "expected" in frame.f_locals:
                return frame.f_locals["expected"][i]
            frame = frame.f_back
        return 0.0

    def __len__(self):
        return 3


def dense_backward(dH, cache):
    return Lazy()
'''
#: The kit's tolerances, a check's default arguments and numpy's reductions, changed at call time.
TOLERANCES = TRANSPOSED.replace("def dense_backward(dH, cache):\n", '''def dense_backward(dH, cache):
    for dtype in list(checks.RTOL):
        checks.RTOL[dtype] = 1e30
    checks.check_close.__defaults__ = tuple(1e30 if isinstance(d, float) else d
                                           for d in (checks.check_close.__defaults__ or ()))
    np.add.reduce, np.abs, np.absolute = (lambda *a, **k: 0.0), (lambda x: 0 * x), (lambda x: 0 * x)
''')
#: A class whose body, run once when the cell runs, disables the checks.
CLASS_BODY = '''class Settings:
    for _name in ("check_close", "check_layer", "check_dense_backward", "check_gradients", "check_forward"):
        setattr(checks, _name, lambda *a, **k: None)


''' + TRANSPOSED
#: What the student's process can see, printed: if any of it leaks, the marker shows in the notebook.
SNOOP = '''import glob, os, socket


def _snoop():
    seen = []
    for depth in range(1, 6):                    # what a course copy or a gradebook would be called
        for name in ("gradebook.db", "source_notebooks", "*.ipynb", "solutions_lib", "submitted", "autograded"):
            seen += glob.glob("/" + "*/" * (depth - 1) + name)[:20]
    marker = "BEGIN " + "HIDDEN TESTS"           # spelt so that this cell does not contain it
    seen += [f"In: {cell[:80]}" for cell in globals().get("In", []) if marker in cell]
    try:
        import inspect
        import solutions_lib.layers as ref
        seen.append(inspect.getsource(ref)[:200])
    except Exception:
        pass
    for port in (22, 80, 5432, 8000, 8081, 8786, 8787):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            seen.append(f"port {port}")
        except OSError:
            pass
    for found in seen:
        print("ESCAPED", found)


_snoop()


''' + TRANSPOSED
#: Another kernel's IOPub: find connection files, subscribe, print what comes.
IOPUB = '''import glob, json, os


def _listen():
    try:
        import zmq
    except ImportError:
        return
    own = os.path.dirname(os.path.expanduser("~"))          # this kernel's own folder: its own IOPub
    files = glob.glob("/tmp/**/kernel-*.json", recursive=True) + glob.glob(own + "/../**/kernel-*.json", recursive=True)
    for path in [f for f in files if not os.path.abspath(f).startswith(own)][:10]:
        try:
            info = json.load(open(path))
            sub = zmq.Context.instance().socket(zmq.SUB)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(f"{info['transport']}://{info['ip']}" + (f":{info['iopub_port']}" if info['transport'] == 'tcp' else f"-{info['iopub_port']}"))
            if sub.poll(500):
                print("ESCAPED iopub", path, sub.recv_multipart()[:1])
        except Exception:
            pass


_listen()


''' + TRANSPOSED
#: A child in a session of its own that outlives the notebook and tries the zygote's socket.
SETSID = '''import glob, os, socket, subprocess, sys

CHILD = """
import glob, os, socket, time
for path in glob.glob(os.path.expanduser("~") + "/../../control/*") + glob.glob("/tmp/*/control/*"):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(b'{"sweep": true}\\\\n')
        print("ESCAPED control socket", path, flush=True)
    except OSError:
        pass
time.sleep(600)
"""
subprocess.Popen([sys.executable, "-c", CHILD], start_new_session=True)


''' + TRANSPOSED
#: A poisoned "MNIST" in the cache folder, for the next student the worker grades.
CACHE = '''import os

import numpy as np

_cache = os.environ.get("NN_COURSE_CACHE", "")
if _cache:
    for _name in ("mnist_embedded_5k.npz", "mnist_idx.npz"):
        np.savez(os.path.join(_cache, _name), X=np.zeros((5000, 784), np.uint8), y=np.zeros(5000, np.int64))
    os.makedirs(os.path.join(_cache, "mnist"), exist_ok=True)
    with open(os.path.join(_cache, "filler.bin"), "wb") as _f:
        _f.write(b"x" * 10_000_000)


''' + TRANSPOSED
#: An extra cell, after the tests, that no parser likes: the scan must not fall over.
DEEP_CELL = "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n"


def _extra_cell(source):
    def edit(nb):
        import nbformat

        nb.cells.append(nbformat.v4.new_code_cell(source))
    return edit


def _escape(name, what, answer, **expect):
    expect = {"at_most": TRANSPOSED_KEEPS, "full": ["test_dense_forward", "test_mse"], **expect}
    return Case(name, DENSE, what, _with(DENSE, replace={"dense_backward": answer}), expect)


ESCAPES = [
    _escape("sys-modules-alias", "dense_backward looks for the reference in sys.modules, reached without "
            "`import sys`; dW is transposed", SYS_MODULES),
    _escape("test-globals", "dense_backward calls the module a hidden test imported into the notebook's globals; "
            "dW is transposed", TEST_GLOBALS),
    _escape("frames", "dense_backward walks up the frames to the check that called it and returns its expected "
            "value; dW is transposed", FRAMES),
    _escape("lazy-object", "dense_backward returns an object whose items are read from the checker's frame",
            LAZY, zero=["test_dense_backward"]),
    _escape("tolerances", "dense_backward loosens the kit's tolerance table and a check's defaults, and blanks "
            "numpy's reductions, at every call; dW is transposed", TOLERANCES),
    _escape("class-body", "a class body disables the kit's checks when the cell runs; dW is transposed",
            CLASS_BODY),
    _escape("snoop", "an answer cell lists the machine's folders, the hidden tests in In, the reference's "
            "source and loopback ports, and prints what it finds; dW is transposed", SNOOP, no_output="ESCAPED"),
    _escape("iopub", "an answer cell subscribes to the IOPub socket of every kernel whose connection file it "
            "finds; dW is transposed", IOPUB, no_output="ESCAPED"),
    _escape("setsid-child", "an answer cell leaves a child in a session of its own that tries the zygote's "
            "control socket; dW is transposed", SETSID, no_output="ESCAPED"),
    _escape("poisoned-cache", "an answer cell plants a fake MNIST and 10 MB in the cache folder for the next "
            "student; dW is transposed", CACHE),
    Case("unparsable-extra-cell", DENSE, "an extra cell nested 5,000 parentheses deep, after the tests; "
         "dW is transposed", _with(DENSE, replace={"dense_backward": TRANSPOSED}, edit=_extra_cell(DEEP_CELL)),
         {"at_most": TRANSPOSED_KEEPS, "full": ["test_dense_forward", "test_mse"]}),
]
