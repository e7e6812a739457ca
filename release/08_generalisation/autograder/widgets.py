"""Sliders and pictures for the notebooks (student-facing, no solution inside).

A widget cell in a notebook looks like this::

    from autograder import widgets

    @widgets.interactive(w1=(-3.0, 3.0, 0.1), b=(-2.0, 2.0, 0.1))
    def show(w1=1.0, b=0.0):
        fig, ax = plt.subplots(figsize=(4, 4))
        ...                       # draw with the student's own functions; no plt.show()

``interactive`` first draws once with the default values. If that needs a function the
student has not written yet (it raises ``NotImplementedError``), the cell prints one line
saying which function to write, instead of a traceback. Otherwise it builds the sliders with
``ipywidgets.interact``; every slider move redraws the figure.

While nbgrader executes a notebook (``NBGRADER_EXECUTION`` is set: validate, autograde) no
widget is built and no figure drawn: nobody sees them there, drawing was most of the time a
notebook took to grade, and widgets have been reported to hang headless execution. Tests that execute notebooks headless set ``NN_COURSE_HEADLESS``: the figure is
drawn once (so its code runs with the student's functions), but no sliders are built. In this
course's tests, nbclient waited 120 s (its cell timeout) on 1 in about 15 executions of a
cell that built sliders.

What is here:
- ``interactive(**sliders)``: the decorator above.
- ``on_release(min, max, step)``: a slider that redraws when it is let go, not while it is
  dragged (for figures that retrain a network on every move).
- ``show(draw)``: a figure without sliders, with the same one-line note instead of a traceback.
- ``grading()``: True while nbgrader executes the notebook.
- ``headless()``: True when nobody watches (nbgrader, or ``NN_COURSE_HEADLESS``): then build no
  widget at all, not even a tqdm progress bar (``tqdm.auto`` makes one in a notebook).
- ``note(text)``: print a one-line note (used by ``interactive``; handy in plain cells too).
- ``plot_decision_regions(ax, predict, X, y)``: colour the plane by a classifier's output.
"""
import functools
import inspect
import io
import os

import numpy as np

from .checks import raised_by

__all__ = ["interactive", "on_release", "show", "grading", "headless", "note", "plot_decision_regions"]


def grading():
    """True while nbgrader executes the notebook (``nbgrader validate`` or ``autograde``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def headless():
    """True when the notebook runs without anybody watching: under nbgrader, or in a test run
    with ``NN_COURSE_HEADLESS`` set. No widget should be built then (they can hang the run)."""
    return grading() or bool(os.environ.get("NN_COURSE_HEADLESS"))


def note(text):
    """Print a one-line note in the cell's output."""
    print(f"Note: {text}")


