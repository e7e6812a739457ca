"""Build the student release from the source notebooks, and prove it is clean.

``nn-course build`` (also ``make release``) does, in order:

1. ``nbgrader generate_assignment`` for every assignment of ``source_notebooks/`` (folders
   named ``NN_topic``), from ``course/`` and with its ``nbgrader_config.py``, into
   ``release/``. nbgrader strips the solutions, the hidden tests and all outputs.
   Before that it puts the student kit into every source assignment folder: every module
   at the top of ``autograder/`` (its ``__init__``, ``checks``, ``datasets``, ``widgets``),
   which hold no solution. nbgrader copies it into the release like any assignment file, so a
   student who receives one assignment folder can run it, and ``nbgrader autograde``
   restores it over a student's copy. Then it writes ``release/README.md`` (how students
   set up and work), ``release/requirements.txt`` and ``release/environment.yml`` (what they
   install: JupyterLab, ipywidgets and nbgrader for its Validate button, no solutions; the
   README's ``STUDENT_SETUP_COMMANDS`` switch nbgrader's instructor tools off). The due dates
   of ``course/deadlines.yml`` go into the README and into a header cell of every release
   notebook (``add_deadline_header``: a markdown cell without nbgrader metadata, after the
   title, so that intake and grading see an ordinary cell).
2. Verifies the release (``verify_release``): no solution or hidden-test text, no
   ``solutions_lib``, no outputs, every graded cell in place.
3. Validates with nbgrader, so that failures fail: every source notebook must pass all its
   tests, and every release notebook must fail all of them (nothing is solved in advance).
   ``nbgrader validate`` itself exits 0 either way, so its results are read here.

``nn-course build --check`` builds into a temporary folder instead and fails if ``release/``
differs from that fresh build (someone edited ``release/`` by hand, or forgot to rebuild).
"""
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from . import deadlines as deadlines_module
from .nbcells import (PACKAGE, CourseError, assignments, find_root, grade_id, is_solution, kit_modules, load_config,
                      nbgrader_meta, notebooks)

#: The folder the kit goes into, inside every assignment: the modules at the top of ``autograder/``.
KIT = "autograder"
#: Dependencies students do not list themselves (nbgrader, which they do get, brings all three;
#: pyyaml reads the instructor's course/deadlines.yml).
INSTRUCTOR_ONLY = ("nbformat", "nbclient", "pyyaml")
#: Files the build writes at the top of release/, next to the assignments.
RELEASE_FILES = ("README.md", "environment.yml", "requirements.txt", "nbgrader_config.py")
#: The students' nbgrader_config.py: `nbgrader validate` finds it (no "No nbgrader_config.py
#: file found" warning) and prints message lines whole. Validator.width (default 90) cuts every
#: line at width - 3 characters; it is also the length of the "=====" line between failures,
#: so 1000, not more: a message line that long does not occur.
STUDENT_NBGRADER_CONFIG = """# nbgrader's settings for your copy of the assignments (written by `nn-course build`).
# `nbgrader validate NN_topic/NN_topic.ipynb`, run in this folder, reads it: it prints every
# line of a test's message whole instead of cutting it at 87 characters (the Validate button
# in JupyterLab shows messages whole anyway).
c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)
c.Validator.width = 1000
"""
#: After installing, students switch off nbgrader's instructor tools. nbgrader comes with its
#: student extensions (the notebook toolbar's Validate button, the Assignment List) and its
#: instructor ones (Formgrader, Create Assignment, the Course List); the instructor ones are
#: turned off in the environment (sys-prefix), so that students see only what is theirs.
STUDENT_SETUP_COMMANDS = (
    "jupyter server extension disable --sys-prefix nbgrader.server_extensions.formgrader",
    "jupyter server extension disable --sys-prefix nbgrader.server_extensions.course_list",
    "jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:formgrader",
    "jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:create-assignment",
    "jupyter labextension disable --level=sys_prefix @jupyter/nbgrader:course-list",
)
#: What students read first, at the top of the release (filled in by ``write_student_files``).
STUDENT_README = Path(__file__).with_name("templates") / "student_README.md"

