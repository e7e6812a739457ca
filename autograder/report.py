"""After grading: the grades CSV, feedback for every student, and a report on the whole class.

    nn-course report [--course DIR] [--out DIR] [--no-feedback]

Writes, into ``--out`` (default ``<course>/report``):

- ``grades.csv``: nbgrader's own export (one row per student and assignment);
- ``exercises.csv``: one row per student, assignment and exercise: nbgrader's score in the
  student's kernel, the re-check's, the final score, and the flags;
- ``flags.csv``: every flag with its evidence;
- ``index.html`` with PNG plots: the score distribution of every exercise, the totals, the
  most frequent diagnoses ("31 % of submissions: dW ... is transposed"), the flagged
  submissions with their evidence, and grading times.

Feedback (nbgrader's ``generate_feedback``) goes where nbgrader puts it,
``<course>/feedback/<student>/<assignment>/``. nbgrader's feedback shows the hidden tests:
the autograded notebook holds them, and IPython's tracebacks quote their lines. Here the
``HideHiddenTests`` preprocessor removes the hidden regions from the test cells, shortens
every traceback to its last line (the checks' message, written for students), and adds the
grader's note where points were withheld.
"""
import csv
import html
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from . import build, grading

NOT_ATTEMPTED = "is not implemented yet"


# ------------------------------------------------------------------------------ feedback
def _feedback_preprocessor():
    from nbformat.v4 import new_markdown_cell
    from nbgrader.preprocessors import ClearHiddenTests

    class HideHiddenTests(ClearHiddenTests):
        """Feedback without hidden tests: hidden regions out, tracebacks cut to the message."""

        course = None                            # the grading.Course, set before use

        def preprocess(self, nb, resources):
            nb, resources = super().preprocess(nb, resources)
            student = resources.get("nbgrader", {}).get("student")
            assignment = resources.get("nbgrader", {}).get("assignment")
            record = grading.read_ledger(self.course, assignment, student) if self.course else None
            notes = _notes(record)
            cells = []
            for cell in nb.cells:
                cells.append(cell)
                if cell.cell_type == "code":
                    for out in cell.get("outputs", []):
                        if out.get("output_type") == "error":
                            out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
                grade_id = build.grade_id(cell)
                if grade_id in notes:
                    cells.append(new_markdown_cell("**Grader:** " + " ".join(notes[grade_id])))
            nb.cells = cells
            if record and record.get("flags"):
                general = [f["message"] for f in record["flags"]
                           if not f.get("cell") or f.get("kind") in ("split-cell", "wrong-file-name")]
                if general:
                    nb.cells.insert(0, new_markdown_cell(
                        "**Notes from the grader on this submission:**\n\n"
                        + "\n".join(f"- {html.escape(m)}" for m in general)))
            return nb, resources

    return HideHiddenTests


def _notes(record):
    """{grade_id: [note]} for the cells of a submission where the grader has something to say."""
    notes = defaultdict(list)
    for flag in (record or {}).get("flags", []):
        if flag.get("cell") and flag.get("severity") in ("tampering", "review"):
            notes[flag["cell"]].append(flag["message"])
    return notes


