"""The hub on this machine: users, permissions, the install, the JupyterHub process.

``install`` (root) makes the exchange, the grader's private course folder, the release and the
gradebook; ``Hub`` starts ``jupyterhub`` and stops it by its pid; ``run_as`` runs a command
as a Unix user with the environment their single-user server has; ``create_users`` and
``remove_users`` are for the demo and the tests.
"""
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from .deploy import HubError

# ------------------------------------------------------------------------------ running as users
def user_env(settings, user, token=None, extra=None):
    """The environment of ``user``'s nbgrader commands, as their single-user server has it."""
    pw = pwd.getpwnam(user)
    kind = "grader" if user == settings.grader else (
        "instructor" if user in settings.instructors else "student")
    env = {"HOME": pw.pw_dir, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
           "PATH": settings.python_bin + os.pathsep + "/usr/local/bin:/usr/bin:/bin",
           "PYTHONPATH": str(Path(settings.deploy_dir) / "student-site"),
           "JUPYTER_CONFIG_PATH": os.pathsep.join([str(Path(settings.deploy_dir) / "jupyter" / kind),
                                                   str(Path(settings.deploy_dir) / "jupyter" / "global")]),
           "JUPYTERHUB_USER": user,
           "JUPYTERHUB_API_URL": f"http://127.0.0.1:{settings.hub_api_port}/hub/api"}
    if kind == "grader":
        env.pop("PYTHONPATH")                   # the grader's tools do import solutions_lib
    if token:
        env["JUPYTERHUB_API_TOKEN"] = token
    env.update(extra or {})
    return env


