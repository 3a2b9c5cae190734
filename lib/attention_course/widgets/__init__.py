"""Interactive explorers for the course notebooks: move a slider, watch attention change.

Each explorer is created by one line in a notebook and is itself a widget (an
``ipywidgets.VBox``), so the cell displays it. The lower-case names notebooks call are the
explorer classes themselves (``variance_explorer is VarianceExplorer``), so each signature,
its defaults and its documentation are written once:

- :class:`variance_explorer` (notebook 02): the spread of ``q · k`` grows like ``sqrt(d_k)``;
  dividing by ``sqrt(d_k)`` keeps it at 1.
- :class:`saturation_explorer` (notebook 03): as ``d_k`` grows, the unscaled softmax turns
  one-hot and its gradient vanishes; the scaled softmax stays put.
- :class:`attention_explorer` (notebooks 04 and 05): pick a query token; see its weights as bars
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

Modules: :mod:`.computations` (the plain functions), :mod:`.base` (the figure-in-an-Image
explorer and its ``d_k`` slider), :mod:`.scaling` (02 and 03), :mod:`.attention` (04 and 05).
"""

from .attention import AttentionExplorer, attention_explorer
from .computations import (
    Readout,
    attention_weights,
    saturation_scores,
    score_samples,
    softmax_readout,
    weights_readout,
)
from .scaling import SaturationExplorer, VarianceExplorer, saturation_explorer, variance_explorer

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