def feedback_api(course):
    """nbgrader's API for ``course``, with feedback that hides the hidden tests."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

    hide = _feedback_preprocessor()
    hide.course = course
    config = grading.course_config(course.dir)
    config.GenerateFeedback.preprocessors = [GetGrades, hide, CSSHTMLHeaderPreprocessor]
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def feedback_path(course, record):
    return course.root / "feedback" / record["student"] / record["assignment"] / (
        Path(record["notebook"]).stem + ".html")


def write_feedback(course, records, force=False, api=None, log=print):
    """Feedback HTML for the graded ``records`` (nbgrader's generate_feedback, hidden tests hidden).

    Without ``force`` only missing feedback is written (the grading workers write it as they
    grade); ``force`` rewrites it all, for scores changed by hand in formgrader. Returns how
    many were written.
    """
    api = api or feedback_api(course)
    written = 0
    for record in records:
        if record.get("status") != "graded":
            continue
        if not force and feedback_path(course, record).exists():
            continue
        result = api.generate_feedback(record["assignment"], record["student"])
        if result.get("success"):
            written += 1
        else:
            log(f"feedback for {record['assignment']}/{record['student']} failed: "
                f"{(result.get('error') or '')[-300:]}")
    return written


# ------------------------------------------------------------------------------ numbers
def diagnosis_key(message):
    """A diagnosis without its numbers, so that the same bug in different shapes counts once."""
    text = message.split(": ", 1)[1] if message.startswith(("AssertionError: ", "NameError: ")) else message
    if NOT_ATTEMPTED in text:
        return "not implemented yet (not attempted)"
    text = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    return first[:160]


def exercise_rows(records):
    rows = []
    for r in records:
        kinds = sorted({f["kind"] for f in r.get("flags", []) if f.get("severity") in ("tampering", "review")})
        for grade_id, s in r.get("scores", {}).items():
            rows.append({"student": r["student"], "assignment": r["assignment"], "exercise": grade_id,
                         "kind": s.get("kind", ""), "max": s.get("max"), "nbgrader": s.get("nbgrader"),
                         "recheck": s.get("recheck"), "final": s.get("final"), "status": r.get("status"),
                         "flags": " ".join(kinds)})
    return rows


def frequent_diagnoses(records, top=8):
    """{assignment: [(share, exercise, diagnosis, count)]}: the most frequent failure messages."""
    per = defaultdict(Counter)
    graded = Counter()
    for r in records:
        if r.get("status") != "graded":
            continue
        graded[r["assignment"]] += 1
        for grade_id, message in r.get("diagnoses", {}).items():
            key = diagnosis_key(message)
            if "not attempted" not in key and "DeadKernelError" not in key and "NotebookTimeLimit" not in key:
                per[r["assignment"]][(grade_id, key)] += 1
    return {a: [(count / graded[a], g, key, count) for (g, key), count in c.most_common(top)]
            for a, c in per.items()}


# ------------------------------------------------------------------------------ plots
def _plots(records, out, assignments):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = {}

    def save(fig, key, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        images[key] = name

    graded = [r for r in records if r.get("scores")]
    for assignment in assignments:
        rs = [r for r in graded if r["assignment"] == assignment]
        exercises = [g for g, s in (rs[0]["scores"].items() if rs else []) if s.get("kind") == "test"]
        if not exercises:
            continue
        full, part, zero = [], [], []
        for g in exercises:
            finals = [(r["scores"][g]["final"] or 0.0, r["scores"][g]["max"]) for r in rs if g in r["scores"]]
            n = max(1, len(finals))
            full.append(sum(f == m for f, m in finals) / n)
            zero.append(sum(f == 0 for f, m in finals) / n)
            part.append(1 - full[-1] - zero[-1])
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(exercises) + 1.2))
        y = range(len(exercises))
        ax.barh(y, full, color="tab:green", label="full marks")
        ax.barh(y, part, left=full, color="tab:orange", label="partial")
        ax.barh(y, zero, left=[a + b for a, b in zip(full, part)], color="tab:red", label="0 points")
        ax.set_yticks(list(y), [g.removeprefix("test_") for g in exercises])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"share of the {len(rs)} submissions")
        ax.set_title(assignment)
        ax.legend(fontsize=7, loc="lower right")
        save(fig, assignment, f"scores_{assignment}.png")

    totals = defaultdict(list)
    for r in graded:
        tests = [s for s in r["scores"].values() if s.get("kind") == "test"]
        maximum = sum(s["max"] for s in tests)
        if maximum:
            totals[r["assignment"]].append(100 * sum(s["final"] or 0 for s in tests) / maximum)
    if totals:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        names = [a for a in assignments if a in totals]
        ax.boxplot([totals[a] for a in names], showmeans=True)
        ax.set_xticks(range(1, len(names) + 1), [a[:2] for a in names])
        ax.set_ylabel("autograded score (%)")
        ax.set_xlabel("assignment")
        ax.set_title("scores per assignment (box: quartiles, triangle: mean)")
        save(fig, "totals", "totals.png")

    seconds = [r["seconds"]["total"] for r in records if r.get("seconds", {}).get("total")]
    if seconds:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(seconds, bins=30, color="tab:blue")
        ax.set_xlabel("seconds per submission (intake + nbgrader + re-check)")
        ax.set_ylabel("submissions")
        save(fig, "times", "times.png")
    return images


# ------------------------------------------------------------------------------ the report
def _csv(path, rows, fields):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def export_grades(course, path):
    """nbgrader's CSV export of the gradebook."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    with Gradebook(course.db_url, course.course_id) as gb:
        CsvExportPlugin(to=str(path)).export(gb)
    return path


def report(course_dir, out=None, feedback=True, force_feedback=False, log=print):
    """Write the grades, the feedback and the class report; returns the report's index.html.

    feedback: write the feedback that is missing or out of date (all of it with
    ``force_feedback``, for instance after manual grading changed scores).
    """
    course = grading.Course(course_dir)
    out = Path(out) if out else course.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    records = grading.ledger_records(course)
    if not records:
        raise FileNotFoundError(f"no graded submissions in {course.ledger}: run `nn-course grade` first.")
    export_grades(course, out / "grades.csv")
    rows = exercise_rows(records)
    _csv(out / "exercises.csv", rows, ["student", "assignment", "exercise", "kind", "max", "nbgrader",
                                       "recheck", "final", "status", "flags"])
    flags = [{"student": r["student"], "assignment": r["assignment"], **f}
             for r in records for f in r.get("flags", [])]
    _csv(out / "flags.csv", flags, ["student", "assignment", "severity", "kind", "cell", "message", "evidence"])
    if feedback:
        written = write_feedback(course, records, force=force_feedback, log=log)
        log(f"feedback: {written} written, in {course.root / 'feedback'}")
    images = _plots(records, out, course.assignments)
    index = out / "index.html"
    index.write_text(_html(course, records, images, frequent_diagnoses(records), feedback), encoding="utf-8")
    log(f"report: {index}")
    return index


def _html(course, records, images, diagnoses, feedback):
    e = html.escape
    students = sorted({r["student"] for r in records})
    graded = [r for r in records if r.get("status") == "graded"]
    flagged = [r for r in records if any(f.get("severity") in ("tampering", "review") for f in r.get("flags", []))]
    seconds = [r["seconds"]["total"] for r in records if r.get("seconds", {}).get("total")]
    parts = [f"<!doctype html><meta charset='utf-8'><title>Class report: {e(course.course_id)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:left;vertical-align:top;font-size:90%}th{background:#f3f3f3}"
             ".tampering{color:#b00}.review{color:#a60}code{font-size:90%}</style>",
             f"<h1>Class report: {e(course.course_id)}</h1>",
             f"<p>{len(students)} students, {len(course.assignments)} assignments, {len(records)} submissions "
             f"({len(graded)} graded, {len(records) - len(graded)} missing, unreadable or failed); "
             f"{len(flagged)} flagged. Grades: <a href='grades.csv'>grades.csv</a> (nbgrader's export), "
             "<a href='exercises.csv'>exercises.csv</a>, <a href='flags.csv'>flags.csv</a>"
             + (f"; feedback in <code>{e(str(course.root / 'feedback'))}</code>" if feedback else "") + ".</p>"]
    if any(not r.get("isolated", True) for r in graded):
        parts.append("<p class='review'><b>Some submissions were graded without filesystem isolation</b> "
                     "(bubblewrap missing): their code could read files of the course.</p>")
    if "totals" in images:
        parts.append(f"<h2>Scores</h2><img src='{images['totals']}'>")
    parts.append("<h2>Exercises</h2>")
    for assignment in course.assignments:
        if assignment in images:
            parts.append(f"<h3>{e(assignment)}</h3><img src='{images[assignment]}'>")
        rows = diagnoses.get(assignment, [])
        if rows:
            parts.append("<table><tr><th>share of submissions</th><th>exercise</th><th>diagnosis</th></tr>")
            for share, grade_id, key, count in rows:
                parts.append(f"<tr><td>{100 * share:.0f} % ({count})</td><td>{e(grade_id)}</td><td>{e(key)}</td></tr>")
            parts.append("</table>")
    parts.append(f"<h2>Flagged submissions ({len(flagged)})</h2><table><tr><th>student</th><th>assignment</th>"
                 "<th>flag</th><th>what happened</th><th>evidence</th></tr>")
    for r in flagged:
        for f in r.get("flags", []):
            if f.get("severity") not in ("tampering", "review"):
                continue
            parts.append(f"<tr class='{e(f['severity'])}'><td>{e(r['student'])}</td><td>{e(r['assignment'])}</td>"
                         f"<td>{e(f['kind'])}</td><td>{e(f.get('message', ''))}</td>"
                         f"<td><code>{e(str(f.get('evidence', ''))[:300])}</code></td></tr>")
    parts.append("</table>")
    if seconds:
        med = {k: statistics.median([r["seconds"].get(k, 0) for r in records if r.get("seconds")])
               for k in ("intake", "autograde", "recheck", "total")}
        parts.append(f"<h2>Grading times</h2><p>{len(seconds)} submissions, {sum(seconds):.0f} s of worker time; "
                     f"median per submission {med['total']:.2f} s (intake {med['intake']:.2f} s, nbgrader "
                     f"{med['autograde']:.2f} s, re-check {med['recheck']:.2f} s), slowest {max(seconds):.1f} s.</p>")
        if "times" in images:
            parts.append(f"<img src='{images['times']}'>")
    return "\n".join(parts)
