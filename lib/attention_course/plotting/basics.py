"""Figures of notebooks 01-03: dot products, scaling, softmax saturation."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import OKABE_ITO, SCALED_COLOUR, UNSCALED_COLOUR, _axes, _log2_xaxis, _plain_log_yaxis


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
    ax.plot(
        d_ks, variance, color=UNSCALED_COLOUR, marker="o", linestyle="none", label="measured: q·k"
    )
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
            color=SCALED_COLOUR,
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
        (unscaled, "unscaled: q·k", UNSCALED_COLOUR, "o", "-"),
        (scaled, "scaled: q·k / √$d_k$", SCALED_COLOUR, "s", "--"),
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
