"""A learner's correct building blocks for notebooks 06-08, some with switches that turn one
step off (or get it wrong); the wrong and right catalogues of 06-08 are built from them.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width (of one head), ``d_v`` value width (of one head), ``n_heads`` heads, ``n`` the
softmax axis, ``b`` keys per block.
"""

from __future__ import annotations

import math

import numpy as np


def softmax(x, axis=-1):
    """The learner's stable softmax from notebook 03 (NaN on an all -inf row)."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def safe_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def attend(Q, K, V, mask=None):
    """A learner's correct masked attention (notebook 06)."""
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])  # (..., n_q, n_k)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = safe_softmax(scores)
    return weights @ V, weights


def scaled_scores(Q, K):
    return Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])  # (..., n_q, n_k)


def project(X, Z, W_q, W_k, W_v, n_heads, strided=False):
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads

    def split(A, d):
        if strided:
            return np.moveaxis(A.reshape(*A.shape[:-1], d, n_heads), -1, -3)
        return np.swapaxes(A.reshape(*A.shape[:-1], n_heads, d), -2, -3)

    return split(X @ W_q, d_k), split(Z @ W_k, d_k), split(Z @ W_v, d_v)


def merge(heads):
    heads = np.swapaxes(heads, -2, -3)  # (..., n_q, n_heads, d_v)
    return heads.reshape(*heads.shape[:-2], -1)


def head_mask(mask):
    return None if mask is None else np.asarray(mask)[..., None, :, :]


def online(x, block_size, *, rescale=True, sign=1, running=True, guard=True, row_max=True):
    """A learner's online softmax; the keywords switch one step off (or get it wrong)."""
    m = np.full(x.shape[:-1] + (1,), -np.inf, dtype=x.dtype)
    total = np.zeros(x.shape[:-1] + (1,), dtype=x.dtype)
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start : start + block_size]
        block_max = block.max(axis=-1, keepdims=True) if row_max else block.max()
        m_new = np.maximum(m, block_max) if running else block_max + np.zeros_like(m)
        shift = np.where(np.isfinite(m_new), m_new, 0) if guard else m_new
        if rescale:
            total = total * np.exp(sign * (m - shift))
        total = total + np.exp(block - shift).sum(axis=-1, keepdims=True)
        m = m_new
    shift = np.where(np.isfinite(m), m, 0) if guard else m
    e = np.exp(x - shift)
    if not guard:
        return e / total
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def tiled(
    Q,
    K,
    V,
    block_size,
    mask=None,
    *,
    rescale_acc=True,
    sign=1,
    guard=True,
    per_block=False,
    divide_inside=False,
    subtract_max=True,
    where_divide=False,
):
    """A learner's tiled attention over key blocks; keywords switch one step off."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        batch = np.broadcast_shapes(batch, mask.shape[:-2])
        mask = np.broadcast_to(mask, (*batch, n_q, n_k))
    Q = Q / math.sqrt(Q.shape[-1])  # a Python float: float32 stays float32
    dtype = np.result_type(Q, K, V)
    m = np.full((*batch, n_q, 1), -np.inf, dtype=dtype)
    total = np.zeros((*batch, n_q, 1), dtype=dtype)
    acc = np.zeros((*batch, n_q, V.shape[-1]), dtype=dtype)
    for k0 in range(0, n_k, block_size):
        S = Q @ np.swapaxes(K[..., k0 : k0 + block_size, :], -1, -2)
        if mask is not None:
            S = np.where(mask[..., k0 : k0 + block_size], S, -np.inf)
        V_blk = V[..., k0 : k0 + block_size, :]
        if per_block:
            acc = acc + safe_softmax(S) @ V_blk
            continue
        m_new = np.maximum(m, S.max(axis=-1, keepdims=True)) if subtract_max else np.zeros_like(m)
        shift = np.where(np.isfinite(m_new), m_new, 0) if guard else m_new
        alpha = np.exp(sign * (m - shift))
        P = np.exp(S - shift)
        total = alpha * total + P.sum(axis=-1, keepdims=True)
        if divide_inside:
            acc = (alpha * acc + P @ V_blk) / np.where(total > 0, total, 1)
        else:
            acc = (alpha if rescale_acc else 1) * acc + P @ V_blk
        m = m_new
    if per_block or divide_inside:
        return acc
    if not guard:
        return acc / total
    if where_divide:
        return np.where(total > 0, acc / total, 0.0)  # acc / total runs 0 / 0 first
    return np.divide(acc, total, out=np.zeros_like(acc), where=total > 0)
