"""A warm process that forks the grading kernels: a Jupyter kernel in ~0.1 s instead of ~1.3 s.

Starting a Python kernel and importing numpy and matplotlib costs about 1.3 s of CPU, which
is most of what grading a short notebook costs. The grader therefore starts this *zygote*
once per worker: it imports ipykernel, numpy, matplotlib and the reference solutions once,
starts no thread, and forks a fresh kernel for every notebook. A forked kernel is a new
process with its own memory: nothing a student's code does in it reaches the zygote or the
next kernel.

Run by the grading worker (``worker.py``), as a script so that it does not import the
``autograder`` package (the kernels must import the assignment's own ``autograder`` kit):

    python zygote.py serve (SOCKET | --fd N) [--limits JSON] [--preload MOD,...] [--sweep]
    python zygote.py launch SOCKET --request FILE KERNEL_ARGS...   # the "kernel" jupyter_client starts

``serve`` listens on the Unix socket SOCKET, or on the listening socket it inherited as file
descriptor N (the sandboxed zygote: its socket is a file outside the sandbox, which nothing
inside can open). ``launch`` is the process jupyter_client manages: it sends one JSON line to
the zygote, ``{"cwd", "env", "argv"}`` (from the request FILE, and its own arguments), relays SIGINT/SIGTERM to the kernel (``{"signal": n}``)
and exits with the kernel's exit code (``{"exit": code}``). The zygote forks a *monitor* per
request, and the monitor forks the kernel. When the launcher dies (jupyter_client kills it on
shutdown), the monitor kills the kernel's process group. ``{"sweep": true}`` kills every
other process in the zygote's PID namespace (``--sweep``, only inside the sandbox's own PID
namespace): whatever a student's code left running does not outlive its notebook; with
``"reset": {"folder", "copies"}`` it also empties and refills the unit's folder, a tmpfs that
only the sandbox sees.

Each kernel gets, before any student code runs: its own process group; death with its
monitor (PR_SET_PDEATHSIG); the zygote's own resource limits (``--limits``: address space, CPU
seconds, file size; no core dumps), never a request's; exactly the environment of the request; the working folder of
the request; fresh random seeds; and no ``autograder`` module already imported.
"""
import json
import os
import signal
import socket
import sys
import time

#: Modules worth importing once for all kernels (the rest are imported by the notebooks).
DEFAULT_PRELOAD = (
    "numpy", "matplotlib", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
    "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "ipywidgets", "tqdm.auto",
    "threadpoolctl",
)
RLIMITS = {"memory_mb": "RLIMIT_AS", "cpu_seconds": "RLIMIT_CPU", "file_mb": "RLIMIT_FSIZE"}
PR_SET_PDEATHSIG = 1


def _send(stream, message):
    stream.write(json.dumps(message) + "\n")
    stream.flush()


# ------------------------------------------------------------------------------ the zygote
def serve(socket_path, preload=DEFAULT_PRELOAD, sweep=False, limits=None, fd=None):
    """Import ``preload``, then fork a monitor for every connection on ``socket_path`` (or ``fd``)."""
    _die_with_parent()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # no BLAS thread pool before fork
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    import importlib

    start = time.perf_counter()
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception as err:                 # noqa: BLE001  (a missing extra is not fatal)
            print(f"zygote: could not preload {name}: {err}", file=sys.stderr, flush=True)
    print(f"zygote: {len(preload)} modules preloaded in {time.perf_counter() - start:.2f} s",
          file=sys.stderr, flush=True)

    if fd is not None:
        server = socket.socket(fileno=fd)                # bound and listening already
    else:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        server.bind(socket_path + ".tmp")
        os.rename(socket_path + ".tmp", socket_path)    # the socket appears when it listens
        server.listen(16)
    signal.signal(signal.SIGCHLD, lambda *_: None)      # wake accept() to reap monitors
    while True:
        _reap()
        try:
            conn, _ = server.accept()
        except InterruptedError:
            continue
        conn.settimeout(5)                               # a client that says nothing is dropped
        stream = conn.makefile("rw", encoding="utf-8")
        try:
            request = json.loads(stream.readline(1 << 20) or "{}")
            if not isinstance(request, dict):
                raise ValueError("not a request")
        except (OSError, ValueError):
            conn.close()
            continue
        conn.settimeout(None)
        request["limits"] = limits or {}                 # the zygote's limits, whatever was asked
        if request.get("sweep"):
            killed = _sweep() if sweep else 0
            try:
                if request.get("reset"):
                    _reset(**request["reset"])
                _send(stream, {"killed": killed})
            except (OSError, TypeError) as err:
                _send(stream, {"killed": killed, "error": str(err)})
            conn.close()
            continue
        if os.fork() == 0:
            server.close()
            try:
                _monitor(conn, stream, request)
            finally:
                os._exit(0)
        conn.close()


