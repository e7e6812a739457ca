"""A student's install, made the way release/README.md tells students to make it.

A fresh virtual environment (``python -m venv``), then the README's own commands, run as
written: ``pip install -r requirements.txt`` (from PyPI) and the ``jupyter ...`` lines that
switch nbgrader's instructor tools off. Nothing of this repository is installed into it, so
whatever the release needs and ``requirements.txt`` forgets shows up as a failure.

    .venv/bin/python tests/student_env.py      # build it (or find it) and say where it is

Installing takes minutes, so the environment is kept in
``$NN_COURSE_CACHE/student-env/<key>/`` (default ``~/.cache/nn-foundations-course``). The key
is a hash of ``requirements.txt``, the README's commands and the Python version: change any
of them and a fresh environment is built. ``NN_STUDENT_ENV_FRESH=1`` builds a fresh one anyway
(new releases on PyPI can break an unchanged requirements file). Safety:
- a build first removes what an interrupted build left, and marks the folder ``complete``
  only at the end; an environment whose Python no longer starts is built again;
- a lock file per key: one process builds while the others wait, and users hold it shared
  until ``close()``;
- environments of other keys are removed when nobody holds their lock.
"""
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RELEASE = ROOT / "release"


def readme_commands(release=RELEASE):
    """The commands of the pip route in the release README's "Setting up" section, in order:
    the ``pip install`` line, then the ``jupyter ...`` lines (its indented code lines)."""
    text = (Path(release) / "README.md").read_text(encoding="utf-8")
    section = text.split("## Setting up", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.startswith("    ")]
    return [line for line in lines if line.startswith(("pip install", "jupyter "))]


def cache_root():
    base = os.environ.get("NN_COURSE_CACHE") or Path.home() / ".cache" / "nn-foundations-course"
    return Path(base) / "student-env"


def env_key(release=RELEASE):
    """16 hex digits naming the environment of this requirements file, these commands, this Python."""
    digest = hashlib.sha256()
    digest.update((Path(release) / "requirements.txt").read_bytes())
    digest.update("\n".join(readme_commands(release)).encode())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    return digest.hexdigest()[:16]


def isolated_env(venv, scratch):
    """Environment variables for commands run "inside" the activated venv, and nothing else:
    no PYTHONPATH, no user site-packages, a Jupyter config folder of its own (not ~/.jupyter)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH")}
    env.update(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               JUPYTER_CONFIG_DIR=str(Path(scratch) / "jupyter-config"),
               JUPYTER_DATA_DIR=str(Path(scratch) / "jupyter-data"))
    return env


class StudentEnv:
    """A built (or found) student environment, held (its lock shared) until ``close()``."""

    def __init__(self, folder, built_seconds, reused, lock):
        self.folder = Path(folder)
        self.venv = self.folder / "venv"
        self.python = self.venv / "bin" / "python"
        self.built_seconds = built_seconds       # how long pip and the commands took when it was built
        self.reused = reused                     # True: found in the cache, not built by this process
        self.scratch = self.folder / "scratch"
        self._lock = lock

    def env(self):
        return isolated_env(self.venv, self.scratch)

    def run(self, args, cwd=None, check=True):
        """Run a command inside the environment; returns the CompletedProcess (text, both streams)."""
        proc = subprocess.run(args, cwd=cwd or self.scratch, env=self.env(), capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(f"`{' '.join(map(str, args))}` failed ({proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def close(self):
        self._lock.close()                       # releases the lock


def _works(folder):
    mark = folder / "complete"
    if not mark.is_file():
        return False
    python = folder / "venv" / "bin" / "python"
    return subprocess.run([str(python), "-c", "import jupyterlab, nbgrader"],
                          capture_output=True).returncode == 0


def _build(folder, release, log):
    """python -m venv, then the README's commands as written; returns the seconds they took."""
    if folder.exists():
        shutil.rmtree(folder)
    venv, scratch = folder / "venv", folder / "scratch"
    scratch.mkdir(parents=True)
    start = time.perf_counter()
    log(f"student install: python -m venv {venv}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    env = isolated_env(venv, scratch)
    with open(folder / "install.log", "w", encoding="utf-8") as out:
        for command in readme_commands(release):
            log(f"student install: {command}")
            out.write(f"$ {command}\n")
            out.flush()
            proc = subprocess.run(shlex.split(command), cwd=release, env=env, stdout=out,
                                  stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                raise RuntimeError(f"`{command}` failed in the student environment "
                                   f"(exit {proc.returncode}); see {folder / 'install.log'}")
    seconds = time.perf_counter() - start
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"], env=env,
                            capture_output=True, text=True, check=True).stdout.split()
    (folder / "complete").write_text(json.dumps({"built_seconds": round(seconds, 1), "freeze": freeze},
                                                indent=1), encoding="utf-8")
    return seconds


def _prune(root, keep):
    """Remove the environments of other keys that nobody holds."""
    for lock_path in root.glob("*.lock"):
        if lock_path.stem == keep:
            continue
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue                          # in use by another test run
            shutil.rmtree(root / lock_path.stem, ignore_errors=True)
            lock_path.unlink()


def student_env(release=RELEASE, log=print):
    """The student environment for this release: found in the cache, or built now."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = env_key(release)
    folder = root / key
    lock = open(root / f"{key}.lock", "a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one builder; the others wait here
        fresh = os.environ.get("NN_STUDENT_ENV_FRESH") == "1"
        if not fresh and _works(folder):
            built = json.loads((folder / "complete").read_text(encoding="utf-8"))["built_seconds"]
            reused = True
        else:
            built = _build(folder, Path(release), log)
            reused = False
        _prune(root, keep=key)
    except BaseException:
        lock.close()
        raise
    fcntl.flock(lock, fcntl.LOCK_SH)              # in use from now on: never pruned
    return StudentEnv(folder, built, reused, lock)


if __name__ == "__main__":
    found = student_env()
    how = "found in the cache" if found.reused else "built"
    print(f"student environment {how}: {found.venv} (pip install and setup took {found.built_seconds:.0f} s)")
    found.close()
