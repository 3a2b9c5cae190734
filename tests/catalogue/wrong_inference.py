"""Wrong inference-time attention for notebook 10, one mistake each, written the way learners
write them.

Each function is registered with ``@wrong(exercise, case, *phrases)``: the check of
``exercise`` must fail on ``case`` (with the visible seed and with hidden seeds), and the
failure message must contain every phrase — the name of the mistake from the grader's
catalogue, or for an unnamed mistake the expected-versus-got description.

Shape legend: ``...`` batch dimensions, ``t`` cached tokens, ``d_model`` token width, ``d_k`` /
``d_v`` widths of one head, ``n_heads`` query heads, ``n_kv_heads`` key/value heads, ``group``
query heads per kv head, ``d_out`` output width.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import wrong

DIFFERING = "the first differing entry is at index"


# ---- the learner's own correct building blocks -----------------------------------------------


def _softmax(S):
    m = np.max(S, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(S - m)
    total = np.sum(e, axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _heads(Y, n):
    """(..., m, n·d) -> (..., n, m, d)."""
    Y = Y.reshape(*Y.shape[:-1], n, Y.shape[-1] // n)
    return np.swapaxes(Y, -2, -3)


def _merge(H):
    """(..., n, m, d) -> (..., m, n·d)."""
    H = np.swapaxes(H, -2, -3)
    return H.reshape(*H.shape[:-2], -1)


# ============================================================================================
# decode_step(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None)
# ============================================================================================


@wrong("decode_step", "steps", "the new token's key and value were not appended before attending")
def decode_attend_then_append(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is None:
        cache = (k[..., :0, :], v[..., :0, :])  # start empty
    K, V = cache
    g = n_heads // n_kv
    Kr, Vr = np.repeat(K, g, axis=-3), np.repeat(V, g, axis=-3)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    # now remember the new token for next time
    K = np.concatenate([K, k], axis=-2)
    V = np.concatenate([V, v], axis=-2)
    return _merge(out) @ W_o, (K, V)


@wrong("decode_step", "steps", "a causal mask np.tri(1, t + 1) applied to the one new query")
def decode_causal_mask_on_one_query(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)
        v = np.concatenate([cache[1], v], axis=-2)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    scores = q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)  # (..., n_heads, 1, t + 1)
    mask = np.tril(np.ones(scores.shape[-2:], dtype=bool))  # causal, as in notebook 06
    scores = np.where(mask, scores, -np.inf)
    return _merge(_softmax(scores) @ Vr) @ W_o, (k, v)


@wrong("decode_step", "batch", "the cache grown along axis 1")
def decode_concatenate_axis_1(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate((cache[0], k), axis=1)  # (heads, t, d): axis 1 is the tokens
        v = np.concatenate((cache[1], v), axis=1)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    return _merge(out) @ W_o, (k, v)


@wrong("decode_step", "gqa", "kv heads repeated interleaved")
def decode_tile_kv_heads(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)
        v = np.concatenate([cache[1], v], axis=-2)
    reps = [1] * (k.ndim - 3) + [n_heads // n_kv, 1, 1]
    Kr, Vr = np.tile(k, reps), np.tile(v, reps)  # [a, b] -> [a, b, a, b]
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    return _merge(out) @ W_o, (k, v)


@wrong("decode_step", "batch", "scores scaled by √d_model, the model width")
def decode_scale_by_d_model(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)
        v = np.concatenate([cache[1], v], axis=-2)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    d_model = x_t.shape[-1]
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / np.sqrt(d_model).astype(x_t.dtype)) @ Vr
    return _merge(out) @ W_o, (k, v)


@wrong("decode_step", "steps", "the old cache returned")
def decode_returns_the_old_cache(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    K_all, V_all = k, v
    if cache is not None:
        K_all = np.concatenate([cache[0], k], axis=-2)
        V_all = np.concatenate([cache[1], v], axis=-2)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(K_all, g, axis=-3), np.repeat(V_all, g, axis=-3)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    if cache is None:
        cache = (k, v)
    return _merge(out) @ W_o, cache


@wrong("decode_step", "steps", "the new key and value put at the front of the cache")
def decode_prepends_the_new_token(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate([k, cache[0]], axis=-2)
        v = np.concatenate([v, cache[1]], axis=-2)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    return _merge(out) @ W_o, (k, v)


@wrong("decode_step", "first_token", "return output_t, (K_cache, V_cache)")
def decode_returns_three_arrays(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)
        v = np.concatenate([cache[1], v], axis=-2)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    return _merge(out) @ W_o, k, v


@wrong("decode_step", "first_token", "the cache returned as (V_cache, K_cache)")
def decode_values_first(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    if cache is not None:
        v = np.concatenate([cache[0], v], axis=-2)  # cache[0] taken as the values
        k = np.concatenate([cache[1], k], axis=-2)
    g = n_heads // n_kv
    Kr, Vr = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    return _merge(out) @ W_o, (v, k)


@wrong("decode_step", "gqa", "Your function raised")
def decode_ignores_n_kv_heads(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_heads), _heads(x_t @ W_v, n_heads)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)
        v = np.concatenate([cache[1], v], axis=-2)
    out = _softmax(q @ np.swapaxes(k, -1, -2) / math.sqrt(d_k)) @ v
    return _merge(out) @ W_o, (k, v)


@wrong("decode_step", "float32", "came back as float64 for float32 input")
def decode_preallocated_float64_cache(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads
    q, k, v = _heads(x_t @ W_q, n_heads), _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)
    t = 0 if cache is None else cache[0].shape[-2]
    K = np.zeros((*k.shape[:-2], t + 1, k.shape[-1]))  # one more row (float64!)
    V = np.zeros((*v.shape[:-2], t + 1, v.shape[-1]))
    if cache is not None:
        K[..., :t, :], V[..., :t, :] = cache
    K[..., t:, :], V[..., t:, :] = k, v
    g = n_heads // n_kv
    Kr, Vr = np.repeat(K, g, axis=-3).astype(q.dtype), np.repeat(V, g, axis=-3).astype(q.dtype)
    out = _softmax(q @ np.swapaxes(Kr, -1, -2) / math.sqrt(d_k)) @ Vr
    return _merge(out) @ W_o, (K, V)


# ============================================================================================
# grouped_query_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None)
# ============================================================================================


def _gqa(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask, *, repeat, scale, project=True):
    Q = _heads(X @ W_q, n_heads)  # (..., n_heads, n_q, d_k)
    K, V = repeat(_heads(Z @ W_k, n_kv_heads)), repeat(_heads(Z @ W_v, n_kv_heads))
    S = (Q @ np.swapaxes(K, -1, -2)) / scale  # (..., n_heads, n_q, n_k)
    if mask is not None:
        S = np.where(mask[..., None, :, :], S, -np.inf)
    P = _softmax(S)
    out = _merge(P @ V)
    return (out @ W_o if project else out), P


@wrong("grouped_query_attention", "random", "kv heads repeated interleaved")
def gqa_interleaved_heads(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    g = n_heads // n_kv_heads
    d_k = W_q.shape[1] // n_heads
    return _gqa(
        X,
        Z,
        W_q,
        W_k,
        W_v,
        W_o,
        n_heads,
        n_kv_heads,
        mask,
        repeat=lambda A: np.concatenate([A] * g, axis=-3),
        scale=math.sqrt(d_k),
    )


@wrong("grouped_query_attention", "random", "kv heads repeated interleaved")
def gqa_head_modulo(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    d_k = W_q.shape[1] // n_heads
    index = np.arange(n_heads) % n_kv_heads  # query head h -> kv head h % n_kv_heads
    return _gqa(
        X,
        Z,
        W_q,
        W_k,
        W_v,
        W_o,
        n_heads,
        n_kv_heads,
        mask,
        repeat=lambda A: A[..., index, :, :],
        scale=math.sqrt(d_k),
    )


@wrong("grouped_query_attention", "random", "scores scaled by √d_model, the model width")
def gqa_scale_by_model_width(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    g = n_heads // n_kv_heads
    return _gqa(
        X,
        Z,
        W_q,
        W_k,
        W_v,
        W_o,
        n_heads,
        n_kv_heads,
        mask,
        repeat=lambda A: np.repeat(A, g, axis=-3),
        scale=math.sqrt(X.shape[-1]),
    )


@wrong("grouped_query_attention", "random", "weights returned per group")
def gqa_grouped_queries_weights_not_reshaped(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads,
                                             mask=None):  # fmt: skip
    g = n_heads // n_kv_heads
    d_k = W_q.shape[1] // n_heads
    Q = _heads(X @ W_q, n_heads)  # (..., n_heads, n_q, d_k)
    Q = Q.reshape(*Q.shape[:-3], n_kv_heads, g, *Q.shape[-2:])  # (..., n_kv, g, n_q, d_k)
    K = _heads(Z @ W_k, n_kv_heads)[..., :, None, :, :]  # (..., n_kv, 1, n_k, d_k)
    V = _heads(Z @ W_v, n_kv_heads)[..., :, None, :, :]  # (..., n_kv, 1, n_k, d_v)
    S = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)  # (..., n_kv, g, n_q, n_k)
    if mask is not None:
        S = np.where(mask[..., None, None, :, :], S, -np.inf)
    P = _softmax(S)
    out = P @ V  # (..., n_kv, g, n_q, d_v)
    out = out.reshape(*out.shape[:-4], n_heads, *out.shape[-2:])
    return _merge(out) @ W_o, P


@wrong("grouped_query_attention", "random", "W_o forgotten")
def gqa_without_output_projection(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    g = n_heads // n_kv_heads
    d_k = W_q.shape[1] // n_heads
    return _gqa(
        X,
        Z,
        W_q,
        W_k,
        W_v,
        W_o,
        n_heads,
        n_kv_heads,
        mask,
        repeat=lambda A: np.repeat(A, g, axis=-3),
        scale=math.sqrt(d_k),
        project=False,
    )


@wrong("grouped_query_attention", "mask", "the mask was ignored")
def gqa_mask_ignored(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    g = n_heads // n_kv_heads
    d_k = W_q.shape[1] // n_heads
    return _gqa(
        X,
        Z,
        W_q,
        W_k,
        W_v,
        W_o,
        n_heads,
        n_kv_heads,
        None,
        repeat=lambda A: np.repeat(A, g, axis=-3),
        scale=math.sqrt(d_k),
    )


# ============================================================================================
# sliding_window_mask(n_q, n_k, window)
# ============================================================================================


@wrong("sliding_window_mask", "square", "window off by one: each query sees window + 1")
def window_one_too_many(n_q, n_k, window):
    i, j = np.arange(n_q)[:, None], np.arange(n_k)[None, :]
    return (j <= i) & (j >= i - window)


@wrong("sliding_window_mask", "square", "window off by one: each query sees window - 1")
def window_one_too_few(n_q, n_k, window):
    ones = np.ones((n_q, n_k), dtype=bool)
    too_old = np.tril(ones, k=-window + 1)  # meant: keys more than window back
    return np.tril(ones) & ~too_old


@wrong("sliding_window_mask", "square", "a symmetric window |i - j| < window")
def window_symmetric(n_q, n_k, window):
    i, j = np.arange(n_q)[:, None], np.arange(n_k)[None, :]
    return np.abs(i - j) < window


@wrong("sliding_window_mask", "square", "the first window positions kept")
def window_first_positions(n_q, n_k, window):
    mask = np.tri(n_q, n_k, dtype=bool)
    mask[:, window:] = False
    return mask


@wrong("sliding_window_mask", "rectangular", "bottom-right aligned")
def window_bottom_right(n_q, n_k, window):
    ones = np.ones((n_q, n_k), dtype=bool)
    return np.tril(ones, k=n_k - n_q) & np.triu(ones, k=n_k - n_q - window + 1)


@wrong("sliding_window_mask", "bool", "the mask holds 0/1 numbers")
def window_float(n_q, n_k, window):
    return np.tril(np.ones((n_q, n_k))) - np.tril(np.ones((n_q, n_k)), k=-window)
