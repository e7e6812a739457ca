"""Fixtures of the browser tests: a scratch release, its own JupyterLab, Debian's Chromium.

One JupyterLab server and one Chromium per test session; a fresh browser context (and, at the
end of each test, no kernel left running) per test. Screenshots go to
``tests/browser/screenshots/`` (git-ignored); the end of the pytest run prints where, and the
table of slider response times when the answered notebooks ran.

``NN_SLIDER_PRESSES=3`` moves every control three times instead of once (for the latency
table in docs/benchmarks.md: ``bench/bench_sliders.py``).
"""
import json
import os
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

import labdriver
from autograder.instructor import nbcells

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
#: {assignment: [(control, kind, milliseconds), ...]}, filled by the answered-notebook tests.
LATENCIES = {}
#: {assignment: 1-minute load average right after its sliders were moved} (timings depend on it).
LOADS = {}
#: Not empty once this session has emptied the screenshot folder and taken new ones.
SCREENSHOTS_TAKEN = []
LATENCY_FILE = ROOT / "bench" / "out" / "slider_latency.json"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _missing(message):
    """No browser: fail under CI (CI=true), skip elsewhere; the message says how to install it."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium_path():
    path = labdriver.chromium()
    if path is None:
        _missing(labdriver.INSTALL_HINT)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is not installed: `pip install -e '.[test]'` (it is in the "
                 "test extra) installs it; its own browser download is not needed.")
    return path


@pytest.fixture(scope="session")
def student_release(fresh_release):
    """A scratch copy of a fresh release, plus ``NN_name/NN_name_answered.ipynb`` in every
    assignment: the release notebook with the reference answers (code and written) pasted in."""
    tmp = Path(tempfile.mkdtemp(prefix="nn-browser-release-"))
    root = tmp / "release"
    shutil.copytree(fresh_release, root)
    for name in nbcells.assignments(ROOT):
        (release_path,) = nbcells.notebooks(root / name)
        source = nbformat.read(labdriver.nbtools.source_notebook(name), as_version=4)
        answered = labdriver.student_answers(nbformat.read(release_path, as_version=4), source)
        nbformat.write(answered, root / name / f"{name}_answered.ipynb")
    yield root
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(chromium_path, student_release):
    """JupyterLab serving the scratch release, on 127.0.0.1 with a token; stopped by its pid."""
    work = Path(tempfile.mkdtemp(prefix="nn-browser-lab-"))
    server = labdriver.JupyterLab(student_release, work)
    yield server
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def browser(chromium_path, playwright_chromium):
    return playwright_chromium            # one for the session (tests/conftest.py)


@pytest.fixture(scope="session")
def screenshots():
    """tests/browser/screenshots/, emptied at the start of the session that uses it."""
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    SCREENSHOTS_TAKEN.append(True)
    return SCREENSHOTS


@pytest.fixture
def page(request, browser, lab, screenshots):
    """A new browser tab (fresh context); on failure a screenshot; afterwards no kernel runs."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.js_errors = errors
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        safe = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
        try:
            tab.screenshot(path=str(screenshots / f"FAILED-{safe}.png"))
        except Exception:                  # noqa: BLE001  (a screenshot must not hide the failure)
            pass
    context.close()
    lab.shut_down_kernels()


@pytest.fixture(scope="session")
def slider_presses():
    return max(1, int(os.environ.get("NN_SLIDER_PRESSES", "1")))


@pytest.fixture(scope="session")
def latencies():
    return LATENCIES


@pytest.fixture(scope="session")
def loads():
    return LOADS


def pytest_terminal_summary(terminalreporter):
    shots = sorted(SCREENSHOTS.glob("*.png")) if SCREENSHOTS_TAKEN else []     # this session's only
    if not shots and not LATENCIES:
        return
    terminalreporter.section("browser tests: what a student sees")
    if shots:
        terminalreporter.write_line(f"{len(shots)} screenshots in {SCREENSHOTS}")
    if LATENCIES:
        terminalreporter.write_line("Slider response (key press -> new figure on screen):")
        terminalreporter.write_line(labdriver.latency_table(LATENCIES, LOADS))
        LATENCY_FILE.parent.mkdir(parents=True, exist_ok=True)
        LATENCY_FILE.write_text(json.dumps({"moves": LATENCIES, "load": LOADS}, indent=1), encoding="utf-8")
        terminalreporter.write_line(f"(every move: {LATENCY_FILE})")
