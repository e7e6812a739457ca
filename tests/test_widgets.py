"""autograder.widgets: sliders when possible, a one-line note when not, nothing under nbgrader."""
import subprocess
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from autograder import widgets  # noqa: E402
from autograder.instructor import build  # noqa: E402


@pytest.fixture
def interact_calls(monkeypatch):
    import ipywidgets

    calls = []
    monkeypatch.setattr(ipywidgets, "interact", lambda f, **kw: calls.append((f, kw)))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NN_COURSE_HEADLESS", raising=False)
    return calls


def test_interactive_builds_sliders_when_the_figure_can_be_drawn(interact_calls, capsys):
    @widgets.interactive(a=(0.0, 1.0, 0.1))
    def show(a=0.5):
        plt.plot([0, a])

    assert len(interact_calls) == 1 and interact_calls[0][1] == {"a": (0.0, 1.0, 0.1)}
    assert capsys.readouterr().out == ""
    assert plt.get_fignums() == [], "the trial drawing must not leave a figure behind"
    assert show(a=0.2) is None       # the decorated function is still callable
    plt.close("all")


def test_a_slider_move_renders_its_figure_once_and_shows_it_as_png(interact_calls, monkeypatch, request):
    """The inline backend's bbox_inches="tight" renders every figure twice; slider redraws do not."""
    import inspect

    from IPython import display

    request.addfinalizer(lambda: plt.close("all"))       # nothing left for the next test if this fails

    shown, renders = [], []
    monkeypatch.setattr(display, "display", lambda obj: shown.append(obj))

    @widgets.interactive(a=(0.0, 1.0, 0.1))
    def show(a=0.5):
        fig, ax = plt.subplots()
        ax.plot([0, a])
        fig.canvas.mpl_connect("draw_event", lambda event: renders.append(a))

    (redraw, sliders), = interact_calls
    assert inspect.signature(redraw) == inspect.signature(show), "ipywidgets reads the defaults from it"
    redraw(a=0.3)
    assert renders == [0.3], f"the figure was rendered {len(renders)} times for one move"
    assert len(shown) == 1 and isinstance(shown[0], display.Image)
    assert shown[0].data.startswith(b"\x89PNG"), "shown as a PNG image"
    assert plt.get_fignums() == [], "the figure is closed after it is shown"


def test_on_release_sliders_redraw_when_let_go(interact_calls):
    @widgets.interactive(m=widgets.on_release(1, 64, 1), signal=(0, 9, 1))
    def show(m=16, signal=0):
        pass

    (_, controls), = interact_calls
    m = controls["m"]
    assert (type(m).__name__, m.value, m.min, m.max, m.step) == ("IntSlider", 16, 1, 64, 1)
    assert m.continuous_update is False
    assert controls["signal"] == (0, 9, 1), "the other sliders stay as they are"


def test_interactive_names_the_missing_function_in_one_line(interact_calls, capsys):
    def perceptron_predict(X, w, b):
        # YOUR CODE HERE
        raise NotImplementedError()

    @widgets.interactive(b=(-1.0, 1.0, 0.1))
    def show(b=0.0):
        plt.plot(perceptron_predict(np.zeros((2, 2)), np.ones(2), b))

    out = capsys.readouterr().out
    assert interact_calls == []
    assert out.count("\n") == 1 and "`perceptron_predict`" in out and "not implemented yet" in out
    assert plt.get_fignums() == []


def test_other_errors_are_not_hidden(interact_calls):
    with pytest.raises(ZeroDivisionError):
        @widgets.interactive(a=(0.0, 1.0))
        def show(a=0.5):
            return 1 / 0


def test_no_widgets_while_nbgrader_runs(interact_calls, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    drawn = []

    @widgets.interactive(a=(0.0, 1.0))
    def show(a=0.5):
        drawn.append(a)

    assert interact_calls == [] and drawn == []
    assert "skipped" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["validate", "autograde"])
def test_no_figure_drawn_while_nbgrader_runs(mode, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    drawn = []
    widgets.show(lambda: drawn.append(1))
    assert drawn == [] and "figure skipped" in capsys.readouterr().out


def test_headless_runs_draw_once_without_sliders(interact_calls, monkeypatch, capsys):
    monkeypatch.setenv("NN_COURSE_HEADLESS", "1")
    drawn = []

    @widgets.interactive(a=(0.0, 1.0))
    def show(a=0.5):
        drawn.append(a)

    assert interact_calls == [] and drawn == [0.5]
    assert "headless" in capsys.readouterr().out


def test_headless_means_nbgrader_or_the_test_variable(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("NN_COURSE_HEADLESS", raising=False)
    assert not widgets.headless(), "a student's notebook: progress bars and sliders are wanted"
    monkeypatch.setenv("NN_COURSE_HEADLESS", "1")
    assert widgets.headless()
    monkeypatch.delenv("NN_COURSE_HEADLESS")
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert widgets.headless()


def test_sliders_need_defaults(interact_calls):
    with pytest.raises(TypeError, match="default value for a"):
        @widgets.interactive(a=(0.0, 1.0))
        def show(a):
            pass


def test_plot_decision_regions_colours_by_the_prediction():
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([-1.0, 1.0, 1.0, -1.0])
    fig, ax = plt.subplots()
    widgets.plot_decision_regions(ax, lambda P: np.where(P[:, 1] > 0.5, 1.0, -1.0), X, y,
                                  resolution=20, title="t")
    assert ax.get_title() == "t" and len(ax.collections) >= 3   # regions + two scatters
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y = -1", "y = 1"]
    plt.close(fig)
    fig, ax = plt.subplots()
    widgets.plot_decision_regions(ax, lambda P: np.ones(len(P)), X, y, resolution=5, legend=False)
    assert ax.get_legend() is None, "legend=False leaves the legend to the caller"
    plt.close(fig)


def test_student_kit_runs_alone(tmp_path):
    """The kit copied into each release folder imports without solutions_lib or instructor code."""
    build.add_kit(tmp_path)
    code = ("import sys; sys.meta_path.insert(0, type('B', (), {'find_spec': staticmethod("
            "lambda n, p=None, t=None: (_ for _ in ()).throw(ImportError(n)) "
            "if n.split('.')[0] == 'solutions_lib' else None)})());"
            "import autograder, autograder.checks, autograder.datasets, autograder.widgets;"
            f"assert autograder.__file__.startswith({str(tmp_path)!r}), autograder.__file__;"
            "assert not any(m.startswith(('solutions_lib', 'autograder.instructor', 'nbgrader'))"
            " for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


def test_show_draws_or_explains_in_one_line(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))

    def mse(h, y):
        raise NotImplementedError()

    widgets.show(lambda: plt.plot([1.0, 2.0]))
    assert shown == [True] and capsys.readouterr().out == ""
    plt.close("all")

    def draw_missing():
        plt.subplots()
        mse(np.ones(2), np.zeros(2))

    widgets.show(draw_missing)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "`mse`" in out and "not implemented yet" in out
    assert plt.get_fignums() == [], "a half-drawn figure must not be left behind"

    widgets.show(lambda: np.ones(2) @ np.ones(3))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "could not be drawn (ValueError" in out
    assert shown == [True]
