"""The whole cycle on a real JupyterHub, for three students, and the walls between them.

The grader account releases 01_perceptron to the exchange; ben and cyd fetch, work, validate
and submit with nbgrader's commands run as themselves (with a hub token, as their servers do);
ada does it in Chromium: log in, Assignment List -> Fetch -> open -> Validate -> Submit. The
grader collects, `nn-course grade`s what was collected, a manual question is graded through
nbgrader's API (what the formgrader does), `nn-course release-feedback` returns the feedback,
and students fetch it (ada in the Assignment List, with the formulas rendered by a MathJax
served by her own Jupyter server while every request off the machine is blocked). cyd then
resubmits: no stale feedback is released before it is graded again, and afterwards only the
new feedback is in the exchange. The tests run in file order and share the deployment.
"""
import glob
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import sys

import nbformat
import pytest

from autograder.instructor import nbcells
from autograder.instructor.synthetic import answers


pytestmark = pytest.mark.hub

NAME = "01_perceptron"
COURSE = "nn-foundations"
BUG = answers.load_bugs()[NAME][0]
STATE = {}
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
import labdriver  # noqa: E402
TIMINGS = {}


@pytest.fixture(autouse=True, scope="module")
def _timings(timings):
    """The cycle's timings go to the table printed at the end of the run (conftest)."""
    global TIMINGS
    TIMINGS = timings


def _students(dep):
    ada, ben, cyd = dep.settings.students
    return ada, ben, cyd


def _timed(step):
    class Timer:
        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            TIMINGS[step] = TIMINGS.get(step, 0.0) + time.perf_counter() - self.t
    return Timer()


def _answers(kind):
    (src,) = nbcells.notebooks(ROOT / "source_notebooks" / NAME)
    source = nbformat.read(src, as_version=4)
    release = nbformat.read(ROOT / "release" / NAME / f"{NAME}.ipynb", as_version=4)
    nb = labdriver.student_answers(release, source)              # code and written answers
    if kind == "bug":
        for cell in nb.cells:
            if nbcells.grade_id(cell) == BUG["answer"]:
                cell.source = BUG["source"]
    return nb


def _write_as(user, path, nb):
    import pwd

    nbformat.write(nb, path)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def _work_folder(dep, student):
    import pwd

    return Path(pwd.getpwnam(student).pw_dir) / COURSE / NAME


def _exchange(dep):
    return Path(dep.settings.exchange) / COURSE


# ------------------------------------------------------------------------------ release
def test_the_grader_releases_the_assignment(deployment):
    with _timed("release (nbgrader release_assignment)"):
        deployment.grader("nbgrader", "release_assignment", NAME)
    out = _exchange(deployment) / "outbound" / NAME
    assert (out / f"{NAME}.ipynb").is_file()
    assert oct(Path(deployment.settings.exchange).stat().st_mode & 0o777) == "0o777"
    assert oct((_exchange(deployment) / "inbound").stat().st_mode & 0o777) == "0o733"
    text = (out / f"{NAME}.ipynb").read_text()
    assert "BEGIN HIDDEN TESTS" not in text and "### BEGIN SOLUTION" not in text


def test_a_user_not_enrolled_cannot_fetch(deployment):
    proc = deployment.run(deployment.outsider, "nbgrader", "fetch_assignment", NAME, "--course", COURSE, check=False)
    assert proc.returncode != 0
    assert "You do not have access to this course" in proc.stderr + proc.stdout


# ------------------------------------------------------------------------------ students, by command
@pytest.mark.parametrize("who, kind", [(1, "reference"), (2, "bug")])
def test_students_fetch_validate_and_submit(deployment, who, kind):
    student = _students(deployment)[who]
    with _timed("fetch (nbgrader fetch_assignment; ben + cyd)"):
        deployment.run(student, "nbgrader", "fetch_assignment", NAME, "--course", COURSE)
    folder = _work_folder(deployment, student)
    _write_as(student, folder / f"{NAME}.ipynb", _answers(kind))          # the student works
    proc = deployment.run(student, "nbgrader", "validate", f"{NAME}.ipynb", cwd=str(folder), check=False)
    assert ("Success! Your notebook passes all the tests." in proc.stdout) == (kind == "reference"), proc.stdout[-2000:]
    with _timed("submit (nbgrader submit; ben + cyd)"):
        deployment.run(student, "nbgrader", "submit", NAME, "--course", COURSE)


