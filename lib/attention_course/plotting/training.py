"""Figures of the training run of notebook 09: loss and gradient norms, scaled vs unscaled.

The figures read :class:`attention_course.training.TrainingRun` records (one per ``d_k``,
scaled or unscaled, and optimiser) and draw one panel per ``d_k``, with the look of
:mod:`attention_course.plotting`: Okabe–Ito colours (blue for scaled attention, vermillion
for unscaled, the pairing of notebook 03's saturation curves), a second line style where a
panel has two series of one run, and log-scaled y axes. Each function returns the Axes it drew
on, so tests read the drawn data back without a screen.

Used by notebook 09 (``plotting.loss_curves``, ``plotting.gradient_norm_curves``).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..training import Optimiser, TrainingRun
from .style import SCALED_COLOUR, UNSCALED_COLOUR

_NAMES = {Optimiser.SGD: "SGD", Optimiser.ADAM: "Adam"}


def window_medians(values, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Median of each block of ``window`` consecutive steps, and the block's middle step.

    One step's loss or gradient norm swings by orders of magnitude from batch to batch
    (a saturated row passes 1e-30 on one batch and 1e-3 on the next); the median of a
    block shows the typical value.

    Parameters
    ----------
    values : (steps,) array_like
        One number per step.
    window : int
        Steps per block; a last, shorter block is kept.

    Returns
    -------
    steps : (n_blocks,) ndarray of float
        Middle step of each block (``(first + last) / 2``).
    medians : (n_blocks,) ndarray of float
        Median of ``values`` over each block.
    """
    values = np.asarray(values, dtype=float)
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}.")
    starts = np.arange(0, len(values), window)  # (n_blocks,)
    ends = np.minimum(starts + window, len(values))  # (n_blocks,) exclusive
    medians = np.array([np.median(values[a:b]) for a, b in zip(starts, ends, strict=True)])
    return (starts + ends - 1) / 2, medians


def _style(run: TrainingRun) -> dict:
    if run.scaled:
        return {"color": SCALED_COLOUR, "label": "scaled: q·k / √$d_k$"}
    return {"color": UNSCALED_COLOUR, "label": "unscaled: q·k"}


def _panels(runs: Sequence[TrainingRun], optimiser: Optimiser | str, axes):
    """The runs of ``optimiser``, grouped by d_k (ascending), and one Axes per d_k."""
    optimiser = Optimiser(optimiser)
    chosen = [run for run in runs if run.optimiser is optimiser]
    if not chosen:
        raise ValueError(f"none of the {len(runs)} runs used the optimiser {optimiser.value!r}.")
    d_ks = sorted({run.d_k for run in chosen})
    if axes is None:
        _, axes = plt.subplots(
            1, len(d_ks), figsize=(3.8 * len(d_ks), 3.6), sharey=True, layout="constrained"
        )
    axes = np.atleast_1d(np.asarray(axes, dtype=object))
    if len(axes) != len(d_ks):
        raise ValueError(f"{len(d_ks)} widths d_k to draw, but {len(axes)} Axes given.")
    return optimiser, {d_k: [r for r in chosen if r.d_k == d_k] for d_k in d_ks}, axes


def _finish(ax, d_k: int, ylabel: str | None) -> None:
    ax.set_yscale("log")
    ax.set_title(f"$d_k$ = {d_k}")
    ax.set_xlabel("training step")
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, which="major", color="0.9")


def loss_curves(
    runs: Sequence[TrainingRun], optimiser: Optimiser | str = "sgd", *, window: int = 10, axes=None
):
    """Training loss against step, one panel per ``d_k``, scaled and unscaled runs together.

    Each line is the median of the loss over blocks of ``window`` steps (:func:`window_medians`).

    Parameters
    ----------
    runs : sequence of TrainingRun
        E.g. :func:`attention_course.training.compare_scaling`'s result; only the runs of
        ``optimiser`` are drawn.
    optimiser : Optimiser or {"sgd", "adam"}, optional
        Which runs to draw (default SGD).
    window : int, optional
        Steps per median (default 10; 1 draws every step).
    axes : sequence of matplotlib Axes, optional
        One per distinct ``d_k`` of those runs, in ascending order; a new figure if omitted.

    Returns
    -------
    axes : (n_d_k,) ndarray of Axes

    Raises
    ------
    ValueError
        If no run used ``optimiser``, or ``axes`` does not have one Axes per ``d_k``.
    """
    optimiser, by_d_k, axes = _panels(runs, optimiser, axes)
    for i, (ax, (d_k, group)) in enumerate(zip(axes, by_d_k.items(), strict=True)):
        for run in group:
            ax.plot(*window_medians(run.loss, window), marker=".", **_style(run))
        _finish(ax, d_k, "training loss (log scale)" if i == 0 else None)
    axes[0].legend(loc="best")
    axes[0].figure.suptitle(
        f"Training loss, {_NAMES[optimiser]} (median of each {window} steps' batches)"
    )
    return axes


def gradient_norm_curves(
    runs: Sequence[TrainingRun], optimiser: Optimiser | str = "sgd", *, window: int = 10, axes=None
):
    """Norm of the gradient reaching ``W_q`` (solid) and ``W_k`` (dashed) against step.

    Each line is the median over blocks of ``window`` steps (:func:`window_medians`).
    One panel per ``d_k``, scaled and unscaled runs together, on a log scale: a gradient that
    stops reaching the projections shows as a line falling by orders of magnitude.

    Parameters
    ----------
    runs : sequence of TrainingRun
        Only the runs of ``optimiser`` are drawn.
    optimiser : Optimiser or {"sgd", "adam"}, optional
        Which runs to draw (default SGD).
    window : int, optional
        Steps per median (default 10; 1 draws every step).
    axes : sequence of matplotlib Axes, optional
        One per distinct ``d_k``, ascending; a new figure if omitted.

    Returns
    -------
    axes : (n_d_k,) ndarray of Axes

    Raises
    ------
    ValueError
        As :func:`loss_curves`.
    """
    optimiser, by_d_k, axes = _panels(runs, optimiser, axes)
    for i, (ax, (d_k, group)) in enumerate(zip(axes, by_d_k.items(), strict=True)):
        for run in group:
            style = _style(run)
            ax.plot(*window_medians(run.w_q_grad_norm, window), color=style["color"],
                    marker=".", label=f"{style['label']}, $W_q$")  # fmt: skip
            ax.plot(*window_medians(run.w_k_grad_norm, window), color=style["color"],
                    linestyle="--", label=f"{style['label']}, $W_k$")  # fmt: skip
        _finish(ax, d_k, "gradient norm (log scale)" if i == 0 else None)
    axes[0].legend(loc="lower left", fontsize="small")
    axes[0].figure.suptitle(
        f"Norm of the gradient reaching $W_q$ and $W_k$, {_NAMES[optimiser]} "
        f"(median of each {window} steps)"
    )
    return axes