def run_as(settings, user, args, cwd=None, token=None, env=None, check=True, timeout=600):
    """Run ``args`` as the Unix ``user`` (runuser, as root); returns the CompletedProcess."""
    full = user_env(settings, user, token, env)
    cmd = ["runuser", "-u", user, "--", "env", "-i"] + [f"{k}={v}" for k, v in full.items()] + list(args)
    proc = subprocess.run(cmd, cwd=cwd or full["HOME"], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise HubError(f"{' '.join(args)} as {user} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n"
                       f"{proc.stderr[-3000:]}")
    return proc


def need_root(what):
    if os.geteuid() != 0:
        raise HubError(f"{what} needs root (it creates folders for other users and runs commands as them)")


def python_paths(settings):
    """What other users must be able to enter: the environment's bin/ and its real interpreter."""
    python = Path(settings.python_bin) / "python"
    return [Path(settings.python_bin), python.resolve().parent, Path(settings.deploy_dir)]


def open_paths(paths, log=print):
    """``chmod o+x`` on every folder above ``paths`` that others cannot enter (a clone under
    /root, a pyenv Python in /root/.pyenv); returns [(folder, old mode)] for ``close_paths``."""
    opened = []
    for path in paths:
        for parent in [Path(path), *Path(path).parents]:
            if parent.exists() and not parent.stat().st_mode & 0o001 and parent not in [p for p, _ in opened]:
                opened.append((parent, parent.stat().st_mode & 0o7777))
                parent.chmod(parent.stat().st_mode | 0o001)
    if opened:
        log("made searchable by other users (put back at the end): " + ", ".join(str(p) for p, _ in opened))
    return opened


def close_paths(opened):
    for parent, mode in reversed(opened):
        try:
            parent.chmod(mode)
        except OSError:
            pass


def _traversable(path):
    """The first folder above ``path`` that other users cannot enter, or None."""
    for parent in [Path(path), *Path(path).parents]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return parent
    return None


# ------------------------------------------------------------------------------ hub install
def install(settings, log=print):
    """As root: the exchange, the course folder owned by the grader, its gradebook, permissions."""
    need_root("nn-course hub install")
    missing = [u for u in settings.users if not _user_exists(u)]
    if missing:
        raise HubError("these Unix accounts do not exist: " + ", ".join(missing) + ". Create them first, "
                       "e.g. `useradd -m -s /bin/bash NAME && passwd NAME` (with PAM, students log in "
                       "with that password).")
    blocked = next(filter(None, map(_traversable, python_paths(settings))), None)
    if blocked:
        raise HubError(f"{blocked} is not searchable by other users (mode {blocked.stat().st_mode & 0o777:o}), "
                       f"so students' servers cannot run {settings.python_bin} or read "
                       f"{settings.deploy_dir}: `chmod o+x {blocked}`, or install the course's "
                       "environment somewhere public (e.g. /opt/nn-course/venv) and pass --python-bin.")
    deploy = Path(settings.deploy_dir)
    deploy.chmod(0o755)
    for sub in ("jupyter", "student-site"):
        for path in [deploy / sub, *(deploy / sub).rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    # homes: Debian's useradd makes them 0755; then every student could read the others' work
    for user in settings.users:
        home = Path(pwd.getpwnam(user).pw_dir)
        if home.is_dir() and home.stat().st_mode & 0o077:
            log(f"chmod 700 {home} (other users could read it)")
            home.chmod(0o700)
    grader = pwd.getpwnam(settings.grader)
    # exchange: the root 0777 as nbgrader wants it; the course folder belongs to the grader, so
    # that no student can put one there first
    exchange = Path(settings.exchange)
    exchange.mkdir(parents=True, exist_ok=True)
    exchange.chmod(0o777)
    course_exchange = exchange / settings.course_id
    course_exchange.mkdir(exist_ok=True)
    os.chown(course_exchange, grader.pw_uid, grader.pw_gid)
    course_exchange.chmod(0o755)
    # the course folder: a copy of the notebooks and the course config, private to the grader
    root = Path(settings.course_root)
    root.parent.mkdir(parents=True, exist_ok=True)
    repo = Path(settings.repo)
    for part in ("source_notebooks", "release"):
        shutil.copytree(repo / part, root / part, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(repo / "pyproject.toml", root / "pyproject.toml")
    settings.course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(deploy / "course" / "nbgrader_config.py", settings.course_dir / "nbgrader_config.py")
    for path in [root, *root.rglob("*")]:
        os.chown(path, grader.pw_uid, grader.pw_gid, follow_symlinks=False)
    root.chmod(0o700)
    if root.parent == Path(grader.pw_dir):
        Path(grader.pw_dir).chmod(0o700)
    # the release and the gradebook's assignments, made by nbgrader as the grader
    log(f"building the release and the gradebook in {root} as {settings.grader} ...")
    run_as(settings, settings.grader, [str(Path(settings.python_bin) / "nn-course"), "build",
                                       "--root", str(root), "--no-validate"], cwd=str(root))
    return root


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


# ------------------------------------------------------------------------------ the hub process
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """``jupyterhub -f DIR/jupyterhub_config.py`` started by us; ``stop()`` ends it by its pid."""

    def __init__(self, settings, admin_token=None, timeout=90):
        need_root("starting the hub with local processes")
        if shutil.which("configurable-http-proxy") is None:
            raise HubError("configurable-http-proxy is not installed: `npm install -g configurable-http-proxy` "
                           "(Debian: apt-get install npm first)")
        self.settings = settings
        self.admin_token = admin_token or secrets.token_hex(24)
        deploy = Path(settings.deploy_dir)
        self.log_path = deploy / "jupyterhub.log"
        env = dict(os.environ, NN_HUB_ADMIN_TOKEN=self.admin_token,
                   PATH=settings.python_bin + os.pathsep + os.environ.get("PATH", ""))
        env.pop("JUPYTERHUB_API_TOKEN", None)
        self._log = open(self.log_path, "a", encoding="utf-8")
        self.proc = subprocess.Popen([str(Path(settings.python_bin) / "jupyterhub"), "-f",
                                      str(deploy / "jupyterhub_config.py")], cwd=deploy, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise HubError(f"jupyterhub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/")
                if self.service_up():
                    break
            except (OSError, HubError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HubError(f"the hub did not come up within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.5)

    def service_up(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.settings.service_port}/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def api(self, path, method="GET", body=None, token=None):
        """The hub's REST API (``/hub/api`` + path) with the admin token; returns the JSON."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.settings.url}/hub/api{path}", data=data, method=method,
                                     headers={"Authorization": f"token {token or self.admin_token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            raise HubError(f"{method} {path}: HTTP {err.code} {err.read()[:300]!r}") from None
        return json.loads(raw) if raw else None

    def token(self, user, note="nn-course"):
        """A new API token of ``user`` (what their single-user server gets)."""
        return self.api(f"/users/{user}/tokens", method="POST", body={"note": note, "expires_in": 3600})["token"]

    def log_tail(self, n=4000):
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]

    def stop(self, users=()):
        """SIGTERM the hub (it stops its servers, the service and the proxy), then what is left by pid."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        pidfile = Path(self.settings.deploy_dir) / "jupyterhub-proxy.pid"
        if pidfile.is_file():
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError, PermissionError):
                pass
            pidfile.unlink(missing_ok=True)
        kill_processes_of(users)
        self._log.close()


def kill_processes_of(users):
    """SIGKILL every process running as one of ``users`` (accounts we created), by pid."""
    uids = set()
    for user in users:
        try:
            uids.add(pwd.getpwnam(user).pw_uid)
        except KeyError:
            pass
    if not uids:
        return
    for _ in range(3):
        left = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid in uids:
                        left.append(int(entry.name))
                except OSError:
                    pass
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if not left:
            return
        time.sleep(0.3)


# ------------------------------------------------------------------------------ Unix users (demo, tests)
def create_users(names, log=print):
    """Create Unix accounts with a home and a random password; returns {name: password}.

    Refuses a name that exists already (it would not be ours to remove afterwards).
    """
    need_root("creating users")
    taken = [n for n in names if _user_exists(n)]
    if taken:
        raise HubError(f"Unix accounts {', '.join(taken)} exist already; remove them or pick other names")
    passwords = {}
    try:
        for name in names:
            subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True, capture_output=True)
            passwords[name] = secrets.token_urlsafe(9)
            subprocess.run(["chpasswd"], input=f"{name}:{passwords[name]}\n", text=True, check=True,
                           capture_output=True)
    except subprocess.CalledProcessError as err:
        remove_users(list(passwords) + [name])
        raise HubError(f"useradd/chpasswd failed: {err.stderr}") from None
    return passwords


def remove_users(names):
    kill_processes_of(names)
    for name in names:
        if _user_exists(name):
            subprocess.run(["userdel", "-r", "-f", name], capture_output=True)