# ------------------------------------------------------------------------------ a student in the browser
def _login(chromium, dep, user, offline=True):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(60_000)
    if offline:           # nothing but the hub on this machine: a CDN request fails
        blocked = []

        def route(r):
            url = r.request.url
            if url.startswith(f"http://127.0.0.1:{dep.settings.port}/") or url.startswith("data:"):
                return r.continue_()
            blocked.append(url)
            return r.abort()
        context.route("**/*", route)
        context.blocked = blocked
    page = context.new_page()
    page.goto(f"{dep.settings.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", dep.passwords[user])
    page.click("#login_submit")
    return context, page


def _wait_for_lab(page):
    page.wait_for_selector(".jp-LabShell", timeout=150_000)
    page.get_by_role("menuitem", name="Nbgrader", exact=True).wait_for(timeout=60_000)


def _assignment_list(page):
    page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.get_by_role("menuitem", name="Assignment List").click()
    page.wait_for_selector("#released_assignments_list", timeout=30_000)


def test_a_student_in_the_browser_fetches_validates_and_submits(deployment, chromium, screenshots):
    ada = _students(deployment)[0]
    context, page = _login(chromium, deployment, ada)
    try:
        t = time.perf_counter()
        _wait_for_lab(page)
        TIMINGS["browser: log in and spawn the student's server"] = time.perf_counter() - t
        page.screenshot(path=str(screenshots / "1-student-lab.png"))
        _assignment_list(page)
        released = page.locator("#released_assignments_list .list_item", has_text=NAME)
        released.wait_for()
        page.screenshot(path=str(screenshots / "2-student-assignment-list.png"))
        released.get_by_role("button", name="Fetch").click()
        fetched = page.locator("#fetched_assignments_list .list_item", has_text=NAME).first
        fetched.wait_for()
        page.screenshot(path=str(screenshots / "3-student-fetched.png"))
        folder = _work_folder(deployment, ada)
        assert (folder / f"{NAME}.ipynb").is_file(), "the fetched notebook is in ada's home"
        _write_as(ada, folder / f"{NAME}.ipynb", _answers("reference"))  # her work, done
        fetched.locator(".assignment-notebooks-link").click()
        page.locator(".assignment-notebooks a", has_text=NAME).first.click()
        page.wait_for_selector(".jp-NotebookPanel-toolbar .validate-button", timeout=60_000)
        t = time.perf_counter()
        page.locator(".jp-NotebookPanel-toolbar .validate-button").first.click()
        dialog = page.locator(".jp-Dialog")
        dialog.wait_for(timeout=240_000)
        page.wait_for_function("() => !document.querySelector('.jp-Dialog').innerText.includes('Validating')",
                               timeout=240_000)
        TIMINGS["browser: Validate"] = time.perf_counter() - t
        page.screenshot(path=str(screenshots / "4-student-validate.png"))
        assert page.locator(".jp-Dialog .validation-success").count() == 1, dialog.inner_text()
        dialog.get_by_role("button", name="Ok").click()
        _assignment_list(page)
        fetched = page.locator("#fetched_assignments_list .list_item", has_text=NAME).first
        t = time.perf_counter()
        fetched.get_by_role("button", name="Submit").click()
        page.locator("#submitted_assignments_list .list_item", has_text=NAME).first.wait_for(timeout=60_000)
        TIMINGS["browser: Submit"] = time.perf_counter() - t
        page.screenshot(path=str(screenshots / "5-student-submitted.png"))
    except Exception:
        page.screenshot(path=str(screenshots / "FAILED-student-submit.png"))
        raise
    finally:
        context.close()


# ------------------------------------------------------------------------------ walls
def _python_as(dep, user, code):
    return dep.run(user, "python", "-c", code, check=False)


def test_a_student_cannot_read_another_students_submission(deployment):
    ada, ben, cyd = _students(deployment)
    inbound = _exchange(deployment) / "inbound"
    submitted = [Path(p) for p in glob.glob(str(inbound / f"{cyd}+{NAME}+*"))]
    assert submitted, "cyd's submission is in the exchange"
    listing = _python_as(deployment, ben, f"import os; print(os.listdir({str(inbound)!r}))")
    assert "PermissionError" in listing.stderr, "students cannot list the inbound folder"
    probe = _python_as(deployment, ben, f"import glob; print(glob.glob({str(inbound / (cyd + '+*'))!r}))")
    assert probe.stdout.strip() == "[]", "nor find another student's submission in it"


