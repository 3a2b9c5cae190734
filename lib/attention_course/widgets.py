"""Interactive explorers for the course notebooks: move a slider, watch attention change.

Each explorer is created by one line in a notebook and is itself a widget (an
``ipywidgets.VBox``), so the cell displays it:

- :func:`variance_explorer` (notebook 02): the spread of ``q · k`` grows like ``sqrt(d_k)``;
  dividing by ``sqrt(d_k)`` keeps it at 1.
- :func:`saturation_explorer` (notebook 03): as ``d_k`` grows, the unscaled softmax turns
  one-hot and its gradient vanishes; the scaled softmax stays put.
- :func:`attention_explorer` (notebooks 04 and 05): pick a query token; see its weights as bars
  and its row framed in the attention map; change the temperature.

The numbers come from :mod:`attention_course.reference` (scores, scaling, softmax) and
:mod:`attention_course.saturation` (softmax Jacobian and entropy), so the explorers show what
the course's reference attention does. The computations are plain functions
(:func:`softmax_readout`, :func:`saturation_scores`, :func:`score_samples`,
:func:`attention_weights`), and every explorer's ``update()`` is a plain method: tests set a
control's value from code and read the figure's artists, no browser needed.

How they draw
-------------
Every explorer owns **one** matplotlib :class:`~matplotlib.figure.Figure` (no pyplot, so
nothing is shown twice and no figure piles up) and shows it in an ``ipywidgets.Image``. A
control change updates the data of the existing artists (bar heights, histogram values, image
data, text) and re-encodes the figure as PNG bytes, which become the Image's value. The static
parts (axes, ticks, labels, colour bar) are rendered once and kept as a background; each update
redraws only the artists that change (matplotlib's "blitting"), which keeps a redraw at a few
tens of milliseconds.

Why an Image and not ipympl or an Output widget: an Image is a core widget, so the explorers
work in JupyterLab 4, Notebook 7 and Voila without any front-end extension; the figure is
updated in place, with no flicker; and nothing is written as a cell output, so executing a
notebook headless (nbclient, nbval, nbgrader) produces no plot outputs and no
``clear_output`` messages.

Shape legend (as in :mod:`attention_course.reference`):

- ``n_q``  number of queries.
- ``n_k``  number of keys.
- ``d_k``  width of a query and of a key; ``max_d_k`` the largest width an explorer offers.
- ``n_pairs``  number of random (query, key) pairs in a histogram.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import NamedTuple

import ipywidgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from . import reference as ref
from . import saturation, toy
from .plotting import OKABE_ITO, attention_heatmap

__all__ = [
    "Readout",
    "softmax_readout",
    "weights_readout",
    "saturation_scores",
    "score_samples",
    "attention_weights",
    "SaturationExplorer",
    "VarianceExplorer",
    "AttentionExplorer",
    "saturation_explorer",
    "variance_explorer",
    "attention_explorer",
]

#: Resolution of the rendered figures (pixels per inch).
DPI = 100
_UNSCALED_COLOUR = OKABE_ITO[5]  # vermillion
_SCALED_COLOUR = OKABE_ITO[4]  # blue
_THEORY_COLOUR = OKABE_ITO[7]  # black
_HIGHLIGHT_COLOUR = OKABE_ITO[5]  # the frame attention_heatmap draws around a row


# --------------------------------------------------------------------------------------------
# The computations: plain functions, tested without widgets.
# --------------------------------------------------------------------------------------------


class Readout(NamedTuple):
    """How peaked one row of softmax weights is, and how much gradient it passes back."""

    #: Largest weight (1 = one-hot, 1 / n_k = uniform).
    max_weight: float
    #: Entropy of the weights in nats (0 = one-hot, log n_k = uniform).
    entropy: float
    #: Frobenius norm of the softmax Jacobian ``diag(p) - p pᵀ`` (0 = no gradient at all).
    grad_norm: float


def softmax_readout(scores) -> Readout:
    """Summarise ``softmax(scores)`` for one query.

    Parameters
    ----------
    scores : (n_k,) array_like
        One query's scores against ``n_k`` keys.

    Returns
    -------
    readout : Readout
        Largest weight, entropy (nats) and the Frobenius norm of the softmax Jacobian, computed
        with :func:`attention_course.reference.softmax`,
        :func:`attention_course.saturation.softmax_entropy` and
        :func:`attention_course.saturation.softmax_jacobian`.
    """
    return weights_readout(ref.softmax(np.asarray(scores, dtype=np.float64)))  # (n_k,)


def weights_readout(p) -> Readout:
    """Summarise one row of attention weights.

    Parameters
    ----------
    p : (n_k,) array_like
        Non-negative weights summing to 1.

    Returns
    -------
    readout : Readout
        See :func:`softmax_readout`.
    """
    p = np.asarray(p, dtype=np.float64)
    J = saturation.softmax_jacobian(p)  # (n_k,) -> (n_k, n_k)
    return Readout(
        max_weight=float(np.max(p)),
        entropy=float(saturation.softmax_entropy(p)),
        grad_norm=float(np.linalg.norm(J)),  # Frobenius norm
    )


def saturation_scores(q, K, d_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of one query against a few keys, using only their first ``d_k`` entries.

    Parameters
    ----------
    q : (max_d_k,) array_like
        The query.
    K : (n_k, max_d_k) array_like
        The keys, one per row.
    d_k : int
        How many leading entries of ``q`` and of each key to use, ``1 <= d_k <= max_d_k``.

    Returns
    -------
    unscaled : (n_k,) ndarray
        ``q[:d_k] · K[j, :d_k]`` for every key ``j``.
    scaled : (n_k,) ndarray
        The same divided by ``sqrt(d_k)``.
    """
    q = np.asarray(q)
    K = np.asarray(K)
    if not 1 <= d_k <= q.shape[-1]:
        raise ValueError(f"d_k must lie between 1 and {q.shape[-1]}, got {d_k}.")
    unscaled = ref.dot_product_scores(q[None, :d_k], K[:, :d_k])[0]  # (1, d_k) x (n_k, d_k)
    #                                                                    -> (1, n_k) -> (n_k,)
    return unscaled, ref.scale_scores(unscaled, int(d_k))


