"""The tree shows the architecture: imports point down the layers, and the kit stands alone.

Every module of ``autograder/`` and ``solutions_lib/`` is parsed (imports inside functions
count too) and each import of the course's own modules must point to a lower layer:

    kit (autograder/*.py) -> solutions_lib -> split's process ends (wire -> agent, proxy) ->
    nbcells -> deadlines -> records -> intake, integrity, sandbox, zygote, build -> nbexec, feedback, latepenalty ->
    split.execute -> canary -> worker, pool, report -> dask_pool, synthetic (answers -> adversaries -> escapes ->
    classroom -> demo), hub (deploy -> host, exchange -> demo -> commands), mutants -> cli

A module may import only modules of a lower layer, so there is no cycle, ``report`` (beside
``worker`` and ``pool``) reads the ledger without knowing how it was graded, and the kit
imports nothing of the instructor's side, of nbgrader or of the reference solutions. The two
ends of the split execution (``split/wire.py``, ``agent.py``, ``proxy.py``) run inside the
kernels, loaded by file path: they import nothing of the course at all (only the standard
library and numpy), and the student's end never the grader's.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
I = "autograder.instructor"
LAYERS = [
    ["autograder", "autograder.checks", "autograder.datasets", "autograder.widgets"],
    ["solutions_lib", "solutions_lib.*"],
    [f"{I}.split.wire"],
    [f"{I}.split.agent", f"{I}.split.proxy"],
    [f"{I}.nbcells"],
    [f"{I}.deadlines"],
    [f"{I}.records"],
    [f"{I}.intake", f"{I}.integrity", f"{I}.sandbox", f"{I}.zygote", f"{I}.build"],
    [f"{I}.nbexec", f"{I}.feedback", f"{I}.latepenalty"],
    [f"{I}.split.execute"],
    [f"{I}.canary"],
    [f"{I}.worker", f"{I}.pool", f"{I}.report", f"{I}.hub.deploy"],
    [f"{I}.synthetic.answers", f"{I}.hub.host", f"{I}.hub.exchange", f"{I}.dask_pool"],
    [f"{I}.synthetic.adversaries", f"{I}.hub.demo"],
    [f"{I}.synthetic.escapes"],
    [f"{I}.synthetic.classroom"],
    [f"{I}.synthetic.demo", f"{I}.hub.commands", f"{I}.mutants"],
    [f"{I}.cli"],
    [f"{I}.__main__"],
]
#: Packages whose __init__ holds only a docstring: importing them is importing nothing.
EMPTY_PACKAGES = (I, f"{I}.synthetic", f"{I}.hub", f"{I}.split")
#: What runs inside a kernel, loaded by file path: the standard library, numpy and IPython, nothing else.
IN_KERNEL = (f"{I}.split.wire", f"{I}.split.agent", f"{I}.split.proxy")
#: What the kit never imports (it is copied to students, who have none of it).
KIT_FORBIDDEN = ("autograder.instructor", "solutions_lib", "nbgrader")


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for top in ("autograder", "solutions_lib") for p in (ROOT / top).rglob("*.py")
           if "__pycache__" not in p.parts}


def layer(name):
    for i, names in enumerate(LAYERS):
        if name in names or any(n.endswith(".*") and name.startswith(n[:-1]) for n in names):
            return i
    return None


def imports(name):
    """The modules (anything, third-party too) that module ``name`` imports, resolved."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found


#: Layers whose modules are peers that may import each other (without a cycle): the kit, the reference.
PEERS = (0, 1)


def own_imports(name):
    return sorted(t for t in imports(name) if t in MODULES and t not in EMPTY_PACKAGES)


def test_every_module_has_a_layer():
    assert [n for n in MODULES if layer(n) is None and n not in EMPTY_PACKAGES] == [], "add the new module to LAYERS"


def test_the_instructor_packages_are_only_a_docstring():
    for name in EMPTY_PACKAGES:
        body = ast.parse(MODULES[name].read_text(encoding="utf-8")).body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{name}/__init__.py: a docstring, nothing else"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n not in EMPTY_PACKAGES))
def test_imports_point_down(name):
    wrong = [t for t in own_imports(name)
             if layer(t) > layer(name) or (layer(t) == layer(name) and layer(name) not in PEERS)]
    assert wrong == [], f"{name} imports {wrong}: an import must point to a lower layer (tests/test_architecture.py)"


def test_no_import_cycles():
    state = {}

    def visit(name, path):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import cycle: " + " -> ".join(path + [name])
        state[name] = "open"
        for target in own_imports(name):
            visit(target, path + [name])
        state[name] = "done"

    for name in MODULES:
        visit(name, [])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == 0))
def test_the_kit_imports_nothing_of_the_instructor_nbgrader_or_the_reference(name):
    bad = sorted(t for t in imports(name) if t.startswith(KIT_FORBIDDEN))
    assert bad == [], f"the kit module {name} imports {bad}; students have none of it"


def test_solutions_lib_imports_only_the_kit():
    bad = sorted({t for n in MODULES if n.startswith("solutions_lib") for t in imports(n)
                  if t.startswith("autograder") and layer(t) != 0})
    assert bad == []


def test_the_kit_is_every_module_at_the_top_of_autograder():
    from autograder.instructor import build, nbcells

    assert build.kit_files() == ["__init__.py"] + [f"{n}.py" for n in nbcells.kit_modules()]
    assert set(LAYERS[0]) == {"autograder"} | {f"autograder.{n}" for n in nbcells.kit_modules()}


@pytest.mark.parametrize("name", IN_KERNEL)
def test_the_ends_of_the_channel_import_only_the_standard_library_numpy_and_ipython(name):
    import sys

    bad = sorted(t for t in imports(name) if t.split(".")[0] not in tuple(sys.stdlib_module_names) + ("numpy", "IPython"))
    assert bad == [], f"{name} runs in a kernel, loaded by path: it may not import {bad}"
    source = MODULES[name].read_text(encoding="utf-8")
    if name.endswith("agent"):
        assert "proxy" not in source.replace("proxy.py", ""), "the student's end knows nothing of the grader's"
