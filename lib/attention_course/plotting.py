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


def _log2_xaxis(ax, measured) -> None:
    """A log2 x-axis with one plain-number tick per measured value (``d_k`` 1, 2, ..., 1024).

    Plain labels read more easily than 2⁵, and they skip matplotlib's mathtext, which would
    otherwise be most of the time it takes to draw these small figures.
    """
    from matplotlib.ticker import NullLocator

    measured = np.asarray(measured)
    ax.set_xscale("log", base=2)
    ax.set_xticks(measured, labels=[f"{value:g}" for value in measured])
    ax.xaxis.set_minor_locator(NullLocator())  # only the measured values


def _plain_log_yaxis(ax, base: float = 10) -> None:
    """A log y-axis labelled with plain numbers (0.01, 1, 16), without minor ticks.

    Eight unlabelled minor ticks per decade cost more to lay out than the rest of the axes.
    """
    from matplotlib.ticker import FuncFormatter, NullLocator

    ax.set_yscale("log", base=base)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


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


# --------------------------------------------------------------------------------------------
# Notebooks 01-03: dot products, scaling, softmax saturation.
# --------------------------------------------------------------------------------------------


def vector_arrows(
    vectors,
    labels: Sequence[str],
    *,
    query: int | None = None,
    ax=None,
    title: str | None = None,
):
    """Draw 2-D vectors as arrows from the origin, optionally scored against one of them.

    Parameters
    ----------
    vectors : (n, 2) array_like
        One 2-D vector per row.
    labels : sequence of str
        One label per vector (``n`` of them).
    query : int, optional
        Index of the vector the others are compared with: it is drawn in black and every other
        label gets its dot product ``q · k`` and cosine similarity with it.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if omitted.
    title : str, optional
        Axes title.

    Returns
    -------
    ax : matplotlib Axes
    """
    vectors = np.asarray(vectors, dtype=float)
    if vectors.ndim != 2 or vectors.shape[1] != 2:
        raise ValueError(f"vector_arrows draws 2-D vectors, shape (n, 2); got {vectors.shape}.")
    n = vectors.shape[0]
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} labels for {n} vectors.")
    ax = _axes(ax, figsize=(8.5, 4.5))
    # Yellow is too pale for text on white; black is kept for the query.
    palette = [c for c in OKABE_ITO if c not in ("#000000", "#F0E442")]
    colors = [palette[i % len(palette)] for i in range(n)]
    if query is not None:
        colors[query] = "#000000"
    ax.quiver(
        np.zeros(n),
        np.zeros(n),
        vectors[:, 0],
        vectors[:, 1],
        color=colors,
        angles="xy",
        scale_units="xy",
        scale=1,
        width=0.012,
    )
    lengths = np.linalg.norm(vectors, axis=1)  # (n, 2) -> (n,)
    handles = []
    for i, (x, y) in enumerate(vectors):
        along = np.array([x, y]) / max(lengths[i], 1e-12)  # unit vector along the arrow
        ax.annotate(
            labels[i],
            (x, y),
            xytext=tuple(6 * along),  # just past the tip, in points
            textcoords="offset points",
            ha="left" if along[0] >= -0.3 else "right",
            va="bottom" if along[1] >= 0 else "top",
            fontsize=10,
            fontweight="bold" if i == query else "normal",
            color=colors[i],
        )
        if query is not None:
            text = f"{labels[i]} = q" if i == query else f"{labels[i]} = k"
            if i != query:
                dot = float(vectors[i] @ vectors[query])  # (2,) @ (2,) -> scalar
                cosine = dot / (lengths[i] * lengths[query])
                text += f":  q·k = {dot + 0.0:.2f},  cos = {cosine + 0.0:.2f}"
            handles.append(plt.Line2D([], [], color=colors[i], linewidth=3, label=text))
    if handles:
        ax.legend(
            handles=handles,
            loc="center left",
            bbox_to_anchor=(1.02, 0.5),
            frameon=False,
            fontsize=9,
        )
    low = np.minimum(vectors.min(axis=0), 0.0)  # (2,): the origin is always in view
    high = np.maximum(vectors.max(axis=0), 0.0)
    margin = 0.3 * max(float(np.max(high - low)), 1e-12)
    ax.set_xlim(low[0] - margin, high[0] + margin)
    ax.set_ylim(low[1] - margin, high[1] + margin)
    ax.set_aspect("equal")
    ax.axhline(0, color="0.8", linewidth=0.8, zorder=0)
    ax.axvline(0, color="0.8", linewidth=0.8, zorder=0)
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    if title:
        ax.set_title(title)
    return ax


