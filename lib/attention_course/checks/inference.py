"""Notebook 10: ``decode_step``, ``grouped_query_attention`` and ``sliding_window_mask``.

``decode_step(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None)`` returns
``(output_t, (K_cache, V_cache))``: its three arrays are compared with the reference's (a pair
nested in the returned tuple counts as its items, :func:`.compare.as_outputs`), and every case
requires the pair itself (:data:`NESTED_CACHE`), since the next call takes it as ``cache``.
The ``"steps"`` case generates a whole sequence: one call per token, each given the cache the
reference holds after the tokens before it, so every step is judged on its own.

Shape legend: ``...`` leading batch dimensions, ``t`` cached tokens, ``n_q`` queries, ``n_k``
keys, ``d_model`` width of a token, ``d_k`` / ``d_v`` widths of one head, ``n_heads`` query
heads, ``n_kv_heads`` key/value heads (``group = n_heads // n_kv_heads`` query heads share
one), ``d_out`` width of the output.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference as ref
from .framework import (
    INPUTS_UNCHANGED,
    Case,
    Exercise,
    Mistake,
    OutputKind,
    Requirement,
    Trial,
    make_check,
)
from .inputs import normal, sizes
from .masks import BOOL_DTYPE
from .mistakes import safe_softmax

# ---- inputs ----------------------------------------------------------------------------------


def _weights(rng, d_model, d_k, d_v, d_out, n_heads, n_kv_heads, dtype):
    """W_q (d_model, n_heads·d_k), W_k (d_model, n_kv·d_k), W_v (d_model, n_kv·d_v), W_o."""
    W_q = normal(rng, (d_model, n_heads * d_k), 1.0 / math.sqrt(d_model), dtype)
    W_k = normal(rng, (d_model, n_kv_heads * d_k), 1.0 / math.sqrt(d_model), dtype)
    W_v = normal(rng, (d_model, n_kv_heads * d_v), 1.0 / math.sqrt(d_model), dtype)
    W_o = normal(rng, (n_heads * d_v, d_out), 1.0 / math.sqrt(n_heads * d_v), dtype)
    return W_q, W_k, W_v, W_o


def _heads(rng, kind: str, exclude=()) -> tuple[int, int]:
    """(n_heads, n_kv_heads): "mha" n_kv = n_heads, "gqa" 2 or 3 kv heads of 2 or 3 query heads
    each (so grouped and interleaved repeats differ), "mqa" one kv head."""
    if kind == "gqa":
        n_kv_heads = int(rng.choice((2, 3)))
        return n_kv_heads * (5 - n_kv_heads), n_kv_heads  # 2 kv heads of 3, or 3 of 2: 6
    (n_heads,) = sizes(rng, 1, 2, 7, exclude=exclude)
    return n_heads, (1 if kind == "mqa" else n_heads)


def _cache(X_prev, W_k, W_v, n_kv_heads):
    """The cache after the tokens X_prev (..., t, d_model), or None for t = 0: their keys
    (..., n_kv_heads, t, d_k) and values (..., n_kv_heads, t, d_v), head by head."""
    if X_prev.shape[-2] == 0:
        return None
    K = _split(X_prev @ W_k, n_kv_heads)  # (..., t, n_kv·d_k) -> (..., n_kv_heads, t, d_k)
    V = _split(X_prev @ W_v, n_kv_heads)  # (..., t, n_kv·d_v) -> (..., n_kv_heads, t, d_v)
    return K, V


def _decode_call(rng, lead, t, heads="mha", dtype=np.float64, pass_n_kv=True):
    """One call: x_t (*lead, 1, d_model), the cache of t earlier tokens, the weights; the
    sizes t, d_model, d_k, d_v, d_out, n_heads, n_kv_heads (> 1) and lead all different."""
    n_heads, n_kv_heads = _heads(rng, heads, exclude=(*lead, t))
    taken = {*lead, t, n_heads, n_kv_heads} - {0, 1}
    d_model, d_k, d_v, d_out = sizes(rng, 4, 2, 14, exclude=tuple(taken))
    W_q, W_k, W_v, W_o = _weights(rng, d_model, d_k, d_v, d_out, n_heads, n_kv_heads, dtype)
    X = normal(rng, (*lead, t + 1, d_model), 1.0, dtype)  # (..., t + 1, d_model)
    cache = _cache(X[..., :t, :], W_k, W_v, n_kv_heads)
    args = (X[..., t:, :], cache, W_q, W_k, W_v, W_o, n_heads)
    return (*args, n_kv_heads) if pass_n_kv else args, {}


def _decode_steps(rng):
    """A whole sequence, one call per token: each with the reference's cache of the tokens
    before it (x_t (1, d_model), t = 0 … n - 1)."""
    (n,) = sizes(rng, 1, 4, 7)
    n_heads, _ = _heads(rng, "mha", exclude=(n, n + 1))
    d_model, d_k, d_v, d_out = sizes(rng, 4, 2, 14, exclude=(n, n_heads))
    W_q, W_k, W_v, W_o = _weights(rng, d_model, d_k, d_v, d_out, n_heads, n_heads, np.float64)
    X = normal(rng, (n, d_model))  # (n, d_model)
    return [
        ((X[t : t + 1], _cache(X[:t], W_k, W_v, n_heads), W_q, W_k, W_v, W_o, n_heads), {})
        for t in range(n)
    ]


def _decode_inputs(kind: str):
    def make(rng):
        if kind == "first_token":
            return [_decode_call(rng, (), 0, pass_n_kv=False)]
        if kind == "steps":
            return _decode_steps(rng)
        if kind in ("batch", "inputs_unchanged"):
            lead = tuple(sizes(rng, 2, 2, 6))
            (t,) = sizes(rng, 1, 2, 8, exclude=lead)
            return [_decode_call(rng, lead, t, pass_n_kv=kind == "inputs_unchanged")]
        if kind == "gqa":
            (b,) = sizes(rng, 1, 4, 6)
            (t,) = sizes(rng, 1, 4, 9, exclude=(b, 6))
            return [_decode_call(rng, (b,), t, "gqa"), _decode_call(rng, (b,), t, "mqa")]
        if kind == "float32":
            (b,) = sizes(rng, 1, 4, 6)
            (t,) = sizes(rng, 1, 4, 9, exclude=(b, 6))
            return [_decode_call(rng, (b,), t, "gqa", dtype=np.float32)]
        raise KeyError(kind)

    return make


def _cached_probe(rng):
    """A call with 3 to 5 cached tokens, batch dims and grouped heads: mistakes about what the
    new query attends to differ from the reference there even when the case's call has t = 0."""
    (b,) = sizes(rng, 1, 2, 4)
    (t,) = sizes(rng, 1, 4, 6, exclude=(b,))
    return _decode_call(rng, (b,), t, "gqa")