#: The id of the header cell with the due date (fixed, so that a build is the same every time).
DEADLINE_CELL_ID = "nn-course-deadline"

#: Markers nbgrader uses in source notebooks; none may survive into the release.
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")
#: Words that must never reach students.
FORBIDDEN = ("solutions_lib",)


class BuildError(CourseError):
    """The release could not be built, or it is not clean; the message lists every problem."""


# ---------------------------------------------------------------- nbgrader
def _nbgrader(args, cwd):
    """Run an nbgrader command; raise BuildError with its log if it fails."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)           # nbgrader calls `alembic` by name
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0 or "[ERROR]" in proc.stderr or "| ERROR]" in proc.stderr:
        raise BuildError(f"`nbgrader {' '.join(args)}` failed:\n{proc.stderr[-4000:]}")
    return proc


def generate(root, release_dir=None, use_db=True, only=None):
    """Run ``nbgrader generate_assignment`` for every assignment; returns the release folder.

    With ``release_dir`` the release goes there (a scratch workspace with a copy of the
    course config is used, and no gradebook); otherwise into ``release/`` of the repository,
    recording the assignments in the course's gradebook, as autograding needs. ``only``
    names a single assignment to generate (into ``release_dir``).
    """
    root = Path(root).resolve()
    names = assignments(root)
    if only is not None:
        if only not in names:
            raise BuildError(f"no assignment {only!r}; there are {', '.join(names)}")
        if release_dir is None:
            raise BuildError("building a single assignment is only possible into a scratch folder")
        names = [only]
    if release_dir is None:
        course, target = root / "course", root / "release"
    else:
        target = Path(release_dir).resolve()
        work = Path(tempfile.mkdtemp(prefix="nn-course-build-"))
        course = work / "course"
        course.mkdir()
        shutil.copy(root / "course" / "nbgrader_config.py", course)
        (work / "source_notebooks").symlink_to(root / "source_notebooks")
        (work / "release").symlink_to(target)
        use_db = False
    for name in names:                  # nbgrader copies the kit into the release, and back
        add_kit(root / "source_notebooks" / name)   # over a student's copy when autograding
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():                    # nothing stale survives a build
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    try:
        _nbgrader(["generate_assignment", only or "*", "--force"] + ([] if use_db else ["--no-db"]),
                  cwd=course)
    finally:
        if release_dir is not None:
            shutil.rmtree(work, ignore_errors=True)
    missing = [n for n in names if not notebooks(target / n)]
    if missing:
        raise BuildError(f"nbgrader produced no notebook for {', '.join(missing)}")
    due = course_deadlines(root)
    for name in names:
        for path in notebooks(target / name):
            add_deadline_header(path, due.for_unit(name, None))
    if only is None:
        write_student_files(root, target, names)
    return target


def course_deadlines(root):
    """The course's ``course/deadlines.yml`` (``deadlines.Deadlines``; empty without the file)."""
    root = Path(root)
    return deadlines_module.load(root / "course" / deadlines_module.FILE_NAME, assignments(root))


def deadline_text(deadline):
    """What students read about one assignment's due date ('' without one)."""
    return f"**Due:** {deadline.describe()[len('due '):]}" if deadline else ""


def add_deadline_header(path, deadline):
    """Put the due date into the release notebook at ``path``: a markdown cell after the title
    (without nbgrader metadata: nbgrader, the intake and the scan treat it as any text cell)."""
    if deadline is None:
        return
    nb = nbformat.read(path, as_version=4)
    cell = nbformat.v4.new_markdown_cell(deadline_text(deadline) + " The time you submit is what counts; an "
                                         "extension granted to you moves your due date (and cutoff) by its length.")
    cell.id = DEADLINE_CELL_ID
    nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, cell)
    nbformat.write(nb, path)


