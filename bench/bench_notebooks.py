"""Benchmark: how long each assignment takes to run with its solutions, and to autograde.

For every assignment (or the ones named) it prints one markdown row:
- source: the source notebook executed with its solutions (nbclient, as the notebook tests do);
- graded: one submission with the reference answers autograded by nbgrader (its Python API,
  in this process, so nbgrader's ~4 s of imports are paid once and not counted), median of
  ``--repeats`` runs: kernel start, every cell with the hidden tests, and the gradebook.
Targets of issue 4: source <= 60 s, graded <= 10 s per notebook.

    python bench/bench_notebooks.py [NN_name ...] [--repeats 3]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbtools  # noqa: E402
from autograder.instructor import build, nbcells  # noqa: E402


def graded_times(names, repeats):
    """{name: [seconds per autograde of the reference submission]} in a scratch course."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    warnings.filterwarnings("ignore", message="Object of type")   # nbgrader's own SQLAlchemy noise

    tmp = Path(tempfile.mkdtemp(prefix="nn-bench-grade-"))
    try:
        shutil.copytree(ROOT / "source_notebooks", tmp / "source_notebooks")
        (tmp / "course").mkdir()
        shutil.copy(ROOT / "course" / "nbgrader_config.py", tmp / "course")
        shutil.copy(ROOT / "pyproject.toml", tmp)
        build.generate(tmp)
        course = tmp / "course"
        for name in names:
            (release_nb,) = nbcells.notebooks(tmp / "release" / name)
            source = nbformat.read(nbtools.source_notebook(name), as_version=4)
            target = course / "submitted" / "reference" / name
            shutil.copytree(tmp / "release" / name, target)
            nbformat.write(nbtools.with_answers(nbformat.read(release_nb, as_version=4), source),
                           target / release_nb.name)
        config = Config()
        config.CourseDirectory.root = str(course)
        exec(compile((course / "nbgrader_config.py").read_text(), "nbgrader_config.py", "exec"),
             {"get_config": lambda: config, "__file__": str(course / "nbgrader_config.py")})
        cwd = os.getcwd()
        os.chdir(course)
        try:
            api = NbGraderAPI(CourseDirectory(config=config), config=config)
            times = {}
            for name in names:
                times[name] = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    result = api.autograde(name, "reference", force=True, create=True)
                    times[name].append(time.perf_counter() - start)
                    if not result["success"]:
                        raise RuntimeError(f"autograding {name} failed:\n{result['log'][-3000:]}")
        finally:
            os.chdir(cwd)
        return times
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="assignments (default: all)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    names = args.names or nbcells.assignments(ROOT)
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    source = {name: nbtools.run_source(name)[1] for name in names}
    graded = graded_times(names, args.repeats)
    print("\n| assignment | source with solutions (s) | autograde one submission, median (s) | runs |")
    print("|---|---:|---:|---|")
    for name in names:
        runs = ", ".join(f"{t:.1f}" for t in graded[name])
        print(f"| `{name}` | {source[name]:.1f} | {statistics.median(graded[name]):.1f} | {runs} |")


if __name__ == "__main__":
    main()
