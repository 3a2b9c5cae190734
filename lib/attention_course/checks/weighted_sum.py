"""Notebook 04: ``weighted_sum(weights, V)`` and ``scaled_dot_product_attention(Q, K, V)``.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width, ``d_v`` value width.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference as ref
from .framework import Case, Exercise, Mistake, make_check, unchanged_inputs_case
from .inputs import batch_and_sizes, normal, redraw_until_adversarial, row_scales, sizes
from .mistakes import DOT_FIX, DOT_NAME, attention_mistakes, sdpa_with


def _weighted_inputs(batch: bool = False, dtype=np.float64):
    def make(rng):
        (b1, b2), (n_q, n_k, d_v) = batch_and_sizes(rng, 3)
        lead = (b1, b2) if batch else ()
        weights = ref.softmax(normal(rng, (*lead, n_q, n_k), 2.0)).astype(dtype)
        V = normal(rng, (*lead, n_k, d_v), 1.0, dtype)
        return [((weights, V), {})]

    return make


def _square_weighted_probe(rng):
    """n_q == n_k == d_v, so that every mix-up of the two operands still runs."""
    (n,) = sizes(rng, 1, 3)
    return (ref.softmax(normal(rng, (n, n), 2.0)), normal(rng, (n, n))), {}


_WEIGHTED = Exercise(
    name="weighted_sum",
    arg_names=("weights", "V"),
    reference=ref.weighted_sum,
    n_outputs=1,
    output_names=("output",),
    signature="weighted_sum(weights, V)",
    arg_layouts=("(..., n_q, n_k)", "(..., n_k, d_v)"),
    output_layouts=("(..., n_q, d_v)",),
    cases={
        "random": Case("matches the reference on random input", _weighted_inputs()),
        "batch": Case("works with leading batch dimensions", _weighted_inputs(batch=True)),
        "float32": Case("works in float32", _weighted_inputs(dtype=np.float32)),
        "inputs_unchanged": unchanged_inputs_case(_weighted_inputs(batch=True)),
    },
    mistakes=(
        Mistake(DOT_NAME, DOT_FIX, lambda w, V: np.dot(w, V)),
        Mistake(
            "summed the values without the weights",
            "multiply each value row by its weight before summing: weights @ V",
            lambda w, V: np.broadcast_to(V.sum(-2, keepdims=True), (*w.shape[:-1], V.shape[-1])),
        ),
        Mistake(
            "summed over the query axis instead of the key axis: the result has one row per key",
            "output[i] = Σ_j weights[i, j] · V[j]: sum over j, the key axis, i.e. weights @ V",
            lambda w, V: (w[..., :, :, None] * V[..., None, :, :]).sum(axis=-3),
        ),
        Mistake(
            "multiplied V by the weights (V @ weights) instead of weights @ V",
            "each output row mixes value rows: weights (n_q, n_k) @ V (n_k, d_v)",
            lambda w, V: V @ w,
            probe=_square_weighted_probe,
        ),
        Mistake(
            "transposed the weights (weightsᵀ @ V): that mixes by key, not by query",
            "use the weights as they are: weights @ V",
            lambda w, V: np.swapaxes(w, -1, -2) @ V,
            probe=_square_weighted_probe,
        ),
        Mistake(
            "element-wise product instead of a matrix product",
            "use weights @ V: output[i] = Σ_j weights[i, j] · V[j]",
            lambda w, V: w * V,
            probe=_square_weighted_probe,
        ),
    ),
    forbidden=frozenset(
        {"weighted_sum", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
)


# ---- scaled_dot_product_attention -----------------------------------------------------------


def _sdpa_inputs(batch: bool = False, dtype=np.float64, scale: float = 1.0, large: bool = False):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k, d_v) = batch_and_sizes(rng, 4, d_k_at=2)
        lead = (b1, b2) if batch else ()
        Q = normal(rng, (*lead, n_q, d_k), scale, dtype)
        if large:
            Q = (Q * row_scales(rng, n_q)).astype(dtype)
        K = normal(rng, (*lead, n_k, d_k), scale, dtype)
        V = normal(rng, (*lead, n_k, d_v), 1.0, dtype)
        return [((Q, K, V), {})]

    if large:
        return redraw_until_adversarial(
            make, lambda Q, K, V: Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])
        )
    return make


def _square_keys_sdpa_probe(rng):
    """n_k == d_k, so that ``Q @ K`` without a transpose runs."""
    n_q, d_k, d_v = sizes(rng, 3)
    return (normal(rng, (n_q, d_k)), normal(rng, (d_k, d_k)), normal(rng, (d_k, d_v))), {}


_SDPA = Exercise(
    name="scaled_dot_product_attention",
    arg_names=("Q", "K", "V"),
    reference=lambda Q, K, V: ref.scaled_dot_product_attention(Q, K, V),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="scaled_dot_product_attention(Q, K, V)",
    exp_magnitude=lambda Q, K, V: float(
        np.max(np.abs(Q @ np.swapaxes(K, -1, -2))) / math.sqrt(Q.shape[-1])
    ),
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)", "(..., n_k, d_v)"),
    output_layouts=("(..., n_q, d_v)", "(..., n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random 2-D input", _sdpa_inputs()),
        "batch": Case("works with leading batch dimensions", _sdpa_inputs(batch=True)),
        "large": Case("is stable for large scores", _sdpa_inputs(scale=40.0, large=True)),
        "float32": Case("works in float32", _sdpa_inputs(dtype=np.float32, scale=6.0)),
        "inputs_unchanged": unchanged_inputs_case(_sdpa_inputs(batch=True)),
    },
    mistakes=attention_mistakes(lambda f: f)
    + (
        Mistake(
            "K was not transposed: Q @ K multiplies (n_q, d_k) by (n_k, d_k)",
            "transpose the keys' last two axes: Q @ np.swapaxes(K, -1, -2)",
            sdpa_with(transpose=lambda K: K),
            probe=_square_keys_sdpa_probe,
        ),
    ),
    forbidden=frozenset({"scaled_dot_product_attention", "self_attention", "cross_attention"}),
)


check_weighted_sum = make_check(_WEIGHTED)
check_scaled_dot_product_attention = make_check(_SDPA)
