"""Figures of notebooks 06-08: masks, multi-head attention, attention that fits in memory."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from .style import HEATMAP_CMAP, OKABE_ITO, _log2_xaxis, _plain_log_yaxis

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
