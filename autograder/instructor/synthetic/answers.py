"""Submissions made from the reference answers: what a correct (or a buggy) student hands in.

- ``reference_answers(source_nb)``: {grade_id: source} of every answer cell, markers removed;
- ``with_answers(release_nb, source_nb, replace)``: the release notebook with the reference
  answers filled in (or ``replace[grade_id]`` for some of them);
- ``load_bugs()``: the catalogue of typical student bugs, per assignment (``bugs.json``: the
  answer cell a bug replaces, its source, the one test cell it must fail, the points that
  cell keeps (``score``: partial credit) and what it costs in words (``cost``), and words the
  feedback must show).
"""
import copy
import json
import textwrap
from pathlib import Path

from ..nbcells import grade_id, is_answer

BUGS_FILE = Path(__file__).with_name("bugs.json")


def strip_markers(source):
    """A solution cell as the student who gets it right would leave it: markers removed."""
    keep = [line for line in source.splitlines()
            if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line]
    return textwrap.dedent("\n".join(keep)) if keep and not keep[0].startswith((" ", "\t")) \
        else "\n".join(keep)


def reference_answers(source_nb):
    """{grade_id: source} of the reference answer of every answer cell."""
    return {grade_id(c): strip_markers(c.source) for c in source_nb.cells if is_answer(c)}


def with_answers(release_nb, source_nb, replace=None):
    """The release notebook with answer cells filled: reference answers, or ``replace[grade_id]``."""
    answers = reference_answers(source_nb)
    answers.update(replace or {})
    nb = copy.deepcopy(release_nb)
    for cell in nb.cells:
        if is_answer(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def load_bugs():
    """{assignment: [{"answer", "source", "fails", "score", "cost", "phrase"}, ...]}, the catalogued bugs."""
    return json.loads(BUGS_FILE.read_text(encoding="utf-8"))
