"""Reference implementation of scaled dot-product attention, in NumPy.

This is the implementation the course's grader trusts. Learners write functions with the same
names and signatures in the notebooks; the checks in :mod:`attention_course.checks` compare
their answers with these.

Shape legend (used in every docstring and shape comment):

- ``...``  any number of leading batch dimensions (possibly none), broadcast like NumPy.
- ``n_q``  number of queries.
- ``n_k``  number of keys (and of values).
- ``d_k``  width of a query and of a key.
- ``d_v``  width of a value.
- ``d_model`` / ``d_model_z``  width of the token vectors ``X`` / ``Z`` that queries / keys and
  values are projected from.
- ``n_heads``, ``d_out``  number of heads of :func:`multi_head_attention`, and the width of its
  output (``d_k`` and ``d_v`` are then the widths of one head).

Conventions:

- A boolean ``mask`` is **True where a query may attend to a key**, as in PyTorch's
  ``scaled_dot_product_attention``. A query whose keys are all masked gets zero weights and a
  zero output row, never NaN.
- The floating dtype of the inputs (float16, float32 or float64) is preserved; integer inputs
  are computed in float64.
- Invalid input raises :class:`ValueError` with a sentence naming the dimensions that disagree.

Layout of the package (every public name is importable from ``attention_course.reference``
itself, which is how notebooks, checks and tests use it):

- :mod:`.forward` the forward pass in the order the course teaches it (notebooks 01-07):
  scores, scaling, softmax, weighted sum, attention, self- and cross-attention, masks,
  multi-head attention;
- :mod:`.tiled` attention that never holds the whole score matrix (notebook 08):
  :func:`online_softmax`, :func:`tiled_attention`;
- :mod:`.backward` the backward pass (notebook 09): :func:`softmax_backward`,
  :func:`attention_backward`, and the central differences that check them;
- :mod:`.inference` attention at inference (notebook 10): :func:`decode_step` (the KV cache),
  :func:`grouped_query_attention`, :func:`sliding_window_mask`;
- :mod:`._validation` the input checks every public function funnels its arguments through.
"""

from __future__ import annotations

from .backward import (
    attention_backward,
    numerical_attention_gradients,
    numerical_gradient,
    softmax_backward,
)
from .forward import (
    causal_mask,
    cross_attention,
    dot_product_scores,
    multi_head_attention,
    padding_mask,
    scale_scores,
    scaled_dot_product_attention,
    self_attention,
    softmax,
    weighted_sum,
)
from .inference import decode_step, grouped_query_attention, sliding_window_mask
from .tiled import online_softmax, tiled_attention

# The one list of the public names (the modules themselves do not repeat it).
__all__ = [
    "dot_product_scores",
    "scale_scores",
    "softmax",
    "weighted_sum",
    "scaled_dot_product_attention",
    "self_attention",
    "cross_attention",
    "causal_mask",
    "padding_mask",
    "multi_head_attention",
    "online_softmax",
    "tiled_attention",
    "softmax_backward",
    "attention_backward",
    "numerical_gradient",
    "numerical_attention_gradients",
    "decode_step",
    "grouped_query_attention",
    "sliding_window_mask",
]
