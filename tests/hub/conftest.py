"""Fixtures of the hub tests: a real JupyterHub with real Unix users, and a PostgreSQL server.

- ``deployment``: ``nn-course hub init`` + ``install`` into scratch folders (the gradebook on
  the ``postgres`` server below), Unix users created
  (an instructor, the grader account, three students and one user who is not enrolled), the
  hub started on 127.0.0.1 with the local-process spawner and PAM; at the end the hub is
  stopped by its pid (it stops the servers, the formgrader service and the proxy), whatever
  still runs as those users is killed by pid, the users and folders are removed.
  A clone the students cannot enter (under /root, mode 0700; or a pyenv Python in /root) is
  made searchable (``chmod o+x`` on exactly the folders that block it) and put back after.
- ``postgres``: Debian's PostgreSQL server in a scratch folder, run as the ``postgres`` system
  user (it refuses root) on 127.0.0.1 and a free port; stopped by the pid in postmaster.pid.

Missing prerequisites (root, configurable-http-proxy, PostgreSQL, Chromium) skip these tests,
except under CI (``CI=true``), where they fail.
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
TIMINGS = {}
PREFIX = "nnt"                                   # test users: nnt-<role>, removed afterwards


def missing(message):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def need_root():
    if os.geteuid() != 0:
        missing("the hub tests create Unix users and run JupyterHub with local processes: run them as root")


def need_proxy():
    if shutil.which("configurable-http-proxy") is None:
        missing("configurable-http-proxy is not installed: `npm install -g configurable-http-proxy` "
                "(.ci/run does it)")


def pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        missing("Debian's PostgreSQL server is not installed: `apt-get install postgresql` (.ci/run does it)")
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of our own on 127.0.0.1; yields a function making a fresh database URL."""
    need_root()
    bindir = pg_bin()
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError:
        missing("no `postgres` system user (it comes with Debian's postgresql package)")
    tmp = Path(tempfile.mkdtemp(prefix="nn-hub-pg-"))
    tmp.chmod(0o755)
    os.chown(tmp, pg.pw_uid, pg.pw_gid)
    data, sock = tmp / "data", tmp / "sock"
    port = _free_port()

    def as_pg(*args, **kw):
        return subprocess.run(["runuser", "-u", "postgres", "--"] + [str(a) for a in args], check=True,
                              capture_output=True, text=True, cwd=tmp, **kw)

    try:
        as_pg("mkdir", sock)
        as_pg(bindir / "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        as_pg(bindir / "pg_ctl", "-D", data, "-l", tmp / "log", "-w", "-t", "60", "start",
              "-o", f"-h 127.0.0.1 -p {port} -k {sock} -c fsync=off")
    except subprocess.CalledProcessError as err:
        log = (tmp / "log").read_text(errors="replace")[-2000:] if (tmp / "log").exists() else ""
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {err.stderr}\n{log}", pytrace=False)
    pid = int((data / "postmaster.pid").read_text().split()[0])
    made = []

    def database(name):
        as_pg(bindir / "createdb", "-h", "127.0.0.1", "-p", port, "-U", "postgres", name)
        made.append(name)
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        try:
            os.kill(pid, signal.SIGINT)                  # "fast" shutdown
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)


def _free_port():
    from autograder.instructor.hub import host

    return host.free_port()


class Deployment:
    """What the tests drive: settings, the hub, passwords, and nbgrader commands as each user."""

    def __init__(self, settings, hub, passwords, outsider):
        self.settings, self.hub, self.passwords, self.outsider = settings, hub, passwords, outsider
        self.tokens = {}

    def token(self, user):
        if user not in self.tokens:
            self.tokens[user] = self.hub.token(user)
        return self.tokens[user]

    def run(self, user, *args, check=True, cwd=None):
        from autograder.instructor.hub import host

        return host.run_as(self.settings, user, [str(a) for a in args], cwd=cwd, token=self.token(user),
                          check=check)

    def grader(self, *args, check=True):
        """A command of the grader account, in the course folder (where formgrader's terminal is)."""
        return self.run(self.settings.grader, *args, check=check, cwd=str(self.settings.course_dir))


@pytest.fixture(scope="session")
def deployment(postgres):
    need_root()
    need_proxy()
    from autograder.instructor.hub import deploy, host

    for tool in ("useradd", "userdel", "chpasswd", "runuser"):
        if shutil.which(tool) is None:
            missing(f"{tool} is missing (Debian's passwd/util-linux packages)")
    deploy_dir = Path(tempfile.mkdtemp(prefix="nn-hub-deploy-"))
    srv = Path(tempfile.mkdtemp(prefix="nn-hub-srv-"))
    srv.chmod(0o755)
    tag = os.urandom(2).hex()
    names = {"instructor": f"{PREFIX}{tag}-teach", "grader": f"{PREFIX}{tag}-grader",
             "students": [f"{PREFIX}{tag}-{s}" for s in ("ada", "ben", "cyd")], "outsider": f"{PREFIX}{tag}-out"}
    settings = deploy.Settings(str(deploy_dir), db_url=postgres("hubcourse"),     # the gradebook: PostgreSQL
                               instructors=[names["instructor"]], grader=names["grader"],
                               students=names["students"], exchange=str(srv / "exchange"),
                               course_root=str(srv / "grader-home" / "nn-foundations"), repo=str(ROOT),
                               port=_free_port(), hub_api_port=_free_port(), proxy_api_port=_free_port(),
                               service_port=_free_port())
    users = settings.users + [names["outsider"]]
    opened, passwords, server = [], {}, None
    try:
        t = time.perf_counter()
        deploy.init(settings)
        opened = host.open_paths(host.python_paths(settings) + [ROOT], log=lambda *a: None)
        passwords = host.create_users(users)
        host.install(settings, log=lambda *a: None)
        TIMINGS["install (users, course copy, release build, gradebook)"] = time.perf_counter() - t
        t = time.perf_counter()
        server = host.Hub(settings)
        TIMINGS["hub start (proxy, formgrader service)"] = time.perf_counter() - t
        server.api(f"/users/{names['outsider']}", method="POST")     # a hub user, in no course
        yield Deployment(settings, server, passwords, names["outsider"])
    finally:
        if server is not None:
            server.stop(users)
        host.remove_users(list(passwords) or [])
        host.close_paths(opened)
        shutil.rmtree(srv, ignore_errors=True)
        shutil.rmtree(deploy_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def timings():
    """{step: seconds} of the cycle, printed at the end of the run."""
    return TIMINGS


@pytest.fixture(scope="session")
def screenshots():
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def chromium(request):
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    import labdriver

    if labdriver.chromium() is None:
        missing(labdriver.INSTALL_HINT)
    return request.getfixturevalue("playwright_chromium")     # one for the session (tests/conftest.py)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("hub: the cycle's timings")
        for step, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{step:60s} {seconds:6.1f} s")
    shots = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS.exists() else []
    if shots:
        terminalreporter.write_line(f"{len(shots)} screenshots in {SCREENSHOTS}: " + ", ".join(p.name for p in shots))
