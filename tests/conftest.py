"""Shared fixtures: a fresh build of the release, made once per test session; the student install."""
import shutil
import tempfile
from pathlib import Path

import pytest

import student_env as student_install
from autograder.instructor import build

ROOT = Path(__file__).resolve().parents[1]
#: How the student install of this session came about, for the summary at the end.
STUDENT_ENV_REPORT = []


@pytest.fixture(scope="session")
def fresh_release():
    """A release built from the current source notebooks into a scratch folder (read-only use)."""
    tmp = Path(tempfile.mkdtemp(prefix="nn-fresh-release-"))
    try:
        yield build.generate(ROOT, release_dir=tmp / "release")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def playwright_chromium():
    """One Playwright and one headless Chromium for the whole session, shared by tests/browser/
    and tests/hub/: Playwright's sync API runs an event loop in the thread, and a second one
    started beside it fails ("using Playwright Sync API inside the asyncio loop"). The callers
    check first that Chromium and Playwright are there (and skip, or fail under CI)."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    import labdriver
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=labdriver.chromium(), headless=True,
                                         args=labdriver.CHROMIUM_ARGS)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def course_copy(tmp_path):
    """A scratch copy of the parts of the repository the build reads and writes."""
    for part in ("course", "source_notebooks", "release"):
        shutil.copytree(ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("gradebook.db", "submitted", "autograded",
                                                      "feedback", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.fixture(scope="session")
def student_env():
    """A student's install from release/requirements.txt and the README's setup commands
    (tests/student_env.py; cached, see there). Minutes to build, seconds to find."""
    env = student_install.student_env(log=lambda line: None)
    how = "reused from the cache" if env.reused else "built by this run"
    STUDENT_ENV_REPORT.append(f"student install {how}: {env.venv} "
                              f"(python -m venv, pip install and setup commands took {env.built_seconds:.0f} s)")
    yield env
    env.close()


def pytest_terminal_summary(terminalreporter):
    for line in STUDENT_ENV_REPORT:
        terminalreporter.write_line(line)