# ---- the nesting of the returned cache --------------------------------------------------------


def _flat_cache(trial: Trial) -> str | None:
    value = trial.outcome.value
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[1], tuple):
        return None
    return (
        "The arrays are right, but decode_step must return two things, the output and the "
        "cache as one pair, `return output_t, (K_cache, V_cache)`: the next call takes that "
        "pair as its `cache` argument, so a generation loop reads "
        "`out, cache = decode_step(x_t, cache, ...)`. Return the pair as a tuple.\n"
        f"{trial.called_with}"
    )


#: decode_step returns ``(output_t, (K_cache, V_cache))``, the cache as one tuple.
NESTED_CACHE = Requirement(_flat_cache)


# ---- known mistakes ---------------------------------------------------------------------------


def _split(Y, n):
    """(..., m, n·d) -> (..., n, m, d): head h owns columns h·d:(h+1)·d."""
    Y = Y.reshape(*Y.shape[:-1], n, Y.shape[-1] // n)  # (..., m, n, d)
    return np.swapaxes(Y, -2, -3)


def _repeat(A, group, interleaved):
    """(..., n_kv, m, d) -> (..., n_kv·group, m, d), grouped [a a b b] or interleaved [a b a b]."""
    if interleaved:
        return np.concatenate([A] * group, axis=-3)
    return np.repeat(A, group, axis=-3)


def _attend(Q, K, V, scale, mask=None):
    """softmax(scale · Q Kᵀ) V over heads: (..., h, n_q, d_k), (..., h, n_k, d_k) -> outputs."""
    scores = scale * (Q @ np.swapaxes(K, -1, -2))  # (..., h, n_q, n_k)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = safe_softmax(scores, axis=-1)
    return weights @ V, weights  # (..., h, n_q, d_v), (..., h, n_q, n_k)


def _merge(heads, W_o):
    """(..., h, n_q, d_v) -> (..., n_q, h·d_v) @ W_o."""
    heads = np.swapaxes(heads, -2, -3)  # (..., n_q, h, d_v)
    return heads.reshape(*heads.shape[:-2], -1) @ W_o


def _decode_with(
    attend_before_append=False,
    single_query_mask=False,
    axis=-2,
    interleaved=False,
    scale_by="d_k",
    keep_old_cache=False,
    prepend=False,
    swap_cache=False,
):
    """decode_step with one deliberate change to the textbook version."""

    def decode(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
        n_kv = n_heads if n_kv_heads is None else n_kv_heads
        d_k = W_q.shape[1] // n_heads
        q = _split(x_t @ W_q, n_heads)  # (..., n_heads, 1, d_k)
        k = _split(x_t @ W_k, n_kv)  # (..., n_kv, 1, d_k)
        v = _split(x_t @ W_v, n_kv)  # (..., n_kv, 1, d_v)
        if cache is None:
            K_old = k[..., :0, :]
            V_old = v[..., :0, :]
        else:
            K_old, V_old = cache
        parts_k, parts_v = ([k, K_old], [v, V_old]) if prepend else ([K_old, k], [V_old, v])
        K_new = np.concatenate(parts_k, axis=axis)
        V_new = np.concatenate(parts_v, axis=axis)
        K_att, V_att = (K_old, V_old) if attend_before_append else (K_new, V_new)
        group = n_heads // n_kv
        K_att = _repeat(K_att, group, interleaved)
        V_att = _repeat(V_att, group, interleaved)
        width = {"d_k": d_k, "d_model": x_t.shape[-1]}[scale_by]
        mask = np.tri(1, K_att.shape[-2], dtype=bool) if single_query_mask else None
        heads, _ = _attend(q, K_att, V_att, 1 / math.sqrt(width), mask)
        new = (K_old, V_old) if keep_old_cache else (K_new, V_new)
        if swap_cache:
            new = new[::-1]
        return _merge(heads, W_o), new

    return decode


_DECODE_SIGNATURE = "decode_step(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None)"


def _decode_reference(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    return ref.decode_step(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads)


def _decode_case(description: str, kind: str, *requires: Requirement) -> Case:
    return Case(description, _decode_inputs(kind), requires=(NESTED_CACHE, *requires))


_DECODE = Exercise(
    name="decode_step",
    arg_names=("x_t", "cache", "W_q", "W_k", "W_v", "W_o", "n_heads", "n_kv_heads"),
    reference=_decode_reference,
    n_outputs=3,
    output_names=("output_t", "K_cache", "V_cache"),
    signature=_DECODE_SIGNATURE,
    arg_layouts=(
        "(..., 1, d_model)",
        "",
        "(d_model, n_heads·d_k)",
        "(d_model, n_kv_heads·d_k)",
        "(d_model, n_kv_heads·d_v)",
        "(n_heads·d_v, d_out)",
    ),
    output_layouts=(
        "(..., 1, d_out)",
        "(..., n_kv_heads, t + 1, d_k)",
        "(..., n_kv_heads, t + 1, d_v)",
    ),
    cases={
        "first_token": _decode_case(
            "the first token (cache None) attends to itself and starts the cache", "first_token"
        ),
        "steps": _decode_case(
            "token by token, gives every row of causal multi-head attention and grows the "
            "cache by one position per step",
            "steps",
        ),
        "batch": _decode_case("works with leading batch dimensions", "batch"),
        "gqa": _decode_case(
            "shares each key/value head among n_heads // n_kv_heads query heads (GQA, MQA)",
            "gqa",
        ),
        "float32": _decode_case("works in float32", "float32"),
        "inputs_unchanged": _decode_case(
            "does not modify its inputs or the cache it is given",
            "inputs_unchanged",
            INPUTS_UNCHANGED,
        ),
    },
    mistakes=(
        Mistake(
            "the new token's key and value were not appended before attending: the new "
            "query attended to the earlier tokens only, not to itself",
            "append first, then attend: K_cache = np.concatenate([K_cache, k], axis=-2) (same "
            "for V), and use the grown cache in the attention",
            _decode_with(attend_before_append=True),
            probe=_cached_probe,
        ),
        Mistake(
            "a causal mask np.tri(1, t + 1) applied to the one new query: it is top-left "
            "aligned, so the new token (the last position) saw only the first token",
            "use no mask at all: the cache only holds earlier tokens, so the new query may "
            "attend to every key in it, and to itself",
            _decode_with(single_query_mask=True),
            probe=_cached_probe,
        ),
        Mistake(
            "the cache grown along axis 1, which is the token axis only without batch "
            "dimensions: with them it is a batch or head axis",
            "concatenate along the token axis counted from the end: np.concatenate([K_cache, "
            "k], axis=-2), for K (..., n_kv_heads, t, d_k) and V alike",
            _decode_with(axis=1),
        ),
        Mistake(
            "kv heads repeated interleaved ([a, b, a, b], np.tile or h % n_kv_heads) instead "
            "of grouped ([a, a, b, b])",
            "query head h uses kv head h // (n_heads // n_kv_heads): repeat each kv head for "
            "its group with np.repeat(K, n_heads // n_kv_heads, axis=-3)",
            _decode_with(interleaved=True),
        ),
        Mistake(
            "scores scaled by √d_model, the model width, instead of √d_k of one head",
            "divide by math.sqrt(d_k) with d_k = W_q.shape[1] // n_heads, the width of one head",
            _decode_with(scale_by="d_model"),
        ),
        Mistake(
            "the old cache returned: the new token's key and value were used but not kept, so "
            "every later position is off by one",
            "return the grown pair, (K_cache, V_cache) with t + 1 positions",
            _decode_with(keep_old_cache=True),
        ),
        Mistake(
            "the new key and value put at the front of the cache: np.concatenate([k, "
            "K_cache]) puts the newest token first",
            "append at the end, np.concatenate([K_cache, k], axis=-2): position i of the "
            "cache is token i",
            _decode_with(prepend=True),
        ),
        Mistake(
            "the cache returned as (V_cache, K_cache), keys and values swapped",
            "return output_t, (K_cache, V_cache): keys first, as the next call reads them",
            _decode_with(swap_cache=True),
        ),
    ),
    forbidden=frozenset({"decode_step"}),
)


# ---- grouped_query_attention -----------------------------------------------------------------


def _gqa_call(rng, lead, heads, dtype=np.float64, masked=False):
    """X (*lead, n_q, d_model), Z (*lead, n_k, d_model_z), GQA weights, the head counts."""
    n_heads, n_kv_heads = _heads(rng, heads, exclude=lead)
    taken = tuple({*lead, n_heads, n_kv_heads} - {0, 1})
    n_q, n_k, d_model, d_model_z, d_k, d_v, d_out = sizes(rng, 7, 2, 16, exclude=taken)
    X = normal(rng, (*lead, n_q, d_model), 1.0, dtype)
    Z = normal(rng, (*lead, n_k, d_model_z), 1.0, dtype)
    W_q = normal(rng, (d_model, n_heads * d_k), 1.0 / math.sqrt(d_model), dtype)
    W_k = normal(rng, (d_model_z, n_kv_heads * d_k), 1.0 / math.sqrt(d_model_z), dtype)
    W_v = normal(rng, (d_model_z, n_kv_heads * d_v), 1.0 / math.sqrt(d_model_z), dtype)
    W_o = normal(rng, (n_heads * d_v, d_out), 1.0 / math.sqrt(n_heads * d_v), dtype)
    args = (X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads)
    return (*args, np.tri(n_q, n_k, dtype=bool)) if masked else args, {}


#: The head counts of a "gqa" call (n_kv_heads 2 or 3, n_heads 6): batch sizes avoid them.
_GQA_SIZES = (2, 3, 6)


def _gqa_inputs(kind: str):
    def make(rng):
        if kind == "random":
            return [_gqa_call(rng, (), "gqa")]
        if kind == "batch":
            return [_gqa_call(rng, tuple(sizes(rng, 2, 2, 8, exclude=_GQA_SIZES)), "gqa")]
        if kind == "mask":
            return [_gqa_call(rng, (), "gqa", masked=True)]
        if kind == "mha":
            return [_gqa_call(rng, (), "mha")]
        if kind == "mqa":
            return [_gqa_call(rng, (), "mqa")]
        if kind == "float32":
            return [
                _gqa_call(
                    rng, tuple(sizes(rng, 1, 2, 8, exclude=_GQA_SIZES)), "gqa", dtype=np.float32
                )
            ]
        if kind == "inputs_unchanged":
            return [
                _gqa_call(rng, tuple(sizes(rng, 1, 2, 8, exclude=_GQA_SIZES)), "gqa", masked=True)
            ]
        raise KeyError(kind)

    return make


def _gqa_with(interleaved=False, scale_by="d_k", weights_layout="heads", project=True,
              use_mask=True):  # fmt: skip
    """grouped_query_attention with one deliberate change to the textbook version."""

    def gqa(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
        d_k = W_q.shape[1] // n_heads
        group = n_heads // n_kv_heads
        Q = _split(X @ W_q, n_heads)  # (..., n_heads, n_q, d_k)
        K = _repeat(_split(Z @ W_k, n_kv_heads), group, interleaved)  # (..., n_heads, n_k, d_k)
        V = _repeat(_split(Z @ W_v, n_kv_heads), group, interleaved)  # (..., n_heads, n_k, d_v)
        width = {"d_k": d_k, "d_model": X.shape[-1]}[scale_by]
        mask = None if mask is None or not use_mask else np.asarray(mask)[..., None, :, :]
        heads, weights = _attend(Q, K, V, 1 / math.sqrt(width), mask)
        output = _merge(heads, W_o) if project else _merge(heads, np.eye(W_o.shape[0]))
        if weights_layout == "groups":  # (..., n_kv_heads, group, n_q, n_k)
            weights = weights.reshape(*weights.shape[:-3], n_kv_heads, group,
                                      *weights.shape[-2:])  # fmt: skip
        return output, weights

    return gqa


_GQA = Exercise(
    name="grouped_query_attention",
    arg_names=("X", "Z", "W_q", "W_k", "W_v", "W_o", "n_heads", "n_kv_heads", "mask"),
    reference=lambda X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None: (
        ref.grouped_query_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=mask)
    ),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="grouped_query_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None)",
    arg_layouts=(
        "(..., n_q, d_model)",
        "(..., n_k, d_model_z)",
        "(d_model, n_heads·d_k)",
        "(d_model_z, n_kv_heads·d_k)",
        "(d_model_z, n_kv_heads·d_v)",
        "(n_heads·d_v, d_out)",
        "",
        "",
        "(..., n_q, n_k)",
    ),
    output_layouts=("(..., n_q, d_out)", "(..., n_heads, n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random 2-D input", _gqa_inputs("random")),
        "batch": Case("works with leading batch dimensions", _gqa_inputs("batch")),
        "mask": Case("applies a causal mask to every head", _gqa_inputs("mask")),
        "mha": Case("with n_kv_heads = n_heads, is multi-head attention", _gqa_inputs("mha")),
        "mqa": Case("with n_kv_heads = 1, is multi-query attention", _gqa_inputs("mqa")),
        "float32": Case("works in float32", _gqa_inputs("float32")),
        "inputs_unchanged": Case(
            "does not modify its inputs", _gqa_inputs("inputs_unchanged"), (INPUTS_UNCHANGED,)
        ),
    },
    mistakes=(
        Mistake(
            "kv heads repeated interleaved ([a, b, a, b], np.tile or h % n_kv_heads) instead "
            "of grouped ([a, a, b, b])",
            "query head h uses kv head h // (n_heads // n_kv_heads): repeat each kv head for "
            "its group with np.repeat(K, n_heads // n_kv_heads, axis=-3)",
            _gqa_with(interleaved=True),
        ),
        Mistake(
            "scores scaled by √d_model, the model width, instead of √d_k of one head",
            "divide by math.sqrt(d_k) with d_k = W_q.shape[1] // n_heads, the width of one head",
            _gqa_with(scale_by="d_model"),
        ),
        Mistake(
            "weights returned per group, shape (..., n_kv_heads, group, n_q, n_k), instead of "
            "one map per query head",
            "reshape the weights back to (..., n_heads, n_q, n_k): query head h is group "
            "h // group, member h % group",
            _gqa_with(weights_layout="groups"),
        ),
        Mistake(
            "W_o forgotten: returned the concatenated heads (..., n_q, n_heads·d_v)",
            "project the concatenation with the output matrix: concat @ W_o gives "
            "(..., n_q, d_out)",
            _gqa_with(project=False),
        ),
        Mistake(
            "the mask was ignored",
            "set the masked scores to -inf before the softmax: np.where(mask[..., None, :, :], "
            "scores, -np.inf), the same mask for every head",
            _gqa_with(use_mask=False),
        ),
    ),
    forbidden=frozenset({"grouped_query_attention"}),
)


# ---- sliding_window_mask ---------------------------------------------------------------------


def _window_inputs(kind: str):
    def make(rng):
        if kind == "square":
            n, window = sizes(rng, 2, 3, 12)
            n, window = max(n, window), min(n, window)
            return [((n, n, window), {})]
        if kind == "rectangular":
            small, large = sorted(sizes(rng, 2, 3, 12))
            window = int(rng.integers(2, small))  # 2 <= window < small < large
            return [((small, large, window), {}), ((large, small, window), {})]
        if kind == "wide":
            n_q, n_k = sizes(rng, 2, 3, 10)
            return [((n_q, n_k, n_q + int(rng.integers(0, 3))), {})]
        if kind == "bool":
            n_q, n_k, window = sizes(rng, 3, 2, 12)
            return [((n_q, n_k, window), {})]
        raise KeyError(kind)

    return make


def _window_with(extra=0, symmetric=False, first=False, bottom_right=False):
    """sliding_window_mask with one deliberate change to the textbook version."""

    def window_mask(n_q, n_k, window):
        i = np.arange(n_q)[:, None] + (n_k - n_q if bottom_right else 0)  # (n_q, 1)
        j = np.arange(n_k)[None, :]  # (1, n_k)
        if symmetric:
            return np.abs(i - j) < window
        if first:
            return (j <= i) & (j < window)
        return (j <= i) & (j > i - window - extra)

    return window_mask


_WINDOW = Exercise(
    name="sliding_window_mask",
    arg_names=("n_q", "n_k", "window"),
    reference=ref.sliding_window_mask,
    n_outputs=1,
    output_names=("mask",),
    signature="sliding_window_mask(n_q, n_k, window)",
    output_layouts=("(n_q, n_k)",),
    output=OutputKind.MASK,
    watch=(BOOL_DTYPE,),
    cases={
        "square": Case(
            "lets query i see keys i - window + 1 … i for n_q = n_k", _window_inputs("square")
        ),
        "rectangular": Case(
            "is top-left aligned like causal_mask when n_q < n_k and when n_q > n_k",
            _window_inputs("rectangular"),
        ),
        "wide": Case("is the causal mask when window >= n_q", _window_inputs("wide")),
        "bool": Case(
            "returns a boolean array (True = may attend)",
            _window_inputs("bool"),
            requires=(BOOL_DTYPE,),
        ),
    },
    mistakes=(
        Mistake(
            "window off by one: each query sees window + 1 positions (j >= i - window)",
            "query i sees exactly window positions, itself included: i - window < j <= i",
            _window_with(extra=1),
        ),
        Mistake(
            "window off by one: each query sees window - 1 positions (the diagonal or the "
            "oldest position lost)",
            "query i sees exactly window positions, itself included: i - window < j <= i",
            _window_with(extra=-1),
        ),
        Mistake(
            "a symmetric window |i - j| < window: the query also sees future keys",
            "keep it causal: j <= i as well as j > i - window",
            _window_with(symmetric=True),
        ),
        Mistake(
            "the first window positions kept (j < window) instead of the last window before "
            "each query",
            "slide the window with the query: i - window < j <= i",
            _window_with(first=True),
        ),
        Mistake(
            "bottom-right aligned (the KV-cache convention) instead of causal_mask's top-left "
            "corner",
            "query i is position i whatever n_q and n_k: i - window < j <= i with "
            "i = np.arange(n_q)[:, None]",
            _window_with(bottom_right=True),
        ),
    ),
    forbidden=frozenset({"sliding_window_mask"}),
)


check_decode_step = make_check(_DECODE)
check_grouped_query_attention = make_check(_GQA)
check_sliding_window_mask = make_check(_WINDOW)
