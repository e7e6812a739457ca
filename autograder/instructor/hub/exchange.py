"""``nn-course release-feedback``: the feedback of the last graded submission, through the exchange.

Feedback is released only where it belongs to the submission the ledger graded last; it is
rewritten first when the gradebook changed since (manual grades, comments); formulas render
with the MathJax that the students' own Jupyter server serves (offline); the feedback of
earlier submissions is removed from the exchange (``grading/released_feedback.json``).
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..feedback import feedback_path, write_feedback
from ..nbcells import read_config
from ..records import Course, Unit, fingerprint, ledger_records

#: MathJax 2 as the jupyter-server-mathjax package serves it from every Jupyter server.
LOCAL_MATHJAX = "static/jupyter_server_mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
MATHJAX_MARK = "nn-course: local MathJax"
CDN_SCRIPT = re.compile(r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*">\s*</script>')


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
    from jupyter_core.paths import jupyter_config_path

    root = "/srv/nbgrader/exchange"
    for folder in reversed([str(course_dir)] + list(jupyter_config_path())):
        path = Path(folder) / "nbgrader_config.py"
        if path.is_file() and folder != str(course_dir):
            try:
                cfg = read_config(path.parent)
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
    course = Course(course_dir)
    records = [r for r in ledger_records(course)
               if r.status == "graded" and assignment in (None, r.assignment) and student in (None, r.student)]
    manifest_path = course.state / "released_feedback.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    result = {"released": [], "skipped": []}
    stale = []
    for record in records:
        key = record.key
        submitted = course.root / "submitted" / record.student / record.assignment
        if not submitted.is_dir():
            result["skipped"].append((key, "no submission in submitted/ (graded from elsewhere)"))
            continue
        unit = Unit(record.student, record.assignment, str(submitted))
        if record.fingerprint != fingerprint(unit, course):
            result["skipped"].append((key, "submitted again since it was graded: run `nn-course grade` first"))
            continue
        if not (submitted / "submission_secret.txt").is_file():
            result["skipped"].append((key, "no submission_secret.txt: not collected from the exchange"))
            continue
        html_path = feedback_path(course, record)
        # the worker writes the feedback just before the ledger record: the grading began at
        # the record's time minus its duration
        graded = course.ledger_path(record.assignment, record.student).stat().st_mtime - \
            record.seconds.get("total", 0) - record.seconds.get("feedback", 0) - 2
        state = _gradebook_state(course, record)
        seen = manifest.get(key, {}).get("gradebook")
        if (not html_path.is_file() or html_path.stat().st_mtime < graded
                or (seen is not None and seen != state) or (seen is None and _manually_graded(state))):
            stale.append(record)         # written before the last grading or the formgrader's changes
    if stale:
        write_feedback(course, stale, force=True, log=log)
    from nbgrader.utils import notebook_hash

    skipped = {k for k, _ in result["skipped"]}
    ready = {}                                       # {assignment: [record]}
    for record in records:
        key = record.key
        if key in skipped:
            continue
        submitted = course.root / "submitted" / record.student / record.assignment
        html_path = feedback_path(course, record)
        if not html_path.is_file():
            result["skipped"].append((key, "nbgrader wrote no feedback (see the log above)"))
            continue
        for name in ("timestamp.txt", "submission_secret.txt"):
            shutil.copy(submitted / name, html_path.parent / name)
        for page in html_path.parent.glob("*.html"):
            page.write_text(offline_mathjax(page.read_text(encoding="utf-8")), encoding="utf-8")
        ready.setdefault(record.assignment, []).append(record)
    outbound = _exchange_root(course.dir) / course.course_id / "feedback"
    for name, group in ready.items():
        # nbgrader's release_feedback, once per assignment, for exactly the students ready
        students = {r.student for r in group}
        others = sorted({p.parent.parent.name for p in (course.root / "feedback").glob(f"*/{name}/*.html")}
                        - students)
        args = [sys.executable, "-m", "nbgrader", "release_feedback", name]
        if others:
            args.append("--CourseDirectory.student_id_exclude=" + ",".join(others))
        proc = subprocess.run(args, cwd=course.dir, capture_output=True, text=True)
        if proc.returncode != 0:
            result["skipped"] += [(r.key, "nbgrader release_feedback failed: "
                                   + proc.stderr.strip()[-500:]) for r in group]
            continue
        for record in group:
            key = record.key
            html_path = feedback_path(course, record)
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
            sub = gb.find_submission(record.assignment, record.student)
            state = []
            for nb in sub.notebooks:
                state += [(g.name, g.auto_score, g.manual_score, g.extra_credit) for g in nb.grades]
                state += [(c.name, c.manual_comment) for c in nb.comments]
    except MissingEntry:
        return ""
    return json.dumps(sorted(state, key=str))


def _manually_graded(state):
    return any(len(row) == 4 and row[2] is not None or len(row) == 2 and row[1] for row in json.loads(state or "[]"))
