"""`nn-course hub init` writes a complete deployment; release-feedback's page rewrite; small parts.

These run without root and without a hub (seconds): they read back what ``hub init`` wrote,
executing the configs as JupyterHub and nbgrader would.
"""
import json
from pathlib import Path

import pytest
from traitlets.config import Config

from autograder.instructor import cli, sandbox
from autograder.instructor.hub import deploy, exchange, host

pytestmark = pytest.mark.hub

ROOT = Path(__file__).resolve().parents[2]


def _load(path):
    config = Config()
    code = compile(Path(path).read_text(), str(path), "exec")
    exec(code, {"get_config": lambda: config, "__file__": str(path)})
    return config


@pytest.fixture
def deployment(tmp_path):
    rc = cli.main(["hub", "init", str(tmp_path / "d"), "--course-id", "nn-x", "--students", "ada,ben",
                   "--instructor", "teach", "--db-url", "postgresql://u:pw@127.0.0.1:5432/gb",
                   "--exchange", "/srv/ex", "--port", "8123"])
    assert rc == 0
    return tmp_path / "d"


def test_init_writes_every_file(deployment):
    for rel in ("jupyterhub_config.py", "jupyter/global/nbgrader_config.py", "course/nbgrader_config.py",
                "jupyter/grader/jupyter_server_config.py", "student-site/sitecustomize.py", "hub.json",
                *(f"jupyter/{k}/{f}" for k in ("student", "instructor", "grader")
                  for f in ("jupyter_server_config.json", "labconfig/page_config.json"))):
        assert (deployment / rel).is_file(), rel
    assert (deployment / "jupyterhub_config.py").stat().st_mode & 0o077 == 0, "hub config is private"


def test_hub_config_groups_roles_service(deployment):
    c = _load(deployment / "jupyterhub_config.py")
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123/"
    assert c.JupyterHub.authenticator_class == "pam" and c.JupyterHub.spawner_class == "localprocess"
    assert c.JupyterHub.load_groups == {"nbgrader-nn-x": ["teach", "ada", "ben"],
                                        "formgrade-nn-x": ["teach", "grader-nn-x"]}
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "access:services!service=nn-x" in roles["formgrade-nn-x"]["scopes"]
    assert not any(s.startswith("access:services") for s in roles["nbgrader-nn-x"]["scopes"]), \
        "students may not open the formgrader"
    (service,) = c.JupyterHub.services
    assert service["name"] == "nn-x" and service["user"] == "grader-nn-x"
    assert service["cwd"] == "/home/grader-nn-x/nn-x/course"
    assert "jupyter/grader" in service["environment"]["JUPYTER_CONFIG_PATH"]
    assert c.Authenticator.allowed_users == {"teach", "ada", "ben", "grader-nn-x"}


def test_the_extension_table(deployment):
    def on(kind):
        server = json.loads((deployment / f"jupyter/{kind}/jupyter_server_config.json").read_text())
        lab = json.loads((deployment / f"jupyter/{kind}/labconfig/page_config.json").read_text())
        return ({k.rsplit(".", 1)[-1] for k, v in server["ServerApp"]["jpserver_extensions"].items() if v},
                {k.split(":")[-1] for k, v in lab["disabledExtensions"].items() if not v})
    assert on("student") == ({"assignment_list", "validate_assignment"}, {"assignment-list", "validate-assignment"})
    assert on("instructor") == ({"assignment_list", "validate_assignment", "course_list"},
                                {"assignment-list", "validate-assignment", "course-list"})
    assert on("grader") == ({"formgrader", "validate_assignment"},
                            {"formgrader", "create-assignment", "validate-assignment"})


def test_nbgrader_configs(deployment):
    g = _load(deployment / "jupyter/global/nbgrader_config.py")
    assert g.Exchange.root == "/srv/ex" and g.Exchange.path_includes_course is True
    assert g.Authenticator.plugin_class.__name__ == "JupyterHubAuthPlugin"
    course = _load(deployment / "course/nbgrader_config.py")
    assert course.CourseDirectory.course_id == "nn-x"
    assert course.CourseDirectory.db_url == "postgresql+psycopg://u:pw@127.0.0.1:5432/gb"
    grader = _load(deployment / "jupyter/grader/jupyter_server_config.py")
    assert grader.ServerApp.tornado_settings["headers"]["Content-Security-Policy"] == "frame-ancestors 'self'"


def test_settings_round_trip_and_bad_names(deployment, tmp_path):
    s = deploy.Settings.load(deployment)
    assert s.students == ["ada", "ben"] and s.port == 8123
    with pytest.raises(deploy.HubError):
        deploy.Settings(str(tmp_path / "x"), students=["Bad Name"])


def test_offline_mathjax_rewrites_the_cdn_script_once():
    page = ('<html><head><script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js?'
            'config=TeX-AMS_CHTML-full,Safe"> </script></head><body>$x^2$</body></html>')
    once = exchange.offline_mathjax(page)
    assert "cdnjs" in once and '<script src="https://cdnjs' not in once      # only as the fallback
    assert "static/jupyter_server_mathjax/MathJax.js" in once
    assert exchange.offline_mathjax(once) == once


def test_the_sandbox_names_no_course_folder(tmp_path):
    """The sandbox starts from an empty root: a course folder (and its submissions) is not
    hidden, it is simply never bound; only the box is, read-write."""
    (tmp_path / "course" / "submitted").mkdir(parents=True)
    argv = sandbox.wrap(["true"], tmp_path / "scratch" / "box")
    assert not any(a.startswith(str(tmp_path / "course")) for a in argv)
    assert ("--bind", str(tmp_path / "scratch" / "box")) in list(zip(argv, argv[1:]))


def test_commands_that_need_root_say_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(host.os, "geteuid", lambda: 1000)
    cli.main(["hub", "init", str(tmp_path / "d")])
    assert cli.main(["hub", "install", str(tmp_path / "d")]) == 1
    assert "needs root" in capsys.readouterr().err
