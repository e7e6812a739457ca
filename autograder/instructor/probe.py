"""The integrity probe of the re-check, as real code.

The re-check (``recheck.clean_notebook``) runs the instructor's notebook with only the
student's definitions. Its first cell is this function's source (``setup_source``), which
snapshots what the tests rely on: numpy's and the kit's functions and their code, a few
builtins, ``sys.modules``, the modules the notebook bound. After the set-up, every answer
cell and every test cell, a cell ``PROBE`` calls the check: it raises ``AssertionError``
("integrity check: ...") when any of it was replaced, so every test after that fails.

It runs inside the grading kernel, so it imports nothing at module level (its names would
land in the notebook's namespace) and is injected as source, not imported.
"""
import inspect


def make_probe(shell):
    """Snapshot what the tests rely on; the returned check() raises if any of it changed.

    Input: the kernel's IPython shell (its ``user_ns`` is the notebook's namespace).
    Output: a function without arguments that returns None or raises AssertionError.
    """
    import builtins
    import sys
    import types

    import numpy
    import numpy.linalg
    import numpy.random
    import numpy.testing
    try:
        from autograder import checks as kit
    except Exception:                                     # noqa: BLE001  (a notebook without the kit)
        kit = None
    names = ("abs all any bool callable dict enumerate float getattr hasattr id int isinstance "
             "issubclass iter len list map max min next print range repr round set sorted str "
             "sum tuple type zip object Exception AssertionError ValueError TypeError "
             "NotImplementedError").split()
    watched = {"numpy": numpy, "numpy.linalg": numpy.linalg, "numpy.random": numpy.random,
               "numpy.testing": numpy.testing}
    if kit is not None:
        watched["autograder.checks"] = kit
    snapshot = {m: {n: v for n, v in vars(mod).items() if callable(v)} for m, mod in watched.items()}
    snapshot["builtins"] = {n: getattr(builtins, n) for n in names}
    watched["builtins"] = builtins
    codes = {(m, n): v.__code__ for m, items in snapshot.items() for n, v in items.items()
             if isinstance(v, types.FunctionType)}
    bound = {}

    def check():
        problems = []
        for m, items in snapshot.items():
            now = vars(watched[m])
            for n, v in items.items():
                if now.get(n) is not v:
                    problems.append(f"{m}.{n} was replaced")
                elif (m, n) in codes and v.__code__ is not codes[m, n]:
                    problems.append(f"the code of {m}.{n} was replaced")
        for m, mod in watched.items():
            if m != "builtins" and sys.modules.get(m) is not mod:
                problems.append(f"sys.modules[{m!r}] was replaced")
        for name, value in list(shell.user_ns.items()):
            if name in bound and value is not bound[name]:
                problems.append(f"the notebook's `{name}` was rebound")
            elif isinstance(value, types.ModuleType):
                bound.setdefault(name, value)
        for name in bound:
            if name not in shell.user_ns:
                problems.append(f"the notebook's `{name}` was deleted")
        if numpy.allclose(0.0, 1.0) or (1 == 2) or not (1 != 2):
            problems.append("comparisons no longer tell different numbers apart")
        if problems:
            raise AssertionError("integrity check: " + "; ".join(sorted(set(problems))[:6]))
    return check


#: The cell that calls the check.
PROBE = "__nn_check_integrity()"


def setup_source():
    """The re-check's first cell: define the probe, take the snapshot, check once."""
    return (inspect.getsource(make_probe)
            + "\n\n__nn_check_integrity = make_probe(get_ipython())\ndel make_probe\n" + PROBE + "\n")
