"""Tests of the figures of notebooks 01-03: what is drawn, not only that something is drawn.

Each test draws with the Agg backend and reads the data back from the artists (arrow
components, line data, legend and annotation texts), so a figure that plots the wrong array,
drops a series or loses its labels fails.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from attention_course import plotting, saturation  # noqa: E402

SAFE_COLOURS = {c.lower() for c in plotting.OKABE_ITO}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


# ---- vector_arrows ---------------------------------------------------------------------------

VECTORS = np.array([[2.0, 0.0], [1.1, 0.4], [1.6, 2.8], [0.0, 1.5], [-1.5, -0.5]])
LABELS = ["query", "short", "long", "orthogonal", "opposite"]


def test_vector_arrows_draws_each_vector_from_the_origin():
    ax = plotting.vector_arrows(VECTORS, LABELS, query=0)
    (quiver,) = [c for c in ax.collections if isinstance(c, Quiver)]
    np.testing.assert_array_equal(quiver.U, VECTORS[:, 0])
    np.testing.assert_array_equal(quiver.V, VECTORS[:, 1])
    np.testing.assert_array_equal(quiver.get_offsets(), np.zeros((5, 2)))
    # Every tip is inside the axes.
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    assert np.all((VECTORS[:, 0] > x0) & (VECTORS[:, 0] < x1))
    assert np.all((VECTORS[:, 1] > y0) & (VECTORS[:, 1] < y1))
    assert ax.get_xlabel() and ax.get_ylabel()


def test_vector_arrows_labels_tips_and_reports_dot_and_cosine():
    ax = plotting.vector_arrows(VECTORS, LABELS, query=0, title="t")
    assert [t.get_text() for t in ax.texts] == LABELS
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    # q = (2, 0): q·k = 2 k_x and cos = k_x / |k|, computed here by hand.
    assert legend[0] == "query = q"
    assert "q·k = 2.20,  cos = 0.94" in legend[1]
    assert "q·k = 3.20,  cos = 0.50" in legend[2]
    assert "q·k = 0.00,  cos = 0.00" in legend[3]  # never "-0.00"
    assert "q·k = -3.00,  cos = -0.95" in legend[4]
    assert ax.get_title() == "t"


def test_vector_arrows_colours_are_colour_blind_safe_and_the_query_is_black():
    ax = plotting.vector_arrows(VECTORS, LABELS, query=2)
    (quiver,) = [c for c in ax.collections if isinstance(c, Quiver)]
    colours = [to_hex(c) for c in quiver.get_facecolors()]
    assert set(colours) <= SAFE_COLOURS
    assert colours[2] == "#000000"
    assert "#f0e442" not in colours  # yellow is unreadable as text on white
    assert len(set(colours)) == len(colours)


def test_vector_arrows_without_query_has_no_legend():
    ax = plotting.vector_arrows(VECTORS[:2], LABELS[:2])
    assert ax.get_legend() is None


@pytest.mark.parametrize(
    ("vectors", "labels"), [(np.ones((3, 3)), ["a", "b", "c"]), (np.ones((3, 2)), ["a", "b"])]
)
def test_vector_arrows_rejects_bad_input(vectors, labels):
    with pytest.raises(ValueError):
        plotting.vector_arrows(vectors, labels)


# ---- score_variance_curve --------------------------------------------------------------------

D_KS = 2 ** np.arange(6)
VARIANCE = D_KS * np.array([1.02, 0.97, 1.01, 1.0, 0.99, 1.03])
SCALED = np.array([1.01, 0.98, 1.0, 1.02, 0.99, 1.0])


def test_score_variance_curve_draws_measurements_and_the_line_y_equals_d_k():
    ax = plotting.score_variance_curve(D_KS, VARIANCE)
    lines = _lines_by_label(ax)
    assert len(lines) == 2
    (theory,) = [line for label, line in lines.items() if "theory" in label]
    (measured,) = [line for label, line in lines.items() if "measured" in label]
    np.testing.assert_array_equal(theory.get_xdata(), D_KS)
    np.testing.assert_array_equal(theory.get_ydata(), D_KS)  # y = d_k
    np.testing.assert_array_equal(measured.get_xdata(), D_KS)
    np.testing.assert_array_equal(measured.get_ydata(), VARIANCE)
    assert measured.get_linestyle() == "None" and measured.get_marker() != "None"
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "d_k" in ax.get_xlabel() and "variance" in ax.get_ylabel()
    assert to_hex(measured.get_color()) in SAFE_COLOURS


def test_score_variance_curve_adds_the_scaled_measurements_and_the_line_y_equals_1():
    ax = plotting.score_variance_curve(D_KS, VARIANCE, SCALED, title="scaled")
    lines = _lines_by_label(ax)
    assert len(lines) == 4
    scaled_theory = lines["theory: Var(q·k / √$d_k$) = 1"]
    scaled_measured = lines["measured: q·k / √$d_k$"]
    np.testing.assert_array_equal(scaled_theory.get_ydata(), np.ones(len(D_KS)))
    np.testing.assert_array_equal(scaled_measured.get_ydata(), SCALED)
    assert to_hex(scaled_measured.get_color()) != to_hex(lines["measured: q·k"].get_color())
    assert ax.get_title() == "scaled"
    assert {t.get_text() for t in ax.get_legend().get_texts()} == set(lines)


def test_score_variance_curve_draws_on_the_given_axes_and_rejects_mismatched_data():
    _, ax = plt.subplots()
    assert plotting.score_variance_curve(D_KS, VARIANCE, ax=ax) is ax
    with pytest.raises(ValueError):
        plotting.score_variance_curve(D_KS, VARIANCE[:-1])
    with pytest.raises(ValueError):
        plotting.score_variance_curve(D_KS, VARIANCE, SCALED[:-1])


# ---- saturation_curves -----------------------------------------------------------------------


def _stats(max_weight, grad_norm):
    d_k = np.array([1, 4, 16])
    return saturation.SaturationStats(
        d_k, np.asarray(max_weight), np.zeros(3), np.zeros(3), np.asarray(grad_norm)
    )


UNSCALED = _stats([0.2, 0.6, 0.99], [0.3, 0.1, 1e-4])
SCALED_STATS = _stats([0.2, 0.21, 0.22], [0.3, 0.29, 0.31])


def test_saturation_curves_draws_largest_weight_and_gradient_norm():
    fig = plotting.saturation_curves(UNSCALED, SCALED_STATS, n_keys=16)
    left, right = fig.axes
    left_lines, right_lines = _lines_by_label(left), _lines_by_label(right)
    np.testing.assert_array_equal(left_lines["unscaled: q·k"].get_ydata(), UNSCALED.max_weight)
    np.testing.assert_array_equal(
        left_lines["scaled: q·k / √$d_k$"].get_ydata(), SCALED_STATS.max_weight
    )
    np.testing.assert_array_equal(right_lines["unscaled: q·k"].get_ydata(), UNSCALED.grad_norm)
    np.testing.assert_array_equal(
        right_lines["scaled: q·k / √$d_k$"].get_ydata(), SCALED_STATS.grad_norm
    )
    np.testing.assert_array_equal(right_lines["unscaled: q·k"].get_xdata(), UNSCALED.d_k)
    # Reference levels: one-hot at 1 and uniform at 1 / n_keys.
    np.testing.assert_array_equal(left_lines["one-hot"].get_ydata(), [1.0, 1.0])
    np.testing.assert_array_equal(left_lines["uniform (1/16)"].get_ydata(), [1 / 16, 1 / 16])
    assert right.get_yscale() == "log"
    for ax in (left, right):
        assert ax.get_xscale() == "log"
        assert "d_k" in ax.get_xlabel() and ax.get_ylabel()
        for label in ("unscaled: q·k", "scaled: q·k / √$d_k$"):
            assert to_hex(_lines_by_label(ax)[label].get_color()) in SAFE_COLOURS
    assert "weight" in left.get_ylabel() and "gradient" in right.get_ylabel()


def test_saturation_curves_uses_the_given_axes():
    fig, axes = plt.subplots(1, 2)
    assert plotting.saturation_curves(UNSCALED, SCALED_STATS, ax=axes) is fig
    assert "uniform (1/16)" not in _lines_by_label(axes[0])  # n_keys not given
    with pytest.raises(ValueError):
        plotting.saturation_curves(UNSCALED, SCALED_STATS, ax=[axes[0]])
