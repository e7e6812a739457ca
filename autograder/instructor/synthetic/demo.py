"""The whole instructor's pipeline on a synthetic class, offline: ``make demo``.

    nn-course demo [--out demo-class] [--jobs N] [--correct 4] [--blank 3]

1. copies the course (source notebooks, nbgrader config) into ``--out`` and builds its
   release and gradebook with nbgrader (``build.py``);
2. writes a class (``classroom.make_class``): students with the reference
   answers, one student per catalogued bug, blank notebooks, and one student per adversarial
   case (endless loops, a dead kernel, a memory bomb, tampering with numpy or the checks,
   reading the gradebook, broken files ...); the roster goes to ``course/roster.csv`` and
   into the gradebook;
3. grades it all with ``pool.grade`` (parallel; student code sandboxed, tests in a process of their own);
4. writes the grades, the feedback and the class report (``report.py``);
5. prints the grade table and checks every student's expected outcome: each catalogued bug
   costs points in its exercise only, leaving exactly its catalogued score (bugs.json), no
   adversary keeps a point it did not earn, and each is flagged as it should be.

The repository's own ``course/`` and ``release/`` are not touched.
"""
import csv
import shutil
import time
from pathlib import Path

from .. import build, nbcells, pool, report, sandbox
from ..records import Course, ledger_records
from . import classroom

#: Limits for the demo: tighter than the course's (60 s per cell), so that the endless loop
#: of the adversarial corpus costs seconds, not minutes. No reference cell needs 5 s here.
DEMO_LIMITS = sandbox.Limits(cell_timeout=15, notebook_timeout=60)


def prepare(out, root=None, log=print):
    """A copy of the course in ``out`` with its release and gradebook built; returns its course/."""
    root = Path(root or nbcells.find_root())
    out = Path(out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(root / "source_notebooks", out / "source_notebooks",
                    ignore=shutil.ignore_patterns(build.KIT, ".ipynb_checkpoints", "__pycache__"))
    (out / "course").mkdir()
    shutil.copy(root / "course" / "nbgrader_config.py", out / "course")
    shutil.copy(root / "pyproject.toml", out)
    log("building the release and the gradebook with nbgrader ...")
    build.generate(out)
    return out / "course"


def enrol(course_dir, roster):
    """Write course/roster.csv and put every student into the gradebook (as nbgrader's db import)."""
    from nbgrader.api import Gradebook

    course = Course(course_dir)
    with open(course.root / "roster.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "first_name", "last_name", "email"])
        for entry in roster:
            writer.writerow([entry["student"], entry["kind"], entry["what"][:40], ""])
    with Gradebook(course.db_url, course.course_id) as gb:
        for entry in roster:
            gb.update_or_create_student(entry["student"], first_name=entry["kind"], last_name=entry["what"][:60])


def grade_table(course, roster, records):
    """The table printed at the end: one row per student, autograded % per assignment."""
    heads = [a[:2] for a in course.assignments]
    lines = [f"{'student':<26} {'kind':<12}" + "".join(f"{h:>6}" for h in heads) + "   flags"]
    for entry in roster:
        cells, flags = [], set()
        for assignment in course.assignments:
            r = records.get((entry["student"], assignment))
            tests = list(r.tests.values()) if r else []
            maximum = sum(s.max for s in tests)
            if r is None or r.status == "missing" and entry["kind"] == "adversarial":
                cells.append("     -")
            else:
                cells.append(f"{100 * sum(s.final or 0 for s in tests) / maximum:6.0f}" if maximum else "     ?")
            flags |= {f.kind for f in r.actionable_flags} if r else set()
        lines.append(f"{entry['student']:<26} {entry['kind']:<12}" + "".join(cells) + "   "
                     + ", ".join(sorted(flags)))
    return "\n".join(lines)


def demo(out="demo-class", jobs=None, correct=4, blank=3, limits=DEMO_LIMITS, progress=True, log=print):
    """Run the demo; returns (problems, seconds): problems is empty when every expectation is met."""
    start = time.perf_counter()
    course_dir = prepare(out, log=log)
    out = course_dir.parent
    roster = classroom.make_class(out / "source_notebooks", out / "release", out / "submissions",
                                  correct=correct, blank=blank)
    enrol(course_dir, roster)
    kinds = {k: sum(e["kind"] == k for e in roster) for k in ("correct", "bug", "blank", "adversarial")}
    log(f"class of {len(roster)} students: " + ", ".join(f"{n} {k}" for k, n in kinds.items())
        + f" ({out / 'submissions'})")
    summary = pool.grade(out / "submissions", course_dir, jobs=jobs, limits=limits, progress=progress, log=log)
    if not summary.isolated:
        log("NOTE: bubblewrap is missing, so the student processes ran without the sandbox's walls "
            "(no filesystem or network isolation; apt-get install bubblewrap); the tests still ran in a "
            "process of their own, out of the students' reach.")
    index = report.report(course_dir, out / "report", log=log)
    course = Course(course_dir)
    records = {(r.student, r.assignment): r for r in ledger_records(course)}
    log("\nAutograded score per assignment (%), '-' = not submitted:\n" + grade_table(course, roster, records))
    problems = classroom.check(roster, records, course.assignments, course)
    seconds = time.perf_counter() - start
    log("")
    if problems:
        log(f"{len(problems)} expectations NOT met:\n  " + "\n  ".join(problems))
    else:
        log(f"Every expectation met: {kinds['bug']} catalogued bugs each cost exactly their catalogued points (partial credit), "
            f"{kinds['adversarial']} adversarial submissions graded, flagged, and kept no point they did not earn.")
    log(f"Graded {summary.graded} submissions in {summary.seconds:.0f} s; the demo took {seconds:.0f} s. "
        f"Report: {index}")
    return problems, seconds