def score_samples(Q, K, d_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of many independent (query, key) pairs, using their first ``d_k`` entries.

    Parameters
    ----------
    Q : (n_pairs, max_d_k) array_like
        One query per row.
    K : (n_pairs, max_d_k) array_like
        One key per row; row ``i`` is paired with query ``i``.
    d_k : int
        How many leading entries to use, ``1 <= d_k <= max_d_k``.

    Returns
    -------
    unscaled : (n_pairs,) ndarray
        ``Q[i, :d_k] · K[i, :d_k]``: variance ``d_k`` for unit-variance entries.
    scaled : (n_pairs,) ndarray
        The same divided by ``sqrt(d_k)``: variance 1.
    """
    Q = np.asarray(Q)
    K = np.asarray(K)
    if not 1 <= d_k <= Q.shape[-1]:
        raise ValueError(f"d_k must lie between 1 and {Q.shape[-1]}, got {d_k}.")
    scores = ref.dot_product_scores(Q[:, None, :d_k], K[:, None, :d_k])  # (n_pairs, 1, d_k) x
    #                                               (n_pairs, 1, d_k) -> (n_pairs, 1, 1)
    unscaled = scores[:, 0, 0]  # (n_pairs,)
    return unscaled, ref.scale_scores(unscaled, int(d_k))


def attention_weights(Q, K, temperature: float = 1.0) -> np.ndarray:
    """Attention weights ``softmax(Q Kᵀ / (temperature · sqrt(d_k)))``.

    Parameters
    ----------
    Q : (n_q, d_k) array_like
        Queries.
    K : (n_k, d_k) array_like
        Keys.
    temperature : float, optional
        Positive; 1 is scaled dot-product attention, larger flattens the weights, smaller
        sharpens them.

    Returns
    -------
    weights : (n_q, n_k) ndarray
        Each row sums to 1.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}.")
    Q = np.asarray(Q, dtype=np.float64)
    d_k = Q.shape[-1]
    scores = ref.dot_product_scores(Q, K)  # (n_q, d_k) x (n_k, d_k) -> (n_q, n_k)
    return ref.softmax(scores / (temperature * np.sqrt(d_k)), axis=-1)  # (n_q, n_k)


