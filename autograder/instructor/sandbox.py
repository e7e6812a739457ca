"""The walls around students' code while it is graded.

Every grading worker runs its kernels inside one sandbox (``zygote.py`` forks them there):

The student process of every submission (``split/``) is forked by the worker's *student
zygote*, which runs inside this sandbox:

- **Filesystem** (bubblewrap, ``bwrap``): an empty root, with only what a kernel needs bound
  read-only (``wrap``): the system's programs and libraries, a few files of ``/etc``, the
  Python installation and its site-packages, the grader's agent (``split/agent.py``). No
  course folder, no source notebook, no gradebook, no other course's copy, no reference
  (``solutions_lib`` is not there, an installed copy of it is covered). Writable: the
  worker's *box*, emptied before every unit (the notebook's folder with the kit, home, cache),
  and a private ``/tmp`` of ``TMP_MB``.
- **Network**: none (``--unshare-net``); the kernel's own sockets are Unix sockets in the box,
  and the channel to the grader process is a Unix socket there too.
- **Processes**: a PID namespace of its own, swept before every unit (whatever a student's
  code started, in any session or group, is killed), killed with the worker. The zygote's
  control socket is a file outside the sandbox; the zygote inherits it already listening.
- **Resources** (set per kernel by the zygote, from its own arguments): address space
  (``memory_mb``), CPU seconds, the size of a written file, no core dumps.
- **Time**: the grader's per-cell and per-notebook limits (``split.execute.SplitExecute``).

Without bubblewrap (``apt-get install bubblewrap``; not on macOS or Windows) the two processes
still hold (the tests, the references and the tolerances are never in the student's process),
with the resource limits, and every report says that the filesystem and network walls were
missing: a student's code could then read the course's files or reach the network.
"""
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """Limits for one graded notebook.

    - cell_timeout: seconds one cell may run before it is interrupted (and fails);
    - notebook_timeout: seconds the whole notebook may run; cells after that are not run;
    - memory_mb: address space of the kernel (a memory bomb gets MemoryError, or the kernel dies);
    - cpu_seconds: CPU time of the kernel, a backstop for loops that ignore interrupts;
    - file_mb: the largest file the kernel may write.
    """
    cell_timeout: int = 60
    notebook_timeout: int = 180
    memory_mb: int = 3072
    cpu_seconds: int = 600
    file_mb: int = 64

    def kernel(self):
        """The limits the zygote sets in each kernel (a dict, JSON-ready)."""
        return {k: v for k, v in asdict(self).items() if k in ("memory_mb", "cpu_seconds", "file_mb")}


def bwrap_path():
    """The bubblewrap executable, or None."""
    return shutil.which("bwrap")


_WORKS = {}


def isolation_available():
    """True when bubblewrap is installed and can make namespaces here (tried once)."""
    path = bwrap_path()
    if path is None:
        return False
    if path not in _WORKS:
        try:
            done = subprocess.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                   "--unshare-pid", "--die-with-parent", "true"],
                                  capture_output=True, timeout=20)
            _WORKS[path] = done.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _WORKS[path] = False
    return _WORKS[path]


#: What of /etc a Python kernel reads (the dynamic loader's cache, users, time zone, fonts).
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "passwd", "group", "nsswitch.conf",
       "fonts", "mime.types", "hosts")
TMP_MB = 256
UNIT_MB = 512


def wrap(command, box, readonly=(), private=None):
    """``command`` run inside the sandbox: an argv list for subprocess.

    The sandbox starts from an empty root. Bound into it, read-only: the system's programs
    and libraries (/usr and its links), a few files of /etc, the Python installation and the
    site-packages of the kernel's Python (``python_folders``), and ``readonly``; read-write:
    the folder ``box`` (created if missing), at the same path. ``/tmp`` is a private tmpfs
    of ``TMP_MB``; there is no network (``--unshare-net``) and a PID namespace of its own.
    An installed copy of ``solutions_lib`` inside a bound folder is covered by an empty one.
    File descriptors the command inherits stay open (the zygote's listening socket).
    ``private``: a folder inside ``box`` covered by a tmpfs of ``UNIT_MB`` that only the
    sandbox sees (what a student's code writes there fills no disk and no other folder).
    """
    box = os.path.abspath(box)
    os.makedirs(box, exist_ok=True)
    argv = [bwrap_path(), "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading",
            "--dev", "/dev", "--proc", "/proc", "--size", str(TMP_MB << 20), "--tmpfs", "/tmp"]
    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            argv += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            argv += ["--ro-bind", top, top]
    for name in ETC:
        argv += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for folder in python_folders() + [os.path.abspath(r) for r in readonly]:
        if not _inside(folder, "/usr"):
            argv += ["--ro-bind", folder, folder]
    bound = python_folders() + [os.path.abspath(r) for r in readonly]
    for home in _package_homes(("solutions_lib",)):
        hidden = os.path.join(home, "solutions_lib")
        if any(_inside(hidden, b) for b in bound) and os.path.isdir(hidden):
            argv += ["--tmpfs", hidden, "--remount-ro", hidden]
    argv += ["--bind", box, box, "--chdir", box]
    if private is not None:
        argv += ["--size", str(UNIT_MB << 20), "--tmpfs", os.path.abspath(private)]
    return argv + ["--"] + list(command)


def python_folders():
    """The folders the kernel's Python needs, outermost only: its installation, its virtual
    environment, and the site-packages on its path (never the course's own packages: the
    folders of ``autograder`` and ``solutions_lib`` are left out unless they are in a
    site-packages, where an installed copy of the course would be)."""
    wanted = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    wanted |= {entry for entry in sys.path if entry and "site-packages" in entry}
    found = set()
    for path in wanted:
        for p in {os.path.abspath(path), os.path.realpath(path)}:
            if os.path.exists(p) and p != "/":
                found.add(p if os.path.isdir(p) else os.path.dirname(p))
    exe = os.path.realpath(sys.executable)
    found.add(os.path.dirname(os.path.dirname(exe)))         # the real Python behind a venv
    outer = sorted(found, key=len)
    return [p for i, p in enumerate(outer) if not any(_inside(p, q) for q in outer[:i])]


def _package_homes(names):
    """The folders that hold the packages ``names``, wherever the import system finds them: an
    editable install reaches its source through a finder, not ``sys.path`` (the zygote script,
    ``autograder/instructor/zygote.py``, and the reference solutions live there)."""
    import importlib.util

    homes = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            homes.append(os.path.dirname(os.path.abspath(location)))
    return homes


def _inside(path, folder):
    path, folder = os.path.abspath(path), os.path.abspath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
