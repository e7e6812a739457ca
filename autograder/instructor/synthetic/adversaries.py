"""Submissions that try to break or fool the grader, each with what the grader must do with it.

``ADVERSARIAL``: endless loops, a dead kernel, a memory bomb, 10 MB of output, ``sys.exit``,
deleted, edited, duplicated and split cells, broken JSON, a wrong file name, an old nbformat,
a missing notebook, patched numpy, builtins, ``__eq__`` and checks, ``solutions_lib``,
reading the gradebook and the source notebooks, writing outside the folder, warnings and
stderr output from correct code. Each ``Case`` says what the grader must do (``expect``).
"""
import copy
from dataclasses import dataclass, field

import nbformat

from ..nbcells import grade_id as _grade_id
from .answers import load_bugs, reference_answers, with_answers


@dataclass
class Case:
    """One adversarial submission.

    - build(release_nb, source_nb) returns {file name: NotebookNode or bytes} for the
      student's assignment folder ({}: an empty folder);
    - expect: what the grader must do: "status" (graded, missing, unreadable), "flags"
      (each of these kinds among the flags), "at_most" ({test cell: the most it may score}, e.g.
      what the honest twin of a tampering case earns), "zero" / "full" (test cells that must score 0 /
      full marks), "severity" (a flag of this severity must be there).
    """
    name: str
    assignment: str
    what: str
    build: object
    expect: dict = field(default_factory=dict)


def _nb(release_nb, source_nb, replace=None, edit=None):
    nb = with_answers(release_nb, source_nb, replace)
    if edit:
        edit(nb)
    return nb


def _answer(source_nb, grade_id, before="", after=""):
    return before + reference_answers(source_nb)[grade_id] + after


def _notebook_file(assignment):
    return f"{assignment}.ipynb"


def _with(assignment, **kwargs):
    def build(release_nb, source_nb):
        return {_notebook_file(assignment): _nb(release_nb, source_nb, **kwargs)}
    return build


def _replace(assignment, make):
    """A build whose answers come from ``make(source_nb)`` -> {grade_id: source}."""
    def build(release_nb, source_nb):
        return {_notebook_file(assignment): _nb(release_nb, source_nb, make(source_nb))}
    return build


DENSE = "04_dense_backprop"
#: The catalogued transposed-dW bug of notebook 4: the honest twin of the tampering cases.
TRANSPOSED = ("def dense_backward(dH, cache):\n    X, W, b, Z, activation = cache\n"
              "    _, f_grad = ACTIVATIONS[activation]\n    dZ = f_grad(Z) * dH\n"
              "    return dZ @ W, X.T @ dZ, dZ.sum(axis=0)\n")
#: What that bug honestly keeps of test_dense_backward (partial credit: dX and db are right);
#: a case that tampers on top of it must keep no more: {"at_most": TRANSPOSED_KEEPS}.
TRANSPOSED_KEEPS = {"test_dense_backward": next(b["score"] for b in load_bugs()[DENSE] if b["source"] == TRANSPOSED)}


def _drop(grade_id):
    def edit(nb):
        nb.cells = [c for c in nb.cells if _grade_id(c) != grade_id]
    return edit


def _duplicate(grade_id):
    def edit(nb):
        i = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id)
        twin = copy.deepcopy(nb.cells[i])
        twin["id"] = twin.get("id", "cell") + "-copy"
        nb.cells.insert(i + 1, twin)
    return edit


def _split(grade_id, after_line=3):
    def edit(nb):
        i = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id)
        lines = nb.cells[i].source.split("\n")
        first, second = copy.deepcopy(nb.cells[i]), copy.deepcopy(nb.cells[i])
        first.source, second.source = "\n".join(lines[:after_line]), "\n".join(lines[after_line:])
        second["id"] = first.get("id", "cell") + "-2"
        nb.cells[i:i + 1] = [first, second]
    return edit


def _edit_test(grade_id, source):
    def edit(nb):
        for c in nb.cells:
            if _grade_id(c) == grade_id:
                c.source = source
    return edit


def _truncated(release_nb, source_nb):
    nb = with_answers(release_nb, source_nb)
    text = nbformat.writes(nb)
    cut = text.index('"two_layer_loss_and_grads"')
    cut = text.rindex('{\n   "cell_type"', 0, cut)        # the start of that cell
    return {_notebook_file(DENSE): text[:cut + 40].encode()}