# --------------------------------------------------------------------------------------------
# Drawing: one figure per explorer, re-encoded as PNG after each change.
# --------------------------------------------------------------------------------------------


def _log2_slider(value: int, max_d_k: int) -> ipywidgets.FloatLogSlider:
    """A d_k slider on a log scale: 1, 2, 4, ..., max_d_k."""
    top = int(np.log2(max_d_k))
    if 2**top != max_d_k:
        raise ValueError(f"max_d_k must be a power of two, got {max_d_k}.")
    return ipywidgets.FloatLogSlider(
        value=value,
        base=2,
        min=0,
        max=top,
        step=1,
        description="d_k",
        readout_format=".0f",
        continuous_update=True,
        style={"description_width": "initial"},
        layout=ipywidgets.Layout(width="420px"),
    )


def _slider_d_k(slider: ipywidgets.FloatLogSlider, max_d_k: int) -> int:
    """The integer d_k a log slider stands for (a typed-in value is rounded and clipped)."""
    return int(np.clip(round(slider.value), 1, max_d_k))


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


class _Explorer(ipywidgets.VBox):
    """A VBox holding controls, one figure rendered into an Image, and an HTML readout."""

    #: CSS class on the explorer's DOM node (the browser tests find the explorer by it).
    css_class = "ac-explorer"

    def _init_figure(self, figsize: tuple[float, float]) -> None:
        self.figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
        self._canvas = FigureCanvasAgg(self.figure)
        self._background = None
        self._animated: list = []
        width = round(figsize[0] * DPI)  # shown at its own size (Voila would stretch it)
        self.image = ipywidgets.Image(
            format="png",
            layout=ipywidgets.Layout(width=f"{width}px", max_width="100%", height="auto"),
        )
        self.readout = ipywidgets.HTML()
        self.readout.add_class("ac-readout")

    def _animate(self, *artists) -> None:
        """Mark artists that are drawn on every update: they are left out of the background.

        Besides the artists that change, this takes the static ones that must stay *on top*
        of them (the spines): the changing artists are drawn over the background, so whatever
        should cover them is drawn after them, in z-order. Static artists meant to lie *under*
        the changing ones get a z-order below 1 and stay in the background.
        """
        for artist in artists:
            artist.set_animated(True)
            self._animated.append(artist)
        self._animated.sort(key=lambda a: a.get_zorder())  # stable: same z keeps its order

    def _finish(self, controls: Sequence[ipywidgets.Widget]) -> None:
        super().__init__(children=[ipywidgets.HBox(list(controls)), self.image, self.readout])
        self.add_class("ac-explorer")
        self.add_class(self.css_class)

    def render(self) -> bytes:
        """Redraw the figure and put it, as PNG bytes, into the Image widget.

        The static parts are drawn once and cached; later calls restore that background and
        draw only the animated artists.

        Returns
        -------
        png : bytes
            The image now shown.
        """
        if self._background is None:
            self._canvas.draw()  # layout and every static artist, once
            self._background = self._canvas.copy_from_bbox(self.figure.bbox)
        else:
            self._canvas.restore_region(self._background)
        for artist in self._animated:
            if artist.get_visible():
                self.figure.draw_artist(artist)
        width, height = self._canvas.get_width_height()
        buffer = io.BytesIO()
        PILImage.frombuffer(
            "RGBA", (width, height), self._canvas.buffer_rgba(), "raw", "RGBA", 0, 1
        ).save(buffer, format="png", compress_level=1)  # fast; the image is small anyway
        png = buffer.getvalue()
        self.image.value = png
        return png

    def close(self) -> None:
        """Close the explorer and every widget inside it (frees their comms)."""
        for widget in self._all_widgets():
            widget.close()
        super().close()

    def _all_widgets(self):
        stack = list(self.children)
        while stack:
            widget = stack.pop()
            stack.extend(getattr(widget, "children", ()))
            yield widget

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: an interactive widget; run the notebook in Jupyter>"


