"""The hub's commands for ``nn-course``: ``hub init|install|start|demo`` and ``release-feedback``."""
import argparse
import sys

from ..nbcells import find_root
from .demo import demo
from .deploy import HubError, Settings, init
from .exchange import release_feedback
from .host import Hub, install

#: The nn-course commands this module adds.
COMMANDS = ("hub", "release-feedback")

# ------------------------------------------------------------------------------ the command line
def add_commands(subparsers):
    """``hub init|install|start|demo`` and ``release-feedback`` for nn-course's parser."""
    h = subparsers.add_parser("hub", help="the course on JupyterHub: init, install, start, demo")
    hs = h.add_subparsers(dest="hub_command", required=True)
    i = hs.add_parser("init", help="write a complete, commented deployment into DIR")
    i.add_argument("dir")
    i.add_argument("--course-id", default="nn-foundations")
    i.add_argument("--db-url", default="", help="gradebook, e.g. postgresql://user:pw@host/db (default SQLite)")
    i.add_argument("--exchange", default="/srv/nbgrader/exchange")
    i.add_argument("--instructor", action="append", help="an instructor's user name (repeatable; default instructor)")
    i.add_argument("--grader", default="", help="the Unix account of the formgrader service (default grader-COURSE)")
    i.add_argument("--students", default="", help="comma-separated user names")
    i.add_argument("--course-root", default="", help="the course folder (default /home/GRADER/COURSE)")
    i.add_argument("--python-bin", default="", help="bin/ of the environment the servers run (default this one)")
    i.add_argument("--ip", default="127.0.0.1")
    i.add_argument("--port", type=int, default=8000)
    i.add_argument("--hub-api-port", type=int, default=8081)
    i.add_argument("--proxy-api-port", type=int, default=8001)
    i.add_argument("--service-port", type=int, default=9999)
    i.add_argument("--authenticator", default="pam", help="JupyterHub authenticator_class (default pam)")
    i.add_argument("--spawner", default="localprocess", help="JupyterHub spawner_class (default localprocess)")
    for name, text in (("install", "as root: exchange, course folder, gradebook, permissions"),
                       ("start", "as root: run the hub in the foreground")):
        p = hs.add_parser(name, help=text)
        p.add_argument("dir")
    d = hs.add_parser("demo", help="as root: demo users, the hub on 127.0.0.1, notebook 1 released")
    d.add_argument("--dir", help="deployment folder (default a scratch folder, removed at the end)")
    d.add_argument("--port", type=int, default=8000)
    f = subparsers.add_parser("release-feedback", help="return the current feedback through nbgrader's exchange")
    f.add_argument("assignment", nargs="?")
    f.add_argument("--course", help="the nbgrader course folder (default: course/ of this repository)")
    f.add_argument("--student")


def run(args):
    """Run a command added by ``add_commands``; returns the exit status."""
    try:
        if args.command == "release-feedback":
            course = args.course or find_root() / "course"
            result = release_feedback(course, args.assignment, args.student)
            return 0 if result["released"] or not result["skipped"] else 1
        if args.hub_command == "init":
            settings = Settings(args.dir, course_id=args.course_id, db_url=args.db_url, exchange=args.exchange,
                                instructors=args.instructor or ["instructor"], grader=args.grader,
                                students=[s.strip() for s in args.students.split(",") if s.strip()],
                                course_root=args.course_root, python_bin=args.python_bin, ip=args.ip,
                                port=args.port, hub_api_port=args.hub_api_port,
                                proxy_api_port=args.proxy_api_port, service_port=args.service_port,
                                authenticator=args.authenticator, spawner=args.spawner)
            for path in init(settings):
                print(f"wrote {path}")
            print(f"next, as root: nn-course hub install {settings.deploy_dir} (see docs/hub.md)")
        elif args.hub_command == "install":
            root = install(Settings.load(args.dir))
            print(f"installed: course folder {root}")
        elif args.hub_command == "start":
            settings = Settings.load(args.dir)
            hub = Hub(settings)
            print(f"JupyterHub at {settings.url}/ (pid {hub.pid}); Ctrl-C stops it")
            try:
                hub.proc.wait()
            except KeyboardInterrupt:
                pass
            finally:
                hub.stop()
        elif args.hub_command == "demo":
            return demo(args.dir, port=args.port)
    except HubError as err:
        print(f"nn-course {args.command}: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="nn-course")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
