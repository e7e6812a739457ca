"""Bring one submitted folder into the form nbgrader can grade, and say what was wrong with it.

nbgrader stops at many things students do to notebooks: a file that is not valid JSON, a
notebook under another name, an old nbformat, a cell split in two (both halves keep the
``grade_id``, and nbgrader then reports a misleading "old metadata format" and grades
nothing). ``normalize`` repairs what can be repaired, writes the result where the grader
points nbgrader, and returns the findings, each with the evidence, for the report:

| kind | what happened | what the grader does |
|---|---|---|
| ``missing-notebook`` | no notebook in the folder | graded 0 |
| ``unreadable`` | not JSON at all, or larger than ``MAX_BYTES`` | graded 0 |
| ``invalid-json`` | broken JSON (a cut-off upload, an edit by hand) | the cells before the break are kept |
| ``old-nbformat`` | nbformat 3 (or older) | converted to nbformat 4 |
| ``wrong-file-name`` | the notebook has another name | renamed |
| ``extra-notebook`` | more notebooks than the assignment has | ignored |
| ``split-cell`` | one answer cell split into several with one ``grade_id`` | the parts joined again |
| ``duplicated-test`` | a locked cell appears twice | the copies removed |
| ``deleted-cell`` | a graded or locked cell is missing | nbgrader puts it back (its points are lost if it was an answer) |
| ``edited-test`` | a locked cell (a test) was changed | nbgrader restores it; the edit is reported |
| ``unknown-cell`` | nbgrader metadata of a cell the assignment does not have | the metadata removed |
| ``malformed-metadata`` | nbgrader metadata that is not nbgrader's (a list as ``grade_id`` ...) | the metadata removed |
| ``edited-metadata`` | a cell's kind, points, lock or checksum changed | the release's put back |
| ``changed-cell-type`` | a graded or locked cell turned from code into text, or back | the release's cell put back |
| ``bad-characters`` | text that cannot be written as UTF-8 (a lone surrogate) | replaced by U+FFFD |
| ``bad-timestamp`` | a ``timestamp.txt`` nbgrader cannot read | ignored (graded as on time) |

The raw submission is never changed; the normalised copy goes to ``target``. Whatever the file
holds (any depth of JSON, any characters, any metadata), the intake either makes it gradable
or marks it unreadable; it does not raise.
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


#: The largest notebook graded (a course notebook with outputs is a few MB).
MAX_BYTES = 32 * 1024 * 1024


def expected_cells(nb):
    """{grade_id: cell} of the cells with nbgrader metadata in ``nb``, in order."""
    return {grade_id(c): c for c in nb.cells if grade_id(c)}


# ------------------------------------------------------------------------------ reading
def read_notebook(path):
    """(NotebookNode or None, [Flag]): a notebook as well as it can be read."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_BYTES:
        return None, [Flag("unreadable", f"{path.name} is {size / 2 ** 20:.0f} MB, more than the "
                           f"{MAX_BYTES // 2 ** 20} MB a notebook of this course can hold (the output of "
                           "a runaway loop?); it was not graded. Clear the outputs and hand it in again.",
                           severity="review")]
    text = path.read_bytes().decode("utf-8", errors="replace")
    findings = []
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        data = _salvage(text)
        if data is None:
            return None, [Flag("unreadable", f"{path.name} is not a notebook: it is not "
                               f"valid JSON ({err}) and no cell could be recovered.",
                               evidence=text[:200], severity="review")]
        findings.append(Flag("invalid-json", f"{path.name} is broken JSON ({err}); "
                             f"{len(data['cells'])} cells before the break were recovered and "
                             "graded, the rest is lost.", evidence=f"at {err}", severity="review"))
    if not isinstance(data, dict) or not isinstance(data.get("cells", data.get("worksheets")), list):
        return None, findings + [Flag("unreadable", f"{path.name} is JSON but not a "
                                      "notebook (no list of cells).", severity="review")]
    if _scrub(data):
        findings.append(Flag("bad-characters", f"{path.name} holds characters that cannot be written as "
                             "UTF-8 (lone surrogates); they were replaced by U+FFFD before grading."))
    major = data.get("nbformat", 4)
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
    except Exception as err:               # noqa: BLE001  (any nbformat failure is reported)
        return None, findings + [Flag("unreadable", f"{path.name} could not be read as a "
                                      f"notebook: {err}", severity="review")]
    if isinstance(major, int) and major < 4:
        findings.append(Flag("old-nbformat", f"{path.name} uses nbformat {major}; it was "
                             "converted to nbformat 4 before grading."))
    for cell in nb.cells:
        cell.setdefault("metadata", {})
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    return nb, findings


