"""Shared fixtures: a fresh build of the release, made once per test session."""
import shutil
import tempfile
from pathlib import Path

import pytest

from autograder import build

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fresh_release():
    """A release built from the current source notebooks into a scratch folder (read-only use)."""
    tmp = Path(tempfile.mkdtemp(prefix="nn-fresh-release-"))
    try:
        yield build.generate(ROOT, release_dir=tmp / "release")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def course_copy(tmp_path):
    """A scratch copy of the parts of the repository the build reads and writes."""
    for part in ("course", "source_notebooks", "release"):
        shutil.copytree(ROOT / part, tmp_path / part,
                        ignore=shutil.ignore_patterns("gradebook.db", "submitted", "autograded",
                                                      "feedback", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path