def _old_nbformat(release_nb, source_nb):
    nb = with_answers(release_nb, source_nb)
    return {_notebook_file(DENSE): nbformat.writes(nbformat.convert(nb, 3)).encode()}


PATCH_CHECKS = ('for _name in dir(checks):\n'
                '    if _name.startswith("check") or _name == "call":\n'
                '        setattr(checks, _name, (lambda *a, **k: None) if _name != "call" '
                'else (lambda f, *a, **k: f(*a, **k)))\n'
                'checks.check_layer = checks.check_dense_backward = lambda *a, **k: None\n\n')
READ_SOURCE = '''import json, pathlib


def _solution_cell(grade_id):
    for parent in pathlib.Path.cwd().resolve().parents:
        path = parent / "source_notebooks" / "04_dense_backprop" / "04_dense_backprop.ipynb"
        if path.exists():
            cells = json.loads(path.read_text())["cells"]
            return "".join(next(c["source"] for c in cells
                                if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id))
    raise FileNotFoundError("no source notebook in sight")


exec(_solution_cell("dense_backward").replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
'''
READ_GRADEBOOK = '''import pathlib
for _parent in pathlib.Path.cwd().resolve().parents:
    for _found in list(_parent.glob("gradebook.db")) + list(_parent.glob("course/gradebook.db")):
        print("READ", _found, len(_found.read_bytes()), "bytes")

'''
WRITE_OUTSIDE = '''import pathlib
for _parent in pathlib.Path.cwd().resolve().parents:
    for _target in (_parent / "gradebook.db", _parent / "course" / "gradebook.db",
                    _parent / "source_notebooks" / "04_dense_backprop" / "04_dense_backprop.ipynb",
                    _parent / "submitted" / "alice" / "04_dense_backprop" / "04_dense_backprop.ipynb"):
        try:
            if _target.exists():
                _target.write_bytes(b"overwritten by a student")
                print("WROTE", _target)
        except OSError:
            pass

'''
UNSTOPPABLE = ("def perceptron_predict(X, w, b):\n    while True:\n        try:\n            pass\n"
               "        except KeyboardInterrupt:\n            pass\n")
MEMORY_BOMB = ("def sgd_update(w, dw, lr):\n    hoard = []\n    while True:\n"
               "        hoard.append(bytearray(50_000_000))\n")
EQ_ALWAYS = ('class Always(np.ndarray):\n    def __eq__(self, other):\n        return True\n\n'
             '    def __array_function__(self, func, types, args, kwargs):\n        return True\n\n\n'
             + TRANSPOSED.replace("    return dZ @ W, X.T @ dZ, dZ.sum(axis=0)\n",
                                  "    return tuple(np.asarray(g).view(Always) for g in (dZ @ W, X.T @ dZ, dZ.sum(axis=0)))\n"))

