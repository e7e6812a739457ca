"""The course on JupyterHub: a deployment written by one command, feedback back through the exchange.

    nn-course hub init DIR [--course-id ID] [--db-url URL] [--exchange PATH] [--instructor NAME]
                           [--grader NAME] [--students a,b,c] [--course-root PATH] [--port N] ...
    nn-course hub install DIR        (root) exchange, course folder, gradebook, permissions
    nn-course hub start DIR          (root) run the hub in the foreground; Ctrl-C stops it
    nn-course hub demo               (root) all of it with demo users on 127.0.0.1 (make hub-demo)
    nn-course release-feedback [--course DIR] [ASSIGNMENT] [--student S]

``hub init`` writes, into DIR, everything an admin reads and installs (see docs/hub.md):
``jupyterhub_config.py`` (authenticator, spawner, groups and roles, the formgrader as a hub
service run by the grader account), ``jupyter/global/nbgrader_config.py`` (exchange,
``path_includes_course``, ``JupyterHubAuthPlugin``), ``jupyter/{student,instructor,grader}/``
(which nbgrader extensions each kind of user gets, and the CSP fix for the formgrader's
iframe), ``course/nbgrader_config.py`` (the course's config with its id and gradebook URL),
``student-site/`` and ``hub.json`` (the settings, for the other commands).

``release-feedback`` returns the feedback that ``nn-course grade``/``report`` wrote (hidden
tests stripped, the grader's notes, the score per exercise) through nbgrader's
``release_feedback``, only where it belongs to the submission the ledger graded last, with
formulas rendered by the MathJax the students' Jupyter server serves (offline), and removes the
feedback of earlier submissions from the exchange.
"""
import argparse
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

TEMPLATES = Path(__file__).with_name("hub_templates")
SETTINGS = "hub.json"

#: nbgrader's extensions: (server extensions, lab plugins) switched on per kind of user.
SERVER_EXTENSIONS = ("nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.course_list",
                     "nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.validate_assignment")
LAB_PLUGINS = ("@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment",
               "@jupyter/nbgrader:course-list", "@jupyter/nbgrader:formgrader",
               "@jupyter/nbgrader:create-assignment")
EXTENSIONS = {
    "student": {"nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.validate_assignment",
                "@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"},
    "instructor": {"nbgrader.server_extensions.assignment_list", "nbgrader.server_extensions.validate_assignment",
                   "nbgrader.server_extensions.course_list", "@jupyter/nbgrader:assignment-list",
                   "@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:course-list"},
    "grader": {"nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.validate_assignment",
               "@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
               "@jupyter/nbgrader:validate-assignment"},
}
#: MathJax 2 as the jupyter-server-mathjax package serves it from every Jupyter server.
LOCAL_MATHJAX = "static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
MATHJAX_MARK = "nn-course: local MathJax"
CDN_SCRIPT = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*">\s*</script>')
BLOCK_SOLUTIONS = '''"""Students' kernels on the hub: the reference solutions cannot be imported."""
import importlib.abc
import sys


class _NoSolutions(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "solutions_lib" or name.startswith("solutions_lib."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, _NoSolutions())
'''


class HubError(Exception):
    """A deployment step that cannot go on; the message says what to do."""


