"""The instructor's pipeline: intake, integrity scan, sandboxed kernels, grading a class, the report.

The heart is ``graded_class``: a scratch course with its release and gradebook, a class made
by ``synthetic.classroom.make_class`` (a student with the reference answers everywhere, a
blank one, one per catalogued bug and one per adversarial case), graded once with two
workers. Every student's expected outcome is then a test of its own.
"""
import copy
import hashlib
import html
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbtools import needs_isolation

from autograder.instructor import (build, cli, feedback, intake, integrity, nbcells, nbexec, pool, records, report,
                                   sandbox, worker)
from autograder.instructor.split import execute as split_execute
from autograder.instructor.synthetic import adversaries, answers, classroom, escapes

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = nbcells.assignments(ROOT)
LIMITS = sandbox.Limits(cell_timeout=10, notebook_timeout=40)
OWN = ("bug", "adversarial")          # in the test class these submit only their assignment


def _notebooks(name):
    (src,) = nbcells.notebooks(ROOT / "source_notebooks" / name)
    (rel,) = nbcells.notebooks(ROOT / "release" / name)
    return nbformat.read(rel, as_version=4), nbformat.read(src, as_version=4)




# ------------------------------------------------------------------------------ intake
@pytest.fixture(scope="module")
def dense():
    return _notebooks("04_dense_backprop")


def _write(folder, files):
    classroom.write_submission(folder, files)
    return folder


def test_intake_keeps_a_clean_submission_as_it_is(tmp_path, dense):
    release, source = dense
    folder = _write(tmp_path / "in", {"04_dense_backprop.ipynb": answers.with_answers(release, source)})
    got = intake.normalize(folder, "04_dense_backprop.ipynb", release, tmp_path / "out")
    assert [f.kind for f in got.findings] == []
    nb = nbformat.read(got.notebook, as_version=4)
    assert [c.source for c in nb.cells] == [c.source for c in answers.with_answers(release, source).cells]


