"""Benchmark: one small class graded by the local pool and by a Dask cluster on this machine.

The class (``classroom.make_class``, no adversaries: their time limits would dominate): the
reference answers, one per catalogued bug and blank students, in ``--assignments``. Each
backend grades it into a fresh copy of one course (feedback on, as ``nn-course grade`` does):

- **local**: ``pool.grade(..., jobs=2)``, two worker processes;
- **dask-1**, **dask-2**: a ``dask scheduler`` and one or two ``dask worker --nthreads 1
  --no-nanny`` on 127.0.0.1, started fresh for the run (the workers' start, and the start of
  the grading worker each one's plugin owns, are part of the time, as the local pool's start is).

It prints the load average and a markdown table: wall time, notebooks per second, and the
ratio to the local pool. On one machine Dask cannot be faster than the local pool (same
workers, plus the bundle, the task data and a scheduler); the point is what it costs.

    .venv/bin/python bench/bench_dask.py [--correct 3] [--blank 1] [--assignments 02_xor,05_cosine_denoising]
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.instructor import build, dask_pool, pool, sandbox
from autograder.instructor.synthetic import classroom

ROOT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).parent / "dask"


def scratch_course(where, assignments):
    """A course of ``assignments`` with its release and gradebook; returns its root."""
    return build.scratch_course(where, assignments, root=ROOT)


def copy_course(root, out):
    shutil.copytree(root / "source_notebooks", out / "source_notebooks")
    shutil.copytree(root / "release", out / "release")
    (out / "course").mkdir(parents=True)
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(root / "course" / name, out / "course")
    return out / "course"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dask_run(root, subs, workers, limits, folder):
    """Start a scheduler and ``workers`` workers, grade, stop them (by pid); returns (seconds, summary)."""
    from distributed import Client

    folder.mkdir(parents=True)
    address = f"tcp://127.0.0.1:{free_port()}"
    procs = []

    def spawn(name, argv):
        log = open(folder / f"{name}.log", "w")
        procs.append(subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=folder))

    start = time.perf_counter()
    try:
        spawn("scheduler", [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                            "--no-dashboard"])
        for i in range(workers):
            (folder / f"w{i}").mkdir()
            spawn(f"w{i}", [str(DASK), "worker", address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1",
                            "--no-dashboard", "--local-directory", str(folder / f"w{i}")])
        deadline = time.monotonic() + 120
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=120)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        summary = pool.grade(subs, copy_course(root, folder / "course-root"), limits=limits, progress=False,
                             log=lambda *a: None, backend=dask_pool.dask_backend(address))
        return time.perf_counter() - start, summary
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--correct", type=int, default=3)
    parser.add_argument("--blank", type=int, default=1)
    parser.add_argument("--assignments", default="02_xor,05_cosine_denoising")
    args = parser.parse_args()
    assignments = args.assignments.split(",")
    load = os.getloadavg()[0]
    limits = sandbox.Limits()
    with tempfile.TemporaryDirectory(prefix="nn-bench-dask-") as tmp:
        tmp = Path(tmp)
        root = scratch_course(tmp / "built", assignments)
        subs = tmp / "class"
        classroom.make_class(root / "source_notebooks", root / "release", subs, correct=args.correct,
                             blank=args.blank, adversarial=False, assignments=assignments,
                             only_their_own=("bug",))
        rows = []
        start = time.perf_counter()
        summary = pool.grade(subs, copy_course(root, tmp / "local"), jobs=2, limits=limits, progress=False,
                             log=lambda *a: None)
        rows.append(("local pool, --jobs 2", time.perf_counter() - start, summary))
        for workers in (1, 2):
            seconds, summary = dask_run(root, subs, workers, limits, tmp / f"dask{workers}")
            rows.append((f"Dask, {workers} worker{'s' if workers > 1 else ''} (--nthreads 1)", seconds, summary))
    n = rows[0][2].graded
    print(f"load average before: {load:.2f}; {n} notebooks graded by each "
          f"({len(assignments)} assignments: {', '.join(assignments)}; {os.cpu_count()} cores)\n")
    print("| backend | wall time | notebooks/s | vs local |")
    print("|---|---|---|---|")
    for name, seconds, summary in rows:
        assert summary.failed == [] and summary.graded == n, (name, summary.failed, summary.graded)
        print(f"| {name} | {seconds:.1f} s | {n / seconds:.3f} | {rows[0][1] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
