"""The instructor's command line: ``nn-course <command>`` (or ``python -m autograder.instructor``).

Commands:
  build            generate release/ from source_notebooks/ with nbgrader and verify it
  build --check    rebuild in a scratch folder; fail if release/ differs or leaks anything
  grade SUBMISSIONS
                   autograde a folder laid out like nbgrader's submitted/ (or an LMS zip) into
                   the gradebook: in parallel, sandboxed, re-checked, resumable;
                   --scheduler tcp://HOST:PORT grades on a Dask cluster, --shard K/N one share
  merge LEDGER_OR_COURSE_DIRS...
                   put the ledgers of several shards (grade --shard K/N) into one gradebook
  report           grades CSV, feedback HTML and the class report with plots
  demo             build, synthesise a class (correct, buggy, blank, adversarial), grade it,
                   report, and check every expected outcome
  mutants          tests of the tests: mutants of every reference answer, graded; a test quality page
  hub init|install|start|demo
                   the course on JupyterHub (docs/hub.md)
  release-feedback return the feedback of the last graded submissions through nbgrader's exchange
"""
import argparse
import sys
from pathlib import Path

from . import build as build_module
from .canary import CanaryFailed
from .hub import commands as hub_commands
from .nbcells import CourseError, find_root
from .sandbox import Limits


def _limits(args):
    defaults = Limits()
    return Limits(cell_timeout=args.cell_timeout or defaults.cell_timeout,
                  notebook_timeout=args.notebook_timeout or defaults.notebook_timeout,
                  memory_mb=args.memory_mb or defaults.memory_mb)


def _course(args):
    if args.course:
        return Path(args.course)
    return find_root() / "course"


def _shard(text):
    """``K/N`` of ``--shard`` as (k, n)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give K/N, e.g. 1/4 (the first of four shares)") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text!r}: K/N needs 1 <= K <= N, e.g. 1/4 ... 4/4")
    return k, n


def parser():
    """The command line: one subparser per command."""
    parser = argparse.ArgumentParser(prog="nn-course", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 2)[2])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the student release from the source notebooks")
    b.add_argument("--check", action="store_true",
                   help="do not write release/: build a fresh copy elsewhere and compare")
    b.add_argument("--no-validate", action="store_true",
                   help="skip running the notebooks with nbgrader validate (faster)")
    b.add_argument("--root", help="the course repository (default: found from here)")

    g = sub.add_parser("grade", help="autograde every submission of a folder or zip")
    g.add_argument("submissions", help="a folder <student>/<assignment>/<notebook>.ipynb, or a zip of notebooks")
    g.add_argument("--course", help="the nbgrader course folder (default: course/ of this repository)")
    g.add_argument("--jobs", type=int, help="parallel workers (default: one per core)")
    g.add_argument("--cell-timeout", type=int, help="seconds per cell (default 60)")
    g.add_argument("--notebook-timeout", type=int, help="seconds per notebook (default 180)")
    g.add_argument("--memory-mb", type=int, help="memory per kernel (default 3072)")
    g.add_argument("--force", action="store_true", help="grade again what is already graded")
    g.add_argument("--no-feedback", action="store_true",
                   help="do not write feedback while grading (nn-course report writes it)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--scheduler", help="grade on the Dask cluster of this scheduler (tcp://HOST:PORT; "
                                       "docs/distributed.md)")
    g.add_argument("--shard", type=_shard, metavar="K/N",
                   help="grade only the K-th of N stable shares of the units (then nn-course merge)")

    m = sub.add_parser("merge", help="put the ledgers of several shards into one gradebook")
    m.add_argument("sources", nargs="+", metavar="LEDGER_OR_COURSE_DIR",
                   help="each shard's --course folder (or its grading/ledger folder)")
    m.add_argument("--course", help="the nbgrader course folder merged into (default: course/ of this repository)")

    r = sub.add_parser("report", help="grades CSV, feedback and the class report")
    r.add_argument("--course", help="the nbgrader course folder (default: course/ of this repository)")
    r.add_argument("--out", help="where the report goes (default: <course>/report)")
    r.add_argument("--no-feedback", action="store_true", help="do not write feedback HTML")
    r.add_argument("--force-feedback", action="store_true",
                   help="rewrite all feedback (after scores were changed by hand)")

    d = sub.add_parser("demo", help="the whole pipeline on a synthetic class, offline")
    d.add_argument("--out", default="demo-class", help="folder for the demo course (default demo-class/)")
    d.add_argument("--jobs", type=int, help="parallel workers (default: one per core)")
    d.add_argument("--correct", type=int, default=4, help="students with the reference answers")
    d.add_argument("--blank", type=int, default=3, help="students who hand in the release untouched")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    m = sub.add_parser("mutants", help="grade mutants of the reference answers: how good are the tests?")
    m.add_argument("--assignment", action="append", help="only this assignment (repeatable; default: all)")
    m.add_argument("--sample", type=int, help="at most N mutants per exercise (default: all of them)")
    m.add_argument("--per-assignment", type=int, help="at most N mutants per assignment (default: no limit)")
    m.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    m.add_argument("--jobs", type=int, help="parallel workers (default: one per core)")
    m.add_argument("--out", help="where the test quality page goes (default: course/report/test-quality)")
    m.add_argument("--root", help="the course repository (default: found from here)")
    m.add_argument("--whole-notebook", action="store_true",
                   help="keep the later reference answers and count a point lost in any test cell (slower)")
    m.add_argument("--no-equivalence", action="store_true", help="do not check survivors for equivalence")
    m.add_argument("--no-progress", action="store_true", help="no progress bar")
    hub_commands.add_commands(sub)
    return parser


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command in hub_commands.COMMANDS:
        return hub_commands.run(args)
    try:
        if args.command == "build":
            build_module.build(args.root, check=args.check, run_validation=not args.no_validate)
        elif args.command == "grade":
            from . import pool

            backend = None
            if args.scheduler:
                from . import dask_pool

                backend = dask_pool.dask_backend(args.scheduler)
            summary = pool.grade(args.submissions, _course(args), jobs=args.jobs, limits=_limits(args),
                                 force=args.force, progress=not args.no_progress, feedback=not args.no_feedback,
                                 backend=backend, shard=args.shard)
            print(f"graded {summary.graded}, already graded {summary.skipped}, failed {len(summary.failed)} "
                  f"in {summary.seconds:.0f} s; ledger: {Path(_course(args)) / 'grading' / 'ledger'}")
            for problem in summary.problems:
                print(f"  skipped: {problem}")
            return 1 if summary.failed else 0
        elif args.command == "merge":
            from . import pool

            pool.merge(_course(args), args.sources)
        elif args.command == "report":
            from . import report

            report.report(_course(args), args.out, feedback=not args.no_feedback,
                          force_feedback=args.force_feedback)
        elif args.command == "mutants":
            from . import mutants

            mutants.run(args.assignment, sample=args.sample, seed=args.seed, jobs=args.jobs, out=args.out,
                        root=args.root, per_assignment=args.per_assignment, whole=args.whole_notebook, check_equivalence=not args.no_equivalence, progress=not args.no_progress)
        elif args.command == "demo":
            from .synthetic import demo

            problems, _ = demo.demo(args.out, jobs=args.jobs, correct=args.correct, blank=args.blank,
                                    progress=not args.no_progress)
            return 1 if problems else 0
    except (CourseError, FileNotFoundError, ValueError) as err:
        print(f"nn-course {args.command}: {err}", file=sys.stderr)
        return 1
    except CanaryFailed as err:        # the grader is broken here: it refuses to grade
        print(f"nn-course {args.command}: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