ADVERSARIAL = [
    Case("endless-loop", "01_perceptron", "perceptron_predict loops forever and swallows the interrupt",
         _replace("01_perceptron", lambda s: {"perceptron_predict": UNSTOPPABLE}),
         {"flags": ["cell-timeout"], "zero": ["test_perceptron_predict"], "full": ["test_step_sign"]}),
    Case("os-exit", "05_cosine_denoising", "denoiser_backward calls os._exit(1): the kernel dies",
         _replace("05_cosine_denoising", lambda s: {"denoiser_backward": "import os\n\n\ndef denoiser_backward(dY, cache):\n    os._exit(1)\n"}),
         {"flags": ["dead-kernel", "forbidden-import"], "zero": ["test_denoiser_backward"],
          "full": ["test_denoiser_forward"]}),
    Case("memory-bomb", "07_mnist_classification", "sgd_update allocates until memory runs out",
         _replace("07_mnist_classification", lambda s: {"sgd_update": MEMORY_BOMB}),
         {"zero": ["test_sgd_update"], "full": ["test_softmax_cross_entropy"]}),
    Case("huge-output", "02_xor", "an answer cell prints 10 MB",
         _replace("02_xor", lambda s: {"xor_network": _answer(s, "xor_network", 'print("x" * 10_000_000)\n')}),
         {"full": ["test_xor_network", "test_count_correct"]}),
    Case("sys-exit", "03_chain_rule_jacobians", "an answer cell calls sys.exit() before its definitions",
         _replace("03_chain_rule_jacobians", lambda s: {"fork_backward": "import sys\nsys.exit(0)\n" + _answer(s, "fork_backward")}),
         {"flags": ["forbidden-import"], "zero": ["test_fork_backward"], "full": ["test_chain_example_grad"]}),
    Case("deleted-test", DENSE, "the test cell of mse was deleted", _with(DENSE, edit=_drop("test_mse")),
         {"flags": ["deleted-cell"], "full": ["test_mse", "test_dense_backward"]}),
    Case("edited-test", DENSE, "the dense_backward test was replaced by a print, the answer is wrong",
         _with(DENSE, replace={"dense_backward": TRANSPOSED},
               edit=_edit_test("test_dense_backward", 'print("dense_backward: all tests passed.")')),
         {"flags": ["edited-test"], "at_most": TRANSPOSED_KEEPS, "full": ["test_dense_forward"]}),
    Case("duplicated-test", DENSE, "the dense_forward test cell appears twice",
         _with(DENSE, edit=_duplicate("test_dense_forward")),
         {"flags": ["duplicated-test"], "full": ["test_dense_forward", "test_dense_backward"]}),
    Case("split-cell", DENSE, "the dense_backward answer cell was split in two (same grade_id)",
         _with(DENSE, edit=_split("dense_backward")),
         {"flags": ["split-cell"], "full": ["test_dense_backward"]}),
    Case("invalid-json", DENSE, "the upload was cut off in the middle of the file", _truncated,
         {"flags": ["invalid-json"], "full": ["test_dense_forward", "test_dense_backward"],
          "zero": ["test_l2_penalty"]}),
    Case("not-a-notebook", DENSE, "the file is not JSON at all",
         lambda r, s: {_notebook_file(DENSE): b"\x89PNG\r\n\x1a\n this is a picture, not a notebook"},
         {"status": "unreadable", "flags": ["unreadable"], "zero": ["test_dense_forward"]}),
    Case("wrong-file-name", DENSE, "the notebook was saved as '04_dense_backprop (1).ipynb'",
         lambda r, s: {"04_dense_backprop (1).ipynb": with_answers(r, s)},
         {"flags": ["wrong-file-name"], "full": ["test_dense_forward", "test_l2_penalty"]}),
    Case("old-nbformat", DENSE, "the notebook was saved in nbformat 3", _old_nbformat,
         {"flags": ["old-nbformat"], "full": ["test_dense_backward"]}),
    Case("missing-notebook", DENSE, "the folder holds no notebook", lambda r, s: {},
         {"status": "missing", "flags": ["missing-notebook"], "zero": ["test_dense_forward"]}),
    Case("patch-numpy", DENSE, "np.all and np.allclose always say True; dW is transposed",
         _with(DENSE, replace={"dense_backward": "np.all = lambda *a, **k: True\nnp.allclose = lambda *a, **k: True\n\n" + TRANSPOSED}),
         {"flags": ["patch"], "severity": "tampering", "at_most": TRANSPOSED_KEEPS,
          "full": ["test_dense_forward"]}),
    Case("patch-builtins", DENSE, "builtins.all and builtins.any are replaced; dW is transposed",
         _with(DENSE, replace={"dense_backward": "import builtins\nbuiltins.all = lambda *a, **k: True\nbuiltins.any = lambda *a, **k: False\n\n" + TRANSPOSED}),
         {"flags": ["forbidden-import"], "severity": "tampering", "at_most": TRANSPOSED_KEEPS,
          "full": ["test_dense_forward"]}),
    Case("patch-eq", DENSE, "the gradients are arrays whose __eq__ and __array_function__ always agree",
         _with(DENSE, replace={"dense_backward": EQ_ALWAYS}),
         {"flags": ["dunder"], "severity": "tampering", "at_most": TRANSPOSED_KEEPS}),
    Case("patch-checks", DENSE, "every check of the kit is replaced by a no-op; dW is transposed",
         _with(DENSE, replace={"dense_backward": PATCH_CHECKS + TRANSPOSED}),
         {"flags": ["forbidden-name"], "severity": "tampering", "at_most": TRANSPOSED_KEEPS, "full": ["test_dense_forward"]}),
    Case("patch-at-call", DENSE, "dense_backward disables the checks through an alias each time it is "
         "called (the static scan cannot see it; in the student process the kit it disables is not the grader's); dW is transposed",
         _with(DENSE, replace={"dense_backward": TRANSPOSED.replace(
             "    X, W, b, Z, activation = cache\n",
             "    kit = checks\n    kit.check_layer = kit.check_dense_backward = kit.check_close = "
             "kit.check_gradients = lambda *a, **k: None\n    X, W, b, Z, activation = cache\n")}),
         {"at_most": TRANSPOSED_KEEPS,
          "full": ["test_dense_forward", "test_mse", "test_two_layer_loss_and_grads"]}),
    Case("patch-sys-modules", DENSE, "checks patched through sys.modules; dW is transposed",
         _with(DENSE, replace={"dense_backward": 'import sys\n_kit = sys.modules["autograder.checks"]\n'
                               '_kit.check_layer = _kit.check_dense_backward = _kit.check_close = lambda *a, **k: None\n\n' + TRANSPOSED}),
         {"flags": ["forbidden-import"], "severity": "tampering", "at_most": TRANSPOSED_KEEPS}),
    Case("import-solutions", DENSE, "dense_backward is imported from solutions_lib",
         _with(DENSE, replace={"dense_backward": "from solutions_lib.layers import dense_backward\n"}),
         {"flags": ["forbidden-import"], "severity": "tampering", "zero": ["test_dense_backward"]}),
    Case("read-source", DENSE, "dense_backward is read from the source notebook and exec'd",
         _with(DENSE, replace={"dense_backward": READ_SOURCE}),
         {"flags": ["forbidden-name"], "severity": "tampering", "zero": ["test_dense_backward"]}),
    Case("read-gradebook", DENSE, "an answer cell looks for the gradebook and reads it",
         _replace(DENSE, lambda s: {"dense_forward": READ_GRADEBOOK + _answer(s, "dense_forward")}),
         {"flags": ["forbidden-import"], "severity": "tampering", "full": ["test_dense_forward"],
          "no_output": "READ"}),
    Case("write-outside", DENSE, "an answer cell overwrites the gradebook, the source notebook and another student's work",
         _replace(DENSE, lambda s: {"dense_forward": WRITE_OUTSIDE + _answer(s, "dense_forward")}),
         {"flags": ["forbidden-import"], "severity": "tampering", "full": ["test_dense_forward"],
          "no_output": "WROTE"}),
    Case("magic", DENSE, "an answer cell runs shell commands and magics",
         _replace(DENSE, lambda s: {"dense_forward": "!ls ../../..\n%env\n" + _answer(s, "dense_forward")}),
         {"flags": ["magic"], "severity": "tampering", "full": ["test_dense_forward"]}),
    Case("warnings", DENSE, "correct code that prints warnings to stderr",
         _replace(DENSE, lambda s: {"dense_forward": "import warnings\n\n" + _answer(s, "dense_forward").replace(
             '    ### BEGIN SOLUTION', '').replace(
             '    f, _ = ACTIVATIONS[activation]',
             '    warnings.warn("correct code may warn", RuntimeWarning)\n'
             '    np.exp(np.array([1000.0]))              # overflow: a RuntimeWarning on stderr\n'
             '    f, _ = ACTIVATIONS[activation]')}),
         {"full": ["test_dense_forward", "test_dense_backward", "test_two_layer_loss_and_grads"],
          "no_severity": "tampering"}),
    Case("stderr-progress", "07_mnist_classification",
         "correct training code whose console progress bar writes to stderr in the test cell",
         _replace("07_mnist_classification", lambda s: {"train": "from tqdm import tqdm as console_tqdm\n\n" + _answer(s, "train").replace(
             'bar = tqdm(range(1, epochs + 1), desc=f"seed {seed}", unit="epoch", disable=not progress, leave=False)',
             'bar = console_tqdm(range(1, epochs + 1), desc=f"seed {seed}", unit="epoch")      # always on, to stderr')}),
         {"full": ["test_train"], "events": ["stderr"], "no_severity": "tampering"}),
]

