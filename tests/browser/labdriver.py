"""JupyterLab and Chromium for the browser tests: a server of our own, a browser of the system's.

- ``chromium()``: the path of Debian's Chromium, or None (Playwright cannot download its own
  browser here, so it drives the system one through ``executable_path``).
- ``JupyterLab(root, work)``: starts ``jupyter lab`` on 127.0.0.1, on a free port, with a
  random token, serving ``root``; ``stop()`` ends it by its process id. Its kernels see a
  student's world: ``solutions_lib`` cannot be imported, and neither ``NN_COURSE_HEADLESS``
  nor ``NBGRADER_EXECUTION`` is set, so every slider is real. With ``student_view`` (the
  default) nbgrader's instructor tools are switched off in its own config folder, as the
  students' setup commands switch them off in theirs, so that the screenshots show what a
  student sees; ``python=`` runs it from another environment (the student install's).
- ``student_answers(release_nb, source_nb)``: the release notebook with the reference answers
  pasted in, code and written answers both (so that Validate can say "Success").
- ``Notebook(page, lab)``: what a student does in JupyterLab: open a notebook, Run All, move
  a slider with the keyboard, press Validate; and what the tests read back.
- ``latency_table(rows)``: the markdown table of slider response times.
"""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nbtools  # noqa: E402
from autograder.instructor import build  # noqa: E402

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL_HINT = ("Debian's chromium is not installed. Install it with `apt-get update && apt-get "
                "install -y chromium` (.ci/run does this on CI); Playwright cannot download a "
                "browser here, so the tests drive /usr/bin/chromium.")
PROBE = (HERE / "notebook_probe.js").read_text(encoding="utf-8")
#: Environment variables a student's JupyterLab does not have.
NOT_FOR_STUDENTS = ("NN_COURSE_HEADLESS", "NBGRADER_EXECUTION", "NBGRADER_VALIDATING", "MPLBACKEND")


def instructor_extensions():
    """(server extensions, lab plugins) that the students' setup commands switch off."""
    commands = build.STUDENT_SETUP_COMMANDS
    server = [c.split()[-1] for c in commands if c.startswith("jupyter server extension disable ")]
    lab = [c.split()[-1] for c in commands if c.startswith("jupyter labextension disable ")]
    return server, lab


