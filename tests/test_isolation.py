"""What a student's code can reach while it is graded: the split execution and its sandbox.

Two parts:

- the wire between the two processes (``split/wire.py``, ``agent.py``, ``proxy.py``), driven
  in threads over a socket pair, without a kernel: what crosses, and what is refused;
- black-box, a real ``Worker`` grading a real submission of ``04_dense_backprop``: the
  reference answers, with probes appended to two answer cells. What the probes observe
  is printed, and read back from the autograded notebook (the box the student's process
  writes into is emptied after the unit): prints of an answer cell are that cell's outputs,
  prints of a student's function called by a test are the test cell's outputs. The same
  run must give the honest answers full marks, so that a probe that broke the notebook
  cannot pass for a wall.
"""
import ast
import json
import os
import socket
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbtools import needs_isolation

from autograder.instructor import build, nbcells, records, sandbox, worker
from autograder.instructor.split import agent, proxy, wire
from autograder.instructor.synthetic import answers, classroom

ROOT = Path(__file__).resolve().parents[1]
NAME = "04_dense_backprop"
LIMITS = sandbox.Limits(cell_timeout=30, notebook_timeout=120)
MARK = "NN-PROBE "
#: Where a bubblewrap sandbox holds things the kernel needs (besides the Python folders).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/dev", "/proc", "/etc")




# ------------------------------------------------------------------------------ the wire, in threads
STUDENT_CODE = '''
def affine(X, W, b):
    W *= 2                                   # in place: the grader's W must change too
    return X @ W.T + b, (X, W)

def twice(fn, x):
    return fn(x) + fn(x)                     # fn is the grader's: a callback

def uses_helper(x):
    return helper(x) * 10                    # helper may be overridden by the grader

def draw(rng):
    return rng.random(3)                     # advances the grader's Generator too

def broken(x):
    raise NotImplementedError("not yet")

def opaque():
    return object()

def helper(x):
    return x
'''


@pytest.fixture
def linked():
    """(the grader's namespace, the student's namespace): an agent serving in a thread, the
    grader's proxies installed for the student's names."""
    a, b = wire.pair()
    student_ns = {"np": np}
    exec(STUDENT_CODE, student_ns)           # the student's functions, their globals that namespace
    student = agent.install(student_ns)
    student.endpoint = wire.Endpoint(a, student.handle)
    grader_ns = {}
    grader = proxy.install(grader_ns)
    grader.endpoint = wire.Endpoint(b, grader._handle_request)
    thread = threading.Thread(target=student.serve, daemon=True)
    thread.start()
    grader.install({name: "callable" for name in ("affine", "twice", "uses_helper", "draw", "broken", "opaque",
                                                  "helper")})
    try:
        yield grader_ns, student_ns
    finally:
        grader.end()
        thread.join(10)
        a.close()
        b.close()
    assert not thread.is_alive(), "the agent stops serving at the grader's end"