def score_variance_curve(d_ks, variance, scaled_variance=None, *, ax=None, title=None):
    """Measured variance of the score ``q · k`` against the width ``d_k``, on log axes.

    Draws the measurements as markers and the theory as lines: ``Var(q · k) = d_k`` for
    unit-variance entries, and ``Var(q · k / sqrt(d_k)) = 1`` if ``scaled_variance`` is given.

    Parameters
    ----------
    d_ks : (n_d,) array_like
        Widths of the queries and keys.
    variance : (n_d,) array_like
        Measured variance of the raw scores, e.g. from
        :func:`attention_course.saturation.score_variance`.
    scaled_variance : (n_d,) array_like, optional
        Measured variance of the scores divided by ``sqrt(d_k)``.
    ax : matplotlib Axes, optional
        Where to draw; a new figure if omitted.
    title : str, optional
        Axes title.

    Returns
    -------
    ax : matplotlib Axes
    """
    d_ks = np.asarray(d_ks, dtype=float)
    variance = np.asarray(variance, dtype=float)
    if d_ks.ndim != 1 or variance.shape != d_ks.shape:
        raise ValueError(
            f"d_ks and variance must be 1-D of the same length, got shapes {d_ks.shape} and "
            f"{variance.shape}."
        )
    ax = _axes(ax, figsize=(6, 4.5))
    ax.plot(
        d_ks,
        d_ks,
        color=OKABE_ITO[7],
        linestyle="--",
        linewidth=1.2,
        label="theory: Var(q·k) = $d_k$",
    )
    ax.plot(d_ks, variance, color=OKABE_ITO[5], marker="o", linestyle="none", label="measured: q·k")
    if scaled_variance is not None:
        scaled_variance = np.asarray(scaled_variance, dtype=float)
        if scaled_variance.shape != d_ks.shape:
            raise ValueError(
                f"scaled_variance must have shape {d_ks.shape}, got {scaled_variance.shape}."
            )
        ax.plot(
            d_ks,
            np.ones_like(d_ks),
            color=OKABE_ITO[7],
            linestyle=":",
            linewidth=1.2,
            label="theory: Var(q·k / √$d_k$) = 1",
        )
        ax.plot(
            d_ks,
            scaled_variance,
            color=OKABE_ITO[4],
            marker="s",
            linestyle="none",
            label="measured: q·k / √$d_k$",
        )
    _log2_xaxis(ax, d_ks)
    _plain_log_yaxis(ax, base=2)
    ax.set_xlabel("$d_k$ (width of the queries and keys)")
    ax.set_ylabel("variance of the score")
    ax.grid(True, which="major", color="0.9")
    ax.legend(loc="upper left")
    ax.set_title(title if title is not None else "Dot products of random unit-variance vectors")
    return ax


