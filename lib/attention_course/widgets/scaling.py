"""The explorers of notebooks 02 and 03, both driven by a ``d_k`` slider.

- :class:`VarianceExplorer` (02): the spread of ``q · k`` grows like ``sqrt(d_k)``; dividing
  by ``sqrt(d_k)`` keeps it at 1.
- :class:`SaturationExplorer` (03): as ``d_k`` grows, the unscaled softmax turns one-hot and
  its gradient vanishes; the scaled softmax stays put.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from ..plotting import SCALED_COLOUR, UNSCALED_COLOUR
from .base import _THEORY_COLOUR, _DkExplorer, _fmt
from .computations import saturation_scores, score_samples, softmax_readout

# --------------------------------------------------------------------------------------------
# Notebook 02: the variance of q · k.
# --------------------------------------------------------------------------------------------


def _normal_pdf(x: np.ndarray, variance: float) -> np.ndarray:
    return np.exp(-0.5 * x**2 / variance) / np.sqrt(2 * np.pi * variance)


class VarianceExplorer(_DkExplorer):
    """Histograms of ``q · k`` and ``q · k / sqrt(d_k)`` for random unit-variance vectors.

    ``n_pairs`` independent pairs ``(q, k)`` with ``max_d_k`` standard-normal entries are drawn
    once; a width ``d_k`` uses their first ``d_k`` entries. Each histogram has the normal
    density with the theoretical variance (``d_k`` unscaled, 1 scaled) drawn over it, and
    dashed lines at plus and minus one theoretical standard deviation. The x-axes are fixed,
    so the left histogram visibly widens with ``d_k`` while the right one does not; the
    y-axes rescale to fit. Drag ``d_k`` and watch the spread of ``q · k`` grow, and the scaled
    spread stay at 1. Notebook 02 makes one with ``widgets.variance_explorer(seed=0)``; the last
    line of a cell displays it.

    Parameters
    ----------
    seed : int, optional
        Seed of the random queries and keys (unit-variance entries).
    d_k : int, optional
        Initial width.
    n_pairs : int, optional
        Number of (query, key) pairs in each histogram.
    max_d_k : int, optional
        Largest width on the slider (a power of two).
    bins : int, optional
        Number of bins of each histogram.

    Attributes
    ----------
    d_k_slider : ipywidgets.FloatLogSlider
    resample_button : ipywidgets.Button
    figure : matplotlib.figure.Figure
    hists : dict of str to matplotlib.patches.StepPatch
        ``hists["unscaled"]``, ``hists["scaled"]``: density histograms (``get_data()``).
    theory : dict of str to matplotlib.lines.Line2D
        The normal densities.
    sigma_lines : dict of str to list of matplotlib.lines.Line2D
        The dashed lines at minus and plus one theoretical standard deviation.
    samples : dict of str to (n_pairs,) ndarray
        The scores currently drawn.
    """

    css_class = "ac-variance-explorer"

    def __init__(
        self, seed: int = 0, d_k: int = 16, n_pairs: int = 2000, max_d_k: int = 1024, bins: int = 60
    ):
        self.rng = np.random.default_rng(seed)
        self.n_pairs, self.max_d_k = n_pairs, max_d_k
        self._init_controls(d_k, tooltip="Draw new queries and keys")
        self._init_figure((8.0, 3.0))
        axes = self.figure.subplots(1, 2)
        self._axes = dict(zip(("unscaled", "scaled"), axes, strict=True))
        reach = {"unscaled": 4 * np.sqrt(max_d_k), "scaled": 5.0}  # fixed x-ranges
        self.edges = {side: np.linspace(-r, r, bins + 1) for side, r in reach.items()}
        self._grid = {side: np.linspace(-r, r, 401) for side, r in reach.items()}
        self.hists, self.theory, self.sigma_lines = {}, {}, {}
        for side, colour, xlabel in (
            ("unscaled", UNSCALED_COLOUR, "q · k"),
            ("scaled", SCALED_COLOUR, "q · k / √d_k"),
        ):
            ax = self._axes[side]
            self.hists[side] = ax.stairs(
                np.zeros(bins),
                self.edges[side],
                fill=True,
                color=colour,
                alpha=0.7,
                label="measured",
            )
            (self.theory[side],) = ax.plot(
                self._grid[side],
                np.zeros(401),
                color=_THEORY_COLOUR,
                linewidth=1.5,
                label="normal, theoretical variance",
            )
            self.sigma_lines[side] = [
                ax.axvline(0, color=_THEORY_COLOUR, linestyle="--", linewidth=1, label=label)
                for label in ("± theoretical std", None)
            ]
            ax.set_xlim(-reach[side], reach[side])
            ax.set_xlabel(xlabel)
            ax.set_yticks([])  # densities rescale with d_k: the shape and width are the point
            self._animate(
                self.hists[side], self.theory[side], *self.sigma_lines[side], *ax.spines.values()
            )
        self._axes["unscaled"].set_title("unscaled: spread grows like √d_k")
        self._axes["scaled"].set_title("scaled: spread stays 1")
        self._axes["unscaled"].set_ylabel("density")
        # Upper left of the unscaled panel: nothing drawn there reaches it at any d_k.
        self._axes["unscaled"].legend(loc="upper left", fontsize=7, frameon=False)
        self._finish_controls()

    def _draw_vectors(self) -> None:
        self.Q = self.rng.standard_normal((self.n_pairs, self.max_d_k))  # (n_pairs, max_d_k)
        self.K = self.rng.standard_normal((self.n_pairs, self.max_d_k))  # (n_pairs, max_d_k)

    def update(self) -> None:
        """Recompute the histograms for the slider's ``d_k`` and redraw."""
        d_k = self.d_k
        self.samples = dict(
            zip(("unscaled", "scaled"), score_samples(self.Q, self.K, d_k), strict=True)
        )
        theory_var = {"unscaled": float(d_k), "scaled": 1.0}
        self.measured_var = {side: float(np.var(x, ddof=1)) for side, x in self.samples.items()}
        for side, x in self.samples.items():
            density, _ = np.histogram(x, bins=self.edges[side], density=True)
            pdf = _normal_pdf(self._grid[side], theory_var[side])
            self.hists[side].set_data(values=density)
            self.theory[side].set_ydata(pdf)
            sigma = np.sqrt(theory_var[side])
            for line, x0 in zip(self.sigma_lines[side], (-sigma, sigma), strict=True):
                line.set_xdata([x0, x0])
            top = max(density.max(), pdf.max())
            self._axes[side].set_ylim(0, 1.55 * top)  # y ticks are hidden: no background change
        self.readout.value = self._readout_html(d_k)
        self.render()

    def _readout_html(self, d_k: int) -> str:
        u, s = self.measured_var["unscaled"], self.measured_var["scaled"]
        return (
            "<table style='font-variant-numeric: tabular-nums'>"
            f"<tr><th style='text-align:left'>d_k = {d_k}, {self.n_pairs} pairs</th>"
            "<th>measured</th><th>theory</th></tr>"
            f"<tr><td>Var(q · k)</td><td class='ac-unscaled'>{u:.3g}</td><td>d_k = {d_k}</td></tr>"
            f"<tr><td>std(q · k)</td><td>{np.sqrt(u):.3g}</td><td>√d_k = {np.sqrt(d_k):.3g}</td>"
            "</tr>"
            f"<tr><td>Var(q · k / √d_k)</td><td class='ac-scaled'>{s:.3g}</td><td>1</td></tr>"
            "</table>"
        )


