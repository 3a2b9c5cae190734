"""Notebook 05: ``self_attention(X, W_q, W_k, W_v)`` and ``cross_attention(X, Z, W_q, W_k, W_v)``.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries (rows of ``X``), ``n_k`` keys
(rows of ``Z``), ``d_k`` query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z``
widths of the token vectors ``X`` / ``Z``; in self-attention ``n`` tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import reference as ref
from .framework import Case, Exercise, Mistake, make_check, unchanged_inputs_case
from .inputs import batch_and_sizes, normal, redraw_until_adversarial, row_scales, sizes
from .mistakes import attention_mistakes, sdpa_with


def _projection_inputs(cross: bool, batch: bool = False, dtype=np.float64, large: bool = False):
    scale = 40.0 if large else 1.0

    def make(rng):
        (b1, b2), (n_q, n_k, d_k, d_v, d_model, d_model_z) = batch_and_sizes(rng, 6, d_k_at=2)
        lead = (b1, b2) if batch else ()
        X = normal(rng, (*lead, n_q, d_model), scale, dtype)
        if large:
            X = (X * row_scales(rng, n_q)).astype(dtype)
        if not cross:
            W = [
                normal(rng, (d_model, d), 1.0 / math.sqrt(d_model), dtype) for d in (d_k, d_k, d_v)
            ]
            return [((X, *W), {})]
        Z = normal(rng, (*lead, n_k, d_model_z), scale, dtype)
        W_q = normal(rng, (d_model, d_k), 1.0 / math.sqrt(d_model), dtype)
        W_k = normal(rng, (d_model_z, d_k), 1.0 / math.sqrt(d_model_z), dtype)
        W_v = normal(rng, (d_model_z, d_v), 1.0 / math.sqrt(d_model_z), dtype)
        return [((X, Z, W_q, W_k, W_v), {})]

    if large:
        return redraw_until_adversarial(make, projected_scores)
    return make


def projected_scores(X, *args):
    """The scaled scores of self-attention (X, W_q, W_k, W_v) or cross-attention (X, Z, ...)."""
    Z, W_q, W_k = (X, *args[:2]) if len(args) == 3 else args[:3]
    Q, K = X @ W_q, Z @ W_k  # (..., n_q, d_k), (..., n_k, d_k)
    return Q @ np.swapaxes(K, -1, -2) / math.sqrt(W_q.shape[1])


def _square_cross_probe(rng):
    """Cross-attention input where X and Z have the same shape, so that a mix-up of the two
    sequences (or of W_q and W_k) still gives an answer that can be compared."""
    n, d_k, d_v, d_model = sizes(rng, 4)
    X = normal(rng, (n, d_model))
    Z = normal(rng, (n, d_model))
    W_q, W_k = (normal(rng, (d_model, d_k), 1 / math.sqrt(d_model)) for _ in range(2))
    W_v = normal(rng, (d_model, d_v), 1 / math.sqrt(d_model))
    return (X, Z, W_q, W_k, W_v), {}


def _self_as_cross(attn):
    """Lift an attention core (Q, K, V) -> (output, weights) to self_attention's signature."""

    def self_attention(X, W_q, W_k, W_v, *args, **kwargs):
        return attn(X @ W_q, X @ W_k, X @ W_v)

    return self_attention


def _cross_as(attn):
    """Lift an attention core (Q, K, V) -> (output, weights) to cross_attention's signature."""

    def cross_attention(X, Z, W_q, W_k, W_v, *args, **kwargs):
        return attn(X @ W_q, Z @ W_k, Z @ W_v)

    return cross_attention


_D_K_FIX = "d_k is the width of the projected queries, W_q.shape[1] (Q.shape[-1])"


def _scaled_by(width: Callable) -> Callable:
    """An attention core that divides the scores by √width(inputs) instead of √d_k."""

    def scale_fn(s, Q, K, V):
        return s / np.sqrt(width())

    return sdpa_with(scale_fn=scale_fn)


