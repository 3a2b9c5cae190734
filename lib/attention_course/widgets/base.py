"""What every explorer shares: one figure rendered into an Image, its controls, its readout.

Every explorer owns **one** matplotlib :class:`~matplotlib.figure.Figure` (no pyplot) and shows
it in an ``ipywidgets.Image``; a control change updates the data of the existing artists and
redraws only those over a cached background (matplotlib's "blitting"), then re-encodes the
figure as PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import ipywidgets
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image as PILImage

from ..plotting import OKABE_ITO

#: Resolution of the rendered figures (pixels per inch).
DPI = 100
_THEORY_COLOUR = OKABE_ITO[7]  # black
_HIGHLIGHT_COLOUR = OKABE_ITO[5]  # the frame attention_heatmap draws around a row


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
