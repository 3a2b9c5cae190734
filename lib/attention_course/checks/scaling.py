"""Notebook 02: ``scale_scores(scores, d_k)`` -> the scores divided by √d_k.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys, ``d_k``
query/key width.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference as ref
from .framework import Case, Exercise, Mistake, make_check, unchanged_inputs_case
from .inputs import batch_and_sizes, is_square, normal


def _scale_inputs(batch: bool = False, dtype=np.float64):
    def make(rng):
        (b1, b2), (n_q, n_k) = batch_and_sizes(rng, 2)
        # Keys wider than the score matrix, as in real models: d_k differs from every size.
        d_k = int(rng.choice([d for d in range(16, 65) if not is_square(d)]))
        lead = (b1, b2) if batch else ()
        scores = normal(rng, (*lead, n_q, n_k), math.sqrt(d_k), dtype)
        return [((scores, d_k), {})]

    return make


_SCALE = Exercise(
    name="scale_scores",
    arg_names=("scores", "d_k"),
    reference=ref.scale_scores,
    n_outputs=1,
    output_names=("scaled scores",),
    signature="scale_scores(scores, d_k)",
    arg_layouts=("(..., n_q, n_k)", ""),
    output_layouts=("(..., n_q, n_k)",),
    cases={
        "random": Case("matches the reference on random input", _scale_inputs()),
        "batch": Case("works with leading batch dimensions", _scale_inputs(batch=True)),
        "float32": Case("works in float32", _scale_inputs(dtype=np.float32)),
        "inputs_unchanged": unchanged_inputs_case(_scale_inputs(batch=True)),
    },
    mistakes=(
        Mistake(
            "scaled by d_k instead of √d_k",
            "divide by math.sqrt(d_k): the standard deviation of q·k grows like √d_k, "
            "its variance like d_k",
            lambda s, d_k: s / d_k,
        ),
        Mistake(
            "multiplied by √d_k instead of dividing",
            "return scores / math.sqrt(d_k)",
            lambda s, d_k: s * np.sqrt(d_k),
        ),
        Mistake(
            "wrote d_k ** 1/2 (or d_k ** -1/2), which Python reads as (d_k ** 1) / 2: "
            "** binds tighter than /",
            "put the exponent in parentheses, d_k ** (1/2), or write d_k ** 0.5 or math.sqrt(d_k)",
            lambda s, d_k: s / d_k**1 / 2,
        ),
        Mistake(
            "√d_k rounded to a whole number (int(np.sqrt(d_k)) or math.isqrt(d_k))",
            "keep the square root as a float: np.sqrt(d_k) or math.sqrt(d_k), without int()",
            lambda s, d_k: s / int(np.sqrt(d_k)),
        ),
        Mistake(
            "floor division: scores // np.sqrt(d_k) rounds every score down",
            "use true division: scores / math.sqrt(d_k)",
            lambda s, d_k: s // np.sqrt(d_k),
        ),
        Mistake(
            "scaled by √n_k (the number of keys, scores.shape[-1]) instead of √d_k",
            "use the d_k argument: it is the query/key width, which the score matrix does not know",
            lambda s, d_k: s / np.sqrt(s.shape[-1]),
        ),
        Mistake(
            "scaled by √n_q (scores.shape[-2]) instead of √d_k",
            "use the d_k argument, not a dimension of the score matrix",
            lambda s, d_k: s / np.sqrt(s.shape[-2]),
        ),
        Mistake(
            "divided by d_k² instead of √d_k",
            "divide once by math.sqrt(d_k)",
            lambda s, d_k: s / d_k**2,
        ),
        Mistake("returned the scores unscaled", "return scores / math.sqrt(d_k)", lambda s, d_k: s),
    ),
    forbidden=frozenset(
        {"scale_scores", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
)


check_scale_scores = make_check(_SCALE)
