"""Bring one submitted folder into the form nbgrader can grade, and say what was wrong with it.

nbgrader stops at many things students do to notebooks: a file that is not valid JSON, a
notebook under another name, an old nbformat, a cell split in two (both halves keep the
``grade_id``, and nbgrader then reports a misleading "old metadata format" and grades
nothing). ``normalize`` repairs what can be repaired, writes the result where the grader
points nbgrader, and returns the findings, each with the evidence, for the report:

| kind | what happened | what the grader does |
|---|---|---|
| ``missing-notebook`` | no notebook in the folder | graded 0 |
| ``unreadable`` | not JSON at all | graded 0 |
| ``invalid-json`` | broken JSON (a cut-off upload, an edit by hand) | the cells before the break are kept |
| ``old-nbformat`` | nbformat 3 (or older) | converted to nbformat 4 |
| ``wrong-file-name`` | the notebook has another name | renamed |
| ``extra-notebook`` | more notebooks than the assignment has | ignored |
| ``split-cell`` | one answer cell split into several with one ``grade_id`` | the parts joined again |
| ``duplicated-test`` | a locked cell appears twice | the copies removed |
| ``deleted-cell`` | a graded or locked cell is missing | nbgrader puts it back (its points are lost if it was an answer) |
| ``edited-test`` | a locked cell (a test) was changed | nbgrader restores it; the edit is reported |
| ``unknown-cell`` | nbgrader metadata of a cell the assignment does not have | the metadata removed |

The raw submission is never changed; the normalised copy goes to ``target``.
"""
import copy
import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .nbcells import grade_id, is_locked, is_solution, is_test
from .records import Flag


@dataclass
class Intake:
    """The result of ``normalize``: the notebook nbgrader will grade (None: nothing to grade)."""
    notebook: Path = None
    findings: list = field(default_factory=list)      # [Flag]


def expected_cells(nb):
    """{grade_id: cell} of the cells with nbgrader metadata in ``nb``, in order."""
    return {grade_id(c): c for c in nb.cells if grade_id(c)}


# ------------------------------------------------------------------------------ reading
def read_notebook(path):
    """(NotebookNode or None, [Flag]): a notebook as well as it can be read."""
    raw = Path(path).read_bytes()
    text = raw.decode("utf-8", errors="replace")
    findings = []
    try:
        data = json.loads(text)
    except ValueError as err:
        data = _salvage(text)
        if data is None:
            return None, [Flag("unreadable", f"{Path(path).name} is not a notebook: it is not "
                                  f"valid JSON ({err}) and no cell could be recovered.",
                                  evidence=text[:200], severity="review")]
        findings.append(Flag("invalid-json", f"{Path(path).name} is broken JSON ({err}); "
                                f"{len(data['cells'])} cells before the break were recovered and "
                                "graded, the rest is lost.", evidence=f"at {err}", severity="review"))
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, findings + [Flag("unreadable", f"{Path(path).name} is JSON but not a "
                                         "notebook (no list of cells).", severity="review")]
    major = data.get("nbformat", 4)
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as err:               # noqa: BLE001  (any nbformat failure is reported)
        return None, findings + [Flag("unreadable", f"{Path(path).name} could not be read as a "
                                         f"notebook: {err}", severity="review")]
    if isinstance(major, int) and major < 4:
        findings.append(Flag("old-nbformat", f"{Path(path).name} uses nbformat {major}; it was "
                                "converted to nbformat 4 before grading."))
    for cell in nb.cells:
        cell.setdefault("metadata", {})
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return nb, findings


def _salvage(text):
    """The complete cells before the point where JSON breaks off, as a notebook dict, or None."""
    start = text.find('"cells"')
    start = text.find("[", start) if start >= 0 else -1
    if start < 0:
        return None
    decoder, cells, pos = json.JSONDecoder(), [], start + 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            cell, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
        if not isinstance(cell, dict) or "cell_type" not in cell:
            break
        cells.append(cell)
    if not cells:
        return None
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