def _student_dependencies(root):
    import tomllib

    project = tomllib.loads((Path(root) / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    deps = [d for d in project["dependencies"]
            if not any(re.match(rf"{name}\b", d) for name in INSTRUCTOR_ONLY)]
    return deps, project["requires-python"]


def write_student_files(root, target, names):
    """What students read and install, at the top of the release.

    - README.md: how to set up (pip or conda, then ``STUDENT_SETUP_COMMANDS``) and work;
    - requirements.txt (pip) and environment.yml (conda): the course's dependencies with
      nbgrader for the Validate button, without the reference solutions;
    - nbgrader_config.py: ``STUDENT_NBGRADER_CONFIG``, for ``nbgrader validate`` in release/.
    """
    deps, python = _student_dependencies(root)
    due = course_deadlines(root)
    listing = "\n".join(f"- `{name}/`" + (f": {deadline_text(due.for_unit(name, None))}" if due.for_unit(name, None) else "")
                        for name in names)
    if due.assignments:
        listing += ("\n\nA late submission loses points as its due date says; after a hard cutoff (or the "
                    "last day of the policy) it gets 0 points. Your feedback says what was taken off and why.")
    readme = STUDENT_README.read_text(encoding="utf-8").format(
        assignments=listing, python=python.lstrip(">="),
        setup_commands="\n".join(f"    {c}" for c in STUDENT_SETUP_COMMANDS))
    (Path(target) / "README.md").write_text(readme, encoding="utf-8")
    (Path(target) / "requirements.txt").write_text(
        "# What students install: pip install -r requirements.txt (see README.md for the rest)\n"
        "# (generated by `nn-course build` from the course's pyproject.toml)\n"
        + "".join(f"{d}\n" for d in deps), encoding="utf-8")
    lines = ["# Students' environment: conda env create -f environment.yml (see README.md)",
             "# (generated by `nn-course build` from the course's pyproject.toml)",
             "name: nn-course-student", "channels:", "  - conda-forge", "dependencies:",
             "  - python=3.11"] + [f"  - {d}" for d in deps]
    (Path(target) / "environment.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (Path(target) / "nbgrader_config.py").write_text(STUDENT_NBGRADER_CONFIG, encoding="utf-8")


def scratch_course(out, assignments_=None, root=None, course_files=None):
    """A course of its own in ``out`` (a new or empty folder) for grading tests, benchmarks and
    mutants: the source notebooks of ``assignments_`` (default: all) of the course at ``root``,
    its ``nbgrader_config.py`` (and ``course_files``, {name: text}, written next to it), a release
    and a gradebook made by nbgrader, and the kit in every source folder. Returns ``out``."""
    root = Path(root or find_root())
    out = Path(out)
    for name in assignments_ or assignments(root):
        shutil.copytree(root / "source_notebooks" / name, out / "source_notebooks" / name,
                        ignore=shutil.ignore_patterns(KIT, ".ipynb_checkpoints", "__pycache__"))
    (out / "course").mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "course" / "nbgrader_config.py", out / "course")
    shutil.copy(root / "pyproject.toml", out)
    for name, text in (course_files or {}).items():
        (out / "course" / name).write_text(text, encoding="utf-8")
    generate(out)
    for name in assignments(out):
        add_kit(out / "source_notebooks" / name)
    return out


def add_kit(folder):
    """Copy the student-facing modules of ``autograder`` into ``folder/autograder/``.

    The build puts the kit into every *source* assignment folder (ignored by git), so that
    nbgrader treats it like any file of the assignment: ``generate_assignment`` copies it
    into the release, and ``autograde`` copies it over whatever a student sent back, so an
    edited kit cannot change a grade.
    """
    kit = Path(folder) / KIT
    if kit.exists():
        shutil.rmtree(kit)
    kit.mkdir()
    for name in kit_files():
        shutil.copyfile(PACKAGE / name, kit / name)


def kit_files():
    """The kit as files: ``__init__.py`` and every module of ``kit_modules()``."""
    return ["__init__.py"] + [f"{name}.py" for name in kit_modules()]


# ---------------------------------------------------------------- verification
def _region_lines(source, begin, end):
    """Lines strictly between ``### BEGIN X`` and ``### END X`` markers."""
    lines, inside = [], False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line.strip())
    return lines


def _telling(line):
    """A line distinctive enough that finding it in the release means a leak."""
    return len(line) >= 12 and not line.startswith("#")


def verify_release(root, release_dir=None):
    """Problems with the release, as a list of strings (empty: the release is clean).

    For every source notebook the release must have the same notebook, with the same graded
    cells (by grade_id), no outputs, no nbgrader marker, no ``solutions_lib``, and none of
    the telling lines of any solution or hidden test. The kit must equal ``autograder``'s
    student modules.
    """
    root = Path(root)
    release = Path(release_dir) if release_dir else root / "release"
    problems = []
    names = assignments(root)
    extra = sorted(p.name for p in release.iterdir()
                   if p.name not in names and p.name not in RELEASE_FILES) if release.is_dir() else []
    if extra:
        problems.append(f"release/ holds {', '.join(extra)}, which no source assignment produces")
    for name in names:
        for src_path in notebooks(root / "source_notebooks" / name):
            rel_path = release / name / src_path.name
            where = f"release/{name}/{src_path.name}"
            if not rel_path.is_file():
                problems.append(f"{where} is missing")
                continue
            src = nbformat.read(src_path, as_version=4)
            rel = nbformat.read(rel_path, as_version=4)
            problems += _compare_notebooks(src, rel, where)
        kit = release / name / KIT
        shipped = {p.name for p in kit.glob("*.py")} if kit.is_dir() else set()
        for module in sorted(shipped | set(kit_files())):
            if module not in shipped or not (PACKAGE / module).is_file() or not filecmp.cmp(
                    kit / module, PACKAGE / module, shallow=False):
                problems.append(f"release/{name}/{KIT}/{module} differs from autograder/{module}")
    for path in sorted(release.rglob("*")) if release.is_dir() else []:
        if path.is_file() and path.suffix in (".ipynb", ".py", ".md", ".txt", ".csv", ".json"):
            text = path.read_text(encoding="utf-8", errors="replace")
            for word in MARKERS + FORBIDDEN:
                if word in text:
                    problems.append(f"{path.relative_to(release.parent)} contains {word!r}")
    return problems


def _compare_notebooks(src, rel, where):
    problems = []
    src_ids = {grade_id(c): c for c in src.cells if nbgrader_meta(c)}
    rel_ids = {grade_id(c): c for c in rel.cells if nbgrader_meta(c)}
    if set(src_ids) != set(rel_ids):
        problems.append(f"{where}: graded cells differ from the source "
                        f"(missing {sorted(set(src_ids) - set(rel_ids))}, "
                        f"extra {sorted(set(rel_ids) - set(src_ids))})")
    for i, cell in enumerate(rel.cells):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(f"{where}: cell {i} carries outputs; release notebooks must not")
    for gid, cell in src_ids.items():
        released = rel_ids.get(gid)
        if released is None:
            continue
        whole = is_solution(cell) and "BEGIN SOLUTION" not in cell.source
        secret = ([line.strip() for line in cell.source.splitlines()] if whole else [])
        secret += (_region_lines(cell.source, "BEGIN SOLUTION", "END SOLUTION")
                  + _region_lines(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
                  + _region_lines(cell.source, "BEGIN MARK SCHEME", "END MARK SCHEME"))
        released_lines = {line.strip() for line in released.source.splitlines()}
        leaked = [line for line in secret if _telling(line) and line in released_lines]
        if leaked:
            problems.append(f"{where}: cell {gid!r} leaks solution or hidden-test lines, "
                            f"e.g. {leaked[0]!r}")
    return problems


def compare_trees(a, b):
    """Relative paths of files that differ between two folders (missing on either side too)."""
    a, b = Path(a), Path(b)
    skip = ("__pycache__", ".ipynb_checkpoints")

    def files(root):
        return {p.relative_to(root).as_posix() for p in root.rglob("*")
                if p.is_file() and not any(s in p.parts for s in skip)}

    fa, fb = files(a), files(b)
    differ = sorted(fa ^ fb)
    differ += sorted(p for p in fa & fb if not filecmp.cmp(a / p, b / p, shallow=False))
    return differ


# ---------------------------------------------------------------- validation
def validate(paths, root, invert=False):
    """Validate notebooks with nbgrader; returns the problems as a list of strings.

    Without ``invert`` every test cell must pass; with it every test cell must fail (how a
    release notebook should behave before the student writes anything).
    """
    from nbgrader.validator import Validator

    config = load_config(Path(root) / "course")
    config.Validator.invert = invert
    problems = []
    for path in paths:
        results = Validator(config=config).validate(str(path))
        for key, what in (("type_changed", "a cell changed type"), ("changed", "a test cell changed"),
                          ("failed", "a test fails"), ("passed", "a test passes before any code is written")):
            for item in results.get(key, []):
                first = item["source"].strip().splitlines()[0] if item["source"].strip() else ""
                detail = item.get("raw_error", "").strip().splitlines()[-1:] or [""]
                problems.append(f"{Path(path).name}: {what}: {first!r} {detail[0]}".rstrip())
    return problems


# ---------------------------------------------------------------- the command
def build(root=None, check=False, run_validation=True, log=print):
    """Build (or, with ``check``, rebuild in a scratch folder and compare) the release.

    Raises BuildError listing every problem; returns the names of the assignments.
    """
    root = Path(root).resolve() if root else find_root()
    names = assignments(root)
    if check:
        with tempfile.TemporaryDirectory(prefix="nn-course-fresh-") as tmp:
            fresh = generate(root, release_dir=Path(tmp) / "release")
            problems = verify_release(root, fresh)
            differ = compare_trees(fresh, root / "release")
            if differ:
                problems.append("release/ differs from a fresh build in: " + ", ".join(differ[:10])
                                + (" ..." if len(differ) > 10 else "")
                                + ". Do not edit release/ by hand: change source_notebooks/ "
                                  "and run `make release`.")
    else:
        log(f"Generating {len(names)} assignments with nbgrader ...")
        generate(root)
        problems = verify_release(root)
        if not problems and run_validation:
            log("Validating: source notebooks must pass their tests, release notebooks fail them ...")
            for name in names:
                problems += validate(notebooks(root / "source_notebooks" / name), root)
                problems += validate(notebooks(root / "release" / name), root, invert=True)
    if problems:
        raise BuildError("the release is not clean:\n  - " + "\n  - ".join(problems))
    for name in names:
        log(f"  {name}: {summary(root / 'source_notebooks' / name)}")
    log("release/ is " + ("identical to a fresh build." if check else "built and verified."))
    return names


def summary(folder):
    """'4 graded exercises, 12 points (10 autograded, 2 manual)' for one assignment folder."""
    auto = manual = count = 0
    for path in notebooks(folder):
        for cell in nbformat.read(path, as_version=4).cells:
            meta = nbgrader_meta(cell)
            if meta.get("grade"):
                count += 1
                if cell.cell_type == "code":
                    auto += meta.get("points", 0)
                else:
                    manual += meta.get("points", 0)
    return (f"{count} graded cells, {auto + manual:g} points "
            f"({auto:g} autograded, {manual:g} manually graded)")
