"""Benchmark: grading one synthetic class with plain sequential nbgrader and with ``nn-course grade``.

The class (``classroom.make_class``, no adversarial students: plain nbgrader would
spend minutes on their endless loops, and its result for them is wrong anyway): students
with the reference answers, one per catalogued bug and blank ones, every assignment each.
Two scratch copies of one course are made, so that both graders start from the same
gradebook and the same submissions:

- **plain**: ``nbgrader autograde <assignment> --create`` for every assignment, one after the
  other, as an instructor would run it (each command pays nbgrader's imports once);
- **ours**: ``autograder.pool.grade`` with ``--jobs`` workers: each submission executed once,
  split in two processes (the student's cells in a sandboxed kernel, the tests in a grader
  kernel, both forked by zygotes), and the integrity scan (feedback off, as nbgrader's
  autograde writes none; its cost is measured separately).

It prints the load average, a markdown table of wall times, throughput and speed-up, and
the per-notebook overhead of ``grade`` beyond the time the cells themselves ran.

    .venv/bin/python bench/bench_grading.py [--correct 10] [--blank 10] [--jobs 2]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.instructor import build, feedback, nbcells, pool, records, sandbox
from autograder.instructor.synthetic import classroom

ROOT = Path(__file__).resolve().parents[1]


def scratch_course(where):
    """A copy of the course with its release and gradebook; returns its root."""
    return build.scratch_course(where, root=ROOT)


def plain_nbgrader(root, submissions, assignments):
    """Sequential ``nbgrader autograde`` per assignment; returns seconds."""
    target = root / "course" / "submitted"
    shutil.copytree(submissions, target)
    nbgrader = Path(sys.executable).with_name("nbgrader")
    start = time.perf_counter()
    for assignment in assignments:
        subprocess.run([str(nbgrader), "autograde", assignment, "--create"], cwd=root / "course",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--correct", type=int, default=10)
    ap.add_argument("--blank", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    args = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"isolation (bubblewrap): {sandbox.isolation_available()}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="nn-bench-grading-"))
    try:
        plain_root = scratch_course(tmp / "plain")
        ours_root = tmp / "ours"
        shutil.copytree(plain_root, ours_root)
        assignments = nbcells.assignments(plain_root)
        submissions = tmp / "submissions"
        roster = classroom.make_class(plain_root / "source_notebooks", plain_root / "release", submissions,
                                      correct=args.correct, blank=args.blank, adversarial=False)
        units = len(roster) * len(assignments)
        print(f"class: {len(roster)} students x {len(assignments)} assignments = {units} notebooks", flush=True)

        plain = plain_nbgrader(plain_root, submissions, assignments)
        print(f"plain nbgrader: {plain:.1f} s", flush=True)
        summary = pool.grade(submissions, ours_root / "course", jobs=args.jobs, progress=False,
                             feedback=False, log=lambda *a: None)
        ours = summary.seconds
        print(f"nn-course grade: {ours:.1f} s", flush=True)
        course = records.Course(ours_root / "course")
        graded = [r for r in records.ledger_records(course) if r.status == "graded"]
        start = time.perf_counter()
        feedback.write_feedback(course, graded, force=True, log=lambda *a: None)
        feedback_seconds = time.perf_counter() - start

        def med(key):
            return statistics.median(r.seconds.get(key, 0.0) for r in graded)
        overhead = [r.seconds["total"] - r.seconds.get("autograde_cells", 0) for r in graded]
        print(f"\n| grader | notebooks | wall time (s) | notebooks / min | speed-up |")
        print("|---|---:|---:|---:|---:|")
        print(f"| plain `nbgrader autograde`, sequential | {units} | {plain:.0f} | {60 * units / plain:.1f} | 1.0 |")
        print(f"| `nn-course grade --jobs {args.jobs}` | {units} | {ours:.0f} | {60 * units / ours:.1f} | "
              f"**{plain / ours:.2f}** |")
        print(f"\nPer graded notebook (median of {len(graded)}): total {med('total'):.2f} s = nbgrader "
              f"{med('autograde'):.2f} s (cells, in both processes, {med('autograde_cells'):.2f} s) + scan "
              f"{med('scan'):.3f} s + intake {med('intake'):.3f} s.")
        print(f"Overhead beyond the cells' own run time (total - cells): median "
              f"{statistics.median(overhead):.2f} s, mean {statistics.mean(overhead):.2f} s per notebook.")
        print(f"Feedback HTML (nbgrader generate_feedback, one process): {feedback_seconds:.0f} s for {len(graded)} "
              f"notebooks, {feedback_seconds / max(1, len(graded)):.2f} s each.")
        print(f"Plain nbgrader per notebook: {plain / units:.2f} s.")
        print(f"Canary (each worker grades the {len(assignments)} reference notebooks before its first unit; "
              f"included in the wall time): {summary.canary_seconds:.1f} s for the slowest worker.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