# ------------------------------------------------------------------------------ malformed metadata and files
#: Every test cell of notebook 4: the reference answers must keep them all.
DENSE_TESTS = ["test_dense_forward", "test_mse", "test_dense_backward", "test_sigmoid_cross_entropy",
               "test_two_layer_loss_and_grads", "test_l2_penalty"]


def _set_meta(grade_id, **changes):
    def edit(nb):
        for c in nb.cells:
            if _grade_id(c) == grade_id:
                c.metadata["nbgrader"].update(changes)
    return edit


def _text_of(nb, placeholder, replacement):
    """The notebook as JSON text with ``placeholder`` replaced by raw JSON (escapes, nesting)."""
    return nbformat.writes(nb).replace(placeholder, replacement).encode("utf-8")


def _surrogate(release_nb, source_nb):
    nb = with_answers(release_nb, source_nb)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("A note with a stray character: SURROGATE."))
    return {_notebook_file(DENSE): _text_of(nb, "SURROGATE", "\\ud800")}


def _deep_json(release_nb, source_nb):
    nb = with_answers(release_nb, source_nb)
    nb.metadata["deep"] = "DEEP"
    return {_notebook_file(DENSE): _text_of(nb, '"DEEP"', "[" * 100_000 + "]" * 100_000)}


def _list_grade_id(nb):
    extra = nbformat.v4.new_code_cell("x = 1")
    extra.metadata["nbgrader"] = {"grade_id": ["dense_backward"], "grade": True, "points": 100,
                                  "solution": False, "locked": False, "schema_version": 3}
    nb.cells.insert(3, extra)