@pytest.mark.parametrize("case, kinds", [
    ("split-cell", {"split-cell"}),
    ("duplicated-test", {"duplicated-test"}),
    ("deleted-test", {"deleted-cell"}),
    ("invalid-json", {"invalid-json", "deleted-cell"}),
    ("wrong-file-name", {"wrong-file-name"}),
    ("old-nbformat", {"old-nbformat"}),
    ("lone-surrogate", {"bad-characters"}),
    ("deep-json", {"invalid-json"}),
    ("list-grade-id", {"malformed-metadata"}),
    ("answer-as-grade", {"edited-metadata"}),
    ("test-as-answer", {"edited-metadata", "edited-test"}),
    ("test-as-text", {"changed-cell-type"}),
    ("bad-timestamp", {"bad-timestamp"}),
    ("many-split-parts", {"split-cell"}),
])
def test_intake_repairs_what_nbgrader_cannot_grade(tmp_path, dense, case, kinds):
    release, source = dense
    (adversary,) = [c for c in adversaries.ADVERSARIAL if c.name == case]
    files = adversary.build(release, source)
    folder = _write(tmp_path / "in", files)
    before = {p.name: p.read_bytes() for p in folder.glob("*.ipynb")}
    got = intake.normalize(folder, "04_dense_backprop.ipynb", release, tmp_path / "out")
    assert {f.kind for f in got.findings} >= kinds, got.findings
    assert {p.name: p.read_bytes() for p in folder.glob("*.ipynb")} == before, "the raw submission changed"
    nb = nbformat.read(got.notebook, as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    ids = [i for i in ids if i]
    assert ids == [i for i in intake.expected_cells(release)], "every graded cell once, in order"


def test_intake_joins_the_parts_of_a_split_answer(tmp_path, dense):
    release, source = dense
    (split,) = [c for c in adversaries.ADVERSARIAL if c.name == "split-cell"]
    folder = _write(tmp_path / "in", split.build(release, source))
    got = intake.normalize(folder, "04_dense_backprop.ipynb", release, tmp_path / "out")
    nb = nbformat.read(got.notebook, as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "dense_backward"]
    assert cell.source == answers.reference_answers(source)["dense_backward"]


def test_intake_reports_an_edited_test_with_its_first_changed_line(tmp_path, dense):
    release, source = dense
    (edited,) = [c for c in adversaries.ADVERSARIAL if c.name == "edited-test"]
    got = intake.normalize(_write(tmp_path / "in", edited.build(release, source)), "04_dense_backprop.ipynb",
                           release, tmp_path / "out")
    (finding,) = [f for f in got.findings if f.kind == "edited-test"]
    assert finding.cell == "test_dense_backward" and "line 1" in finding.evidence


def test_intake_without_anything_to_grade(tmp_path, dense):
    release, _ = dense
    got = intake.normalize(_write(tmp_path / "empty", {}), "04_dense_backprop.ipynb", release, tmp_path / "o1")
    assert got.notebook is None and [f.kind for f in got.findings] == ["missing-notebook"]
    junk = _write(tmp_path / "junk", {"04_dense_backprop.ipynb": b"\x00\x01 not json"})
    got = intake.normalize(junk, "04_dense_backprop.ipynb", release, tmp_path / "o2")
    assert got.notebook is None and got.findings[0].kind == "unreadable"


# ------------------------------------------------------------------------------ integrity scan
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_the_reference_answers_raise_no_suspicion(name):
    release, source = _notebooks(name)
    student = answers.with_answers(release, source)
    cells = [(label, src) for _, label, src in integrity.student_cells(student, source)]
    found = [f for f in integrity.scan(cells, integrity.provided_names(source)) if f.severity != "info"]
    assert found == [], f"{name}: the reference answers are flagged: {found}"


@pytest.mark.parametrize("code, kind", [
    ("np.all = lambda *a, **k: True", "patch"),
    ("checks.check_close = lambda *a, **k: None", "patch"),
    ("setattr(np, 'allclose', lambda *a, **k: True)", "forbidden-name"),
    ("import builtins\nbuiltins.len = lambda x: 0", "forbidden-import"),
    ("import sys\nsys.modules['numpy'] = None", "forbidden-import"),
    ("from solutions_lib import layers", "forbidden-import"),
    ("class A:\n    def __eq__(self, other):\n        return True", "dunder"),
    ("class F(float):\n    pass", "fake-value"),
    ("def f(x):\n    return x.__class__", "dunder"),
    ("def f():\n    global np\n    np = None", "rebinds"),
    ("np = None", "rebinds"),
    ("x = open('../../../gradebook.db').read()", "forbidden-name"),
    ("p = 'course/gradebook.db'", "telltale-string"),
    ("exec('print(1)')", "forbidden-name"),
    ("!ls /", "magic"),
    ("@some.decorator\ndef f():\n    pass", "decorator"),
])
def test_scan_flags_tampering(dense, code, kind):
    _, source = dense
    found = integrity.scan([("dense_forward", code)], integrity.provided_names(source))
    assert kind in {f.kind for f in found if f.severity == "tampering"}, found


def test_scan_leaves_ordinary_code_alone(dense):
    _, source = dense
    code = ("import math\nfrom functools import lru_cache\n\n\n@lru_cache\ndef f(x, rng=np.random.default_rng(0)):\n"
            "    Y = np.zeros((3, 3))\n    Y[np.arange(3), [0, 1, 2]] = 1.0\n    d = {}\n    d['a'] = math.pi\n"
            "    return Y.T @ Y\n")
    assert [f for f in integrity.scan([("x", code)], integrity.provided_names(source))
            if f.severity == "tampering"] == []


def _bound(argv):
    """(flag, source, destination) of every bind in a bubblewrap argv."""
    return [(f, s, d) for f, s, d in zip(argv, argv[1:], argv[2:])
            if f in ("--bind", "--ro-bind", "--bind-try", "--ro-bind-try", "--dev-bind")]


def test_sandbox_argv_starts_from_an_empty_root_and_binds_the_box_read_write(tmp_path):
    """The argv of ``wrap``: the box (created) read-write at its own path and the working
    folder, ``readonly`` read-only, no network, a PID namespace, a private /tmp, and the
    host's ``/`` never bound."""
    box, kit = tmp_path / "box", tmp_path / "bin"
    kit.mkdir()
    argv = sandbox.wrap(["python", "-c", "1"], box, readonly=[kit])
    pairs = list(zip(argv, argv[1:]))
    assert box.is_dir(), "the box is created"
    assert ("--bind", str(box), str(box)) in _bound(argv) and ("--chdir", str(box)) in pairs
    assert ("--ro-bind", str(kit), str(kit)) in _bound(argv)
    assert all(src != "/" for _, src, _ in _bound(argv)), "the host's root is never bound"
    assert [src for flag, src, _ in _bound(argv) if flag in ("--bind", "--bind-try", "--dev-bind")] == [str(box)], \
        "the box is the only writable folder of the host"
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert ("--tmpfs", "/tmp") in pairs, "a private /tmp"
    assert argv[-4:] == ["--", "python", "-c", "1"]


def test_a_solutions_lib_inside_a_bound_folder_is_covered(tmp_path, monkeypatch):
    """An installed copy of the references (``solutions_lib`` in a folder the sandbox binds,
    such as a site-packages) is covered by an empty folder, after the bind; one outside every
    bound folder needs nothing. Run in the sandbox, the folder is readable, its copy empty."""
    import importlib.machinery
    import importlib.util

    site = tmp_path / "site-packages"
    (site / "solutions_lib").mkdir(parents=True)
    (site / "solutions_lib" / "layers.py").write_text("SECRET = 1\n")
    (site / "other.py").write_text("X = 1\n")
    spec = importlib.machinery.ModuleSpec("solutions_lib", None, is_package=True)
    spec.submodule_search_locations = [str(site / "solutions_lib")]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: spec if name == "solutions_lib" else real(name, *a))
    hidden = str(site / "solutions_lib")
    argv = sandbox.wrap(["true"], tmp_path / "box", readonly=[site])
    pairs = list(zip(argv, argv[1:]))
    assert ("--tmpfs", hidden) in pairs and ("--remount-ro", hidden) in pairs
    assert argv.index(hidden) > argv.index(str(site)), "the cover comes after the bind it covers"
    assert hidden not in sandbox.wrap(["true"], tmp_path / "box2"), "not bound, nothing to cover"
    if not sandbox.isolation_available():
        return
    done = subprocess.run(sandbox.wrap(["sh", "-c", f"cat {site}/other.py; ls -A {hidden}"], tmp_path / "box",
                                       readonly=[site]), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "X = 1", "the folder is readable, its solutions_lib is empty"


def test_only_the_box_and_the_bound_folders_are_there(tmp_path):
    """Run in the sandbox: a read-only folder under /tmp is bound back over the private /tmp
    (a fresh clone in /tmp once could not start a kernel), its sibling (a course folder) is
    not there at all, the box is writable and what is written there is seen outside, and a
    write to the read-only folder fails."""
    needs_isolation()
    kit, course, box = tmp_path / "kit", tmp_path / "course", tmp_path / "box"
    kit.mkdir()
    (kit / "module.py").write_text("X = 1\n")
    course.mkdir()
    (course / "gradebook.db").write_text("secret")
    script = (f"cat {kit}/module.py; test -e {course} && echo course-visible; "
              f"echo written > {box}/out.txt; touch {kit}/new 2>/dev/null && echo kit-writable; true")
    done = subprocess.run(sandbox.wrap(["sh", "-c", script], box, readonly=[kit]),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "X = 1", done.stdout
    assert (box / "out.txt").read_text() == "written\n" and not (kit / "new").exists()


@pytest.fixture(scope="module")
def scratch_course(tmp_path_factory):
    """A copy of the course with its release and gradebook (nbgrader generate_assignment)."""
    return build.scratch_course(tmp_path_factory.mktemp("course"), root=ROOT)


@pytest.fixture(scope="module")
def grading_worker(scratch_course):
    needs_isolation()
    w = worker.Worker(scratch_course / "course", LIMITS, index=9)
    yield w
    w.close()


def _run(w, code, timeout=20):
    """Execute cells as a student's (cells without an nbgrader role) through the worker's split
    execution (``SplitExecute``): they run in the sandboxed student process. Returns the
    executed notebook."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in code])
    w._fresh_unit("02_xor")
    config = copy.deepcopy(w.config)         # the limits of this run, not the worker's
    config.SplitExecute.timeout, config.SplitExecute.notebook_timeout = timeout, 60
    config.SplitExecute.execution_log = nbexec.ExecutionLog()
    split_execute.SplitExecute(config=config).preprocess(nb, {"metadata": {"path": str(w.box / "work")}})
    return nb


def _out(cell):
    return "".join(o.get("text", "") + str(o.get("evalue", "")) + o.get("ename", "") for o in cell.outputs)


@pytest.mark.slow
def test_kernels_cannot_see_the_gradebook_submissions_or_solutions(grading_worker, scratch_course):
    course = scratch_course / "course"
    nb = _run(grading_worker, [
        f"import os\nprint(sorted(os.listdir({str(course)!r})))",
        f"print(os.path.exists({str(scratch_course / 'source_notebooks' / '02_xor' / '02_xor.ipynb')!r}))",
        f"print(os.path.exists({str(ROOT / 'source_notebooks')!r}) and os.listdir({str(ROOT / 'source_notebooks')!r}))",
        f"open({str(course / 'intruder.txt')!r}, 'w')",
        "print(open('/proc/1/cmdline').read().split(chr(0))[0])",
        "import autograder, os\nprint(os.path.dirname(autograder.__file__))"])
    assert "FileNotFoundError" in _out(nb.cells[0]), "the course folder is not there at all"
    assert _out(nb.cells[1]).strip() == "False"
    assert _out(nb.cells[2]).strip() in ("False", "[]")
    assert "Error" in _out(nb.cells[3]) and not (course / "intruder.txt").exists()
    assert "bwrap" in _out(nb.cells[4]), "the kernel runs in a PID namespace of its own"
    assert _out(nb.cells[5]).strip().startswith(str(grading_worker.scratch)), "the kernel imports the assignment's kit"


@pytest.mark.slow
def test_kernel_limits_interrupt_memory_and_death(grading_worker):
    nb = _run(grading_worker, [
        "import time\nwhile True:\n    time.sleep(0.01)",
        "x = bytearray(8 * 1024 ** 3)",
        "print('still alive')",
        "import os\nos._exit(3)",
        "print('never')"], timeout=3)
    assert "CellTimeoutError" in _out(nb.cells[0]) or "KeyboardInterrupt" in _out(nb.cells[0])
    assert "MemoryError" in _out(nb.cells[1])
    assert "still alive" in _out(nb.cells[2])
    assert "DeadKernelError" in _out(nb.cells[3]) + _out(nb.cells[4])


@pytest.mark.slow
def test_a_step_that_fails_after_nbgrader_scored_withholds_the_scores(scratch_course, tmp_path, monkeypatch):
    """nbgrader has written full marks; then a later step of the grader raises: the unit is an
    error, and the gradebook holds 0, marked for a manual grade, not nbgrader's points."""
    needs_isolation()
    from nbgrader.api import Gradebook

    out = _copy_of(scratch_course, tmp_path / "c")             # a course of its own: the class tests
    release, source = _notebooks("02_xor")                      # share scratch_course's gradebook
    folder = tmp_path / "ada" / "02_xor"
    classroom.write_submission(folder, {"02_xor.ipynb": answers.with_answers(release, source)})
    unit = records.Unit("ada", "02_xor", str(folder))
    w = worker.Worker(out / "course", LIMITS, index=8)
    try:
        def broken_scan(job):
            raise RuntimeError("the scan broke")
        monkeypatch.setattr(w, "scan", broken_scan)
        record = w.grade(unit)
        assert record.status == "error" and "the scan broke" in record.error
        assert "withheld" in {f.kind for f in record.flags}
        with Gradebook(w.course.db_url, w.course.course_id) as gb:
            tests = [g for g in gb.find_submission_notebook("02_xor", "02_xor", "ada").grades
                     if g.cell.cell_type == "code"]
            assert tests and all(g.auto_score == 0 and g.needs_manual_grade for g in tests)
        monkeypatch.undo()
        assert w.grade(unit).status == "graded", "graded again, it gets its points"
        with Gradebook(w.course.db_url, w.course.course_id) as gb:
            tests = [g for g in gb.find_submission_notebook("02_xor", "02_xor", "ada").grades
                     if g.cell.cell_type == "code"]
            assert all(g.auto_score == g.max_score for g in tests)
    finally:
        w.close()


def test_intake_refuses_a_file_past_the_size_cap(tmp_path, dense, monkeypatch):
    release, source = dense
    folder = _write(tmp_path / "in", {"04_dense_backprop.ipynb": answers.with_answers(release, source)})
    monkeypatch.setattr(intake, "MAX_BYTES", 1000)
    got = intake.normalize(folder, "04_dense_backprop.ipynb", release, tmp_path / "out")
    assert got.notebook is None and got.findings[0].kind == "unreadable" and "MB" in got.findings[0].message


# ------------------------------------------------------------------------------ a whole class
def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file() and build.KIT not in p.parts:
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded_class(scratch_course):
    """The test class, graded once: (course, roster, {(student, assignment): record}, summary, digests)."""
    needs_isolation()
    out = scratch_course
    subs = out / "submissions"
    roster = classroom.make_class(out / "source_notebooks", out / "release", subs, correct=1, blank=1,
                                  only_their_own=OWN)
    before = {"source": _digest(out / "source_notebooks"), "release": _digest(out / "release"),
              "submissions": _digest(subs)}
    summary = pool.grade(subs, out / "course", jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)
    after = {"source": _digest(out / "source_notebooks"), "release": _digest(out / "release"),
             "submissions": _digest(subs)}
    course = records.Course(out / "course")
    graded = {(r.student, r.assignment): r for r in records.ledger_records(course)}
    return course, roster, graded, summary, (before, after)


ROSTER_NAMES = (["correct01", "blank01"] + [f"bug-{a[:2]}-{k + 1}" for a, bugs in sorted(answers.load_bugs().items())
                                            for k in range(len(bugs))]
                + [f"adv-{c.name}" for c in adversaries.ADVERSARIAL + escapes.ESCAPES])


@pytest.mark.slow
@pytest.mark.parametrize("student", ROSTER_NAMES)
def test_every_student_gets_what_they_deserve(graded_class, student):
    course, roster, graded, _, _ = graded_class
    entry = [e for e in roster if e["student"] == student]
    assert entry, f"{student} is not in the class"
    problems = classroom.check(entry, graded, course.assignments, course, only_their_own=OWN)
    assert problems == []


@pytest.mark.slow
def test_the_batch_completes_sandboxed_and_nothing_outside_changes(graded_class):
    course, roster, graded, summary, (before, after) = graded_class
    assert summary.failed == [] and summary.isolated
    assert before == after, "grading changed the source notebooks, the release or the submissions"
    expected = {(e["student"], a) for e in roster for a in course.assignments}
    assert set(graded) == expected, "every student has a record for every assignment"


@pytest.mark.slow
def test_the_gradebook_holds_the_final_scores(graded_class):
    from nbgrader.api import Gradebook

    course, _, graded, _, _ = graded_class
    with Gradebook(course.db_url, course.course_id) as gb:
        for (student, assignment), r in graded.items():
            sub = gb.find_submission_notebook(Path(r.notebook).stem, assignment, student) if r.notebook else None
            if sub is None:
                continue
            for g in sub.grades:
                entry = r.scores.get(g.name)
                if entry and entry.kind == "test":
                    assert g.auto_score == entry.final, (student, assignment, g.name)
        tampered = gb.find_submission_notebook("04_dense_backprop", "04_dense_backprop", "adv-patch-checks")
        assert any(g.needs_manual_grade for g in tampered.grades), "a tampered submission is marked for review"


@pytest.mark.slow
def test_rerun_grades_nothing_and_repairs_a_changed_gradebook(graded_class):
    from nbgrader.api import Gradebook

    course, _, _, _, _ = graded_class
    with Gradebook(course.db_url, course.course_id) as gb:
        sub = gb.find_submission_notebook("04_dense_backprop", "04_dense_backprop", "correct01")
        grade = [g for g in sub.grades if g.name == "test_dense_backward"][0]
        grade.auto_score = 0.0
        gb.db.commit()
    summary = pool.grade(course.root.parent / "submissions", course.dir, jobs=1, limits=LIMITS,
                            progress=False, log=lambda *a: None)
    assert summary.graded == 0 and summary.failed == []
    assert any("correct01/test_dense_backward" in line for line in summary.reconciled)
    with Gradebook(course.db_url, course.course_id) as gb:
        sub = gb.find_submission_notebook("04_dense_backprop", "04_dense_backprop", "correct01")
        assert [g.auto_score for g in sub.grades if g.name == "test_dense_backward"] == [4.0]


def _hidden_lines(source_nb):
    lines = []
    for cell in source_nb.cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 30:
                lines.append(line.strip())
    return lines


@pytest.mark.slow
def test_feedback_shows_no_hidden_test(graded_class):
    course, _, graded, _, _ = graded_class
    checked = 0
    for (student, assignment), r in graded.items():
        if r.status != "graded":
            continue
        path = feedback.feedback_path(course, r)
        assert path.exists(), f"no feedback for {student}/{assignment}"
        text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))
        assert "BEGIN HIDDEN TESTS" not in text
        visible = nbformat.writes(nbformat.read(course.release_notebook(assignment), as_version=4))
        for line in _hidden_lines(nbformat.read(course.source_notebook(assignment), as_version=4)):
            if json.dumps(line)[1:-1] not in visible:    # a line students also see elsewhere is no secret
                assert line not in text, f"{student}/{assignment}: feedback shows hidden test line {line!r}"
        checked += 1
    assert checked >= 20
    bug = graded[("bug-04-1", "04_dense_backprop")]
    assert "transposed" in feedback.feedback_path(course, bug).read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_has_grades_diagnoses_flags_and_plots(graded_class, tmp_path):
    course, roster, _, _, _ = graded_class
    index = report.report(course.dir, tmp_path / "report", log=lambda *a: None)
    text = index.read_text(encoding="utf-8")
    for student in ("adv-patch-checks", "adv-import-solutions", "adv-os-exit"):
        assert student in text
    assert "transposed" in text, "the most frequent diagnoses name the catalogued bug"
    assert (tmp_path / "report" / "totals.png").stat().st_size > 1000
    assert all((tmp_path / "report" / f"scores_{a}.png").exists() for a in course.assignments)
    import csv

    with open(tmp_path / "report" / "grades.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(roster) * len(course.assignments)
    with open(tmp_path / "report" / "exercises.csv", encoding="utf-8") as f:
        ex = [r for r in csv.DictReader(f) if r["student"] == "adv-patch-checks" and r["exercise"] == "test_dense_backward"]
    # the patched checks are the student process's: the tests, in the grader process, still fail,
    # and the answer keeps what its honest twin (the transposed dW) earns, no more
    keeps = adversaries.TRANSPOSED_KEEPS["test_dense_backward"]
    assert ex and float(ex[0]["nbgrader"]) == keeps and float(ex[0]["final"]) == keeps


# ------------------------------------------------------------------------------ zip and kill -9
def _copy_of(course_root, out):
    """A copy of a built course (source, release, config, gradebook) to grade into."""
    shutil.copytree(course_root / "source_notebooks", out / "source_notebooks")
    shutil.copytree(course_root / "release", out / "release")
    (out / "course").mkdir()
    for name in ("nbgrader_config.py", "gradebook.db"):
        shutil.copy(course_root / "course" / name, out / "course")
    return out


@pytest.mark.slow
def test_an_lms_zip_is_collected_and_graded(scratch_course, tmp_path):
    needs_isolation()
    out = _copy_of(scratch_course, tmp_path / "c")
    release, source = _notebooks("02_xor")
    archive = tmp_path / "lms-download.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("submissions/ada_02_xor.ipynb", nbformat.writes(answers.with_answers(release, source)))
        z.writestr("submissions/bea_02_xor (1).ipynb", nbformat.writes(release))
    summary = pool.grade(archive, out / "course", jobs=1, limits=LIMITS, progress=False, log=lambda *a: None)
    course = records.Course(out / "course")
    ada = records.read_ledger(course, "02_xor", "ada")
    bea = records.read_ledger(course, "02_xor", "bea")
    assert summary.failed == []
    assert all(s.full for s in ada.tests.values())
    assert all(s.final == 0 for s in bea.tests.values())
    assert "wrong-file-name" in {f.kind for f in bea.flags}


@pytest.mark.slow
def test_kill_9_in_the_middle_loses_and_duplicates_nothing(scratch_course, tmp_path):
    needs_isolation()
    from nbgrader.api import Gradebook

    out = _copy_of(scratch_course, tmp_path / "c")
    subs = tmp_path / "subs"
    names = ["02_xor", "03_chain_rule_jacobians"]
    for student in ("s1", "s2", "s3"):
        for name in names:
            release, source = _notebooks(name)
            classroom.write_submission(subs / student / name, {f"{name}.ipynb": answers.with_answers(release, source)})
    ledger = out / "course" / "grading" / "ledger"
    proc = subprocess.Popen([sys.executable, "-m", "autograder.instructor.cli", "grade", str(subs), "--course", str(out / "course"),
                             "--jobs", "2", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 180
    while not list(ledger.glob("*/*.json")) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)                 # the command, its workers and kernels
    proc.wait()
    first = len(list(ledger.glob("*/*.json")))
    assert 1 <= first < 3 * len(ASSIGNMENTS), "killed in the middle"
    course = records.Course(out / "course")
    summary = pool.grade(subs, out / "course", jobs=2, limits=LIMITS, progress=False, log=lambda *a: None)
    assert summary.failed == [] and summary.skipped >= 1
    assert len(records.ledger_records(course)) == 3 * len(course.assignments)
    with Gradebook(course.db_url, course.course_id) as gb:
        for student in ("s1", "s2", "s3"):
            for name in names:
                sub = gb.find_submission_notebook(name, name, student)
                tests = [g for g in sub.grades if g.cell.cell_type == "code"]
                assert tests and all(g.auto_score == g.max_score for g in tests), (student, name)
        assert len(gb.find_student("s1").submissions) == len(course.assignments)


# ------------------------------------------------------------------------------ the command line
def test_commands_say_what_to_do_with_bad_input(tmp_path, capsys):
    (tmp_path / "course").mkdir()
    assert cli.main(["grade", str(tmp_path / "nowhere"), "--course", str(tmp_path / "course")]) == 1
    assert "nbgrader_config.py" in capsys.readouterr().err
    shutil.copy(ROOT / "course" / "nbgrader_config.py", tmp_path / "course")
    assert cli.main(["grade", str(tmp_path / "nowhere"), "--course", str(ROOT / "course")]) == 1
    assert "is not a folder of submissions" in capsys.readouterr().err
    assert cli.main(["report", "--course", str(tmp_path / "course")]) == 1
    assert "source notebooks are not at" in capsys.readouterr().err
    (tmp_path / "source_notebooks").mkdir()
    assert cli.main(["report", "--course", str(tmp_path / "course")]) == 1
    assert "nn-course report: no assignments in" in capsys.readouterr().err
    shutil.copytree(ROOT / "source_notebooks" / "02_xor", tmp_path / "source_notebooks" / "02_xor")
    assert cli.main(["report", "--course", str(tmp_path / "course")]) == 1
    assert "run `nn-course grade` first" in capsys.readouterr().err
