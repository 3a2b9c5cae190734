"""Tests of the figures of notebook 09's training run in :mod:`attention_course.plotting.training`.

Each test reads back what was drawn (line data, colours, line styles, titles, axis scales) and
compares it with the runs it was given. Rendering uses the Agg backend, so no screen is needed.
The runs are short (20 steps of a small task) and every width different, so a panel that shows
another width's or another optimiser's run cannot pass.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attention_course import plotting
from attention_course import training as tr

D_KS = (3, 8)
TASK = tr.RetrievalTask(batch_size=4, eval_size=8)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def runs():
    return [
        tr.train_retrieval(d_k, scaled=scaled, optimiser=opt, steps=23, seed=5, task=TASK)
        for opt in ("sgd", "adam")
        for d_k in D_KS
        for scaled in (True, False)
    ]


def _same_colour(line, colour) -> bool:
    return mcolors.to_rgba(line.get_color()) == mcolors.to_rgba(colour)


# ---- window_medians ---------------------------------------------------------------------------


def test_window_medians_takes_the_median_of_each_block_and_keeps_a_short_last_one():
    values = np.array([5.0, 1.0, 3.0, 100.0, 2.0, 4.0, 9.0])  # blocks [5 1 3] [100 2 4] [9]
    steps, medians = plotting.window_medians(values, 3)
    assert_array_equal(steps, [1.0, 4.0, 6.0])
    assert_array_equal(medians, [3.0, 4.0, 9.0])
    steps, medians = plotting.window_medians(values, 1)
    assert_array_equal(steps, np.arange(7.0))
    assert_array_equal(medians, values)


@pytest.mark.parametrize("window", [0, -2, 2.5, True])
def test_window_medians_rejects_a_window_that_is_not_a_positive_integer(window):
    with pytest.raises(ValueError, match="window must be a positive integer"):
        plotting.window_medians(np.ones(4), window)


# ---- loss_curves ------------------------------------------------------------------------------


@pytest.mark.parametrize("optimiser", ["sgd", "adam"])
def test_loss_curves_draws_each_widths_scaled_and_unscaled_runs_of_one_optimiser(runs, optimiser):
    axes = plotting.loss_curves(runs, optimiser, window=5)
    assert len(axes) == len(D_KS)
    for ax, d_k in zip(axes, D_KS, strict=True):
        assert ax.get_title() == f"$d_k$ = {d_k}" and ax.get_yscale() == "log"
        drawn = ax.get_lines()
        expected = [r for r in runs if r.d_k == d_k and r.optimiser.value == optimiser]
        assert len(drawn) == len(expected) == 2
        for line, run in zip(drawn, expected, strict=True):
            steps, medians = plotting.window_medians(run.loss, 5)
            assert_allclose(line.get_xdata(), steps)
            assert_allclose(line.get_ydata(), medians)
            colour = plotting.SCALED_COLOUR if run.scaled else plotting.UNSCALED_COLOUR
            assert _same_colour(line, colour)
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["scaled: q·k / √$d_k$", "unscaled: q·k"]
    assert ("Adam" if optimiser == "adam" else "SGD") in axes[0].figure.get_suptitle()


def test_loss_curves_with_window_one_draws_every_step(runs):
    (ax, _) = plotting.loss_curves(runs, "sgd", window=1)
    scaled = next(r for r in runs if r.d_k == D_KS[0] and r.scaled and r.optimiser.value == "sgd")
    assert_allclose(ax.get_lines()[0].get_ydata(), scaled.loss)


# ---- gradient_norm_curves ---------------------------------------------------------------------


def test_gradient_norm_curves_draws_w_q_solid_and_w_k_dashed(runs):
    axes = plotting.gradient_norm_curves(runs, "adam", window=4)
    for ax, d_k in zip(axes, D_KS, strict=True):
        expected = [r for r in runs if r.d_k == d_k and r.optimiser.value == "adam"]
        lines = ax.get_lines()
        assert len(lines) == 2 * len(expected)
        for run, (w_q, w_k) in zip(expected, zip(lines[::2], lines[1::2], strict=True),
                                   strict=True):  # fmt: skip
            assert_allclose(w_q.get_ydata(), plotting.window_medians(run.w_q_grad_norm, 4)[1])
            assert_allclose(w_k.get_ydata(), plotting.window_medians(run.w_k_grad_norm, 4)[1])
            assert w_q.get_linestyle() == "-" and w_k.get_linestyle() == "--"
            colour = plotting.SCALED_COLOUR if run.scaled else plotting.UNSCALED_COLOUR
            assert _same_colour(w_q, colour) and _same_colour(w_k, colour)
        assert ax.get_yscale() == "log"
    assert axes[0].get_ylabel() == "gradient norm (log scale)"


def test_the_figures_draw_on_given_axes(runs):
    _, given = plt.subplots(1, len(D_KS))
    axes = plotting.gradient_norm_curves(runs, axes=given)
    assert list(axes) == list(given)
    assert len(given[1].get_lines()) == 4


def test_the_two_colours_are_okabe_ito_and_differ():
    from attention_course.plotting import OKABE_ITO

    assert {plotting.SCALED_COLOUR, plotting.UNSCALED_COLOUR} <= set(OKABE_ITO)
    assert plotting.SCALED_COLOUR != plotting.UNSCALED_COLOUR


@pytest.mark.parametrize("draw", [plotting.loss_curves, plotting.gradient_norm_curves])
def test_the_figures_reject_a_missing_optimiser_and_a_wrong_number_of_axes(runs, draw):
    sgd_only = [r for r in runs if r.optimiser.value == "sgd"]
    with pytest.raises(ValueError, match="none of the 4 runs used the optimiser 'adam'"):
        draw(sgd_only, "adam")
    _, three = plt.subplots(1, 3)
    with pytest.raises(ValueError, match="2 widths d_k to draw, but 3 Axes given"):
        draw(runs, axes=three)