class _DkExplorer(_Explorer):
    """An explorer driven by a log-scale ``d_k`` slider and a Resample button.

    Subclasses set ``self.rng`` and ``self.max_d_k``, define ``_draw_vectors`` (new random
    vectors) and ``update`` (recompute and redraw), and call ``_init_controls`` and then
    ``_finish_controls`` around building their figure.
    """

    def _init_controls(self, d_k: int, tooltip: str) -> None:
        self.d_k_slider = _log2_slider(d_k, self.max_d_k)
        self.resample_button = ipywidgets.Button(
            description="Resample", icon="refresh", tooltip=tooltip
        )

    def _finish_controls(self) -> None:
        self._draw_vectors()
        self.d_k_slider.observe(self._on_change, names="value")
        self.resample_button.on_click(self._on_resample)
        self._finish([self.d_k_slider, self.resample_button])
        self.update()

    @property
    def d_k(self) -> int:
        """The width the slider stands for."""
        return _slider_d_k(self.d_k_slider, self.max_d_k)

    def _draw_vectors(self) -> None:
        raise NotImplementedError

    def update(self) -> None:
        raise NotImplementedError

    def _on_change(self, change=None) -> None:
        self.update()

    def _on_resample(self, button=None) -> None:
        self.resample()

    def resample(self) -> None:
        """Draw new random vectors, and redraw."""
        self._draw_vectors()
        self.update()


# --------------------------------------------------------------------------------------------
# Notebook 03: saturation.
# --------------------------------------------------------------------------------------------