def _reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _reset(folder, copies):
    """Empty ``folder`` (the unit's tmpfs, seen only inside the sandbox) and fill it anew:
    ``copies`` is {sub-folder: source folder to copy there, or None for an empty one}."""
    import shutil

    def writable(func, path, _exc):
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)

    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, onerror=writable)
        else:
            os.unlink(path)
    for sub, source in copies.items():
        target = os.path.join(folder, os.path.basename(sub))
        if source:
            shutil.copytree(source, target)
        else:
            os.mkdir(target)


def _sweep():
    """Kill every process of this PID namespace but init (1) and the zygote: leftovers."""
    killed = 0
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, me):
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    _reap()
    return killed


# ------------------------------------------------------------------------------ one kernel
def _monitor(conn, stream, request):
    """Fork the kernel, relay signals to its process group, kill it when the launcher goes."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become_kernel(request)                  # never returns
    _send(stream, {"pid": pid})
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            _kill_group(pid)                     # whatever the kernel started goes with it
            try:
                _send(stream, {"exit": code})
            except OSError:
                pass
            return
        if not sel.select(timeout=0.05):
            continue
        line = stream.readline()
        if not line:                             # the launcher is gone: so is the kernel
            _kill_group(pid)
            os.waitpid(pid, 0)
            return
        message = json.loads(line)
        if "signal" in message:
            _kill_group(pid, int(message["signal"]))


def _kill_group(pid, sig=signal.SIGKILL):
    for target in (lambda: os.killpg(pid, sig), lambda: os.kill(pid, sig)):
        try:
            target()
        except OSError:
            pass


def _become_kernel(request):
    """In the forked child: set up the walls, then run an IPython kernel (never returns)."""
    try:
        os.setpgid(0, 0)
        _die_with_parent()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):                        # fd 2 stays the zygote's log, for start-up errors
            os.dup2(devnull, fd)
        import resource

        for key, name in RLIMITS.items():
            value = request.get("limits", {}).get(key)
            if value:
                amount = int(value) * (1024 * 1024 if key.endswith("_mb") else 1)
                resource.setrlimit(getattr(resource, name), (amount, amount))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        for name in [m for m in sys.modules if m == "autograder" or m.startswith("autograder.")]:
            del sys.modules[name]
        sys.path[:] = [""] + [p for p in sys.path if p]
        sys.argv = ["ipykernel_launcher"] + list(request["argv"])
        import random

        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(list(request["argv"]))
        app.start()
    except BaseException:                        # noqa: BLE001  (a kernel that cannot start exits)
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)
    os._exit(0)


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


# ------------------------------------------------------------------------------ the launcher
def launch(socket_path, request_file, argv):
    """The kernel process jupyter_client sees: ask the zygote for a kernel, wait for its end."""
    with open(request_file, encoding="utf-8") as f:
        request = json.load(f)
    os.unlink(request_file)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(socket_path)
    stream = sock.makefile("rw", encoding="utf-8")
    _send(stream, {"cwd": request["cwd"], "env": request["env"], "argv": argv})
    json.loads(stream.readline())                # {"pid": ...}: the kernel is forked

    def relay(signum, _frame):
        try:
            _send(stream, {"signal": signum})
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, relay)
    while True:
        try:
            line = stream.readline()
        except InterruptedError:
            continue
        if not line:
            return 1
        message = json.loads(line)
        if "exit" in message:
            return message["exit"]


def request(socket_path, message, timeout=30):
    """Send one message to the zygote (``{"sweep": true}``) and return its answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(socket_path)
    with sock:
        stream = sock.makefile("rw", encoding="utf-8")
        _send(stream, message)
        return json.loads(stream.readline())


def main(argv):
    command, socket_path, rest = argv[0], argv[1], argv[2:]
    if command == "serve":
        preload, sweep, limits, fd = list(DEFAULT_PRELOAD), False, {}, None
        if socket_path == "--fd":
            fd, socket_path, rest = int(rest[0]), None, rest[1:]
        while rest:
            if rest[0] == "--preload":
                preload += [m for m in rest[1].split(",") if m]
                rest = rest[2:]
            elif rest[0] == "--limits":
                limits, rest = json.loads(rest[1]), rest[2:]
            elif rest[0] == "--sweep":
                sweep, rest = True, rest[1:]
            else:
                raise SystemExit(f"zygote: unknown option {rest[0]}")
        serve(socket_path, preload, sweep, limits, fd)
        return 0
    if command == "launch":
        if rest[:1] != ["--request"]:
            raise SystemExit("zygote: launch SOCKET --request FILE KERNEL_ARGS...")
        return launch(socket_path, rest[1], rest[2:])
    raise SystemExit(f"zygote: unknown command {command!r} (serve or launch)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
