"""After grading: the grades CSV, feedback for every student, and a report on the whole class.

    nn-course report [--course DIR] [--out DIR] [--no-feedback]

Writes, into ``--out`` (default ``<course>/report``):

- ``grades.csv``: nbgrader's own export (one row per student and assignment);
- ``exercises.csv``: one row per student, assignment and exercise: nbgrader's score in the
  student's kernel, the re-check's, the final score, the flags, and the submission's lateness
  (``days_late``: started days after the due date and extension; ``late_penalty``: the points
  nbgrader took off the notebook, the same on each row of a submission);
- ``flags.csv``: every flag with its evidence;
- ``index.html`` with PNG plots: the score distribution of every exercise, the totals, the
  most frequent diagnoses ("31 % of submissions: dW ... is transposed"), the flagged
  submissions with their evidence, lateness per assignment (on time, late with a penalty,
  0 points past the cutoff or the policy's last day, no timestamp) with the late submissions,
  and grading times.

and the feedback that is missing (``feedback.write_feedback``: nbgrader's, without the hidden
tests), in ``<course>/feedback/<student>/<assignment>/``.
"""
import csv
import html
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from .feedback import write_feedback
from .records import Course, ledger_records

NOT_ATTEMPTED = "is not implemented yet"


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
    """One row per student, assignment and exercise (``exercises.csv``)."""
    rows = []
    for r in records:
        kinds = " ".join(sorted({f.kind for f in r.actionable_flags}))
        for grade_id, s in r.scores.items():
            rows.append({"student": r.student, "assignment": r.assignment, "exercise": grade_id, "kind": s.kind,
                         "max": s.max, "nbgrader": s.nbgrader, "final": s.final,
                         "status": r.status, "flags": kinds, **_late_columns(r)})
    return rows


def _late_columns(record):
    late = record.lateness or {}
    return {"days_late": late.get("days_late", "") if late.get("due") else "",
            "late_penalty": late.get("penalty", "") if late.get("due") else ""}


def lateness_kind(record):
    """How a submission stands with its due date: 'on time', 'late', 'zero' (past the cutoff or
    the policy's last day), 'no timestamp', or '' (no due date, or nothing submitted)."""
    late = record.lateness or {}
    if not late.get("due") or record.status in ("missing", ""):
        return ""
    if not late.get("timestamp"):
        return "no timestamp"
    if not late.get("seconds_late"):
        return "on time"
    return "zero" if late.get("past") else "late"


def frequent_diagnoses(records, top=8):
    """{assignment: [(share, exercise, diagnosis, count)]}: the most frequent failure messages."""
    per = defaultdict(Counter)
    graded = Counter()
    for r in records:
        if r.status != "graded":
            continue
        graded[r.assignment] += 1
        for grade_id, message in r.diagnoses.items():
            key = diagnosis_key(message)
            if "not attempted" not in key and "DeadKernelError" not in key and "NotebookTimeLimit" not in key:
                per[r.assignment][(grade_id, key)] += 1
    return {a: [(count / graded[a], g, key, count) for (g, key), count in c.most_common(top)]
            for a, c in per.items()}


# ------------------------------------------------------------------------------ plots
def _percent(record):
    """The record's autograded score in % (None without test cells)."""
    tests = record.tests.values()
    maximum = sum(s.max for s in tests)
    return 100 * sum(s.final or 0 for s in tests) / maximum if maximum else None


def _exercise_plot(plt, rs, assignment):
    """Bars per exercise: the share of submissions with full, partial and no marks."""
    exercises = list(rs[0].tests)
    full, part, zero = [], [], []
    for g in exercises:
        finals = [(r.scores[g].final or 0.0, r.scores[g].max) for r in rs if g in r.scores]
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
    return fig


def _totals_plot(plt, graded, assignments):
    totals = defaultdict(list)
    for r in graded:
        if _percent(r) is not None:
            totals[r.assignment].append(_percent(r))
    if not totals:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = [a for a in assignments if a in totals]
    ax.boxplot([totals[a] for a in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), [a[:2] for a in names])
    ax.set_ylabel("autograded score (%)")
    ax.set_xlabel("assignment")
    ax.set_title("scores per assignment (box: quartiles, triangle: mean)")
    return fig


