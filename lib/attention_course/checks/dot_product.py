"""Notebook 01: ``dot_product_scores(Q, K)`` -> ``(..., n_q, n_k)``, every query against every key.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys, ``d_k``
query/key width.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .framework import Case, Exercise, Mistake, make_check, unchanged_inputs_case
from .inputs import batch_and_sizes, normal, sizes
from .mistakes import DOT_FIX, DOT_NAME, TRANSPOSE_FIX


def _scores_inputs(batch: bool = False, dtype=np.float64, scale: float = 1.0):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k) = batch_and_sizes(rng, 3)
        lead = (b1, b2) if batch else ()
        Q = normal(rng, (*lead, n_q, d_k), scale, dtype)
        K = normal(rng, (*lead, n_k, d_k), scale, dtype)
        return [((Q, K), {})]

    return make


def _square_keys_probe(rng):
    """Q (n_q, d_k) and K (d_k, d_k): ``Q @ K`` without a transpose runs on this input."""
    n_q, d_k = sizes(rng, 2)
    return (normal(rng, (n_q, d_k)), normal(rng, (d_k, d_k))), {}


def _same_count_probe(rng):
    """Q and K with as many rows (n_q == n_k), so that row-wise products run."""
    n, d_k = sizes(rng, 2)
    return (normal(rng, (n, d_k)), normal(rng, (n, d_k))), {}


_DOT_PRODUCT = Exercise(
    name="dot_product_scores",
    arg_names=("Q", "K"),
    reference=ref.dot_product_scores,
    n_outputs=1,
    output_names=("scores",),
    signature="dot_product_scores(Q, K)",
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)"),
    output_layouts=("(..., n_q, n_k)",),
    cases={
        "random": Case("matches the reference on random 2-D input", _scores_inputs()),
        "batch": Case("works with leading batch dimensions", _scores_inputs(batch=True)),
        "float32": Case("works in float32", _scores_inputs(dtype=np.float32, scale=10.0)),
        "inputs_unchanged": unchanged_inputs_case(_scores_inputs(batch=True)),
    },
    mistakes=(
        Mistake(
            "computed K Qᵀ instead of Q Kᵀ: the result is transposed, (n_k, n_q)",
            "put the queries first: scores[i, j] = Q[i] · K[j], i.e. Q @ Kᵀ",
            lambda Q, K: K @ np.swapaxes(Q, -1, -2),
        ),
        Mistake(
            "K.T used on batched input: .T reverses all axes, batch axes included",
            TRANSPOSE_FIX,
            lambda Q, K: Q @ K.T,
        ),
        Mistake(
            "np.dot(Q, K.T) used on batched input: np.dot does not broadcast batch axes, "
            "and .T reverses all axes",
            "use Q @ np.swapaxes(K, -1, -2): @ treats leading axes as batch axes",
            lambda Q, K: np.dot(Q, K.T),
        ),
        Mistake(DOT_NAME, DOT_FIX, lambda Q, K: np.dot(Q, np.swapaxes(K, -1, -2))),
        Mistake(
            "K was not transposed: Q @ K multiplies (n_q, d_k) by (n_k, d_k)",
            "transpose the keys' last two axes: Q @ np.swapaxes(K, -1, -2)",
            lambda Q, K: Q @ K,
            probe=_square_keys_probe,
        ),
        Mistake(
            "computed Qᵀ K, a (d_k, d_k) matrix, instead of Q Kᵀ, (n_q, n_k)",
            "transpose the keys, not the queries: Q @ np.swapaxes(K, -1, -2)",
            lambda Q, K: np.swapaxes(Q, -1, -2) @ K,
            probe=_same_count_probe,
        ),
        Mistake(
            "element-wise product (Q * K).sum(-1): that pairs query i with key i only",
            "each score pairs *every* query with *every* key: Q @ Kᵀ gives (n_q, n_k)",
            lambda Q, K: (Q * K).sum(-1),
            probe=_same_count_probe,
        ),
    ),
    forbidden=frozenset(
        {"dot_product_scores", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
)


check_dot_product_scores = make_check(_DOT_PRODUCT)
