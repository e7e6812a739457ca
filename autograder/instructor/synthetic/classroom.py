"""A synthetic class: submissions made from the release, for the demo, the tests and the benchmark.

- ``make_class(source_dir, release_dir, out, ...)``: a whole class, written as a folder laid
  out like nbgrader's ``submitted/``: students with the reference answers, one per catalogued
  bug (``answers.load_bugs``), blank ones, and one per adversarial case
  (``adversaries.ADVERSARIAL``, ``escapes.ESCAPES``); returns who is who;
- ``check(roster, records, ...)``: what the grader did against what each student expects.
"""
import json
from pathlib import Path

import nbformat

from .. import nbcells
from .adversaries import ADVERSARIAL
from .answers import load_bugs, with_answers
from .escapes import ESCAPES


# ------------------------------------------------------------------------------ a class
def write_submission(folder, files, release_folder=None):
    """Write one student's assignment folder: the kit (as students have it) and ``files``."""
    import shutil

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if release_folder is not None and (Path(release_folder) / "autograder").is_dir():
        shutil.copytree(Path(release_folder) / "autograder", folder / "autograder", dirs_exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            nbformat.write(content, folder / name)


def make_class(source_dir, release_dir, out, correct=4, blank=3, bugs=True, adversarial=True,
               assignments=None, cases=None, only_their_own=("adversarial",)):
    """Write a synthetic class into ``out`` (laid out like nbgrader's submitted/).

    Students: ``correct`` with the reference answers everywhere; one per catalogued bug (the
    bug in its assignment, reference answers elsewhere); ``blank`` who hand back the release
    untouched, everywhere; one per adversarial case. The kinds in ``only_their_own`` submit
    only the assignment of their bug or attack (the others count as not submitted).
    ``assignments``: default all.
    Returns [{"student", "kind", "assignment", "what", "expect"}], one per student.
    """
    source_dir, release_dir, out = Path(source_dir), Path(release_dir), Path(out)
    names = assignments or nbcells.assignments(source_dir.parent)
    notebooks = {}
    for name in names:
        (src,) = nbcells.notebooks(source_dir / name)
        (rel,) = nbcells.notebooks(release_dir / name)
        notebooks[name] = (nbformat.read(rel, as_version=4), nbformat.read(src, as_version=4))
    roster = []
    for i in range(correct):
        roster.append({"student": f"correct{i + 1:02d}", "kind": "correct", "assignment": "",
                       "what": "reference answers everywhere", "expect": {}})
    if bugs:
        for assignment, entries in sorted(load_bugs().items()):
            if assignment not in names:
                continue
            for k, bug in enumerate(entries):
                roster.append({"student": f"bug-{assignment[:2]}-{k + 1}", "kind": "bug",
                               "assignment": assignment, "what": f"a typical bug in {bug['answer']}",
                               "expect": {"score": {bug["fails"]: bug["score"]}, "only_loses": bug["fails"],
                                          "phrase": bug["phrase"]}, "bug": bug})
    for i in range(blank):
        roster.append({"student": f"blank{i + 1:02d}", "kind": "blank", "assignment": "",
                       "what": "the release handed back untouched", "expect": {}})
    if adversarial:
        for case in cases or ADVERSARIAL + ESCAPES:
            if case.assignment in names:
                roster.append({"student": f"adv-{case.name}", "kind": "adversarial",
                               "assignment": case.assignment, "what": case.what, "expect": case.expect,
                               "case": case})
    for entry in roster:
        for name, (release_nb, source_nb) in notebooks.items():
            if entry["kind"] in only_their_own and name != entry["assignment"]:
                continue
            folder = out / entry["student"] / name
            nb_file = f"{name}.ipynb"
            if entry["kind"] == "blank":
                files = {nb_file: release_nb}
            elif entry["kind"] == "bug" and name == entry["assignment"]:
                files = {nb_file: with_answers(release_nb, source_nb, {entry["bug"]["answer"]: entry["bug"]["source"]})}
            elif entry["kind"] == "adversarial" and name == entry["assignment"]:
                files = entry["case"].build(release_nb, source_nb)
            else:
                files = {nb_file: with_answers(release_nb, source_nb)}
            write_submission(folder, files, release_dir / name)
    for entry in roster:
        entry.pop("case", None)
        entry.pop("bug", None)
    return roster


def check(roster, records, assignments, course=None, only_their_own=("adversarial",)):
    """What the grader did against what each student of ``make_class`` expects.

    records: {(student, assignment): Record}; course (a ``records.Course``) to look into the
    autograded notebooks for ``no_output``. Returns a list of problems (empty: every
    expectation met). Correct students must get full marks everywhere, blank ones 0, a bug
    must cost points in its exercise only, leaving exactly its catalogued ``score``, and every
    adversarial case its ``expect``.
    """
    problems = []
    for entry in roster:
        for assignment in assignments:
            if entry["kind"] in only_their_own and assignment != entry["assignment"]:
                continue
            r = records.get((entry["student"], assignment))
            where = f"{entry['student']}/{assignment}"
            if r is None:
                problems.append(f"{where}: not graded")
                continue
            expect = entry["expect"] if assignment == entry["assignment"] else {}
            problems += [f"{where}: {p}" for p in _check_one(entry["kind"], expect, r, course)]
    return problems


def _check_one(kind, expect, r, course):
    """The problems of one record against one expectation."""
    tests = r.tests
    lost = sorted(g for g, s in tests.items() if not s.full)
    status = expect.get("status", "graded")
    if r.status != status:
        return [f"status {r.status}, expected {status} {r.error[-300:]}"]
    problems = []
    if kind == "blank" or (kind == "adversarial" and status != "graded"):
        if any(s.final for s in tests.values()):
            problems.append(f"points for nothing: {[g for g, s in tests.items() if s.final]}")
    elif kind in ("correct", "adversarial") and not expect and lost:
        problems.append(f"reference answers lose {lost}")
    if "only_loses" in expect and lost != [expect["only_loses"]]:
        problems.append(f"the bug should cost {expect['only_loses']} only, it cost {lost}")
    kinds, severities = {f.kind for f in r.flags}, {f.severity for f in r.flags}
    problems += [f"no {k} flag (flags: {sorted(kinds)})" for k in expect.get("flags", []) if k not in kinds]
    if expect.get("severity") and expect["severity"] not in severities:
        problems.append(f"not flagged as {expect['severity']}")
    if expect.get("no_severity") in severities:
        problems.append(f"flagged as {expect['no_severity']}: "
                        f"{[f.message for f in r.flags if f.severity == expect['no_severity']]}")
    problems += [f"{g} kept {tests[g].final} points it did not earn" for g in expect.get("zero", [])
                 if g in tests and tests[g].final]
    problems += [f"{g} should keep its points, got {tests.get(g)}" for g in expect.get("full", [])
                 if g not in tests or not tests[g].full]
    problems += [f"{g} kept {tests[g].final} points, more than the {most} it may (its honest twin's)"
                 for g, most in expect.get("at_most", {}).items() if g in tests and (tests[g].final or 0) > most]
    problems += [f"{g} scored {tests[g].final if g in tests else None}, expected exactly {want} (partial credit)"
                 for g, want in expect.get("score", {}).items() if g not in tests or tests[g].final != want]
    events = {e.get("kind") for e in r.events}
    problems += [f"no {k} event (the case did not test what it should)" for k in expect.get("events", [])
                 if k not in events]
    if expect.get("no_output") and course is not None:
        graded = course.autograded_notebook(r)
        cells = nbformat.read(graded, as_version=4).cells if graded.exists() else []
        if expect["no_output"] in json.dumps([c.get("outputs", []) for c in cells if c.cell_type == "code"]):
            problems.append(f"the submission's code printed {expect['no_output']!r}: it reached files it must not see")
    return problems