#: Notebook 02's one-liner, ``widgets.variance_explorer(seed=0)``: the class itself, so its
#: signature and defaults are written once.
variance_explorer = VarianceExplorer


# --------------------------------------------------------------------------------------------
# Notebook 03: saturation.
# --------------------------------------------------------------------------------------------


class SaturationExplorer(_DkExplorer):
    """Scaled and unscaled softmax of one query against a few keys, for a chosen ``d_k``.

    Drag ``d_k`` and watch the unscaled softmax saturate while the scaled one stays put. The
    query and keys have ``max_d_k`` standard-normal entries; for a width ``d_k`` the first
    ``d_k`` are used, so moving the slider keeps the same vectors and only lengthens them.
    Notebook 03 makes one with ``widgets.saturation_explorer(seed=0)``; the last line of a
    cell displays it.

    Parameters
    ----------
    seed : int, optional
        Seed of the random query and keys (unit-variance entries).
    d_k : int, optional
        Initial width.
    n_keys : int, optional
        Number of keys ``n_k``.
    max_d_k : int, optional
        Largest width on the slider (a power of two).

    Attributes
    ----------
    d_k_slider : ipywidgets.FloatLogSlider
        The width, 1 to ``max_d_k`` on a log scale.
    resample_button : ipywidgets.Button
        Draws a new query and new keys.
    figure : matplotlib.figure.Figure
        Two bar charts of the weights: unscaled (left), scaled (right).
    bars : dict of str to matplotlib.container.BarContainer
        ``bars["unscaled"]`` and ``bars["scaled"]``, one bar per key.
    image : ipywidgets.Image
        The figure as PNG.
    readout : ipywidgets.HTML
        Largest weight, entropy and softmax gradient norm of both sides.
    readouts : dict of str to Readout
        The same numbers, for code.
    """

    css_class = "ac-saturation-explorer"

    def __init__(self, seed: int = 0, d_k: int = 16, n_keys: int = 8, max_d_k: int = 1024):
        if n_keys < 2:
            raise ValueError(f"n_keys must be at least 2, got {n_keys}.")
        self.rng = np.random.default_rng(seed)
        self.n_keys, self.max_d_k = n_keys, max_d_k
        self._init_controls(d_k, tooltip="Draw a new query and new keys")
        self._init_figure((8.0, 3.0))
        axes = self.figure.subplots(1, 2, sharey=True)
        self.bars = {}
        keys = np.arange(n_keys)
        for ax, side, colour, title in (
            (axes[0], "unscaled", UNSCALED_COLOUR, "unscaled: softmax(q · k)"),
            (axes[1], "scaled", SCALED_COLOUR, "scaled: softmax(q · k / √d_k)"),
        ):
            self.bars[side] = ax.bar(keys, np.full(n_keys, 1 / n_keys), color=colour)
            # Behind the bars (z-order 0.5 < 1): part of the background, drawn once.
            ax.axhline(1 / n_keys, color=_THEORY_COLOUR, linestyle=":", linewidth=1, zorder=0.5)
            ax.set_title(title)
            ax.set_xticks(keys, labels=[f"k{j}" for j in keys])
            ax.set_xlabel("key")
            ax.set_ylim(0, 1.05)
            self._animate(*self.bars[side], *ax.spines.values())  # spines cover the bars
        axes[0].set_ylabel("attention weight")
        axes[1].text(
            0.02,
            1 / n_keys,
            " uniform",
            transform=axes[1].get_yaxis_transform(),
            va="bottom",
            fontsize=8,
            zorder=0.5,
        )
        self._finish_controls()

    def _draw_vectors(self) -> None:
        self.q = self.rng.standard_normal(self.max_d_k)  # (max_d_k,)
        self.K = self.rng.standard_normal((self.n_keys, self.max_d_k))  # (n_k, max_d_k)

    def update(self) -> None:
        """Recompute the weights and readouts for the slider's ``d_k`` and redraw."""
        d_k = self.d_k
        self.scores = dict(
            zip(("unscaled", "scaled"), saturation_scores(self.q, self.K, d_k), strict=True)
        )
        self.weights = {side: ref.softmax(s) for side, s in self.scores.items()}  # (n_k,)
        self.readouts = {side: softmax_readout(s) for side, s in self.scores.items()}
        for side, bars in self.bars.items():
            for bar, height in zip(bars, self.weights[side], strict=True):
                bar.set_height(height)
        self.readout.value = self._readout_html(d_k)
        self.render()

    def _readout_html(self, d_k: int) -> str:
        u, s = self.readouts["unscaled"], self.readouts["scaled"]
        uniform_h = np.log(self.n_keys)
        rows = [
            ("largest weight", "1 = one-hot", u.max_weight, s.max_weight),
            ("entropy (nats)", f"uniform = {uniform_h:.3g}, one-hot = 0", u.entropy, s.entropy),
            ("softmax gradient norm ‖∂p/∂s‖", "0 = no gradient", u.grad_norm, s.grad_norm),
        ]
        body = "".join(
            f"<tr><td>{name} <small>({hint})</small></td>"
            f"<td class='ac-unscaled'>{_fmt(a)}</td><td class='ac-scaled'>{_fmt(b)}</td></tr>"
            for name, hint, a, b in rows
        )
        return (
            f"<table style='font-variant-numeric: tabular-nums'>"
            f"<tr><th style='text-align:left'>d_k = {d_k}</th><th>unscaled</th>"
            f"<th>scaled</th></tr>{body}</table>"
        )


#: Notebook 03's one-liner, ``widgets.saturation_explorer(seed=0)``: the class itself, so its
#: signature and defaults are written once.
saturation_explorer = SaturationExplorer