# ------------------------------------------------------------------------------ cells
def repair_cells(nb, release_nb):
    """Fix the cell structure of ``nb`` in place against the release it was made from.

    Returns [Flag]. Locked cells are compared with their release version (what the
    student was given, without hidden tests).
    """
    findings = []
    expected = expected_cells(release_nb)
    seen, keep = {}, []
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid is None:
            keep.append(cell)
            continue
        if gid not in expected:
            cell.metadata.pop("nbgrader", None)
            findings.append(Flag("unknown-cell", f"a cell carried nbgrader metadata of "
                                    f"'{gid}', which this assignment does not have; it is "
                                    "graded as an ordinary cell.", cell=gid))
            keep.append(cell)
            continue
        if gid not in seen:
            seen[gid] = cell
            keep.append(cell)
            continue
        first, source = seen[gid], expected[gid]
        if is_solution(source):
            first.source = first.source + "\n" + cell.source   # the split point becomes a line break again
            findings.append(Flag("split-cell", f"the answer cell '{gid}' was split into "
                                    "parts with the same grade_id; they were joined again before "
                                    "grading.", evidence=cell.source[:300], cell=gid))
        else:
            findings.append(Flag("duplicated-test", f"the locked cell '{gid}' appears more "
                                    "than once; the copies were removed (each test counts once).",
                                    evidence=cell.source[:300], severity="review", cell=gid))
    nb.cells = keep
    previous = None
    for gid, source in expected.items():
        if gid not in seen:
            what = "answer" if is_solution(source) else "test" if is_test(source) else "locked"
            findings.append(Flag("deleted-cell", f"the {what} cell '{gid}' was missing; it "
                                    "was put back from the release before grading"
                                    + (" (as the empty answer)." if what == "answer" else "."),
                                    severity="review" if what == "test" else "info", cell=gid))
            _put_back(nb, copy.deepcopy(source), previous)
            seen[gid] = source
        elif is_locked(source) and seen[gid].source != source.source:
            if is_test(source):
                findings.append(Flag("edited-test", f"the test cell '{gid}' was edited; "
                                        "nbgrader restores the original before grading.",
                                        evidence=_first_difference(source.source, seen[gid].source),
                                        severity="review", cell=gid))
        previous = gid
    return findings


def _put_back(nb, cell, after_grade_id):
    """Insert ``cell`` right after the cell ``after_grade_id`` (None: at the start).

    nbgrader's own ``add_missing_cells`` fails (KeyError) when two cells in a row are gone,
    as in a cut-off upload, so missing cells are put back here.
    """
    cell["id"] = uuid.uuid4().hex[:8]
    index = 0
    if after_grade_id is not None:
        index = next(i for i, c in enumerate(nb.cells) if grade_id(c) == after_grade_id) + 1
    nb.cells.insert(index, nbformat.from_dict(cell))


def _first_difference(original, edited):
    a, b = original.splitlines(), edited.splitlines()
    for i in range(max(len(a), len(b))):
        old = a[i] if i < len(a) else "<nothing>"
        new = b[i] if i < len(b) else "<nothing>"
        if old != new:
            return f"line {i + 1}: {old.strip()[:120]!r} became {new.strip()[:120]!r}"
    return ""


# ------------------------------------------------------------------------------ one folder
def find_notebook(folder, expected_name, release_nb):
    """(path or None, [Flag]): the notebook of ``folder`` that is the assignment's."""
    folder = Path(folder)
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file()) if folder.is_dir() else []
    if not found:
        return None, [Flag("missing-notebook", f"no notebook was submitted (expected "
                              f"{expected_name}).", severity="review")]
    exact = [p for p in found if p.name == expected_name]
    if exact:
        chosen = exact[0]
        findings = []
    else:
        ids = set(expected_cells(release_nb))

        def overlap(path):
            try:
                cells = json.loads(path.read_text(encoding="utf-8", errors="replace")).get("cells", [])
                return len(ids & {grade_id(c) for c in cells if isinstance(c, dict)})
            except (ValueError, AttributeError):
                return -1
        chosen = max(found, key=overlap)
        findings = [Flag("wrong-file-name", f"the notebook was submitted as '{chosen.name}' "
                            f"instead of '{expected_name}'; it was renamed for grading.")]
    for other in found:
        if other != chosen:
            findings.append(Flag("extra-notebook", f"'{other.name}' is not part of the "
                                    "assignment and was not graded."))
    return chosen, findings


def normalize(folder, expected_name, release_nb, target):
    """Make ``target`` (a folder) hold the gradable form of the submission in ``folder``.

    ``release_nb``: the assignment's notebook as students received it.

    Writes ``target/expected_name`` (when there is something to grade) and copies
    ``timestamp.txt``. Returns an ``Intake``.
    """
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    stamp = Path(folder) / "timestamp.txt"
    if stamp.is_file():
        shutil.copy(stamp, target / "timestamp.txt")
    path, findings = find_notebook(folder, expected_name, release_nb)
    if path is None:
        return Intake(None, findings)
    nb, more = read_notebook(path)
    findings += more
    if nb is None:
        return Intake(None, findings)
    findings += repair_cells(nb, release_nb)
    out = target / expected_name
    nbformat.write(nb, out)
    return Intake(out, findings)