LATENESS_COLOURS = {"on time": "tab:green", "late": "tab:orange", "zero": "tab:red", "no timestamp": "tab:grey"}


def _lateness_plot(plt, records, assignments):
    """Stacked bars per assignment: submissions on time, late (penalised), 0 points, without a timestamp."""
    counts = {a: Counter(lateness_kind(r) for r in records if r.assignment == a) for a in assignments}
    names = [a for a in assignments if sum(n for k, n in counts[a].items() if k)]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(8, 3.2))
    bottom = [0] * len(names)
    for kind, colour in LATENESS_COLOURS.items():
        heights = [counts[a][kind] for a in names]
        ax.bar(range(len(names)), heights, bottom=bottom, color=colour, label=kind)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xticks(range(len(names)), [a[:2] for a in names])
    ax.set_xlabel("assignment")
    ax.set_ylabel("submissions")
    ax.set_title("submissions and their due dates (zero: past the cutoff or the last late day)")
    ax.legend(fontsize=7)
    return fig


def _times_plot(plt, records):
    seconds = [r.seconds["total"] for r in records if r.seconds.get("total")]
    if not seconds:
        return None
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(seconds, bins=30, color="tab:blue")
    ax.set_xlabel("seconds per submission (intake + nbgrader + re-check)")
    ax.set_ylabel("submissions")
    return fig