def _defaults(draw):
    return {name: p.default for name, p in inspect.signature(draw).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _not_written(err, what):
    """The one-line note for a figure that needs a function the student has not written."""
    name = raised_by(err)
    needed = f"`{name}`" if name else "the functions above"
    return (f"this {what} uses {needed}, which is not implemented yet. "
            "Write it, run its cell, then run this cell again.")


def _trial(draw):
    """Draw once with the defaults, off screen. Returns None if it worked, else the note."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    show = plt.show
    plt.show = lambda *args, **kwargs: None          # no picture from the trial run
    try:
        draw(**_defaults(draw))
    except NotImplementedError as err:
        return _not_written(err, "interactive figure")
    finally:
        plt.show = show
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
    return None


def show(draw):
    """Run ``draw()``, which makes a figure with the student's functions, and show it.

    For the plain (slider-less) figures after an exercise. If a function it needs is not
    written yet, print one line naming it; if it fails otherwise (the function is still
    wrong), print one line with the error and the advice to make the tests pass first. Either
    way no traceback and no half-drawn figure.
    While nbgrader runs the notebook (validate, autograde) the figure is skipped with a note:
    nobody looks at it there, and drawing is most of a notebook's grading time.
    Input: draw, a function without arguments that draws with matplotlib (no ``plt.show()``).
    """
    if grading():
        note("figure skipped while nbgrader runs the notebook.")
        return
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        draw()
    except Exception as err:                         # noqa: BLE001  (told to the student)
        for num in set(plt.get_fignums()) - before:
            plt.close(num)
        if isinstance(err, NotImplementedError):
            note(_not_written(err, "figure"))
        else:
            note(f"this figure could not be drawn ({type(err).__name__}: {err}). "
                 "Make the tests above pass, then run this cell again.")
        return
    plt.show()


def on_release(*spec):
    """A slider that redraws when it is let go, not at every value it passes while dragged.

    Use it instead of the (min, max, step) tuple for a figure that is slow to redraw because
    it trains something (``continuous_update=False`` in ipywidgets): dragging it then costs
    one training, not one for every step on the way. The arrow keys still redraw at every step.
    Example: ``@widgets.interactive(m=widgets.on_release(1, 64, 1), signal=(0, 9, 1))``.
    """
    return _OnRelease(spec)


class _OnRelease:
    """The (min, max, step) of an ``on_release`` slider, made into a widget by ``interactive``."""

    def __init__(self, spec):
        self.spec = spec

    def slider(self, default):
        import ipywidgets

        widget = ipywidgets.interactive.widget_from_abbrev(self.spec, default)
        widget.continuous_update = False
        return widget


def interactive(**sliders):
    """Decorator: draw a figure with sliders, or explain in one line why not.

    Inputs: keyword arguments as for ``ipywidgets.interact``: a (min, max, step) tuple gives a
    slider, a list gives a dropdown, a widget is used as it is, ``on_release(min, max, step)``
    gives a slider that redraws only when it is let go. The decorated function takes
    the same keyword arguments, with defaults (the sliders start there), and draws with
    matplotlib without calling ``plt.show()``.
    Returns the decorated function unchanged, so it can also be called directly.
    """
    def decorate(draw):
        missing = [name for name in sliders if name not in _defaults(draw)]
        if missing:
            raise TypeError(f"give {draw.__name__} a default value for {', '.join(missing)}: "
                            "the sliders start at the defaults")
        if grading():
            note("interactive figure skipped while nbgrader runs the notebook.")
            return draw
        problem = _trial(draw)
        if problem:
            note(problem)
            return draw
        if headless():
            note("drawing works; sliders not built in a headless run (NN_COURSE_HEADLESS is set).")
            return draw
        import ipywidgets

        defaults = _defaults(draw)
        controls = {name: spec.slider(defaults[name]) if isinstance(spec, _OnRelease) else spec
                    for name, spec in sliders.items()}
        ipywidgets.interact(_drawn_once(draw), **controls)
        return draw

    return decorate


def _drawn_once(draw):
    """``draw`` for the sliders: it shows the figures it makes as PNG, rendered once each.

    Left to itself, the notebook's inline backend saves a figure with ``bbox_inches="tight"``,
    which renders it twice: once to measure what is on it, once to paint it. That second
    rendering is a third of every slider move. Here each new figure is saved at its own size,
    once, with light PNG compression (a 1200 x 400 figure: 30 ms less to encode, 15 % more
    bytes, which the browser on the same machine does not notice), shown and closed. (A figure
    whose labels fall outside it would be cut off: lay the figure out with ``subplots_adjust``
    or ``tight_layout``, as the notebooks do.)
    """
    @functools.wraps(draw)                   # ipywidgets reads the slider defaults from it
    def redraw(**values):
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        before = set(plt.get_fignums())
        draw(**values)
        for num in sorted(set(plt.get_fignums()) - before):
            fig = plt.figure(num)
            png = io.BytesIO()
            fig.savefig(png, format="png", pil_kwargs={"compress_level": 1})
            plt.close(fig)
            display(Image(png.getvalue()))

    return redraw


def plot_decision_regions(ax, predict, X, y, resolution=200, margin=0.5, title=None, legend=True):
    """Colour the plane by a classifier's output and scatter the labelled points on top.

    Inputs:
    - ax: a matplotlib Axes.
    - predict: function (M, 2) -> (M,), any labels (for example -1/+1 or 0/1).
    - X: (N, 2) points; y: (N,) their labels (two classes).
    - resolution: grid points per axis; margin: how far the grid extends past the data.
    - legend: False leaves the legend to the caller (who adds entries of its own to it).
    The two classes are drawn as blue circles and orange squares; the background shows where
    ``predict`` says the larger label.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([g0.ravel(), g1.ravel()])
    labels = np.unique(y)
    top = labels.max()
    Z = (np.asarray(predict(grid)).reshape(g0.shape) >= top).astype(float)
    ax.contourf(g0, g1, Z, levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fdd0a2"], alpha=0.8)
    for label, marker, colour in zip(labels, ["o", "s"], ["tab:blue", "tab:orange"]):
        pts = X[y == label]
        ax.scatter(pts[:, 0], pts[:, 1], marker=marker, c=colour, edgecolors="k", s=40,
                   label=f"y = {label:g}")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x₁")            # plain text: mathtext is typeset anew on every redraw
    ax.set_ylabel("x₂")
    if legend:
        ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title)
    return ax