def test_a_call_passes_plain_data_and_copies_in_place_changes_back(linked):
    """Arguments cross as copies; what the student's function changed in place is changed in
    the grader's own arrays too; the result is new arrays, never the student's objects."""
    g, _ = linked
    X, W, b = np.ones((2, 3)), np.arange(12.0).reshape(4, 3), np.zeros(4)
    out, (X2, W2) = g["affine"](X, W, b)
    assert isinstance(g["affine"], proxy.StudentFunction)
    np.testing.assert_array_equal(W, 2 * np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(out, X @ W.T)
    assert W2 is not W and isinstance(W2, np.ndarray)


def test_callbacks_overrides_and_generators(linked):
    """A grader function passed in runs in the grader (a callback); a name the grader rebound
    is what the student's code sees during the call; a Generator's state comes back."""
    g, s = linked
    calls = []

    def grader_fn(x):
        calls.append(x)
        return 3 * x

    assert g["twice"](grader_fn, 2.0) == 12.0 and calls == [2.0, 2.0]
    assert g["uses_helper"](2) == 20
    g["helper"] = lambda x: -x               # as a hidden test swaps in a reference
    assert g["uses_helper"](2) == -20
    assert s["helper"](2) == 2, "the student's own binding is back after the call"
    rng, same = np.random.default_rng(0), np.random.default_rng(0)
    np.testing.assert_array_equal(g["draw"](rng), same.random(3))
    assert rng.random() == same.random(), "the grader's Generator advanced as the student's did"


def test_an_error_in_the_students_code_keeps_its_type_and_where_it_was_raised(linked):
    """The grader sees the student's exception type and message, and the student's function
    that raised it (``__nn_raised_in__``); a value that is not data comes back as an opaque
    handle with nothing to reach through."""
    g, _ = linked
    with pytest.raises(NotImplementedError, match="not yet") as info:
        g["broken"](1)
    assert info.value.__nn_raised_in__ == "broken"
    handle = g["opaque"]()
    assert isinstance(handle, proxy.StudentObject)
    assert "object" in repr(handle) and not callable(handle)


def test_malformed_frames_are_refused():
    """Nothing but plain data decodes: a non-numeric dtype, bytes that do not fit the shape,
    nesting past MAX_DEPTH, an unknown tag, a frame that is not JSON: all ``WireError``."""
    with pytest.raises(wire.WireError):
        wire.encode(np.array([object()], dtype=object))
    with pytest.raises(wire.WireError, match="numeric"):
        wire.decode({"nd": ["|O", [1], 0]}, [b"\0" * 8])
    with pytest.raises(wire.WireError, match="numeric"):
        wire.decode({"dtype": ["<U4", False]}, [])
    with pytest.raises(wire.WireError, match="fit"):
        wire.decode({"nd": ["<f8", [2, 2], 0]}, [b"\0" * 8])
    deep = []
    for _ in range(wire.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deeper"):
        wire.encode(deep)
    with pytest.raises(wire.WireError, match="deeper"):
        wire.decode(deep, [])
    with pytest.raises(wire.WireError, match="unexpected tag"):
        wire.decode({"pickle": "gASVAAAAAAAAAA=="}, [])
    with pytest.raises(wire.WireError):
        wire.decode({"nd": ["<f8", [1], 5]}, [])           # a binary part that is not there
    a, b = wire.pair()
    try:
        body = b"{not json"
        a.sendall(wire.HEADER.pack(len(body), 0) + body)
        with pytest.raises(wire.WireError, match="JSON"):
            wire.receive(b)
        body = b"[1, 2]"
        a.sendall(wire.HEADER.pack(len(body), 0) + body)
        with pytest.raises(wire.WireError, match="message"):
            wire.receive(b)
        a.sendall(wire.HEADER.pack(wire.MAX_FRAME + 1, 0))
        with pytest.raises(wire.WireError, match="larger"):
            wire.receive(b)
    finally:
        a.close()
        b.close()
    value = {"x": (1, 2.5, None, "s"), "a": np.arange(3, dtype=np.float32), "t": np.int64,
             "r": np.random.default_rng(1)}
    back = wire.decode(*wire.encode(value))
    assert back["x"] == (1, 2.5, None, "s") and back["a"].dtype == np.float32 and back["t"] is np.int64
    assert back["r"].random() == np.random.default_rng(1).random(), "and plain data round-trips"


# ------------------------------------------------------------------------------ a real submission
def _test_cell_names(source_nb):
    """Names bound only in the test cells (visible and hidden) of the source notebook."""
    def bound(code):
        names = set()
        try:
            tree = ast.parse(answers.strip_markers(code))
        except SyntaxError:
            return names
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names.add(node.name)
        return names
    tests, others = set(), set()
    for cell in source_nb.cells:
        if cell.cell_type == "code":
            (tests if nbcells.is_test(cell) else others).update(bound(cell.source))
    return tests - others


def _agent_locals():
    """The local names of the agent's and the wire's own functions (``result``, ``args``...):
    they are on the student's stack by design, and say nothing of the grader's."""
    names = set()
    for module in (agent, wire):
        todo = [compile(Path(module.__file__).read_text(encoding="utf-8"), module.__file__, "exec")]
        while todo:
            code = todo.pop()
            names |= set(code.co_varnames)
            todo += [c for c in code.co_consts if hasattr(c, "co_varnames")]
    return names


def _answer_probe(paths, port, control_sockets, scratch, allowed, readable):
    """Code appended to the dense_forward answer: prints one JSON line of what it could reach."""
    return f'''

def _probe():
    import json as _j, os as _o, socket as _s, sys as _y
    seen = {{}}
    try:
        import solutions_lib
        seen["import"] = "imported " + str(solutions_lib.__file__)
    except BaseException as err:
        seen["import"] = type(err).__name__
    seen["modules"] = sorted(m for m in _y.modules if m.startswith("solutions_lib"))
    seen["read"] = {{}}
    for p in {paths!r} + {readable!r}:
        try:
            with open(p, "rb") as f:
                f.read(1)
            seen["read"][p] = "read"
        except BaseException as err:
            seen["read"][p] = type(err).__name__
    try:
        c = _s.create_connection(("127.0.0.1", {port}), timeout=3)
        c.close()
        seen["tcp"] = "connected"
    except BaseException as err:
        seen["tcp"] = type(err).__name__
    seen["control"] = {{}}
    for p in {control_sockets!r}:
        u = _s.socket(_s.AF_UNIX, _s.SOCK_STREAM)
        u.settimeout(3)
        try:
            u.connect(p)
            seen["control"][p] = "connected"
        except BaseException as err:
            seen["control"][p] = type(err).__name__
        finally:
            u.close()
    try:
        seen["scratch"] = sorted(_o.listdir({str(scratch)!r}))
    except BaseException as err:
        seen["scratch"] = type(err).__name__
    allowed = {allowed!r}
    def inside(p, q):
        return p == q or p.startswith(q.rstrip("/") + "/")
    private = {{_o.stat("/").st_dev, _o.stat("/tmp").st_dev}}   # the sandbox's own tmpfs: made inside
    extra, made, todo = [], [], ["/"]
    while todo and len(extra) < 50 and len(made) < 500:
        folder = todo.pop()
        try:
            entries = _o.listdir(folder)
        except BaseException as err:
            extra.append(folder + ": " + type(err).__name__)
            continue
        for e in entries:
            p = _o.path.join(folder, e)
            if any(inside(p, a) for a in allowed) or _o.path.islink(p):
                continue                                  # system, Python, the box: allowed
            if any(inside(a, p) for a in allowed):
                todo.append(p)                            # a folder on the way to an allowed one
            elif _o.lstat(p).st_dev in private:
                made.append(p)                            # written inside the sandbox, not the host's
                if _o.path.isdir(p):
                    todo.append(p)
            else:
                extra.append(p)
    seen["outside"], seen["made"] = extra, made
    environ = {{}}
    for pid in _o.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/" + pid + "/environ", "rb") as f:
                    environ[pid] = sorted({{v.split(b"=", 1)[0].decode(errors="replace")
                                            for v in f.read().split(b"\\0") if v}})
            except BaseException as err:
                environ[pid] = type(err).__name__
    seen["environ"] = environ
    print({MARK!r} + _j.dumps(seen))


_probe()
del _probe
'''


FRAME_PROBE = '''

_mse_reference = mse
_mse_probes = []


def mse(h, y):
    """The reference mse, and a look up the call stack: whose names can it see?"""
    import inspect as _i
    import json as _j
    import sys as _y
    if len(_mse_probes) < 2:
        names, files = set(), set()
        frame = _y._getframe()
        while frame is not None:
            names |= set(frame.f_locals) | set(frame.f_globals)
            files.add(frame.f_code.co_filename)
            frame = frame.f_back
        for info in _i.stack(0):
            names |= set(info.frame.f_locals) | set(info.frame.f_globals)
            files.add(info.filename)
        checks_files = sorted({str(getattr(f.frame.f_globals.get("checks"), "__file__", ""))
                               for f in _i.stack(0) if "checks" in f.frame.f_globals})
        _mse_probes.append(1)
        print(%r + _j.dumps({"found": sorted(names & set(%r)), "files": sorted(files),
                             "checks": checks_files,
                             "modules": sorted(m for m in _y.modules if m.startswith("solutions_lib"))}))
    return _mse_reference(h, y)
'''


@pytest.fixture(scope="module")
def probe_course(tmp_path_factory):
    """A scratch course with its release and gradebook (as test_grading's scratch_course)."""
    return build.scratch_course(tmp_path_factory.mktemp("course"), [NAME], root=ROOT)


@pytest.fixture(scope="module")
def graded_probe(probe_course, tmp_path_factory):
    """The probe submission, graded by a real Worker: (record, autograded notebook, context)."""
    course = records.Course(probe_course / "course")
    release = nbformat.read(course.release_notebook(NAME), as_version=4)
    source = nbformat.read(course.source_notebook(NAME), as_version=4)
    server = socket.create_server(("127.0.0.1", 0))
    port, accepted = server.getsockname()[1], []
    server.settimeout(0.2)
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (socket.timeout, OSError):
                continue
            accepted.append(conn)
    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    with socket.create_connection(("127.0.0.1", port), timeout=3):
        pass                                 # the server listens: a connection from here works
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert accepted, "the loopback server accepts connections from outside the sandbox"
    accepted.clear()

    w = worker.Worker(course.dir, LIMITS, index=7, feedback=False)
    try:
        gradebook = course.db_url[len("sqlite:///"):] if course.db_url.startswith("sqlite:///") else ""
        secrets = [str(course.source_notebook(NAME)), gradebook,
                   str(course.dir / "nbgrader_config.py"), str(ROOT / "source_notebooks" / NAME / f"{NAME}.ipynb"),
                   str(nbcells.REPOSITORY / "README.md"), str(nbcells.REPOSITORY / "pyproject.toml"),
                   str(Path(sandbox.__file__)), str(ROOT / "solutions_lib" / "layers.py")]
        secrets = [p for p in dict.fromkeys(secrets) if os.path.exists(p)]
        control = [str(w.scratch / "control" / "student"), str(w.scratch / "control" / "grader")]
        allowed = list(SYSTEM) + sandbox.python_folders() + [str(w.box), str(w.bin), str(w.kits),
                                                             str(w.scratch / "data")]
        readable = [str(w.box / "unit" / "work" / "autograder" / "checks.py")]   # the kit, in the box: a control
        replace = {
            "dense_forward": answers.reference_answers(source)["dense_forward"]
            + _answer_probe(secrets, port, control, w.scratch, allowed, readable),
            "mse": answers.reference_answers(source)["mse"]
            + FRAME_PROBE % (MARK, sorted((_test_cell_names(source) - _agent_locals()) | {"expected", "reference", "rtol", "atol",
                                                                     "RTOL", "_layers", "layers", "losses",
                                                                     "solutions_lib", "SEED"}))}
        folder = tmp_path_factory.mktemp("mallory") / NAME
        classroom.write_submission(folder, {f"{NAME}.ipynb": answers.with_answers(release, source, replace)})
        started = time.perf_counter()
        record = w.grade(records.Unit("mallory", NAME, str(folder)))
        seconds = time.perf_counter() - started
        isolated = w.isolated
        kernel_env = dict(w.config.StudentKernelManager.kernel_env)
    finally:
        w.close()
        stop.set()
        listener.join(5)
        server.close()
    nb = nbformat.read(course.autograded_notebook(record), as_version=4)
    print(f"graded the probe submission in {seconds:.1f} s")
    return {"record": record, "nb": nb, "secrets": secrets, "control": control, "readable": readable,
            "accepted": list(accepted), "isolated": isolated, "scratch": w.scratch,
            "kernel_env": kernel_env}


def _probes(cell):
    """The JSON lines a probe printed into ``cell``'s outputs."""
    text = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
    return [json.loads(line[len(MARK):]) for line in text.splitlines() if line.startswith(MARK)]


def _cell(nb, gid):
    (cell,) = [c for c in nb.cells if nbcells.grade_id(c) == gid]
    return cell


def _answer_observation(graded_probe):
    found = _probes(_cell(graded_probe["nb"], "dense_forward"))
    assert len(found) == 1, f"the answer cell's probe printed: {_cell(graded_probe['nb'], 'dense_forward').outputs}"
    return found[0]


@pytest.mark.slow
def test_the_honest_answers_still_get_full_marks(graded_probe):
    """The probes did not break the submission: every test cell has all its points (so a
    probe that failed to run would show here, not pass for a wall)."""
    record = graded_probe["record"]
    assert record.status == "graded", record.error
    tests = {gid: s for gid, s in record.scores.items() if s.kind == "test"}
    assert tests and all(s.nbgrader == s.max and s.final == s.max for s in tests.values()), \
        {gid: (s.nbgrader, s.final, s.max) for gid, s in tests.items()}


@pytest.mark.slow
def test_an_answer_cannot_import_or_read_the_references(graded_probe):
    """``import solutions_lib`` fails with ModuleNotFoundError, nothing of it is loaded; the
    source notebooks, the course folder (gradebook, config), the repository checkout cannot
    be read, while the kit in the box can (the probe's control)."""
    needs_isolation()
    seen = _answer_observation(graded_probe)
    assert seen["import"] == "ModuleNotFoundError"
    assert seen["modules"] == []
    assert all(seen["read"][p] == "read" for p in graded_probe["readable"]), seen["read"]
    assert graded_probe["secrets"], "the test names files that exist outside"
    for path in graded_probe["secrets"]:
        assert seen["read"][path] in ("FileNotFoundError", "PermissionError"), (path, seen["read"][path])


@pytest.mark.slow
def test_nothing_outside_the_box_but_system_and_python_folders(graded_probe):
    """A walk from ``/`` finds nothing but the system's folders, the Python installation, the
    box, the agent's folder, the kits and the MNIST cache the unit folders are filled from (and
    the empty folders on the way to them), and what processes
    in the sandbox wrote on its own tmpfs (``made``: the root and /tmp of the sandbox, on a
    device of their own); of the worker's scratch folder only the box and the agent's folder
    (and the read-only kits and data) are the host's, its control sockets are not there."""
    needs_isolation()
    seen = _answer_observation(graded_probe)
    assert seen["outside"] == [], seen["outside"]
    print("made inside the sandbox, outside the box:", seen["made"])
    assert isinstance(seen["scratch"], list) and "control" not in seen["scratch"], seen["scratch"]
    scratch = graded_probe["scratch"]
    assert all(str(scratch / name) in seen["made"] for name in set(seen["scratch"]) - {"box", "bin", "kits", "data"}), \
        "anything else in the scratch folder was made inside the sandbox"


@pytest.mark.slow
def test_an_answer_reaches_no_network_and_no_control_socket(graded_probe):
    """A TCP connection to a server listening on the host's loopback fails (no connection
    arrives), and the zygotes' control sockets are not there to connect to."""
    needs_isolation()
    seen = _answer_observation(graded_probe)
    assert seen["tcp"] != "connected" and seen["tcp"].endswith("Error"), seen["tcp"]
    assert graded_probe["accepted"] == [], "the server got no connection from the sandbox"
    for path in graded_probe["control"]:
        assert seen["control"][path] == "FileNotFoundError", (path, seen["control"][path])


@pytest.mark.slow
def test_no_process_in_the_sandbox_holds_the_graders_environment(graded_probe):
    """Every process the student's code can see in its PID namespace (``/proc/*/environ``:
    the zygote, the kernels, bubblewrap) has at most the kernel's own environment: nothing of
    the grader's (tokens, paths of the course, the CI's variables) reaches the sandbox."""
    needs_isolation()
    seen = _answer_observation(graded_probe)
    kernel = set(graded_probe["kernel_env"]) | {"PWD"}     # bubblewrap's --chdir sets PWD (the box)
    leaked = {pid: sorted(set(names) - kernel) for pid, names in seen["environ"].items()
              if isinstance(names, list) and set(names) - kernel}
    assert leaked == {}, f"variables of the grader's environment readable in the sandbox: {leaked}"


@pytest.mark.slow
def test_a_students_function_sees_nothing_of_the_test_that_calls_it(graded_probe):
    """``mse``, called by its test, walks up its stack (``sys._getframe``, ``inspect.stack``):
    of the test cells' names, the checks' arguments (expected, rtol), the tolerances and the
    references it finds none; only the notebook's own globals (SEED, the probe's control).
    No frame is a test's or a check's, and ``solutions_lib`` is not in ``sys.modules``. This
    holds with or without bubblewrap: the tests run in another process."""
    found = _probes(_cell(graded_probe["nb"], "test_mse"))
    assert found, f"the test cell shows what mse printed: {_cell(graded_probe['nb'], 'test_mse').outputs}"
    for seen in found:
        assert seen["found"] == ["SEED"], seen["found"]
        assert seen["modules"] == []
        assert not any("checks.py" in f or "solutions_lib" in f or "proxy.py" in f for f in seen["files"]), seen["files"]
        assert seen["checks"] == [] or all(f.startswith(str(graded_probe["scratch"])) for f in seen["checks"]), \
            "a checks module on the stack is the student's own copy of the kit"
