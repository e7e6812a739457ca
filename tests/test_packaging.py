"""The install files agree with each other and the packages import cleanly."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement):
    """'scikit-learn>=1.3' -> 'scikit-learn' (lower case, '_' as '-')."""
    return re.split(r"[<>=!~ \[;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _environment_packages():
    """Conda package names of environment.yml (without python, pip and the pip section)."""
    import yaml  # PyYAML comes with jupyter-events, a dependency of jupyterlab and nbgrader
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    names = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip_section = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert pip_section == [["-e ."]], "environment.yml must end by installing the package: pip: [-e .]"
    return names - {"python", "pip"}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in project["dependencies"]}
    test_extra = {_name(r) for r in project["optional-dependencies"]["test"]}
    env = _environment_packages()
    assert env == runtime | test_extra, (
        f"only in environment.yml: {sorted(env - runtime - test_extra)}; "
        f"only in pyproject.toml: {sorted((runtime | test_extra) - env)}")


def test_python_version_is_consistent():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.10"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_both_packages_import_and_checks_stay_solution_free():
    code = ("import autograder.checks, autograder.datasets, sys;"
            "assert 'solutions_lib' not in sys.modules;"
            "import solutions_lib.activations, solutions_lib.losses, solutions_lib.layers,"
            " solutions_lib.network, solutions_lib.optim, solutions_lib.perceptron,"
            " solutions_lib.calculus, solutions_lib.data")
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