def _get(url, token):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def test_only_graders_reach_the_formgrader_service(deployment):
    url = f"{deployment.settings.url}/services/{COURSE}/formgrader/api/assignments"
    ada = _students(deployment)[0]
    status, _ = _get(url, deployment.token(ada))
    assert status == 403, "a student's token is refused by the formgrader service"
    status, body = _get(url, deployment.token(deployment.settings.instructors[0]))
    assert status == 200 and NAME in body, "the instructor's is not"


# ------------------------------------------------------------------------------ grading and feedback
def test_collect_grade_and_release_feedback(deployment):
    ada, ben, cyd = _students(deployment)
    dep, course = deployment, deployment.settings.course_dir
    with _timed("collect (nbgrader collect)"):
        dep.grader("nbgrader", "collect", NAME)
    for s in (ada, ben, cyd):
        assert (course / "submitted" / s / NAME / f"{NAME}.ipynb").is_file()
    with _timed("grade (nn-course grade, 3 students, 2 workers)"):
        proc = dep.grader("nn-course", "grade", "--course", course, course / "submitted", "--no-progress")
    assert "failed 0" in proc.stdout, proc.stdout
    assert dep.settings.db_url.startswith("postgresql+psycopg://"), "the course's gradebook is PostgreSQL"
    # a manual grade and a comment, through nbgrader's API as the formgrader writes them
    dep.grader("python", "-c", f"""
from nbgrader.api import Gradebook
from autograder.instructor import records
c = records.Course('.')
with Gradebook(c.db_url, c.course_id) as gb:
    sub = gb.find_submission_notebook({NAME!r}, {NAME!r}, {ben!r})
    for g in sub.grades:
        if g.name == 'q_xor':
            g.manual_score = 1.0
    for k in sub.comments:
        if k.name == 'q_xor':
            k.manual_comment = 'GRADER-COMMENT: exactly, no line separates them.'
    gb.db.commit()
""")
    with _timed("release feedback (nn-course release-feedback)"):
        proc = dep.grader("nn-course", "release-feedback", "--course", course, NAME)
    for s in (ada, ben, cyd):
        assert f"released feedback: {NAME}/{s}" in proc.stdout, proc.stdout + proc.stderr
    released = sorted((_exchange(dep) / "feedback").glob("*.html"))
    assert len(released) == 3
    texts = [p.read_text() for p in released]
    assert not any("BEGIN HIDDEN TESTS" in t or "solutions_lib" in t for t in texts), "no hidden test in feedback"
    assert sum("GRADER-COMMENT" in t for t in texts) == 1, "the formgrader's comment is in ben's feedback"
    assert all("nn-course: local MathJax" in t for t in texts)
    STATE["released"] = {p.name for p in released}


def _fetch_feedback(dep, student):
    with _timed("fetch feedback (nbgrader fetch_feedback; ben, cyd, cyd again)"):
        dep.run(student, "nbgrader", "fetch_feedback", NAME, "--course", COURSE)
    pages = sorted(glob.glob(str(_work_folder(dep, student) / "feedback" / "*" / f"{NAME}.html")))
    assert pages, f"{student} got feedback"
    return [Path(p) for p in pages]


def test_students_fetch_their_feedback_and_only_theirs(deployment):
    ada, ben, cyd = _students(deployment)
    ben_pages = _fetch_feedback(deployment, ben)
    cyd_pages = _fetch_feedback(deployment, cyd)
    assert "GRADER-COMMENT" in ben_pages[-1].read_text()
    assert BUG["fails"] in cyd_pages[-1].read_text()
    listing = _python_as(deployment, ben, f"import os; print(os.listdir({str(_exchange(deployment) / 'feedback')!r}))")
    assert "PermissionError" in listing.stderr, "students cannot list the released feedback"
    other = _python_as(deployment, ben, f"print(open({str(cyd_pages[-1])!r}).read()[:10])")
    assert other.returncode != 0, "nor read another student's fetched feedback"