@dataclass
class Settings:
    """One course's deployment (kept in DIR/hub.json)."""
    deploy_dir: str
    course_id: str = "nn-foundations"
    db_url: str = ""                          # "" = SQLite in the course folder
    exchange: str = "/srv/nbgrader/exchange"
    instructors: list = field(default_factory=lambda: ["instructor"])
    grader: str = ""                          # "" = grader-<course_id>
    students: list = field(default_factory=list)
    course_root: str = ""                     # "" = /home/<grader>/<course_id>
    repo: str = ""                            # where the course's notebooks come from
    python_bin: str = ""                      # bin/ of the environment the servers run from
    ip: str = "127.0.0.1"
    port: int = 8000
    hub_api_port: int = 8081
    proxy_api_port: int = 8001
    service_port: int = 9999
    authenticator: str = "pam"
    spawner: str = "localprocess"

    def __post_init__(self):
        self.deploy_dir = str(Path(self.deploy_dir).resolve())
        self.grader = self.grader or f"grader-{self.course_id}"
        self.course_root = self.course_root or f"/home/{self.grader}/{self.course_id}"
        self.python_bin = self.python_bin or str(Path(sys.executable).parent)
        if not self.repo:
            from autograder import build

            self.repo = str(build.find_root())
        self.db_url = normalise_db_url(self.db_url)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.course_id):
            raise HubError(f"course id {self.course_id!r}: use letters, digits, '.', '_' and '-' only")
        for user in self.users:
            if not re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
                raise HubError(f"user name {user!r} is not a portable Unix user name")

    @property
    def users(self):
        return list(dict.fromkeys(self.instructors + self.students + [self.grader]))

    @property
    def url(self):
        return f"http://{self.ip}:{self.port}"

    @property
    def course_dir(self):
        return Path(self.course_root) / "course"

    def save(self):
        (Path(self.deploy_dir) / SETTINGS).write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def load(cls, deploy_dir):
        path = Path(deploy_dir) / SETTINGS
        if not path.is_file():
            raise HubError(f"{path} not found: run `nn-course hub init {deploy_dir}` first")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


def normalise_db_url(url):
    """SQLAlchemy's URL for the driver we install: postgresql:// means psycopg 3 here."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# ------------------------------------------------------------------------------ hub init
def _extension_config(kind):
    on = EXTENSIONS[kind]
    server = {name: name in on for name in SERVER_EXTENSIONS}
    lab = {name: name not in on for name in LAB_PLUGINS}
    return server, lab


def init(settings):
    """Write the deployment into ``settings.deploy_dir``; returns the files written."""
    out = Path(settings.deploy_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def write(rel, text, mode=0o644):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        written.append(path)

    template = (TEMPLATES / "jupyterhub_config.py").read_text(encoding="utf-8")
    write("jupyterhub_config.py", template.format(
        course_id=settings.course_id, grader=settings.grader, instructors=settings.instructors,
        students=settings.students, course_root=settings.course_root, deploy_dir=settings.deploy_dir,
        python_bin=settings.python_bin, bind_url=f"{settings.url}/", hub_api_port=settings.hub_api_port,
        proxy_api_url=f"http://127.0.0.1:{settings.proxy_api_port}",
        service_url=f"http://127.0.0.1:{settings.service_port}", authenticator=settings.authenticator,
        spawner=settings.spawner, exchange=settings.exchange), mode=0o600)
    write("jupyter/global/nbgrader_config.py", f'''"""nbgrader settings of every user of the hub (students, instructors, the grader service).

Every single-user server finds this file through JUPYTER_CONFIG_PATH (set in
jupyterhub_config.py). Without a hub of this kind, put it in /etc/jupyter/nbgrader_config.py.
"""
from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821

# The filesystem exchange: one folder all users can reach. nbgrader wants its root mode 0777;
# under it, {settings.course_id}/outbound (released assignments, 0755), inbound (submissions,
# 0733: students can write but not list) and feedback (0711: files named by a secret hash).
c.Exchange.root = {settings.exchange!r}
# Several courses can share the exchange: each has its own folder, and a student's
# assignments go to ~/<course>/<assignment>/.
c.Exchange.path_includes_course = True
# Who takes which course: the hub's groups nbgrader-<course> and formgrade-<course>.
c.Authenticator.plugin_class = JupyterHubAuthPlugin
''')
    for kind in EXTENSIONS:
        server, lab = _extension_config(kind)
        write(f"jupyter/{kind}/jupyter_server_config.json",
              json.dumps({"ServerApp": {"jpserver_extensions": server}}, indent=1) + "\n")
        write(f"jupyter/{kind}/labconfig/page_config.json",
              json.dumps({"disabledExtensions": lab}, indent=1) + "\n")
    write("jupyter/grader/jupyter_server_config.py", '''"""The grader service's Jupyter server: let JupyterLab show the formgrader.

