"""Learner-style implementations that the grader in :mod:`attention_course.checks` must judge.

``wrong.py`` (notebooks 01-05), ``wrong_beyond.py`` (06-08), ``wrong_backward.py`` (09) and
``wrong_inference.py`` (10) hold implementations with one mistake each, written the way
learners write them (``K.T`` on batched input, a softmax without max subtraction,
``scores / d_k``, a loop that never ends ...); every one is registered with :func:`wrong`, which
records the exercise, the check case that must fail and phrases the failure message must
contain. ``right.py``, ``right_beyond.py``, ``right_backward.py`` and ``right_inference.py``
hold correct alternatives to the reference (einsum, loops, ``scipy.special.softmax``, a
log-sum-exp softmax, a ``list`` return ...), registered with :func:`right`: they must pass
every case, visible and hidden seeds alike.

Importing the eight modules registers their entries in :data:`WRONG` and :data:`RIGHT`.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``.
"""

from __future__ import annotations

from .registry import RIGHT, WRONG, Right, Wrong, right, wrong

#: The exercises of the core notebooks 01-05 (``wrong.py``, ``right.py``).
CORE_EXERCISES = (
    "dot_product_scores",
    "scale_scores",
    "softmax",
    "weighted_sum",
    "scaled_dot_product_attention",
    "self_attention",
    "cross_attention",
)
#: The exercises of notebooks 06-08: masks, multi-head and tiled attention (``wrong_beyond.py``,
#: ``right_beyond.py``, built from the learner's blocks in ``blocks_beyond.py``).
BEYOND_EXERCISES = (
    "causal_mask",
    "padding_mask",
    "masked_attention",
    "multi_head_attention",
    "online_softmax",
    "tiled_attention",
)
#: The exercises of notebook 09, the backward pass (``wrong_backward.py``, ``right_backward.py``).
BACKWARD_EXERCISES = ("softmax_backward", "attention_backward")
#: The exercises of notebook 10, attention at inference (``wrong_inference.py``,
#: ``right_inference.py``).
INFERENCE_EXERCISES = ("decode_step", "grouped_query_attention", "sliding_window_mask")

__all__ = [
    "BACKWARD_EXERCISES",
    "BEYOND_EXERCISES",
    "CORE_EXERCISES",
    "INFERENCE_EXERCISES",
    "RIGHT",
    "WRONG",
    "Right",
    "Wrong",
    "right",
    "wrong",
]