def _to_markdown(grade_id):
    def edit(nb):
        for c in nb.cells:
            if _grade_id(c) == grade_id:
                c.cell_type = "markdown"
                c.pop("outputs", None)
                c.pop("execution_count", None)
    return edit


def _many_parts(release_nb, source_nb):
    """dense_backward padded to 3,000 lines and split at every line (3,000 cells, one grade_id)."""
    answer = _answer(source_nb, "dense_backward") + "".join(f"# line {i}\n" for i in range(3000))
    nb = with_answers(release_nb, source_nb, {"dense_backward": answer.rstrip("\n")})
    i = next(i for i, c in enumerate(nb.cells) if _grade_id(c) == "dense_backward")
    parts = []
    for k, line in enumerate(nb.cells[i].source.split("\n")):
        part = copy.deepcopy(nb.cells[i])
        part.source, part["id"] = line, f"part-{k}"
        parts.append(part)
    nb.cells[i:i + 1] = parts
    return {_notebook_file(DENSE): nb}


ADVERSARIAL += [
    Case("lone-surrogate", DENSE, "an honest notebook with a lone surrogate character in a text cell", _surrogate,
         {"flags": ["bad-characters"], "full": DENSE_TESTS}),
    Case("deep-json", DENSE, "an honest notebook whose metadata nests 100,000 lists deep", _deep_json,
         {"flags": ["invalid-json"], "full": DENSE_TESTS}),
    Case("list-grade-id", DENSE, "an added cell whose grade_id is a list, worth 100 points",
         _with(DENSE, edit=_list_grade_id), {"flags": ["malformed-metadata"], "full": DENSE_TESTS}),
    Case("answer-as-grade", DENSE, "the dense_backward answer cell claims to be a test worth 100 points",
         _with(DENSE, edit=_set_meta("dense_backward", grade=True, points=100)),
         {"flags": ["edited-metadata"], "full": DENSE_TESTS}),
    Case("test-as-answer", DENSE, "the dense_backward test is an unlocked answer that only passes; dW is transposed",
         _with(DENSE, replace={"dense_backward": TRANSPOSED},
               edit=lambda nb: (_edit_test("test_dense_backward", "pass")(nb),
                                _set_meta("test_dense_backward", solution=True, locked=False)(nb))),
         {"flags": ["edited-metadata"], "at_most": TRANSPOSED_KEEPS, "full": ["test_dense_forward"]}),
    Case("test-as-text", DENSE, "the dense_backward test cell was turned into a text cell; dW is transposed",
         _with(DENSE, replace={"dense_backward": TRANSPOSED}, edit=_to_markdown("test_dense_backward")),
         {"flags": ["changed-cell-type"], "at_most": TRANSPOSED_KEEPS, "full": ["test_dense_forward"]}),
    Case("bad-timestamp", DENSE, "an honest notebook with a timestamp.txt nobody can read",
         lambda r, s: {_notebook_file(DENSE): with_answers(r, s), "timestamp.txt": b"yesterday, around noon"},
         {"flags": ["bad-timestamp"], "full": DENSE_TESTS}),
    Case("many-split-parts", DENSE, "the dense_backward answer split into 3,000 cells with one grade_id", _many_parts,
         {"flags": ["split-cell"], "full": DENSE_TESTS}),
]
