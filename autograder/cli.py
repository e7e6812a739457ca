"""The instructor's command line: ``nn-course <command>`` (or ``python -m autograder``).

Commands:
  build            generate release/ from source_notebooks/ with nbgrader and verify it
  build --check    rebuild in a scratch folder; fail if release/ differs or leaks anything
"""
import argparse
import sys

from . import build as build_module


def main(argv=None):
    parser = argparse.ArgumentParser(prog="nn-course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the student release from the source notebooks")
    b.add_argument("--check", action="store_true",
                   help="do not write release/: build a fresh copy elsewhere and compare")
    b.add_argument("--no-validate", action="store_true",
                   help="skip running the notebooks with nbgrader validate (faster)")
    b.add_argument("--root", help="the course repository (default: found from here)")
    args = parser.parse_args(argv)
    if args.command == "build":
        try:
            build_module.build(args.root, check=args.check, run_validation=not args.no_validate)
        except build_module.BuildError as err:
            print(f"nn-course build: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
