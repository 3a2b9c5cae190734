"""The explorer of notebooks 04 and 05: pick a query token, see its weights as bars and its
row framed in the attention map, change the temperature."""

from __future__ import annotations

import html
from collections.abc import Sequence

import ipywidgets
import numpy as np

from .. import toy
from ..plotting import attention_heatmap
from .base import _HIGHLIGHT_COLOUR, _Explorer, _fmt
from .computations import attention_weights, weights_readout


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

    Pick a query; see its weights as bars and its row in the map; change the temperature.
    Notebooks 04 and 05 make one with ``widgets.attention_explorer()`` (or ``toy="self"``);
    the last line of a cell displays it.

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


#: The one-liner of notebooks 04 and 05, ``widgets.attention_explorer()``: the class itself,
#: so its signature and defaults are written once.
attention_explorer = AttentionExplorer