def chromium():
    """Path of the system Chromium, or None."""
    override = os.environ.get("NN_COURSE_CHROMIUM")
    for path in ([override] if override else []) + list(CHROMIUM_CANDIDATES):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server of our own in ``root``; its settings, runtime and logs in ``work``."""

    def __init__(self, root, work, python=sys.executable, student_view=True, startup_timeout=90):
        self.root, self.work = Path(root), Path(work)
        self.port = _free_port()
        self.token = os.urandom(16).hex()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.work / "jupyterlab.log"
        settings = self.work / "settings"
        notification = settings / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True, exist_ok=True)
        # no "get news?" toast and no update check: they would cover the page and reach out
        (notification / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
        if student_view:                         # what the students' setup commands switch off
            server, lab = instructor_extensions()
            config = self.work / "config"
            (config / "labconfig").mkdir(parents=True, exist_ok=True)
            (config / "labconfig" / "page_config.json").write_text(
                json.dumps({"disabledExtensions": {name: True for name in lab}}), encoding="utf-8")
            (config / "jupyter_server_config.json").write_text(
                json.dumps({"ServerApp": {"jpserver_extensions": {name: False for name in server}}}),
                encoding="utf-8")
        site = self.work / "site"                 # the kernels cannot import solutions_lib
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(nbtools.BLOCK_SOLUTIONS, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in NOT_FOR_STUDENTS}
        env.update(JUPYTER_CONFIG_DIR=str(self.work / "config"),     # not ~/.jupyter
                   JUPYTER_RUNTIME_DIR=str(self.work / "runtime"),
                   IPYTHONDIR=str(self.work / "ipython"),
                   PYTHONPATH=str(site))
        bin_dir = str(Path(python).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        args = [python, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={self.work / 'workspaces'}",
                "--LabApp.expose_app_in_browser=True"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.append("--allow-root")           # CI runs as root
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(args, cwd=self.root, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"jupyter lab did not answer within {startup_timeout} s:\n"
                                       f"{self.log_tail()}") from None
                time.sleep(0.2)

    def api(self, path, method="GET"):
        """Call the server's REST API; returns the decoded JSON (or None)."""
        req = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if body else None

    def link(self, path):
        """URL that opens ``path`` (relative to the root) in JupyterLab, in a fresh workspace."""
        return f"{self.url}/lab/tree/{path}?reset&token={self.token}"

    def shut_down_kernels(self):
        """End every session and kernel (so that kernels do not pile up between tests)."""
        for session in self.api("sessions") or []:
            self.api(f"sessions/{session['id']}", method="DELETE")
        for kernel in self.api("kernels") or []:
            self.api(f"kernels/{kernel['id']}", method="DELETE")

    def log_tail(self, n=4000):
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]

    def stop(self):
        """End the server by its process id: SIGTERM (it shuts its kernels down), then SIGKILL."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)    # its own session: the group id is its pid
                self.proc.wait(timeout=10)
        self._log.close()


# ------------------------------------------------------------------------------ notebooks
def student_answers(release_nb, source_nb):
    """The release notebook with every answer filled in as the reference has it.

    Code answers through ``nbtools.with_answers``; written answers (markdown answer cells) get
    the model answer, so that nbgrader's Validate has nothing left to complain about.
    """
    nb = nbtools.with_answers(release_nb, source_nb)
    written = {nbtools.nbgrader_meta(c).get("grade_id"): c.source for c in source_nb.cells
               if c.cell_type == "markdown" and nbtools.nbgrader_meta(c).get("solution")}
    for cell in nb.cells:
        grade_id = nbtools.nbgrader_meta(cell).get("grade_id")
        if cell.cell_type == "markdown" and grade_id in written:
            cell.source = written[grade_id]
    return nb


def expected_controls(nb):
    """[(function name, number of controls)] of every ``@widgets.interactive(...)`` in ``nb``."""
    import ast

    found = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "interactive" not in cell.source:
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)
                            and deco.func.attr == "interactive"):
                        found.append((node.name, len(deco.keywords)))
    return found


def test_cells(nb):
    """The graded test cells of a notebook (code cells with points and no solution)."""
    return [c for c in nb.cells if nbtools.is_test(c)]


class Notebook:
    """One notebook open in JupyterLab, driven as a student would drive it."""

    def __init__(self, page, lab, path, timeout_s=60):
        self.page, self.lab, self.path = page, lab, path
        page.add_init_script(PROBE)
        page.goto(lab.link(path))
        page.wait_for_function("() => window.__nn && window.__nn.notebookReady()",
                               timeout=timeout_s * 1000, polling=200)

    def run_all(self, timeout_s=240):
        """Run > Run All Cells, then wait until every code cell has run and the kernel is idle."""
        start = time.perf_counter()
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        self.page.wait_for_function("() => window.__nn.allRun()", timeout=timeout_s * 1000,
                                    polling=250)
        return time.perf_counter() - start

    def problems(self):
        return self.page.evaluate("() => window.__nn.problems()")

    def controls(self):
        return self.page.evaluate("() => window.__nn.controls()")

    def move(self, k, timeout_s=30):
        """Move control ``k`` one step as a student would; wait for the figure it drives.

        A slider gets an arrow key, a checkbox the space bar (both after focusing it, as a
        click does). A dropdown gets its next option chosen from the list: on a focused
        ``<select>`` JupyterLab's notebook shortcuts take ArrowUp/ArrowDown for moving between
        cells, so a student picks from the list with the mouse.
        Returns (what was done, value before, value after, milliseconds from the key press or
        choice to the last change of what the output it drives shows: see notebook_probe.js).
        Raises AssertionError if the output does not change.
        """
        page = self.page
        ctl = self.control(k)
        ctl.scroll_into_view_if_needed()
        before = page.evaluate("k => window.__nn.value(k)", k)
        kind = self.controls()[k]["kind"]
        page.evaluate("k => window.__nn.arm(k)", k)
        if kind == "dropdown":
            index = page.evaluate("k => window.__nn.nextOption(k)", k)
            key = f"choose option {index}"
            ctl.locator("select").select_option(index=index)
        else:
            key = page.evaluate("k => window.__nn.keyFor(k)", k)
            ctl.locator(".noUi-handle, input").first.focus()
            page.keyboard.press(key)
        try:
            page.wait_for_function("() => window.__nn.settled()", timeout=timeout_s * 1000,
                                   polling=10)
        except Exception:
            changed = page.evaluate("() => window.__nn.changed()")
            after = page.evaluate("k => window.__nn.value(k)", k)
            raise AssertionError(
                f"after {key} the control went from {before} to {after}, but its figure "
                + ("changed and the kernel did not become idle" if changed else "did not change")
                + f" within {timeout_s} s") from None
        after = page.evaluate("k => window.__nn.value(k)", k)
        return key, before, after, page.evaluate("() => window.__nn.latency()")

    def control(self, k):
        c = self.controls()[k]
        return (self.page.locator(".jp-Notebook .widget-interact").nth(c["interact"])
                .locator(":scope > .widget-slider, :scope > .widget-checkbox, "
                         ":scope > .widget-dropdown, :scope > .widget-toggle-buttons, "
                         ":scope > .widget-text, :scope > .widget-inline-hbox").nth(c["index"]))

    def validate(self, timeout_s=180):
        """Press the toolbar's Validate button and read nbgrader's "Validation Results" dialog.

        Returns ({"success": bool, "failed": [(cell source, error text)], "text": all of it},
        seconds from the click to the dialog).
        """
        start = time.perf_counter()
        self.page.locator(".jp-NotebookPanel-toolbar .validate-button").first.click()
        dialog = self.page.locator(".jp-Dialog")
        dialog.wait_for(timeout=timeout_s * 1000)
        seconds = time.perf_counter() - start
        report = self.page.evaluate("""() => {
            const box = document.querySelector('.jp-Dialog #validation-message');
            const dialog = document.querySelector('.jp-Dialog');
            const out = {success: false, failed: [], text: dialog ? dialog.innerText : ''};
            if (!box) return out;
            out.success = box.classList.contains('validation-success');
            const parts = Array.from(box.children);
            parts.forEach((el, i) => {
                if (el.textContent.trim() === 'The following cell failed:')
                    // innerText: the dialog sets the source with innerText, so its newlines are <br>
                    out.failed.push([((parts[i + 1] || {}).innerText || '').trim(),
                                     (parts[i + 2] || {}).innerText || '']);
            });
            return out;
        }""")
        return report, seconds

    def nbgrader_tools(self):
        """What nbgrader offers on this page: {"menu": the items of the Nbgrader menu,
        "panels": the titles of the side panels, "validate": a Validate button in the toolbar}."""
        page = self.page
        panels = page.evaluate("() => Array.from(document.querySelectorAll('.jp-SideBar .lm-TabBar-tab'))"
                               ".map(t => t.getAttribute('title') || t.innerText)")
        validate = page.locator(".jp-NotebookPanel-toolbar .validate-button").count() > 0
        menu = []
        if page.get_by_role("menuitem", name="Nbgrader", exact=True).count():
            page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
            menu = page.evaluate("() => Array.from(document.querySelectorAll('.lm-Menu .lm-Menu-itemLabel'))"
                                 ".map(t => t.innerText).filter(label => label)")   # no command: no label
            page.keyboard.press("Escape")
        return {"menu": menu, "panels": panels, "validate": validate}

    def close_dialog(self):
        self.page.locator(".jp-Dialog").get_by_role("button", name="Ok").click()

    def screenshot(self, path, interact=None):
        """A screenshot of what the student sees, scrolled to the ``interact``-th figure."""
        if interact is not None:
            self.page.locator(".jp-Notebook .widget-interact").nth(interact).scroll_into_view_if_needed()
        self.page.screenshot(path=str(path))
        return path


#: The Nbgrader menu of a student: no Formgrader, Course List or Create Assignment.
STUDENT_NBGRADER_MENU = ["Assignment List"]


def student_tools_problems(tools):
    """What is wrong with ``Notebook.nbgrader_tools()`` for a student (empty list: nothing)."""
    problems = []
    if not tools["validate"]:
        problems.append("no Validate button in the notebook toolbar")
    if tools["menu"] != STUDENT_NBGRADER_MENU:
        problems.append(f"the Nbgrader menu offers {tools['menu']}, not {STUDENT_NBGRADER_MENU}")
    panels = [p for p in tools["panels"] if "Create Assignment" in p or "Formgrader" in p]
    if panels:
        problems.append(f"instructor side panels: {panels}")
    return problems


# ------------------------------------------------------------------------------ reporting
def latency_table(rows, loads=None):
    """Markdown table from {notebook: [(control, kind, ms), ...]}; a control may move several times.

    ``loads``, {notebook: 1-minute load average when its sliders had moved}, adds a column.
    """
    loads = loads or {}
    lines = ["| notebook | sliders | other controls | moves | median (ms) | worst (ms) | slowest control | load |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    for name, moves in rows.items():
        load = f"{loads[name]:.1f}" if name in loads else "–"
        if not moves:
            lines.append(f"| `{name}` | 0 | 0 | 0 | – | – | – | {load} |")
            continue
        times = [ms for _, _, ms in moves]
        controls = {(control, kind) for control, kind, _ in moves}
        sliders = sum(1 for _, kind in controls if kind == "slider")
        worst = max(moves, key=lambda m: m[2])
        lines.append(f"| `{name}` | {sliders} | {len(controls) - sliders} | {len(moves)} | "
                     f"{statistics.median(times):.0f} | {worst[2]:.0f} | `{worst[0]}` | {load} |")
    return "\n".join(lines)
