"""Feedback for students: nbgrader's ``generate_feedback``, without the hidden tests.

Feedback goes where nbgrader puts it, ``<course>/feedback/<student>/<assignment>/``.
nbgrader's own feedback shows the hidden tests: the autograded notebook holds them, and
IPython's tracebacks quote their lines. Here the ``HideHiddenTests`` preprocessor removes the
hidden regions from the test cells, shortens every traceback to its last line (the checks'
message, written for students), adds the grader's notes where points were withheld, and says
at the top when the submission was late, by how much, and what the late penalty took off
(``deadlines.explain`` of the submission's lateness, from the gradebook: the worker writes the
feedback before the ledger; nbgrader's own header shows the penalty's points).
"""
import html
import os
import re
import weakref
from collections import defaultdict
from datetime import timezone
from pathlib import Path

from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.exporters.html import WidgetsDataTypeFilter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.writers import FilesWriter
from nbformat.v4 import new_markdown_cell
from nbgrader.converters import GenerateFeedback
from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.utils import capture_log, temp_attrs
from traitlets import Any
from traitlets.config import Config

from .deadlines import explain, lateness
from .nbcells import grade_id
from .records import read_ledger

#: Flags noted at the top of the feedback even when they name a cell.
GENERAL_KINDS = ("split-cell", "wrong-file-name")


class HideHiddenTests(ClearHiddenTests):
    """Feedback without hidden tests: hidden regions out, tracebacks cut to the message."""
    course = Any(None, help="the records.Course whose ledger holds the grader's notes").tag(config=True)

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        meta = resources.get("nbgrader", {})
        record = read_ledger(self.course, meta.get("assignment"), meta.get("student")) if self.course else None
        notes = _notes(record)
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            if cell.cell_type == "code":
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error":
                        out["traceback"] = [f"{out.get('ename')}: {out.get('evalue')}"]
            if grade_id(cell) in notes:
                cells.append(new_markdown_cell("**Grader:** " + " ".join(notes[grade_id(cell)])))
        nb.cells = cells
        general = [f.message for f in (record.flags if record else [])
                   if not f.cell or f.kind in GENERAL_KINDS]
        late = _lateness(self.course, meta) if self.course else {}
        if late.get("seconds_late"):
            nb.cells.insert(0, new_markdown_cell(f"**Late submission.** {html.escape(explain(late))}"))
        if general:
            nb.cells.insert(0, new_markdown_cell("**Notes from the grader on this submission:**\n\n"
                                                 + "\n".join(f"- {html.escape(m)}" for m in general)))
        return nb, resources


def _lateness(course, meta):
    """The submission's lateness as the gradebook has it now (``deadlines.lateness``)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            stamp = gb.find_submission(meta.get("assignment"), meta.get("student")).timestamp
        except MissingEntry:
            return {}
    deadline = course.deadlines.for_unit(meta.get("assignment"), meta.get("student"))
    return lateness(deadline, stamp and stamp.replace(tzinfo=timezone.utc), meta.get("late_penalty") or 0.0)


def _notes(record):
    """{grade_id: [note]} for the cells of a submission where the grader has something to say."""
    notes = defaultdict(list)
    for flag in record.flags if record else []:
        if flag.cell and flag.actionable:
            notes[flag.cell].append(flag.message)
    return notes


class FeedbackHTMLExporter(HTMLExporter):
    """nbconvert's HTML exporter without its second pass where that pass changes nothing.

    After rendering, nbconvert parses the whole page with BeautifulSoup to give images without
    ``alt`` a text and JupyterLab's input and output areas a ``tabindex``, and serialises it
    again: 60 % of a feedback page's time, for nbgrader's feedback template (classic
    markup: no such areas) and notebooks whose images all have an ``alt`` (only nothing to
    change). When there is something to change, nbconvert's own pass runs.
    """

    def from_notebook_node(self, nb, resources=None, **kw):
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        self.register_filter("highlight_code", self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        page, resources = TemplateExporter.from_notebook_node(self, nb, resources, **kw)
        if "jp-Cell-inputWrapper" in page or "jp-OutputArea-output" in page or _IMG_WITHOUT_ALT.search(page):
            return super().from_notebook_node(nb, resources, **kw)
        return page, resources


#: An <img> tag without an alt attribute (what nbconvert's second pass would change).
_IMG_WITHOUT_ALT = re.compile(r"<img\b(?![^>]*\balt=)[^>]*>", re.IGNORECASE)


class OneExporterFeedback(GenerateFeedback):
    """nbgrader's ``GenerateFeedback`` keeping one HTML exporter per API (per worker).

    nbgrader makes a new exporter for every call, and with it a new Jinja environment that
    parses the feedback templates again (a quarter of a second per notebook). The exporter
    holds nothing of a notebook between calls: its preprocessors read what they need from each
    notebook's resources. ``start`` is nbgrader's ``BaseConverter.start`` with the exporter kept.
    """
    exporters = weakref.WeakKeyDictionary()      # {API: its exporter}, gone with the API

    def start(self):
        self.init_notebooks()
        self.writer = FilesWriter(parent=self, config=self.config)
        if self.parent not in self.exporters:
            exporter = self.exporter_class(parent=self.parent, config=self.config)
            for pp in self.preprocessors:
                exporter.register_preprocessor(pp)
            self.exporters[self.parent] = exporter
        self.exporter = self.exporters[self.parent]
        here = os.getcwd()
        os.chdir(self.coursedir.root)
        try:
            self.convert_notebooks()
        finally:
            os.chdir(here)


def _generate_feedback(api, assignment, student):
    """``api.generate_feedback(assignment, student)`` as nbgrader's API does it, the exporter kept."""
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    with temp_attrs(api.coursedir, assignment_id=assignment, student_id=student):
        app = OneExporterFeedback(coursedir=api.coursedir, parent=api)
        app.update_config(config)
        app.force = True
        return capture_log(app)


def feedback_api(course):
    """nbgrader's API for ``course``, with feedback that hides the hidden tests."""
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.preprocessors import GetGrades

    config = course.fresh_config()
    config.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
    config.GenerateFeedback.exporter_class = FeedbackHTMLExporter
    config.HideHiddenTests.course = course
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def feedback_path(course, record):
    return course.root / "feedback" / record.student / record.assignment / (Path(record.notebook).stem + ".html")


def write_feedback(course, records, force=False, api=None, log=print):
    """Feedback HTML for the graded ``records`` (nbgrader's generate_feedback, hidden tests hidden).

    Without ``force`` only missing feedback is written (the grading workers write it as they
    grade); ``force`` rewrites it all, for scores changed by hand in formgrader. Returns how
    many were written.
    """
    api = api or feedback_api(course)
    written = 0
    for record in records:
        if record.status != "graded" or (not force and feedback_path(course, record).exists()):
            continue
        result = _generate_feedback(api, record.assignment, record.student)
        if result.get("success"):
            written += 1
        else:
            log(f"feedback for {record.key} failed: {(result.get('error') or '')[-300:]}")
    return written
