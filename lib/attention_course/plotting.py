"""Figures for the course notebooks.

Every plot of the course is drawn by a function here, so notebooks stay short and all figures
share one look: colour-blind-safe colours (Okabe–Ito for lines and bars, ``cividis`` for
heatmaps), labelled axes, and token labels on attention maps. Each function takes an optional
``ax`` and returns the Axes (or Figure) it drew on, so it can be tested without a screen.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

#: Okabe & Ito's palette, distinguishable with every common colour-vision deficiency.
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)

#: Perceptually uniform and colour-blind-safe colormap for heatmaps.
HEATMAP_CMAP = "cividis"


def _axes(ax=None, figsize=(5, 4)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def attention_heatmap(
    weights,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    ax=None,
    title: str | None = None,
    annotate: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    xlabel: str = "key",
    ylabel: str = "query",
    highlight_row: int | None = None,
):
    """Draw a matrix of scores or attention weights with its token labels.

    Parameters
    ----------
    weights : (n_q, n_k) array_like
        One row per query, one column per key.
    query_labels : sequence of str, optional
        Labels of the rows (``n_q`` of them).
    key_labels : sequence of str, optional
        Labels of the columns (``n_k`` of them).
    ax : matplotlib Axes, optional
        Where to draw; a new figure if omitted.
    title : str, optional
        Axes title.
    annotate : bool, optional
        Write each value in its cell (only for matrices up to 12 x 12).
    vmin, vmax : float, optional
        Colour limits; default to the data's range.
    xlabel, ylabel : str, optional
        Axis labels (default "key" and "query").
    highlight_row : int, optional
        Draw a frame around this query's row.

    Returns
    -------
    ax : matplotlib Axes
    """
    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(f"attention_heatmap draws a 2-D matrix, got shape {weights.shape}.")
    n_q, n_k = weights.shape
    ax = _axes(ax, figsize=(1.0 + 0.6 * n_k, 0.8 + 0.5 * n_q))
    image = ax.imshow(weights, cmap=HEATMAP_CMAP, vmin=vmin, vmax=vmax, aspect="auto")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    ax.set_xticks(range(n_k), labels=key_labels if key_labels is not None else range(n_k))
    ax.set_yticks(range(n_q), labels=query_labels if query_labels is not None else range(n_q))
    if key_labels is not None:
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if annotate and n_q <= 12 and n_k <= 12:
        lo, hi = image.get_clim()
        middle = (lo + hi) / 2
        for i in range(n_q):
            for j in range(n_k):
                value = weights[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if value > middle else "white")
    if highlight_row is not None:
        ax.add_patch(plt.Rectangle((-0.5, highlight_row - 0.5), n_k, 1, fill=False,
                                   edgecolor=OKABE_ITO[5], linewidth=2.5))
    return ax