def test_the_browser_student_fetches_feedback_and_sees_formulas(deployment, chromium, screenshots):
    ada = _students(deployment)[0]
    context, page = _login(chromium, deployment, ada)
    try:
        _wait_for_lab(page)
        _assignment_list(page)
        item = page.locator("#submitted_assignments_list .list_item", has_text=NAME).first
        item.wait_for()
        button = item.get_by_role("button", name="Fetch Feedback")
        button.wait_for(timeout=30_000)
        t = time.perf_counter()
        button.click()
        page.locator("#submitted_assignments_list", has_text="view feedback").wait_for(timeout=60_000)
        TIMINGS["browser: Fetch Feedback"] = time.perf_counter() - t
        page.screenshot(path=str(screenshots / "6-student-feedback-fetched.png"))
        (fb,) = glob.glob(str(_work_folder(deployment, ada) / "feedback" / "*" / f"{NAME}.html"))
        rel = Path(fb).relative_to(_work_folder(deployment, ada).parents[1])
        page.goto(f"{deployment.settings.url}/user/{ada}/files/{rel}")
        page.wait_for_function("() => document.querySelectorAll('.MathJax, .MathJax_Display').length > 0 "
                               "&& !document.querySelector('#MathJax_Message[style*=\"block\"]')", timeout=60_000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(screenshots / "7-student-feedback-formulas.png"), full_page=False)
        rendered = page.evaluate("() => document.querySelectorAll('.MathJax, .MathJax_Display').length")
        assert rendered > 3, "the formulas are typeset"
        body = page.inner_text("body")
        assert "Score:" in body or "score" in body.lower()
        assert not any("cdnjs" in u or "mathjax" in u.lower() for u in context.blocked), \
            f"MathJax came from off the machine: {context.blocked}"
    except Exception:
        page.screenshot(path=str(screenshots / "FAILED-student-feedback.png"))
        raise
    finally:
        context.close()


# ------------------------------------------------------------------------------ resubmission
def test_resubmission_leaves_no_stale_feedback(deployment):
    ada, ben, cyd = _students(deployment)
    dep, course = deployment, deployment.settings.course_dir
    folder = _work_folder(dep, cyd)
    time.sleep(1.1)                                         # a later timestamp
    _write_as(cyd, folder / f"{NAME}.ipynb", _answers("reference"))
    dep.run(cyd, "nbgrader", "submit", NAME, "--course", COURSE)
    dep.grader("nbgrader", "collect", "--update", NAME)
    proc = dep.grader("nn-course", "release-feedback", "--course", course, NAME, "--student", cyd, check=False)
    assert "submitted again since it was graded" in proc.stdout, proc.stdout
    assert {p.name for p in (_exchange(dep) / "feedback").glob("*.html")} == STATE["released"], \
        "nothing was released for the new submission before it was graded"
    proc = dep.grader("nn-course", "grade", "--course", course, course / "submitted", "--no-progress")
    assert "graded 1," in proc.stdout, proc.stdout           # only cyd's new submission
    dep.grader("nn-course", "release-feedback", "--course", course, NAME)
    now = {p.name for p in (_exchange(dep) / "feedback").glob("*.html")}
    assert len(now) == 3 and len(now - STATE["released"]) == 1, "cyd's old feedback left the exchange"
    pages = _fetch_feedback(dep, cyd)
    assert len(pages) == 2, "her copy of the first feedback stays, under its own timestamp"
    old, new = sorted(pages, key=lambda p: p.parent.name)

    def total(page):
        import re

        got, of = re.search(r"Score: ([0-9.]+) / ([0-9.]+)", page.read_text()).groups()
        return float(got), float(of)
    assert total(new)[0] > total(old)[0], f"the new feedback grades the new submission: {total(old)} -> {total(new)}"


# ------------------------------------------------------------------------------ the instructor's formgrader
def test_the_instructor_opens_the_formgrader_and_it_is_not_blank(deployment, chromium, screenshots):
    teacher = deployment.settings.instructors[0]
    context, page = _login(chromium, deployment, teacher)
    try:
        _wait_for_lab(page)
        page.goto(f"{deployment.settings.url}/services/{COURSE}/lab")
        _wait_for_lab(page)
        page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
        page.get_by_role("menuitem", name="Formgrader").click()
        frame_el = page.wait_for_selector("iframe", timeout=60_000)
        frame = frame_el.content_frame()
        frame.wait_for_selector("text=Manage Assignments", timeout=60_000)
        frame.wait_for_selector(f"text={NAME}", timeout=60_000)
        page.screenshot(path=str(screenshots / "8-instructor-formgrader.png"))
    except Exception:
        page.screenshot(path=str(screenshots / "FAILED-formgrader.png"))
        raise
    finally:
        context.close()
