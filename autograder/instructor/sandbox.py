"""The walls around students' code while it is graded.

Every grading worker runs its kernels inside one sandbox (``zygote.py`` forks them there):

- **Filesystem** (bubblewrap, ``bwrap``): the whole machine read-only, with the course's
  private folders -- the gradebook and every submission (``course/``), the source notebooks
  with their solutions and hidden tests, the repository's ``.git`` -- replaced by empty
  folders. The only writable place is the worker's own scratch folder, where the notebook
  being graded is copied. ``/tmp`` is private (a checkout or venv that lives under it is
  bound back, read-only).
- **Processes**: a PID namespace of its own (a kernel cannot see, signal or read the files
  of the grader or of another worker's kernels through ``/proc``), killed with the worker
  (``--die-with-parent``).
- **Resources** (set per kernel by the zygote): address space (``memory_mb``), CPU seconds,
  the size of a written file, no core dumps.
- **Time**: the grader's own per-cell and per-notebook limits (``nbexec.GradingExecute``).

Without bubblewrap (``apt-get install bubblewrap``; not on macOS or Windows) grading still
works, with the resource limits, and every report says that the filesystem walls were
missing: a student's code could then read the gradebook or the source notebooks, which the
integrity scan looks for but cannot prevent.
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


def wrap(command, hide, scratch):
    """``command`` run inside the sandbox: an argv list for subprocess.

    - hide: folders replaced by empty, read-only ones (they need not exist);
    - scratch: the one writable folder (created if missing), visible at the same path.
    """
    scratch = os.path.abspath(scratch)
    os.makedirs(scratch, exist_ok=True)
    argv = [bwrap_path(), "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for folder in _needed_under_tmp():
        argv += ["--ro-bind", folder, folder]
    folders = sorted({os.path.abspath(h) for h in hide})
    for folder in folders:
        if _inside(scratch, folder):
            raise ValueError(f"the scratch folder {scratch} must not lie inside the hidden {folder}")
        if any(other != folder and _inside(folder, other) for other in folders):
            continue                     # hidden with the folder around it (course/submitted)
        if os.path.isdir(folder):
            argv += ["--tmpfs", folder, "--remount-ro", folder]
    argv += ["--bind", scratch, scratch, "--chdir", scratch, "--"]
    return argv + list(command)


def _needed_under_tmp():
    """Folders under /tmp that the kernel's Python needs (a checkout or a venv cloned there).

    The private /tmp would hide them; they are bound back read-only, before the hidden
    folders are laid over them, so that ``course/`` and the rest stay hidden."""
    wanted = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.executable]
    wanted += [entry for entry in sys.path if entry]
    wanted += _package_homes(("autograder", "solutions_lib"))
    found = set()
    for path in wanted:
        path = os.path.realpath(path)
        if not os.path.exists(path) or not _inside(path, "/tmp") or path == "/tmp":
            continue
        found.add(path if os.path.isdir(path) else os.path.dirname(path))
    # the outermost ones only; binding /tmp/a and then /tmp/a/b would be redundant
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
