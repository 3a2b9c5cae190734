"""Correct inference-time attention for notebook 10: each must get full marks on every case and
seed.

A cache grown with einsum and explicit head loops, GQA through repeated projection columns or
through grouped queries, sliding windows from two triangles or from a loop ...

Shape legend: ``...`` batch dimensions, ``t`` cached tokens, ``d_model`` token width, ``d_k`` /
``d_v`` widths of one head, ``n_heads`` query heads, ``n_kv_heads`` key/value heads, ``group``
query heads per kv head, ``d_out`` output width.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import right


def _softmax(S):
    m = np.max(S, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(S - m)
    total = np.sum(e, axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _heads(Y, n):
    """(..., m, n·d) -> (..., n, m, d)."""
    Y = Y.reshape(*Y.shape[:-1], n, Y.shape[-1] // n)  # (..., m, n, d)
    return np.swapaxes(Y, -2, -3)


# ============================================================================================
# decode_step(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None)
# ============================================================================================


@right("decode_step")
def decode_step_einsum(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_heads if n_kv_heads is None else n_kv_heads
    g = n_heads // n_kv
    q = _heads(x_t @ W_q, n_heads)  # (..., n_heads, 1, d_k)
    k, v = _heads(x_t @ W_k, n_kv), _heads(x_t @ W_v, n_kv)  # (..., n_kv, 1, d)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)  # (..., n_kv, t + 1, d_k)
        v = np.concatenate([cache[1], v], axis=-2)  # (..., n_kv, t + 1, d_v)
    # group the query heads: (..., n_kv, g, 1, d_k)
    qg = q.reshape(*q.shape[:-3], n_kv, g, 1, q.shape[-1])
    S = np.einsum("...hgqd,...hkd->...hgqk", qg, k) / math.sqrt(q.shape[-1])
    out = np.einsum("...hgqk,...hkd->...hgqd", _softmax(S), v)  # (..., n_kv, g, 1, d_v)
    out = out.reshape(*out.shape[:-4], n_heads, 1, out.shape[-1])  # (..., n_heads, 1, d_v)
    concat = np.swapaxes(out, -2, -3).reshape(*x_t.shape[:-1], -1)  # (..., 1, n_heads·d_v)
    return concat @ W_o, (k, v)


@right("decode_step")
def decode_step_head_loop(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    n_kv = n_kv_heads or n_heads
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_kv
    new_k = np.stack([x_t @ W_k[:, g * d_k : (g + 1) * d_k] for g in range(n_kv)], axis=-3)
    new_v = np.stack([x_t @ W_v[:, g * d_v : (g + 1) * d_v] for g in range(n_kv)], axis=-3)
    if cache is None:
        K, V = new_k, new_v
    else:
        K = np.concatenate([cache[0], new_k], axis=-2)
        V = np.concatenate([cache[1], new_v], axis=-2)
    outs = []
    for h in range(n_heads):
        kv = h * n_kv // n_heads  # = h // (n_heads // n_kv)
        q = x_t @ W_q[:, h * d_k : (h + 1) * d_k]  # (..., 1, d_k)
        p = _softmax(q @ np.swapaxes(K[..., kv, :, :], -1, -2) * (d_k**-0.5))
        outs.append(p @ V[..., kv, :, :])  # (..., 1, d_v)
    return np.concatenate(outs, axis=-1) @ W_o, (K, V)


# ============================================================================================
# grouped_query_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None)
# ============================================================================================


@right("grouped_query_attention")
def gqa_repeat_projection_columns(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    g = n_heads // n_kv_heads
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_kv_heads
    # every kv head's columns repeated for its group: (d_model_z, n_heads·d)
    W_k = np.repeat(W_k.reshape(-1, n_kv_heads, d_k), g, axis=1).reshape(W_k.shape[0], -1)
    W_v = np.repeat(W_v.reshape(-1, n_kv_heads, d_v), g, axis=1).reshape(W_v.shape[0], -1)
    Q, K, V = _heads(X @ W_q, n_heads), _heads(Z @ W_k, n_heads), _heads(Z @ W_v, n_heads)
    S = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)  # (..., n_heads, n_q, n_k)
    if mask is not None:
        S = np.where(np.asarray(mask)[..., None, :, :], S, -np.inf)
    P = _softmax(S)
    heads = np.swapaxes(P @ V, -2, -3)  # (..., n_q, n_heads, d_v)
    return heads.reshape(*heads.shape[:-2], -1) @ W_o, P


@right("grouped_query_attention")
def gqa_grouped_queries(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    g = n_heads // n_kv_heads
    d_k = W_q.shape[1] // n_heads
    Q = _heads(X @ W_q, n_heads)
    Q = Q.reshape(*Q.shape[:-3], n_kv_heads, g, *Q.shape[-2:])  # (..., n_kv, g, n_q, d_k)
    K = _heads(Z @ W_k, n_kv_heads)[..., :, None, :, :]  # (..., n_kv, 1, n_k, d_k)
    V = _heads(Z @ W_v, n_kv_heads)[..., :, None, :, :]  # (..., n_kv, 1, n_k, d_v)
    S = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)  # (..., n_kv, g, n_q, n_k)
    if mask is not None:
        S = np.where(np.asarray(mask)[..., None, None, :, :], S, -np.inf)
    P = _softmax(S)
    out = P @ V  # (..., n_kv, g, n_q, d_v)
    out = out.reshape(*out.shape[:-4], n_heads, *out.shape[-2:])  # (..., n_heads, n_q, d_v)
    P = P.reshape(*P.shape[:-4], n_heads, *P.shape[-2:])  # (..., n_heads, n_q, n_k)
    out = np.swapaxes(out, -2, -3)
    return out.reshape(*out.shape[:-2], -1) @ W_o, P


# ============================================================================================
# sliding_window_mask(n_q, n_k, window)
# ============================================================================================


@right("sliding_window_mask")
def window_two_triangles(n_q, n_k, window):
    ones = np.ones((n_q, n_k), dtype=bool)
    return np.tril(ones) & ~np.tril(ones, k=-window)


@right("sliding_window_mask")
def window_loops(n_q, n_k, window):
    mask = np.zeros((n_q, n_k), dtype=bool)
    for i in range(n_q):
        for j in range(max(0, i - window + 1), min(i + 1, n_k)):
            mask[i, j] = True
    return mask