def saturation_curves(unscaled, scaled, *, n_keys: int | None = None, ax=None):
    """How the softmax of attention scores saturates as ``d_k`` grows, unscaled vs scaled.

    Left: the largest attention weight of a query (1 = one-hot). Right: the norm of the
    gradient the softmax passes back to the scores, on a log scale.

    Parameters
    ----------
    unscaled, scaled : SaturationStats
        Results of :func:`attention_course.saturation.saturation_stats` with
        ``scaled=False`` and ``scaled=True`` (fields ``d_k``, ``max_weight``, ``grad_norm``).
    n_keys : int, optional
        Number of keys, to mark the uniform weight ``1 / n_keys``.
    ax : sequence of two matplotlib Axes, optional
        Where to draw the two panels; a new figure if omitted.

    Returns
    -------
    fig : matplotlib Figure
    """
    if ax is None:
        fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    if len(ax) != 2:
        raise ValueError(f"saturation_curves draws two panels; got {len(ax)} Axes.")
    left, right = ax
    styles = (
        (unscaled, "unscaled: q·k", OKABE_ITO[5], "o", "-"),
        (scaled, "scaled: q·k / √$d_k$", OKABE_ITO[4], "s", "--"),
    )
    for stats, label, color, marker, linestyle in styles:
        left.plot(
            stats.d_k,
            stats.max_weight,
            color=color,
            marker=marker,
            linestyle=linestyle,
            label=label,
        )
        right.plot(
            stats.d_k, stats.grad_norm, color=color, marker=marker, linestyle=linestyle, label=label
        )
    left.axhline(1.0, color=OKABE_ITO[7], linestyle=":", linewidth=1, label="one-hot")
    if n_keys is not None:
        left.axhline(
            1.0 / n_keys, color="0.5", linestyle=":", linewidth=1, label=f"uniform (1/{n_keys})"
        )
    left.set_ylim(0, 1.05)
    left.set_ylabel("largest attention weight")
    left.set_title("Saturation: one key takes all the weight")
    _plain_log_yaxis(right)
    right.set_ylabel("norm of the gradient reaching the scores")
    right.set_title("Gradient through the softmax")
    for panel in (left, right):
        _log2_xaxis(panel, unscaled.d_k)
        panel.set_xlabel("$d_k$ (width of the queries and keys)")
        panel.grid(True, which="major", color="0.9")
        panel.legend(loc="best")
    return left.figure


# --------------------------------------------------------------------------------------------
# 04 · Weighted sum and 05 · Self- vs cross-attention
# --------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------
# 06 · Masks, 07 · Multi-head attention, 08 · Attention that fits in memory
# --------------------------------------------------------------------------------------------

#: Colours of a boolean mask: light grey where a query may not attend, blue where it may.
MASK_COLOURS = ("#EEEEEE", OKABE_ITO[4])


def mask_panels(
    masks,
    titles: Sequence[str] | None = None,
    *,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    axes=None,
):
    """Draw boolean attention masks side by side: blue where a query may attend, grey where not.

    Parameters
    ----------
    masks : sequence of (n_q, n_k) array_like of bool
        One mask per panel, True where the query (row) may attend to the key (column). Each
        panel may have its own shape.
    titles : sequence of str, optional
        One title per panel.
    query_labels, key_labels : sequence of str, optional
        Tick labels shared by every panel whose shape they fit; other panels get indices.
    axes : sequence of matplotlib Axes, optional
        Where to draw, one per mask; a new figure if omitted.

    Returns
    -------
    axes : (n_panels,) ndarray of Axes

    Raises
    ------
    ValueError
        If a mask is not 2-D, or the number of titles or axes differs from the number of masks.
    """
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    masks = [np.asarray(m) for m in masks]
    for i, m in enumerate(masks):
        if m.ndim != 2:
            raise ValueError(
                f"mask_panels draws 2-D masks (n_q, n_k); mask {i} has shape {m.shape}."
            )
    if titles is not None and len(titles) != len(masks):
        raise ValueError(f"got {len(titles)} titles for {len(masks)} masks.")
    if axes is None:
        width = sum(1.2 + 0.45 * m.shape[1] for m in masks)
        height = 1.6 + 0.45 * max(m.shape[0] for m in masks)
        _, axes = plt.subplots(
            1, len(masks), figsize=(width, height), layout="constrained", squeeze=False,
            gridspec_kw={"width_ratios": [m.shape[1] for m in masks]},
        )  # fmt: skip
        axes = axes[0]
    axes = np.atleast_1d(np.asarray(axes, dtype=object))
    if len(axes) != len(masks):
        raise ValueError(f"got {len(axes)} Axes for {len(masks)} masks.")
    cmap = ListedColormap(MASK_COLOURS)
    for i, (ax, m) in enumerate(zip(axes, masks, strict=True)):
        n_q, n_k = m.shape
        ax.imshow(m.astype(float), cmap=cmap, vmin=0, vmax=1, aspect="equal")
        rows = query_labels if query_labels is not None and len(query_labels) == n_q else None
        cols = key_labels if key_labels is not None and len(key_labels) == n_k else None
        ax.set_xticks(range(n_k), labels=cols if cols is not None else range(n_k))
        ax.set_yticks(range(n_q), labels=rows if rows is not None else range(n_q))
        if cols is not None:
            ax.tick_params(axis="x", labelrotation=45)
        ax.set_xticks(np.arange(-0.5, n_k), minor=True)
        ax.set_yticks(np.arange(-0.5, n_q), minor=True)
        ax.grid(which="minor", color="white", linewidth=1.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("key")
        ax.set_ylabel("query" if i == 0 else "")
        if titles is not None:
            ax.set_title(titles[i])
    handles = [
        Patch(facecolor=MASK_COLOURS[1], label="True: may attend"),
        Patch(facecolor=MASK_COLOURS[0], edgecolor="0.6", label="False: blocked"),
    ]
    axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=9)
    return axes