def _plots(records, out, assignments):
    """The report's figures as PNG files in ``out``; returns {key: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = {}

    def save(fig, key, name):
        if fig is None:
            return
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        images[key] = name

    graded = [r for r in records if r.scores]
    for assignment in assignments:
        rs = [r for r in graded if r.assignment == assignment]
        if rs and rs[0].tests:
            save(_exercise_plot(plt, rs, assignment), assignment, f"scores_{assignment}.png")
    save(_totals_plot(plt, graded, assignments), "totals", "totals.png")
    save(_lateness_plot(plt, records, assignments), "lateness", "lateness.png")
    save(_times_plot(plt, records), "times", "times.png")
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
    course = Course(course_dir)
    out = Path(out) if out else course.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    records = ledger_records(course)
    if not records:
        raise FileNotFoundError(f"no graded submissions in {course.ledger}: run `nn-course grade` first.")
    export_grades(course, out / "grades.csv")
    _csv(out / "exercises.csv", exercise_rows(records), ["student", "assignment", "exercise", "kind", "max",
                                                         "nbgrader", "final", "status", "flags", "days_late",
                                                         "late_penalty"])
    flags = [{"student": r.student, "assignment": r.assignment, **f.as_dict()} for r in records for f in r.flags]
    _csv(out / "flags.csv", flags, ["student", "assignment", "severity", "kind", "cell", "message", "evidence"])
    if feedback:
        written = write_feedback(course, records, force=force_feedback, log=log)
        log(f"feedback: {written} written, in {course.root / 'feedback'}")
    images = _plots(records, out, course.assignments)
    index = out / "index.html"
    quality = (out / "test-quality" / "index.html").exists()      # written by `nn-course mutants`
    index.write_text(_html(course, records, images, frequent_diagnoses(records), feedback, quality), encoding="utf-8")
    log(f"report: {index}")
    return index


STYLE = ("<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
         "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
         "text-align:left;vertical-align:top;font-size:90%}th{background:#f3f3f3}"
         ".tampering{color:#b00}.review{color:#a60}code{font-size:90%}</style>")
e = html.escape


def _html(course, records, images, diagnoses, feedback, quality=False):
    """index.html: the summary, the figures, the frequent diagnoses, the flags, the times; with
    ``quality``, a link to the test quality page of ``nn-course mutants`` (test-quality/)."""
    students = sorted({r.student for r in records})
    graded = [r for r in records if r.status == "graded"]
    flagged = [r for r in records if r.actionable_flags]
    parts = [f"<!doctype html><meta charset='utf-8'><title>Class report: {e(course.course_id)}</title>", STYLE,
             f"<h1>Class report: {e(course.course_id)}</h1>",
             f"<p>{len(students)} students, {len(course.assignments)} assignments, {len(records)} submissions "
             f"({len(graded)} graded, {len(records) - len(graded)} missing, unreadable or failed); "
             f"{len(flagged)} flagged. Grades: <a href='grades.csv'>grades.csv</a> (nbgrader's export), "
             "<a href='exercises.csv'>exercises.csv</a>, <a href='flags.csv'>flags.csv</a>"
             + (f"; feedback in <code>{e(str(course.root / 'feedback'))}</code>" if feedback else "") + ".</p>"]
    if quality:
        parts.append("<p><a href='test-quality/index.html'>Test quality</a>: how many mutants of the reference "
                     "answers the tests kill, and whether their messages name the change (<code>nn-course "
                     "mutants</code>).</p>")
    if any(not r.isolated for r in graded):
        parts.append("<p class='review'><b>Some submissions were graded without filesystem isolation</b> "
                     "(bubblewrap missing): their code could read files of the course.</p>")
    if "totals" in images:
        parts.append(f"<h2>Scores</h2><img src='{images['totals']}'>")
    parts.append("<h2>Exercises</h2>")
    for assignment in course.assignments:
        if assignment in images:
            parts.append(f"<h3>{e(assignment)}</h3><img src='{images[assignment]}'>")
        parts += _diagnoses_table(diagnoses.get(assignment, []))
    parts += _flags_table(flagged)
    parts += _lateness_section(records, images)
    parts += _times_section(records, images)
    return "\n".join(parts)


def _diagnoses_table(rows):
    if not rows:
        return []
    lines = ["<table><tr><th>share of submissions</th><th>exercise</th><th>diagnosis</th></tr>"]
    for share, grade_id, key, count in rows:
        lines.append(f"<tr><td>{100 * share:.0f} % ({count})</td><td>{e(grade_id)}</td><td>{e(key)}</td></tr>")
    return lines + ["</table>"]


def _flags_table(flagged):
    lines = [f"<h2>Flagged submissions ({len(flagged)})</h2><table><tr><th>student</th><th>assignment</th>"
             "<th>flag</th><th>what happened</th><th>evidence</th></tr>"]
    for r in flagged:
        for f in r.actionable_flags:
            lines.append(f"<tr class='{e(f.severity)}'><td>{e(r.student)}</td><td>{e(r.assignment)}</td>"
                         f"<td>{e(f.kind)}</td><td>{e(f.message)}</td><td><code>{e(f.evidence[:300])}</code></td></tr>")
    return lines + ["</table>"]


def _lateness_section(records, images):
    late = [r for r in records if lateness_kind(r) in ("late", "zero")]
    if "lateness" not in images:
        return []
    lines = [f"<h2>Deadlines</h2><img src='{images['lateness']}'>",
             f"<p>{len(late)} late submissions; nbgrader's penalties are in grades.csv "
             "(<code>late_submission_penalty</code>, <code>score</code> = raw score − penalty).</p>"]
    if late:
        lines.append("<table><tr><th>student</th><th>assignment</th><th>submitted</th><th>due</th>"
                     "<th>extension</th><th>days late</th><th>penalty (points)</th></tr>")
        for r in late:
            x = r.lateness
            lines.append(f"<tr><td>{e(r.student)}</td><td>{e(r.assignment)}</td><td>{e(x['timestamp'])}</td>"
                         f"<td>{e(x['due'])}</td><td>{x.get('extension', 0) / 3600:g} h</td>"
                         f"<td>{x.get('days_late')}{' (0 points: ' + e(x['past']) + ')' if x.get('past') else ''}</td>"
                         f"<td>{x.get('penalty', 0):g}</td></tr>")
        lines.append("</table>")
    return lines


def _times_section(records, images):
    timed = [r for r in records if r.seconds.get("total")]
    if not timed:
        return []
    med = {k: statistics.median([r.seconds.get(k, 0) for r in timed]) for k in ("intake", "autograde", "autograde_cells", "total")}
    seconds = [r.seconds["total"] for r in timed]
    lines = [f"<h2>Grading times</h2><p>{len(seconds)} submissions, {sum(seconds):.0f} s of worker time; "
             f"median per submission {med['total']:.2f} s (intake {med['intake']:.2f} s, nbgrader "
             f"{med['autograde']:.2f} s, of which cells {med['autograde_cells']:.2f} s), slowest {max(seconds):.1f} s.</p>"]
    if "times" in images:
        lines.append(f"<img src='{images['times']}'>")
    return lines
