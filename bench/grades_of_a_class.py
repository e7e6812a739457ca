"""The score of every test cell of one synthetic class, to compare two versions of the grader.

    .venv/bin/python bench/grades_of_a_class.py OUT                    # this checkout's code
    PYTHONPATH=../old .venv/bin/python bench/grades_of_a_class.py OUT  # another version's
    .venv/bin/python bench/grades_of_a_class.py --compare OUT_A OUT_B

The class (``classroom.make_class``: 2 students with the reference answers, one per catalogued
bug, 1 blank, no adversaries, every assignment) is graded into a fresh copy of the course in
OUT with the demo's limits; ``OUT/scores.json`` gets {student/assignment/grade_id: final score}
and the seconds per notebook. ``--compare`` prints the cells whose scores differ.
"""
import json
import statistics
import sys
import time
from pathlib import Path


def grade(out):
    import autograder
    from autograder.instructor import pool
    from autograder.instructor.records import Course, ledger_records
    from autograder.instructor.synthetic import classroom, demo

    print("code from", Path(autograder.__file__).parent)
    out = Path(out)
    course_dir = demo.prepare(out, log=lambda *a: None)
    roster = classroom.make_class(out / "source_notebooks", out / "release", out / "submissions", correct=2,
                                  blank=1, adversarial=False)
    demo.enrol(course_dir, roster)
    start = time.perf_counter()
    pool.grade(out / "submissions", course_dir, limits=demo.DEMO_LIMITS, progress=False, log=print)
    wall = time.perf_counter() - start
    scores, seconds = {}, []
    for r in ledger_records(Course(course_dir)):
        seconds.append(r.seconds.get("total", 0.0))
        scores.update({f"{r.student}/{r.assignment}/{g}": s.final for g, s in r.scores.items()})
    (out / "scores.json").write_text(json.dumps({"wall": wall, "scores": scores, "seconds": seconds}))
    print(f"{len(seconds)} notebooks, {len(scores)} graded cells in {wall:.0f} s; median "
          f"{statistics.median(seconds):.2f} s per notebook")


def compare(a, b):
    one, two = (json.loads((Path(p) / "scores.json").read_text())["scores"] for p in (a, b))
    differ = {k: (one.get(k), two.get(k)) for k in sorted(set(one) | set(two)) if one.get(k) != two.get(k)}
    print(f"{len(one)} and {len(two)} graded cells; {len(differ)} differ")
    for key, (x, y) in differ.items():
        print(f"  {key}: {x} -> {y}")
    return 1 if differ else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--compare"]:
        sys.exit(compare(*sys.argv[2:4]))
    grade(sys.argv[1])