jupyterhub-singleuser (JupyterHub >= 4.1) sends `Content-Security-Policy: frame-ancestors
'none'`, and the formgrader panel of JupyterLab is an iframe of the same server: it stays
blank. Allow frames from the server itself (nbgrader's demos do the same).
"""
c = get_config()  # noqa: F821
c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}
''')
    write("student-site/sitecustomize.py", BLOCK_SOLUTIONS)
    course_text = (Path(settings.repo) / "course" / "nbgrader_config.py").read_text(encoding="utf-8")
    db_line = (f"c.CourseDirectory.db_url = {settings.db_url!r}" if settings.db_url
               else '# the gradebook stays SQLite in this folder (see above)')
    write("course/nbgrader_config.py", course_text + f'''
# ------------------------------------------------------------------------------ on the hub
# Written by `nn-course hub init`; `nn-course hub install` copies this file to
# {settings.course_dir}/nbgrader_config.py. The exchange root and the JupyterHub
# authentication come from the global config (jupyter/global/nbgrader_config.py).
c.CourseDirectory.course_id = {settings.course_id!r}
{db_line}
''', mode=0o600)
    settings.save()
    written.append(out / SETTINGS)
    return written


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


def _need_root(what):
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
    _need_root("nn-course hub install")
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
        _need_root("starting the hub with local processes")
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
    _need_root("creating users")
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


# ------------------------------------------------------------------------------ release-feedback
def offline_mathjax(html_text):
    """The feedback page with MathJax from the Jupyter server that shows it, not from a CDN.

    The page is opened as ``<server>/files/<path>`` (or ``/view/``); the script finds the
    server's prefix in the address and loads MathJax from jupyter-server-mathjax there
    (offline). Opened from anywhere else it falls back to the CDN. Idempotent.
    """
    if MATHJAX_MARK in html_text:
        return html_text
    match = CDN_SCRIPT.search(html_text)
    cdn = match.group(0)[len('<script src="'):].split('"')[0] if match else \
        "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?config=TeX-AMS_CHTML-full,Safe"
    loader = ("<script>/* " + MATHJAX_MARK + " */(function () {"
              "var m = window.location.pathname.match(/^(.*?\\/)(files|view)\\//);"
              f"var src = m ? m[1] + {json.dumps(LOCAL_MATHJAX)} : {json.dumps(cdn)};"
              "document.write('<script src=\"' + src + '\"><\\/script>');})();</script>")
    if match:
        return html_text[:match.start()] + loader + html_text[match.end():]
    return html_text.replace("</head>", loader + "\n</head>", 1)


def _exchange_root(course_dir):
    """The exchange root that nbgrader sees from the course folder (global config included)."""
    from traitlets.config.loader import PyFileConfigLoader

    from jupyter_core.paths import jupyter_config_path

    root = "/srv/nbgrader/exchange"
    for folder in reversed([str(course_dir)] + list(jupyter_config_path())):
        path = Path(folder) / "nbgrader_config.py"
        if path.is_file() and folder != str(course_dir):
            try:
                cfg = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
            except Exception:               # noqa: BLE001  (someone else's config)
                continue
            if "Exchange" in cfg and "root" in cfg.Exchange:
                root = cfg.Exchange.root
    return Path(root)


def release_feedback(course_dir, assignment=None, student=None, log=print):
    """Release the current feedback of the course through nbgrader's exchange.

    For every graded unit (ledger record) of ``assignment``/``student`` (default: all): the
    feedback is released only if the ledger graded the submission that is in ``submitted/``
    now (a resubmission collected but not yet graded is skipped, never given old feedback) and
    the feedback was written after that grading (else it is rewritten first: scores changed in
    the formgrader since are in it). The submission's secret goes next to the feedback (nbgrader
    names the released file by it), MathJax is made local, ``nbgrader release_feedback`` copies
    it to the exchange, and the files released for earlier submissions of that student are
    removed. Returns {"released": [...], "skipped": [(unit, why)]}.
    """
    from autograder import grading, report

    course = grading.Course(course_dir)
    records = [r for r in grading.ledger_records(course)
               if r.get("status") == "graded" and (assignment in (None, r["assignment"]))
               and (student in (None, r["student"]))]
    manifest_path = course.state / "released_feedback.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    result = {"released": [], "skipped": []}
    stale = []
    for record in records:
        key = f"{record['assignment']}/{record['student']}"
        submitted = course.root / "submitted" / record["student"] / record["assignment"]
        if not submitted.is_dir():
            result["skipped"].append((key, "no submission in submitted/ (graded from elsewhere)"))
            continue
        unit = grading.Unit(record["student"], record["assignment"], str(submitted))
        if record.get("fingerprint") != grading.fingerprint(unit, course):
            result["skipped"].append((key, "submitted again since it was graded: run `nn-course grade` first"))
            continue
        if not (submitted / "submission_secret.txt").is_file():
            result["skipped"].append((key, "no submission_secret.txt: not collected from the exchange"))
            continue
        html_path = report.feedback_path(course, record)
        # the worker writes the feedback just before the ledger record: the grading began at
        # the record's time minus its duration
        graded = course.ledger_path(record["assignment"], record["student"]).stat().st_mtime - \
            record.get("seconds", {}).get("total", 0) - record.get("seconds", {}).get("feedback", 0) - 2
        state = _gradebook_state(course, record)
        seen = manifest.get(key, {}).get("gradebook")
        if (not html_path.is_file() or html_path.stat().st_mtime < graded
                or (seen is not None and seen != state) or (seen is None and _manually_graded(state))):
            stale.append(record)         # written before the last grading or the formgrader's changes
    if stale:
        report.write_feedback(course, stale, force=True, log=log)
    from nbgrader.utils import notebook_hash

    skipped = {k for k, _ in result["skipped"]}
    ready = {}                                       # {assignment: [record]}
    for record in records:
        key = f"{record['assignment']}/{record['student']}"
        if key in skipped:
            continue
        submitted = course.root / "submitted" / record["student"] / record["assignment"]
        html_path = report.feedback_path(course, record)
        if not html_path.is_file():
            result["skipped"].append((key, "nbgrader wrote no feedback (see the log above)"))
            continue
        for name in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy(submitted / name, html_path.parent / name)
        for page in html_path.parent.glob("*.html"):
            page.write_text(offline_mathjax(page.read_text(encoding="utf-8")), encoding="utf-8")
        ready.setdefault(record["assignment"], []).append(record)
    outbound = _exchange_root(course.dir) / course.course_id / "feedback"
    for name, group in ready.items():
        # nbgrader's release_feedback, once per assignment, for exactly the students ready
        students = {r["student"] for r in group}
        others = sorted({p.parent.parent.name for p in (course.root / "feedback").glob(f"*/{name}/*.html")}
                        - students)
        args = [sys.executable, "-m", "nbgrader", "release_feedback", name]
        if others:
            args.append("--CourseDirectory.student_id_exclude=" + ",".join(others))
        proc = subprocess.run(args, cwd=course.dir, capture_output=True, text=True)
        if proc.returncode != 0:
            result["skipped"] += [(f"{name}/{r['student']}", "nbgrader release_feedback failed: "
                                   + proc.stderr.strip()[-500:]) for r in group]
            continue
        for record in group:
            key = f"{name}/{record['student']}"
            html_path = report.feedback_path(course, record)
            secret = (html_path.parent / "submission_secret.txt").read_text()
            names = [notebook_hash(secret=secret, notebook_id=p.stem) + ".html"
                     for p in html_path.parent.glob("*.html")]
            for old in manifest.get(key, {}).get("files", []):
                if old not in names:                 # an earlier submission's feedback
                    (outbound / old).unlink(missing_ok=True)
            manifest[key] = {"files": names, "gradebook": _gradebook_state(course, record)}
            result["released"].append(key)
    course.state.mkdir(parents=True, exist_ok=True)
    manifest_path.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    for key in result["released"]:
        log(f"released feedback: {key}")
    for key, why in result["skipped"]:
        log(f"not released: {key}: {why}")
    return result


def _gradebook_state(course, record):
    """What the feedback shows from the gradebook (scores, manual grades, comments), as a string."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        with Gradebook(course.db_url, course.course_id) as gb:
            sub = gb.find_submission(record["assignment"], record["student"])
            state = []
            for nb in sub.notebooks:
                state += [(g.name, g.auto_score, g.manual_score, g.extra_credit) for g in nb.grades]
                state += [(c.name, c.manual_comment) for c in nb.comments]
    except MissingEntry:
        return ""
    return json.dumps(sorted(state, key=str))


