"""Figures for the course notebooks.

Every plot of the course is drawn by a function here, so notebooks stay short and all figures
share one look: colour-blind-safe colours (Okabe–Ito for lines and bars, ``cividis`` for
heatmaps), labelled axes, and token labels on attention maps. Each function takes an optional
``ax`` and returns the Axes (or Figure) it drew on, so it can be tested without a screen.

Notebooks call ``plotting.<name>(...)``; the functions live in one module per group of
notebooks:

- :mod:`.style`: the palette (:data:`OKABE_ITO`), the heatmap colormap and the axes helpers
  every figure shares.
- :mod:`.basics`: notebooks 01-03 (vectors, score variance, softmax saturation).
- :mod:`.attention`: :func:`attention_heatmap` (used from 01 on, and by the widgets), and the
  figures of 04 (weighted sum) and 05 (self vs cross).
- :mod:`.beyond`: notebooks 06-08 (masks, heads, memory and time).
- :mod:`.training`: notebook 09 (loss and gradient norms of the training runs).
- :mod:`.inference`: notebook 10 (time per generated token, memory of the KV cache).
"""

from .attention import attention_heatmap, convex_combination, self_vs_cross_attention
from .basics import saturation_curves, score_variance_curve, vector_arrows
from .beyond import MASK_COLOURS, head_heatmaps, mask_panels, memory_time_curves
from .inference import cache_memory_curves, decode_time_curves
from .style import HEATMAP_CMAP, OKABE_ITO, SCALED_COLOUR, UNSCALED_COLOUR
from .training import gradient_norm_curves, loss_curves, window_medians

__all__ = [
    "OKABE_ITO",
    "HEATMAP_CMAP",
    "SCALED_COLOUR",
    "UNSCALED_COLOUR",
    "MASK_COLOURS",
    "attention_heatmap",
    "vector_arrows",
    "score_variance_curve",
    "saturation_curves",
    "convex_combination",
    "self_vs_cross_attention",
    "mask_panels",
    "head_heatmaps",
    "memory_time_curves",
    "window_medians",
    "loss_curves",
    "gradient_norm_curves",
    "decode_time_curves",
    "cache_memory_curves",
]