class SaturationExplorer(_DkExplorer):
    """Scaled and unscaled softmax of one query against a few keys, for a chosen ``d_k``.

    The query and keys have ``max_d_k`` standard-normal entries; for a width ``d_k`` the first
    ``d_k`` are used, so moving the slider keeps the same vectors and only lengthens them.

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
            (axes[0], "unscaled", _UNSCALED_COLOUR, "unscaled: softmax(q · k)"),
            (axes[1], "scaled", _SCALED_COLOUR, "scaled: softmax(q · k / √d_k)"),
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


def saturation_explorer(
    seed: int = 0, d_k: int = 16, n_keys: int = 8, max_d_k: int = 1024
) -> SaturationExplorer:
    """Drag ``d_k`` and watch the unscaled softmax saturate while the scaled one stays put.

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

    Returns
    -------
    explorer : SaturationExplorer
        A widget; the last line of a cell displays it.
    """
    return SaturationExplorer(seed=seed, d_k=d_k, n_keys=n_keys, max_d_k=max_d_k)


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
    y-axes rescale to fit.

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
            ("unscaled", _UNSCALED_COLOUR, "q · k"),
            ("scaled", _SCALED_COLOUR, "q · k / √d_k"),
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


def variance_explorer(
    seed: int = 0, d_k: int = 16, n_pairs: int = 2000, max_d_k: int = 1024
) -> VarianceExplorer:
    """Drag ``d_k`` and watch the spread of ``q · k`` grow, and the scaled spread stay at 1.

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

    Returns
    -------
    explorer : VarianceExplorer
        A widget; the last line of a cell displays it.
    """
    return VarianceExplorer(seed=seed, d_k=d_k, n_pairs=n_pairs, max_d_k=max_d_k)


# --------------------------------------------------------------------------------------------
# Notebooks 04 and 05: one query's weights.
# --------------------------------------------------------------------------------------------


def _toy_qk(kind: str):
    if kind == "cross":
        Q, K, _ = toy.translation_qkv()  # (n_q, d_k), (n_k, d_k)
        return Q, K, toy.FRENCH, toy.ENGLISH
    if kind == "self":
        tokens, Z = toy.english()
        S_q, S_k, _ = toy.self_projections()
        return Z @ S_q, Z @ S_k, tokens, tokens  # (n, d_model_z) @ (d_model_z, d_k) -> (n, d_k)
    raise ValueError(f"toy must be 'cross' or 'self', got {kind!r}.")


class AttentionExplorer(_Explorer):
    """One query's attention weights as bars, its row framed in the attention map.

    Attributes
    ----------
    query_picker : ipywidgets.ToggleButtons
        Which query; its value is the query's row index.
    temperature_slider : ipywidgets.FloatLogSlider
        Temperature ``T`` from 0.1 to 10 on a log scale: the scores are divided by
        ``T · sqrt(d_k)`` (``T = 1``: scaled dot-product attention).
    figure : matplotlib.figure.Figure
        The attention map (left, :func:`attention_course.plotting.attention_heatmap`) and the
        chosen query's weights (right).
    heatmap : matplotlib.image.AxesImage
        The map's image; ``get_array()`` is the weight matrix.
    frame : matplotlib.patches.Rectangle
        The frame around the chosen query's row.
    bars : matplotlib.container.BarContainer
        One bar per key.
    weights : (n_q, n_k) ndarray
        The current weights.
    """

    css_class = "ac-attention-explorer"

    def __init__(
        self,
        Q=None,
        K=None,
        query_labels: Sequence[str] | None = None,
        key_labels: Sequence[str] | None = None,
        *,
        query: int = 0,
        temperature: float = 1.0,
        toy: str = "cross",
    ):
        if Q is None and K is None:
            Q, K, toy_q, toy_k = _toy_qk(toy)
            query_labels = toy_q if query_labels is None else query_labels
            key_labels = toy_k if key_labels is None else key_labels
        elif Q is None or K is None:
            raise ValueError("pass both Q and K, or neither (for the toy sentences).")
        self.Q = np.asarray(Q, dtype=np.float64)
        self.K = np.asarray(K, dtype=np.float64)
        if self.Q.ndim != 2 or self.K.ndim != 2:
            raise ValueError(
                f"Q (n_q, d_k) and K (n_k, d_k) must be matrices, got shapes "
                f"{self.Q.shape} and {self.K.shape}."
            )
        n_q, n_k = self.Q.shape[0], self.K.shape[0]
        self.query_labels = [str(t) for t in (query_labels or [f"q{i}" for i in range(n_q)])]
        self.key_labels = [str(t) for t in (key_labels or [f"k{j}" for j in range(n_k)])]
        if len(self.query_labels) != n_q or len(self.key_labels) != n_k:
            raise ValueError(
                f"need {n_q} query labels and {n_k} key labels, got "
                f"{len(self.query_labels)} and {len(self.key_labels)}."
            )
        self.query_picker = ipywidgets.ToggleButtons(
            options=[(label, i) for i, label in enumerate(self.query_labels)],
            value=query,
            description="query",
            style={"button_width": "auto"},
        )
        self.temperature_slider = ipywidgets.FloatLogSlider(
            value=temperature,
            base=10,
            min=-1,
            max=1,
            step=0.05,
            description="temperature T",
            readout_format=".2f",
            style={"description_width": "initial"},
        )
        self._init_figure((1.6 + 0.9 * n_k + 0.5 * n_k + 1.2, 0.9 + 0.45 * max(n_q, 4)))
        ax_map, ax_bars = self.figure.subplots(1, 2, gridspec_kw={"width_ratios": [n_k + 1.5, n_k]})
        self.weights = attention_weights(self.Q, self.K, temperature)  # (n_q, n_k)
        attention_heatmap(
            self.weights,
            self.query_labels,
            self.key_labels,
            ax=ax_map,
            vmin=0,
            vmax=1,
            highlight_row=query,
            title="softmax(Q Kᵀ / (T · √d_k))",
            annotate=False,  # the chosen row's numbers are on its bars: 20 texts cost ~50 ms
        )
        self.heatmap = ax_map.images[0]
        self.frame = ax_map.patches[-1]
        keys = np.arange(n_k)
        self.bars = ax_bars.bar(keys, self.weights[query], color=_HIGHLIGHT_COLOUR)
        ax_bars.set_xticks(keys, labels=self.key_labels, rotation=45)
        ax_bars.set_ylim(0, 1.05)
        ax_bars.set_xlabel("key")
        ax_bars.set_ylabel("attention weight")
        ax_bars.set_title("weights of the framed query")
        self._values = [ax_bars.text(j, 0, "", ha="center", va="bottom", fontsize=8) for j in keys]
        self._animate(
            self.heatmap,
            self.frame,
            *self.bars,
            *self._values,
            *ax_map.spines.values(),
            *ax_bars.spines.values(),
        )
        self.query_picker.observe(self._on_change, names="value")
        self.temperature_slider.observe(self._on_change, names="value")
        self._finish([self.query_picker, self.temperature_slider])
        self.update()

    @property
    def query(self) -> int:
        """Row index of the chosen query."""
        return int(self.query_picker.value)

    @property
    def temperature(self) -> float:
        """The slider's temperature ``T``."""
        return float(self.temperature_slider.value)

    def _on_change(self, change=None) -> None:
        self.update()

    def update(self) -> None:
        """Recompute the weights for the chosen temperature and query, and redraw."""
        i, T = self.query, self.temperature
        self.weights = attention_weights(self.Q, self.K, T)  # (n_q, n_k)
        self.heatmap.set_data(self.weights)
        self.frame.set_y(i - 0.5)
        for bar, value, height in zip(self.bars, self._values, self.weights[i], strict=True):
            bar.set_height(height)
            value.set_y(height)
            value.set_text(f"{height:.2f}")
        self.readout.value = self._readout_html()
        self.render()

    def _readout_html(self) -> str:
        i = self.query
        row = self.weights[i]  # (n_k,)
        best = int(np.argmax(row))
        stats = weights_readout(row)
        label = html.escape(self.query_labels[i])
        return (
            f"<span style='font-variant-numeric: tabular-nums'>query <b>{label}</b> "
            f"(T = {self.temperature:.2f}) attends most to "
            f"<b>{html.escape(self.key_labels[best])}</b> with weight {row[best]:.3f}; "
            f"entropy {stats.entropy:.3g} nats (uniform: {np.log(row.size):.3g}); "
            f"softmax gradient norm {_fmt(stats.grad_norm)}.</span>"
        )


