"""``nn-course hub init``: the deployment of one course, written into a folder an admin reads.

``Settings`` (kept in DIR/hub.json) says who the course's users are and where things go;
``init`` writes ``jupyterhub_config.py`` (from ``templates/``), the global, per-kind and
course nbgrader configs, and the students' ``sitecustomize.py``.
"""
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")
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
            from ..nbcells import find_root

            self.repo = str(find_root())
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

    template = (TEMPLATES / "jupyterhub_config.py.in").read_text(encoding="utf-8")
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
