"""Attention maps, and the figures of notebooks 04 (weighted sum) and 05 (self vs cross).

:func:`attention_heatmap` is the course's one way to draw a matrix of scores or weights with
its token labels: notebooks 01, 03, 04 and 05 call it, and so do
:func:`self_vs_cross_attention` and :class:`attention_course.widgets.AttentionExplorer`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import HEATMAP_CMAP, OKABE_ITO, _axes


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
                ax.text(
                    j,
                    i,
                    f"{value:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if value > middle else "white",
                    in_layout=False,  # inside its cell: measuring it for the layout is waste
                )
    if highlight_row is not None:
        ax.add_patch(
            plt.Rectangle(
                (-0.5, highlight_row - 0.5),
                n_k,
                1,
                fill=False,
                edgecolor=OKABE_ITO[5],
                linewidth=2.5,
            )
        )
    return ax


#: Colours for value rows / keys: Okabe–Ito without yellow (faint on white) and black (kept
#: for the output row).
_KEY_COLOURS = tuple(OKABE_ITO[i] for i in (0, 1, 2, 4, 5, 6))


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of 2-D ``points`` (n, 2), counter-clockwise (monotone chain)."""
    pts = sorted({(float(x), float(y)) for x, y in points})
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def convex_combination(
    weights,
    V,
    key_labels: Sequence[str] | None = None,
    *,
    query_label: str | None = None,
    axes=None,
):
    """Draw one output row as a weighted average of the value rows (values of width 2).

    Left panel: the query's attention weights as bars, one per key. Right panel: the value
    rows as points in the plane, their convex hull shaded, and the output row
    ``weights @ V`` as a black star; a line joins the output to each value, thicker for a
    larger weight. Bars, points and lines of the same key share a colour.

    Parameters
    ----------
    weights : (n_k,) array_like
        One query's attention weights: non-negative, summing to 1.
    V : (n_k, 2) array_like
        Values, one per row, of width ``d_v = 2``.
    key_labels : sequence of str, optional
        Names of the keys / values (``n_k`` of them).
    query_label : str, optional
        Name of the query, used in the titles.
    axes : sequence of two matplotlib Axes, optional
        Where to draw (bars, plane); a new figure if omitted.

    Returns
    -------
    axes : (2,) ndarray of Axes
        The bar chart and the plane.

    Raises
    ------
    ValueError
        If the shapes do not fit, or the weights are negative or do not sum to 1.
    """
    weights = np.asarray(weights, dtype=float)
    V = np.asarray(V, dtype=float)
    if weights.ndim != 1 or V.ndim != 2 or V.shape != (weights.shape[0], 2):
        raise ValueError(
            "convex_combination draws one query's weights (n_k,) and values (n_k, 2), got "
            f"weights of shape {weights.shape} and V of shape {V.shape}."
        )
    if (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
        raise ValueError(
            "the weights must be non-negative and sum to 1 (one row of softmax output), got "
            f"{np.round(weights, 3).tolist()} with sum {weights.sum():.3g}."
        )
    n_k = weights.shape[0]
    labels = [str(k) for k in (key_labels if key_labels is not None else range(n_k))]
    if len(labels) != n_k:
        raise ValueError(f"{len(labels)} key labels for {n_k} keys.")
    colours = [_KEY_COLOURS[j % len(_KEY_COLOURS)] for j in range(n_k)]
    if axes is None:
        _, axes = plt.subplots(
            1, 2, figsize=(11, 4.2), layout="constrained", gridspec_kw={"width_ratios": [1, 1.4]}
        )
    bars_ax, plane = axes
    who = f" of query {query_label!r}" if query_label is not None else ""

    bars = bars_ax.bar(range(n_k), weights, color=colours, edgecolor="black", linewidth=0.5)
    for j, w in enumerate(weights):
        bars_ax.text(j, w + 0.02, f"{w:.2f}", ha="center", va="bottom", fontsize=9)
    for patch in bars:
        patch.set_gid("weight")
    bars_ax.set_xticks(range(n_k), labels=labels)
    bars_ax.set_ylim(0, 1.1)
    bars_ax.set_xlabel("key")
    bars_ax.set_ylabel("attention weight")
    bars_ax.set_title(f"Weights{who}: ≥ 0, sum = 1")

    output = weights @ V  # (n_k,) @ (n_k, 2) -> (2,)
    hull = _convex_hull(V)
    if len(hull) >= 3:
        polygon = plt.Polygon(
            hull,
            closed=True,
            facecolor="0.9",
            edgecolor="0.5",
            linestyle="--",
            label="convex hull of the values",
            zorder=1,
        )
        polygon.set_gid("hull")
        plane.add_patch(polygon)
    for j in range(n_k):
        plane.plot(
            [output[0], V[j, 0]],
            [output[1], V[j, 1]],
            color=colours[j],
            linewidth=0.5 + 5 * weights[j],
            alpha=0.8,
            zorder=2,
        )
    values = plane.scatter(
        V[:, 0],
        V[:, 1],
        c=colours,
        s=90,
        edgecolors="black",
        linewidths=0.5,
        zorder=3,
        label="value rows",
    )
    values.set_gid("values")
    for j in range(n_k):
        plane.annotate(
            labels[j], V[j], textcoords="offset points", xytext=(7, 7), fontsize=10, color="black"
        )
    star = plane.scatter(
        [output[0]],
        [output[1]],
        marker="*",
        s=320,
        c=OKABE_ITO[7],
        zorder=4,
        label="output = Σ weight × value",
    )
    star.set_gid("output")
    plane.set_xlabel("value dimension 0")
    plane.set_ylabel("value dimension 1")
    plane.set_title(f"Output{who} inside the hull of the values")
    plane.set_aspect("equal", adjustable="box")
    plane.margins(0.2)
    plane.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
    return np.asarray(axes)


def self_vs_cross_attention(
    self_weights,
    cross_weights,
    source_labels: Sequence[str],
    target_labels: Sequence[str],
    *,
    source_name: str = "source",
    target_name: str = "target",
    axes=None,
):
    """Draw a square self-attention map beside a rectangular cross-attention map.

    Left: the source sequence attending to itself (``n_k x n_k``). Right: the target
    sequence's queries attending to the source's keys (``n_q x n_k``). Both use
    :func:`attention_heatmap` with the same colour scale, 0 to 1.

    Parameters
    ----------
    self_weights : (n_k, n_k) array_like
        Self-attention weights of the source sequence.
    cross_weights : (n_q, n_k) array_like
        Cross-attention weights: target queries (rows) against source keys (columns).
    source_labels : sequence of str
        The ``n_k`` source tokens.
    target_labels : sequence of str
        The ``n_q`` target tokens.
    source_name, target_name : str, optional
        Names of the two sequences, used in the axis labels (e.g. "English", "French").
    axes : sequence of two matplotlib Axes, optional
        Where to draw (self, cross); a new figure if omitted.

    Returns
    -------
    axes : (2,) ndarray of Axes
        The self-attention and the cross-attention map.

    Raises
    ------
    ValueError
        If the maps' shapes do not match the labels.
    """
    self_weights = np.asarray(self_weights)
    cross_weights = np.asarray(cross_weights)
    n_k, n_q = len(source_labels), len(target_labels)
    if self_weights.shape != (n_k, n_k) or cross_weights.shape != (n_q, n_k):
        raise ValueError(
            f"with {n_k} source and {n_q} target tokens, expected self-attention weights of "
            f"shape {(n_k, n_k)} and cross-attention weights of shape {(n_q, n_k)}, got "
            f"{self_weights.shape} and {cross_weights.shape}."
        )
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
    panels = (  # (weights, query labels, query sequence's name, title): the keys are the source's
        (self_weights, source_labels, source_name, f"Self-attention: {n_k} × {n_k} (square)"),
        (cross_weights, target_labels, target_name, f"Cross-attention: n_q × n_k = {n_q} × {n_k}"),
    )
    for ax, (weights, query_labels, query_name, title) in zip(axes, panels, strict=True):
        attention_heatmap(
            weights,
            query_labels,
            source_labels,
            ax=ax,
            vmin=0,
            vmax=1,
            xlabel=f"key ({source_name})",
            ylabel=f"query ({query_name})",
            title=title,
        )
    return np.asarray(axes)