def attention_explorer(
    Q=None,
    K=None,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    *,
    query: int = 0,
    temperature: float = 1.0,
    toy: str = "cross",
) -> AttentionExplorer:
    """Pick a query; see its weights as bars and its row in the map; change the temperature.

    Parameters
    ----------
    Q : (n_q, d_k) array_like, optional
        Queries. Leave ``Q`` and ``K`` out to use the course's toy sentences.
    K : (n_k, d_k) array_like, optional
        Keys.
    query_labels, key_labels : sequence of str, optional
        Token labels (default: the toy's words, or ``q0, q1, ...`` and ``k0, k1, ...``).
    query : int, optional
        Row of the query shown first.
    temperature : float, optional
        Initial temperature ``T`` (0.1 to 10); the scores are divided by ``T · sqrt(d_k)``.
    toy : {"cross", "self"}, optional
        Without ``Q`` and ``K``: ``"cross"`` is the French sentence attending to the English one
        (:func:`attention_course.toy.translation_qkv`), ``"self"`` the English sentence
        attending to itself (:func:`attention_course.toy.self_projections`).

    Returns
    -------
    explorer : AttentionExplorer
        A widget; the last line of a cell displays it.
    """
    return AttentionExplorer(
        Q, K, query_labels, key_labels, query=query, temperature=temperature, toy=toy
    )