def _scrub(data):
    """Replace lone surrogates (``"\\ud800"`` in JSON) by U+FFFD in every string of ``data``, in
    place, without recursion (any depth); returns how many strings it changed."""
    def fix(text):
        try:
            text.encode("utf-8")
            return text
        except UnicodeEncodeError:
            return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")

    changed, stack = 0, [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                if isinstance(key, str) and fix(key) != key:
                    del node[key]
                    key, changed = fix(key), changed + 1
                    node[key] = value
                if isinstance(value, str) and fix(value) != value:
                    node[key], changed = fix(value), changed + 1
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        else:
            for i, value in enumerate(node):
                if isinstance(value, str) and fix(value) != value:
                    node[i], changed = fix(value), changed + 1
                elif isinstance(value, (dict, list)):
                    stack.append(value)
    return changed


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
        except (ValueError, RecursionError):
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

    Returns [Flag]. Every cell that carries a release cell's grade_id gets that cell's nbgrader
    metadata and type back (its kind, points, lock and checksum are the release's, whatever the
    submission says); locked cells are compared with their release version (what the student
    was given, without hidden tests).
    """
    findings = _drop_malformed_metadata(nb)
    expected = expected_cells(release_nb)
    seen, keep, parts = {}, [], {}
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
            findings += _as_released(cell, expected[gid])
            seen[gid] = cell
            keep.append(cell)
        elif is_solution(expected[gid]):
            parts.setdefault(gid, []).append(cell.source)
        else:
            findings.append(Flag("duplicated-test", f"the locked cell '{gid}' appears more "
                                 "than once; the copies were removed (each test counts once).",
                                 evidence=cell.source[:300], severity="review", cell=gid))
    for gid, rest in parts.items():                 # joined once: linear in the number of parts
        seen[gid].source = "\n".join([seen[gid].source] + rest)   # each split point a line break again
        findings.append(Flag("split-cell", f"the answer cell '{gid}' was split into {len(rest) + 1} "
                             "parts with the same grade_id; they were joined again before grading.",
                             evidence=rest[0][:300], cell=gid))
    nb.cells = keep
    return findings + _put_back_missing(nb, expected, seen)


def _drop_malformed_metadata(nb):
    """Remove nbgrader metadata that is not nbgrader's (not a dict, a grade_id that is no string)."""
    findings = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
        if meta is not None and (not isinstance(meta, dict) or grade_id(cell) is None):
            cell.metadata.pop("nbgrader", None)
            findings.append(Flag("malformed-metadata", "a cell carried nbgrader metadata that nbgrader "
                                 "cannot read; it is graded as an ordinary cell.", evidence=repr(meta)[:200]))
    return findings


def _as_released(cell, released):
    """Give ``cell`` the release cell's type and nbgrader metadata; [Flag] of what was changed."""
    gid = grade_id(released)
    if cell.cell_type != released.cell_type:
        what = "answer" if is_solution(released) else "locked"
        fresh = copy.deepcopy(released)
        cell.clear()
        cell.update(nbformat.from_dict(fresh))
        return [Flag("changed-cell-type", f"the {what} cell '{gid}' was turned into a {fresh.cell_type} "
                     "cell of another type; the release's cell was put back"
                     + (" (as the empty answer)." if what == "answer" else "."), severity="review", cell=gid)]
    mine, theirs = cell.metadata.get("nbgrader"), released.metadata["nbgrader"]
    if mine != theirs:
        cell.metadata["nbgrader"] = copy.deepcopy(theirs)
        keys = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if keys != ["checksum"]:                     # nbgrader rewrites checksums itself
            return [Flag("edited-metadata", f"the nbgrader metadata of '{gid}' was changed ({', '.join(keys)}); "
                         "the release's was put back before grading.", severity="review", cell=gid,
                         evidence=repr({k: mine.get(k) for k in keys})[:200])]
    return []


def _put_back_missing(nb, expected, seen):
    """Put back the release's cells that are gone, and note edited tests; returns [Flag]."""
    findings, previous = [], None
    for gid, source in expected.items():
        if gid not in seen:
            what = "answer" if is_solution(source) else "test" if is_test(source) else "locked"
            findings.append(Flag("deleted-cell", f"the {what} cell '{gid}' was missing; it "
                                 "was put back from the release before grading"
                                 + (" (as the empty answer)." if what == "answer" else "."),
                                 severity="review" if what == "test" else "info", cell=gid))
            _put_back(nb, copy.deepcopy(source), previous)
            seen[gid] = source
        elif is_locked(source) and seen[gid].source != source.source and is_test(source):
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


def _timestamp(path):
    """(the text of ``timestamp.txt`` when nbgrader can read it, or None; [Flag])."""
    if not path.is_file():
        return None, []
    from nbgrader.utils import parse_utc

    text = path.read_bytes()[:200].decode("utf-8", errors="replace").strip()
    try:
        parse_utc(text)
        return text, []
    except Exception:                      # noqa: BLE001  (dateutil raises several kinds)
        return None, [Flag("bad-timestamp", "timestamp.txt holds no time nbgrader can read; it was "
                           "ignored (the submission is graded as if on time).", evidence=repr(text[:80]),
                           severity="review")]


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
    stamp, stamp_findings = _timestamp(Path(folder) / "timestamp.txt")
    if stamp is not None:
        (target / "timestamp.txt").write_text(stamp, encoding="utf-8")
    path, findings = find_notebook(folder, expected_name, release_nb)
    findings = stamp_findings + findings
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
