"""Correct alternatives for notebooks 06-08: each must get full marks on every case and seed.

Einsum, loops, ``np.tri``, an additive mask, a single-pass online softmax, tiles over queries
as well as keys, a FlashAttention-1 style update, a step function, a running log-sum-exp
updated with ``np.logaddexp`` (FlashAttention-2's statistic), one query at a time over key
blocks, ... All keep float32 input in float32.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width (of one head), ``d_v`` value width (of one head), ``n_heads`` heads, ``n`` the
softmax axis.
"""

from __future__ import annotations

import math

import numpy as np

from attention_course import reference as R  # noqa: N812 - a learner habit under test

from .blocks_beyond import head_mask, merge, online, project, safe_softmax, scaled_scores, tiled
from .registry import right

# ============================================================================================
# Correct alternatives: full marks on every case and seed
# ============================================================================================


@right("causal_mask")
def causal_np_tri(n_q, n_k=None):
    return np.tri(n_q, n_k, dtype=bool)  # np.tri's M=None already means M = N


@right("causal_mask")
def causal_by_comparison(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.arange(n_k)[None, :] <= np.arange(n_q)[:, None]


@right("causal_mask")
def causal_by_loops(n_q, n_k=None):
    if n_k is None:
        n_k = n_q
    return np.array([[j <= i for j in range(n_k)] for i in range(n_q)], dtype=bool)


@right("padding_mask")
def padding_by_loop(lengths, n_k):
    mask = np.zeros((len(lengths), 1, n_k), dtype=bool)
    for b, length in enumerate(lengths):
        mask[b, 0, :length] = True
    return mask


@right("padding_mask")
def padding_less_outer(lengths, n_k):
    return np.greater.outer(lengths, np.arange(n_k))[:, None, :]  # lengths[b] > j


@right("masked_attention")
def masked_einsum(Q, K, V, mask=None):
    scores = np.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = safe_softmax(scores)
    return np.einsum("...qk,...kd->...qd", weights, V), weights


@right("masked_attention")
def masked_additive_logsumexp(Q, K, V, mask=None):
    """Converts the boolean mask to an additive one and uses a guarded log-sum-exp."""
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = scores + np.where(mask, 0.0, -np.inf).astype(scores.dtype)  # keep float32
    m = scores.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    total = np.exp(scores - m).sum(axis=-1, keepdims=True)
    safe_total = np.where(total > 0, total, 1.0)
    weights = np.where(total > 0, np.exp(scores - m - np.log(safe_total)), 0.0)
    return weights @ V, weights


@right("masked_attention")
def masked_query_by_query(Q, K, V, mask=None):
    """Loops over the batch and the queries; a fully masked query keeps its zeros."""
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    n_q, n_k = Q.shape[-2], K.shape[-2]
    if mask is not None:
        batch = np.broadcast_shapes(batch, np.shape(mask)[:-2])
    Qb, Kb, Vb = (np.broadcast_to(A, (*batch, *A.shape[-2:])) for A in (Q, K, V))
    keep = np.ones((n_q, n_k), bool) if mask is None else mask
    keep = np.broadcast_to(keep, (*batch, n_q, n_k))
    dtype = np.result_type(Q, K, V)  # float32 in, float32 out
    weights = np.zeros((*batch, n_q, n_k), dtype=dtype)
    output = np.zeros((*batch, n_q, V.shape[-1]), dtype=dtype)
    for idx in np.ndindex(*batch):
        for i in range(n_q):
            allowed = keep[idx][i]
            if not allowed.any():
                continue
            s = Kb[idx][allowed] @ Qb[idx][i] / math.sqrt(Q.shape[-1])
            e = np.exp(s - s.max())
            weights[idx][i, allowed] = e / e.sum()
            output[idx][i] = weights[idx][i] @ Vb[idx]
    return output, weights


@right("multi_head_attention")
def mha_loop_over_heads(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
    outs, maps = [], []
    for h in range(n_heads):
        cols_k, cols_v = slice(h * d_k, (h + 1) * d_k), slice(h * d_v, (h + 1) * d_v)
        out, w = R.cross_attention(X, Z, W_q[:, cols_k], W_k[:, cols_k], W_v[:, cols_v], mask)
        outs.append(out)
        maps.append(w)
    return np.concatenate(outs, axis=-1) @ W_o, np.stack(maps, axis=-3)


@right("multi_head_attention")
def mha_einsum(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
    Q = np.einsum("...nm,mhd->...hnd", X, W_q.reshape(-1, n_heads, d_k))
    K = np.einsum("...nm,mhd->...hnd", Z, W_k.reshape(-1, n_heads, d_k))
    V = np.einsum("...nm,mhd->...hnd", Z, W_v.reshape(-1, n_heads, d_v))
    scores = np.einsum("...hqd,...hkd->...hqk", Q, K) / math.sqrt(d_k)
    if mask is not None:
        scores = np.where(np.asarray(mask)[..., None, :, :], scores, -np.inf)
    weights = safe_softmax(scores)
    heads = np.einsum("...hqk,...hkd->...qhd", weights, V)
    return np.einsum("...qhd,hdo->...qo", heads, W_o.reshape(n_heads, d_v, -1)), weights


@right("multi_head_attention")
def mha_reshape_with_reference_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = project(X, Z, W_q, W_k, W_v, n_heads)
    heads, weights = R.scaled_dot_product_attention(Q, K, V, mask=head_mask(mask))
    return merge(heads) @ W_o, weights


@right("online_softmax")
def online_textbook(x, block_size):
    return online(x, block_size)


@right("online_softmax")
def online_single_pass(x, block_size):
    """One pass over x: each block's exponentials are kept against the maximum of their time,
    and only rescaled (not recomputed) at the end."""
    m = np.full(x.shape[:-1] + (1,), -np.inf, dtype=x.dtype)
    total = np.zeros(x.shape[:-1] + (1,), dtype=x.dtype)
    pieces = []
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start : start + block_size]
        m_new = np.maximum(m, block.max(axis=-1, keepdims=True))
        shift = np.where(np.isfinite(m_new), m_new, 0)
        total = total * np.exp(m - shift)  # exp(-inf) = 0 while nothing was summed
        e = np.exp(block - shift)
        total = total + e.sum(axis=-1, keepdims=True)
        pieces.append((e, shift))
        m = m_new
    final = np.where(np.isfinite(m), m, 0)
    out = np.concatenate([e * np.exp(shift - final) for e, shift in pieces], axis=-1)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


@right("online_softmax")
def online_row_by_row_float32(x, block_size):
    """Python loops over the rows, keeping the input's dtype."""
    out = np.zeros_like(x)
    for idx in np.ndindex(*x.shape[:-1]):
        row = x[idx]
        m, total = -np.inf, 0.0
        for start in range(0, row.shape[0], block_size):
            block = row[start : start + block_size]
            m_new = max(m, float(block.max()))
            if m_new == -np.inf:
                continue
            total = total * (np.exp(m - m_new) if m > -np.inf else 0.0)
            total += float(np.exp(block - m_new).sum())
            m = m_new
        if total > 0:
            out[idx] = np.exp(row - m) / total
    return out


@right("tiled_attention")
def tiled_textbook(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask)


@right("tiled_attention")
def tiled_query_and_key_blocks(Q, K, V, block_size, mask=None):
    """Tiles over queries as well (as FlashAttention does), block_size x block_size scores."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        batch = np.broadcast_shapes(batch, mask.shape[:-2])
        mask = np.broadcast_to(mask, (*batch, n_q, n_k))
    out = np.zeros((*batch, n_q, V.shape[-1]), dtype=np.result_type(Q, K, V))
    for q0 in range(0, n_q, block_size):
        sub = None if mask is None else mask[..., q0 : q0 + block_size, :]
        out[..., q0 : q0 + block_size, :] = tiled(
            Q[..., q0 : q0 + block_size, :], K, V, block_size, sub
        )
    return out


@right("tiled_attention")
def tiled_flash1_normalised_output(Q, K, V, block_size, mask=None):
    """FlashAttention-1's update: the output stays normalised after every block."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        batch = np.broadcast_shapes(batch, mask.shape[:-2])
        mask = np.broadcast_to(mask, (*batch, n_q, n_k))
    dtype = np.result_type(Q, K, V)  # float32 in, float32 out
    m = np.full((*batch, n_q, 1), -np.inf, dtype=dtype)
    total = np.zeros((*batch, n_q, 1), dtype=dtype)
    out = np.zeros((*batch, n_q, V.shape[-1]), dtype=dtype)
    for k0 in range(0, n_k, block_size):
        S = np.einsum("...qd,...kd->...qk", Q, K[..., k0 : k0 + block_size, :])
        S = S / math.sqrt(Q.shape[-1])
        if mask is not None:
            S = np.where(mask[..., k0 : k0 + block_size], S, -np.inf)
        m_new = np.maximum(m, S.max(axis=-1, keepdims=True))
        shift = np.where(np.isfinite(m_new), m_new, 0)
        alpha = np.exp(m - shift)
        P = np.exp(S - shift)
        new_total = alpha * total + P.sum(axis=-1, keepdims=True)
        numerator = out * (alpha * total) + P @ V[..., k0 : k0 + block_size, :]
        out = np.divide(numerator, new_total, out=np.zeros_like(numerator), where=new_total > 0)
        total, m = new_total, m_new
    return out


def online_softmax_update(m, total, block):
    """One step of the online softmax: the running maximum and sum after reading ``block``.

    m, total : (..., 1); block : (..., b). Returns (m_new, total_new), each (..., 1).
    """
    m_new = np.maximum(m, block.max(axis=-1, keepdims=True))  # (..., 1)
    shift = np.where(np.isfinite(m_new), m_new, 0)  # 0 while the row is all -inf so far
    total = total * np.exp(m - shift) + np.exp(block - shift).sum(axis=-1, keepdims=True)
    return m_new, total


@right("online_softmax")
def online_with_a_step_function(x, block_size):
    """The loop calls a step function, as FlashAttention's kernels do per block."""
    m = np.full(x.shape[:-1] + (1,), -np.inf, dtype=x.dtype)
    total = np.zeros_like(m)
    for start in range(0, x.shape[-1], block_size):
        m, total = online_softmax_update(m, total, x[..., start : start + block_size])
    e = np.exp(x - np.where(np.isfinite(m), m, 0))  # (..., n)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _block_lse(S):
    """log(sum(exp(S))) over the last axis, (..., b) -> (..., 1); -inf for an all -inf block."""
    m = S.max(axis=-1, keepdims=True)
    shift = np.where(np.isfinite(m), m, 0)
    total = np.exp(S - shift).sum(axis=-1, keepdims=True)
    return np.log(total, out=np.full_like(total, -np.inf), where=total > 0) + shift


@right("online_softmax")
def online_logaddexp(x, block_size):
    """FlashAttention-2's statistic: one running log-sum-exp per row, lse = m + log(total),
    updated with np.logaddexp instead of a separate maximum and sum."""
    lse = np.full(x.shape[:-1] + (1,), -np.inf, dtype=x.dtype)  # (..., 1)
    for start in range(0, x.shape[-1], block_size):
        lse = np.logaddexp(lse, _block_lse(x[..., start : start + block_size]))
    finite = np.isfinite(lse)  # False only for an all -inf row
    return np.exp(x - np.where(finite, lse, 0)) * finite  # (..., n); exp(-inf) = 0 there


@right("tiled_attention")
def tiled_logaddexp_normalised(Q, K, V, block_size, mask=None):
    """A running log-sum-exp per query updated with np.logaddexp (FlashAttention-2 stores it for
    the backward pass); the output is kept normalised after every block."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        batch = np.broadcast_shapes(batch, mask.shape[:-2])
        mask = np.broadcast_to(mask, (*batch, n_q, n_k))
    dtype = np.result_type(Q, K, V)
    Q = Q / math.sqrt(Q.shape[-1])
    lse = np.full((*batch, n_q, 1), -np.inf, dtype=dtype)
    out = np.zeros((*batch, n_q, V.shape[-1]), dtype=dtype)
    for k0 in range(0, n_k, block_size):
        S = Q @ np.swapaxes(K[..., k0 : k0 + block_size, :], -1, -2)  # (..., n_q, b)
        if mask is not None:
            S = np.where(mask[..., k0 : k0 + block_size], S, -np.inf)
        lse_new = np.logaddexp(lse, _block_lse(S))  # (..., n_q, 1)
        shift = np.where(np.isfinite(lse_new), lse_new, 0)
        P = np.exp(S - shift)  # (..., n_q, b), already divided by the new sum
        out = out * np.exp(lse - shift) + P @ V[..., k0 : k0 + block_size, :]  # (..., n_q, d_v)
        lse = lse_new
    return out


@right("tiled_attention")
def tiled_one_query_at_a_time(Q, K, V, block_size, mask=None):
    """A loop over the queries, each streaming over the key blocks: (1, b) scores at a time."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        batch = np.broadcast_shapes(batch, mask.shape[:-2])
        mask = np.broadcast_to(mask, (*batch, n_q, n_k))
    out = np.zeros((*batch, n_q, V.shape[-1]), dtype=np.result_type(Q, K, V))
    for i in range(n_q):
        sub = None if mask is None else mask[..., i : i + 1, :]
        out[..., i : i + 1, :] = tiled(Q[..., i : i + 1, :], K, V, block_size, sub)
    return out
