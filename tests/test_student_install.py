"""A student's install (release/README.md, pip route) has what the release needs, and no more.

The environment is a fresh ``python -m venv`` with ``pip install -r requirements.txt`` and the
README's setup commands, nothing else (tests/student_env.py builds it and caches it). In it:
- nbgrader's student extensions (Assignment List, Validate) are on, its instructor ones
  (Formgrader, Course List, Create Assignment) are off, for the server and for JupyterLab;
- neither ``solutions_lib`` nor this repository's instructor tooling can be imported;
- every release notebook with the reference answers runs clean in a kernel of that environment.
tests/browser/test_student_install_browser.py opens its JupyterLab in a browser.
"""
import json
import re
import shutil

import nbformat
import pytest

import nbtools
import student_env as student_install
from autograder.instructor import build, nbcells

ROOT = nbtools.ROOT
ASSIGNMENTS = nbcells.assignments(ROOT)
STUDENT_SERVER_EXTENSIONS = ("nbgrader.server_extensions.assignment_list",
                             "nbgrader.server_extensions.validate_assignment")
STUDENT_LAB_PLUGINS = ("@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_the_readme_gives_the_commands_the_build_means():
    """What the student install runs is what the README says, and that is the build's list."""
    commands = student_install.readme_commands()
    assert commands[0] == "pip install -r requirements.txt"
    assert commands[1:] == list(build.STUDENT_SETUP_COMMANDS)


def _listing(env, *args):
    proc = env.run(["jupyter", *args])
    return ANSI.sub("", proc.stdout + proc.stderr)


@pytest.mark.slow
def test_server_extensions_for_students_on_for_instructors_off(student_env):
    text = _listing(student_env, "server", "extension", "list")
    state = dict(re.findall(r"^\s*(nbgrader\.server_extensions\.\w+)\s+(enabled|disabled)\s*$", text, re.M))
    off = [line.split()[-1] for line in build.STUDENT_SETUP_COMMANDS if " server extension disable " in line]
    assert {name: state.get(name) for name in STUDENT_SERVER_EXTENSIONS} == dict.fromkeys(
        STUDENT_SERVER_EXTENSIONS, "enabled"), text
    assert {name: state.get(name) for name in off} == dict.fromkeys(off, "disabled"), text


@pytest.mark.slow
def test_lab_plugins_for_students_on_for_instructors_off(student_env):
    text = _listing(student_env, "labextension", "list")
    assert re.search(r"@jupyter/nbgrader v\S+ enabled", text), text
    disabled = set(re.findall(r"^\s+(@\S+)\s*$", text.split("Disabled extensions:", 1)[-1], re.M)) \
        if "Disabled extensions:" in text else set()
    off = {line.split()[-1] for line in build.STUDENT_SETUP_COMMANDS if " labextension disable " in line}
    assert disabled == off, text
    assert not disabled & set(STUDENT_LAB_PLUGINS)


@pytest.mark.slow
def test_no_solutions_and_no_instructor_tooling(student_env, tmp_path):
    """solutions_lib is not there, nor this repository's autograder; an assignment's own kit is."""
    probe = ("import importlib.util as u; "
             "print([m for m in ('solutions_lib', 'autograder', 'nbgrader', 'ipywidgets', 'jupyterlab', "
             "'mlxtend', 'sklearn') if u.find_spec(m) is None])")
    assert student_env.run([str(student_env.python), "-c", probe], cwd=tmp_path).stdout.strip() == \
        "['solutions_lib', 'autograder']"
    build.add_kit(tmp_path)                       # an assignment folder: its kit imports, no more
    kit = ("import autograder.checks, autograder.datasets, autograder.widgets, importlib.util as u; "
           "print(u.find_spec('autograder.instructor'))")
    assert student_env.run([str(student_env.python), "-c", kit], cwd=tmp_path).stdout.strip() == "None"


@pytest.fixture(scope="module")
def student_kernel(student_env, tmp_path_factory):
    """A kernelspec that starts the student environment's Python: {"JUPYTER_PATH": ...}, name."""
    share = tmp_path_factory.mktemp("student-kernel")
    spec = share / "kernels" / "nn-student"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(student_env.python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student install", "language": "python"}), encoding="utf-8")
    env = {"JUPYTER_PATH": str(share), "PYTHONPATH": None, "PYTHONNOUSERSITE": "1"}
    return env, "nn-student"


#: Appended to the notebook: which Python ran it, and whether solutions_lib was within reach.
WHERE = ("import sys, importlib.util\n"
         "print('PREFIX', sys.prefix)\n"
         "print('SOLUTIONS', importlib.util.find_spec('solutions_lib') is not None)")


@pytest.mark.slow
@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_release_with_reference_answers_runs_clean_in_the_student_install(name, student_env, student_kernel,
                                                                         fresh_release, tmp_path):
    env, kernel = student_kernel
    folder = tmp_path / name
    shutil.copytree(fresh_release / name, folder)
    (release_path,) = nbcells.notebooks(folder)
    source = nbformat.read(nbtools.source_notebook(name), as_version=4)
    nb = nbtools.with_answers(nbformat.read(release_path, as_version=4), source)
    nb.cells.append(nbformat.v4.new_code_cell(WHERE))
    executed, seconds = nbtools.execute(nb, folder, env=env, kernel_name=kernel)
    where = nbtools.cell_text(executed.cells[-1])
    assert f"PREFIX {student_env.venv}" in where, f"the notebook ran in another Python: {where}"
    assert "SOLUTIONS False" in where
    assert nbtools.errors(executed) == [], f"{name} in the student install ({seconds:.0f} s)"
    assert nbtools.widget_views(executed) == []