def _manually_graded(state):
    return any(len(row) == 4 and row[2] is not None or len(row) == 2 and row[1] for row in json.loads(state or "[]"))


# ------------------------------------------------------------------------------ demo
DEMO_USERS = {"instructor": "nn-instructor", "students": ["nn-ada", "nn-ben", "nn-cyd"]}


def demo(deploy_dir=None, port=8000, log=print, wait=True):
    """Users, deployment and hub on 127.0.0.1; notebook 1 released; Ctrl-C removes it all."""
    _need_root("nn-course hub demo (it creates Unix users)")
    import tempfile

    deploy_dir = Path(deploy_dir or tempfile.mkdtemp(prefix="nn-hub-demo-"))
    scratch = Path(tempfile.mkdtemp(prefix="nn-hub-demo-srv-"))
    scratch.chmod(0o755)
    settings = Settings(str(deploy_dir), instructors=[DEMO_USERS["instructor"]],
                        students=list(DEMO_USERS["students"]), grader="nn-grader",
                        exchange=str(scratch / "exchange"), course_root=str(scratch / "nn-grader-course"),
                        port=port, hub_api_port=free_port(), proxy_api_port=free_port(),
                        service_port=free_port())
    hub = None
    passwords = {}
    opened = open_paths(python_paths(settings), log=log)   # e.g. a clone under /root (0700)
    try:
        init(settings)
        passwords = create_users(settings.users)
        install(settings, log=log)
        hub = Hub(settings)
        run_as(settings, settings.grader, ["nbgrader", "release_assignment", "01_perceptron"],
               cwd=str(settings.course_dir))
        log("\n" + "=" * 78)
        log(f"The course {settings.course_id!r} runs on JupyterHub at {settings.url}/  (Ctrl-C stops it)")
        log(f"  instructor  {settings.instructors[0]:14s} password {passwords[settings.instructors[0]]}")
        for s in settings.students:
            log(f"  student     {s:14s} password {passwords[s]}")
        log(f"  grader acct {settings.grader:14s} password {passwords[settings.grader]}  (runs the formgrader)")
        log(f"Formgrader (instructor): {settings.url}/services/{settings.course_id}/formgrader")
        log("1. Students: Nbgrader > Assignment List > Fetch 01_perceptron, open it, work, Validate, Submit.")
        log(f"2. Instructor: {settings.url}/services/{settings.course_id}/lab (the formgrader's JupyterLab, run by")
        log(f"   {settings.grader}), File > New > Terminal, in the course folder:")
        log("       nbgrader collect 01_perceptron")
        log("       nn-course grade --course . submitted")
        log("   then Nbgrader > Formgrader > Manual Grading for the written answers, and")
        log("       nn-course release-feedback --course . 01_perceptron")
        log("3. Students: Assignment List > Fetch Feedback, then (view feedback).")
        log(f"Deployment files: {deploy_dir}   hub log: {hub.log_path}")
        log("=" * 78)
        if wait:
            stop = []
            signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
            signal.signal(signal.SIGINT, lambda *a: stop.append(1))     # Ctrl-C
            try:
                while not stop and hub.proc.poll() is None:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    finally:
        log("stopping the hub and removing the demo users and folders ...")
        if hub is not None:
            hub.stop(settings.users)
        remove_users(list(passwords))
        close_paths(opened)
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(deploy_dir, ignore_errors=True)
        log("done.")
    return 0


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
            from autograder import build

            course = args.course or build.find_root() / "course"
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
