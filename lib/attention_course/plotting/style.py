"""The look every course figure shares: the palette, the heatmap colormap, and axes helpers.

Colour-blind-safe colours (Okabe–Ito for lines and bars, ``cividis`` for heatmaps), and log
axes labelled with plain numbers. Used by every figure module of :mod:`attention_course.plotting`
and by :mod:`attention_course.widgets`.
"""

from __future__ import annotations

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

#: Colour of scaled attention (q·k/√d_k) in every figure and explorer that compares the two.
SCALED_COLOUR = OKABE_ITO[4]  # blue
#: Colour of unscaled attention (q·k).
UNSCALED_COLOUR = OKABE_ITO[5]  # vermillion

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