def head_heatmaps(
    weights,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    axes=None,
):
    """Draw the attention weights of every head of multi-head attention, one heatmap per head.

    All heads share one colour scale (``vmin`` to ``vmax``) and one colour bar, so their maps
    can be compared.

    Parameters
    ----------
    weights : (n_heads, n_q, n_k) array_like
        ``weights[h]`` is head ``h``'s map: one row per query, one column per key.
    query_labels, key_labels : sequence of str, optional
        Labels of the rows (``n_q``) and columns (``n_k``).
    titles : sequence of str, optional
        One title per head; default "head 0", "head 1", ...
    ncols : int, optional
        Heatmaps per row of the grid; default: all heads in one row, up to 4.
    vmin, vmax : float, optional
        Colour limits (default 0 and 1, the range of attention weights).
    axes : sequence of matplotlib Axes, optional
        At least ``n_heads`` Axes to draw on; a new figure if omitted. Spare Axes are hidden.

    Returns
    -------
    axes : (n_heads,) ndarray of Axes
        The Axes of the heads, in head order.

    Raises
    ------
    ValueError
        If ``weights`` is not 3-D, or the labels or titles do not fit it.
    """
    weights = np.asarray(weights)
    if weights.ndim != 3:
        raise ValueError(
            f"head_heatmaps draws weights of shape (n_heads, n_q, n_k), got {weights.shape}."
        )
    n_heads, n_q, n_k = weights.shape
    for name, labels, size in (("query", query_labels, n_q), ("key", key_labels, n_k)):
        if labels is not None and len(labels) != size:
            plural = "queries" if name == "query" else "keys"
            raise ValueError(f"{len(labels)} {name} labels for {size} {plural}.")
    titles = list(titles) if titles is not None else [f"head {h}" for h in range(n_heads)]
    if len(titles) != n_heads:
        raise ValueError(f"{len(titles)} titles for {n_heads} heads.")
    if axes is None:
        ncols = ncols or min(n_heads, 4)
        nrows = -(-n_heads // ncols)
        size = (0.9 + (0.35 * n_k + 0.8) * ncols, 0.4 + (0.35 * n_q + 0.9) * nrows)
        _, grid = plt.subplots(nrows, ncols, figsize=size, layout="constrained", squeeze=False)
        axes = grid.ravel()
    axes = np.asarray(axes, dtype=object).ravel()
    if len(axes) < n_heads:
        raise ValueError(f"got {len(axes)} Axes for {n_heads} heads.")
    image = None
    for h, ax in enumerate(axes):
        if h >= n_heads:
            ax.set_visible(False)
            continue
        image = ax.imshow(weights[h], cmap=HEATMAP_CMAP, vmin=vmin, vmax=vmax, aspect="equal")
        ax.set_xticks(range(n_k), labels=key_labels if key_labels is not None else range(n_k))
        ax.set_yticks(range(n_q), labels=query_labels if query_labels is not None else range(n_q))
        if key_labels is not None:
            ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(titles[h])
        ax.set_xlabel("key")
        ax.set_ylabel("query")
    used = axes[:n_heads]
    used[0].figure.colorbar(image, ax=list(used), shrink=0.8, label="attention weight")
    return used


def memory_time_curves(
    ns,
    peak_bytes: dict,
    seconds: dict,
    *,
    score_matrix_bytes=None,
    axes=None,
):
    """Peak memory and running time of attention implementations against sequence length.

    Left: the peak memory each implementation allocated, in MB; right: its time, in ms. Both
    panels are log-log, so a cost that grows like ``n²`` is a line twice as steep as one that
    grows like ``n``.

    Parameters
    ----------
    ns : (n_sizes,) array_like of int
        Sequence lengths (``n_q = n_k = n``).
    peak_bytes : dict of str to (n_sizes,) array_like
        For each implementation (e.g. "naive", "tiled"), its peak allocation in bytes at each n.
    seconds : dict of str to (n_sizes,) array_like
        For each implementation, its running time in seconds at each n (same keys).
    score_matrix_bytes : (n_sizes,) array_like, optional
        Size of one ``n × n`` score matrix at each n, drawn as a dotted reference line.
    axes : sequence of two matplotlib Axes, optional
        Where to draw (memory, time); a new figure if omitted.

    Returns
    -------
    axes : (2,) ndarray of Axes

    Raises
    ------
    ValueError
        If the two dicts have different keys or a series does not have one value per n.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator

    ns = np.asarray(ns)
    if set(peak_bytes) != set(seconds):
        raise ValueError(
            f"peak_bytes and seconds must describe the same implementations, got "
            f"{sorted(peak_bytes)} and {sorted(seconds)}."
        )
    for name in peak_bytes:
        for what, series in (("peak_bytes", peak_bytes[name]), ("seconds", seconds[name])):
            if len(series) != len(ns):
                raise ValueError(
                    f"{what}[{name!r}] has {len(series)} values for {len(ns)} sequence lengths."
                )
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    memory, timing = axes
    palette = (OKABE_ITO[5], OKABE_ITO[4], OKABE_ITO[2], OKABE_ITO[0])
    markers = ("o", "s", "^", "D")
    for i, name in enumerate(peak_bytes):
        style = {"color": palette[i % 4], "marker": markers[i % 4], "label": name}
        memory.plot(ns, np.asarray(peak_bytes[name], dtype=float) / 1e6, **style)
        timing.plot(ns, np.asarray(seconds[name], dtype=float) * 1e3, **style)
    if score_matrix_bytes is not None:
        memory.plot(ns, np.asarray(score_matrix_bytes, dtype=float) / 1e6, color=OKABE_ITO[7],
                    linestyle=":", label="one n × n score matrix")  # fmt: skip
    memory.set_ylabel("peak memory allocated (MB)")
    memory.set_title("Memory: n² for naive, n for tiled")
    timing.set_ylabel("time (ms)")
    timing.set_title("Time: both do the same n² work")
    for panel in (memory, timing):
        _log2_xaxis(panel, ns)
        _plain_log_yaxis(panel)
        # Between powers of ten, labelled ticks at 2 and 5 only (8 a decade are slow to draw).
        panel.yaxis.set_minor_locator(LogLocator(subs=(2, 5)))
        panel.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        panel.set_xlabel("sequence length n (n_q = n_k = n)")
        panel.grid(True, which="major", color="0.9")
        panel.legend(loc="upper left")
    return np.asarray(axes)