_SELF = Exercise(
    name="self_attention",
    arg_names=("X", "W_q", "W_k", "W_v"),
    reference=lambda X, W_q, W_k, W_v: ref.self_attention(X, W_q, W_k, W_v),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="self_attention(X, W_q, W_k, W_v)",
    exp_magnitude=lambda *args: float(np.max(np.abs(projected_scores(*args)))),
    arg_layouts=("(..., n, d_model)", "(d_model, d_k)", "(d_model, d_k)", "(d_model, d_v)"),
    output_layouts=("(..., n, d_v)", "(..., n, n)"),
    cases={
        "random": Case("matches the reference on random input", _projection_inputs(cross=False)),
        "batch": Case(
            "works with leading batch dimensions", _projection_inputs(cross=False, batch=True)
        ),
        "large": Case(
            "is stable for large inputs (scores in the thousands)",
            _projection_inputs(cross=False, large=True),
        ),
        "float32": Case("works in float32", _projection_inputs(cross=False, dtype=np.float32)),
        "inputs_unchanged": unchanged_inputs_case(_projection_inputs(cross=False, batch=True)),
    },
    mistakes=attention_mistakes(_self_as_cross, one_sequence=True)
    + (
        Mistake(
            "scaled by √d_model (the width of X) instead of √d_k",
            _D_K_FIX,
            lambda X, W_q, W_k, W_v, *a, **k: _scaled_by(lambda: X.shape[-1])(
                X @ W_q, X @ W_k, X @ W_v
            ),
        ),
        Mistake(
            "W_q and W_k swapped: queries projected with W_k and keys with W_q",
            "Q = X @ W_q, K = X @ W_k, V = X @ W_v",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_k, X @ W_q, X @ W_v
            ),
        ),
        Mistake(
            "the keys were projected with W_q (K = X @ W_q) instead of W_k",
            "K = X @ W_k: each of Q, K and V has its own projection",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, X @ W_q, X @ W_v
            ),
        ),
        Mistake(
            "the values were not projected: V = X instead of X @ W_v",
            "project the values too: V = X @ W_v, so the output has width d_v",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(X @ W_q, X @ W_k, X),
        ),
        Mistake(
            "projected with the transposed matrices (W @ X or X @ W.T)",
            "W_q has shape (d_model, d_k): Q = X @ W_q gives (n, d_k)",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q.T, X @ W_k.T, X @ W_v.T
            ),
        ),
    ),
    forbidden=frozenset({"self_attention", "cross_attention"}),
)

_CROSS = Exercise(
    name="cross_attention",
    arg_names=("X", "Z", "W_q", "W_k", "W_v"),
    reference=lambda X, Z, W_q, W_k, W_v: ref.cross_attention(X, Z, W_q, W_k, W_v),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="cross_attention(X, Z, W_q, W_k, W_v)",
    exp_magnitude=lambda *args: float(np.max(np.abs(projected_scores(*args)))),
    arg_layouts=(
        "(..., n_q, d_model)",
        "(..., n_k, d_model_z)",
        "(d_model, d_k)",
        "(d_model_z, d_k)",
        "(d_model_z, d_v)",
    ),
    output_layouts=("(..., n_q, d_v)", "(..., n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random input", _projection_inputs(cross=True)),
        "batch": Case(
            "works with leading batch dimensions", _projection_inputs(cross=True, batch=True)
        ),
        "large": Case(
            "is stable for large inputs (scores in the thousands)",
            _projection_inputs(cross=True, large=True),
        ),
        "float32": Case("works in float32", _projection_inputs(cross=True, dtype=np.float32)),
        "inputs_unchanged": unchanged_inputs_case(_projection_inputs(cross=True, batch=True)),
    },
    mistakes=attention_mistakes(_cross_as)
    + (
        Mistake(
            "scaled by √d_model (the width of X) instead of √d_k",
            _D_K_FIX,
            lambda X, Z, W_q, W_k, W_v, *a, **k: _scaled_by(lambda: X.shape[-1])(
                X @ W_q, Z @ W_k, Z @ W_v
            ),
        ),
        Mistake(
            "scaled by √d_model_z (the width of Z) instead of √d_k",
            _D_K_FIX,
            lambda X, Z, W_q, W_k, W_v, *a, **k: _scaled_by(lambda: Z.shape[-1])(
                X @ W_q, Z @ W_k, Z @ W_v
            ),
        ),
        Mistake(
            "the values were not projected: V = Z instead of Z @ W_v",
            "project the values too: V = Z @ W_v, so the output has width d_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, Z @ W_k, Z
            ),
        ),
        Mistake(
            "keys and values taken from X instead of Z",
            "in cross-attention the queries come from X, the keys and values from Z: "
            "K = Z @ W_k, V = Z @ W_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, X @ W_k, X @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "the values taken from X instead of Z",
            "keys and values come from the same sequence, Z: V = Z @ W_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, Z @ W_k, X @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "the keys taken from X instead of Z",
            "keys and values come from the same sequence, Z: K = Z @ W_k",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, X @ W_k, Z @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "X and Z swapped: the queries come from Z and the keys and values from X",
            "queries from X (Q = X @ W_q), keys and values from Z",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                Z @ W_q, X @ W_k, X @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "the queries taken from Z instead of X",
            "the queries come from X, the sequence that asks: Q = X @ W_q",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                Z @ W_q, Z @ W_k, Z @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "W_q and W_k swapped: queries projected with W_k and keys with W_q",
            "Q = X @ W_q, K = Z @ W_k, V = Z @ W_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_k, Z @ W_q, Z @ W_v
            ),
            probe=_square_cross_probe,
        ),
    ),
    forbidden=frozenset({"self_attention", "cross_attention"}),
)


check_self_attention = make_check(_SELF)
check_cross_attention = make_check(_CROSS)
