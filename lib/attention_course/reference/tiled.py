"""Attention that never holds the whole score matrix (notebook 08): the online softmax and
tiled, FlashAttention-style attention.

Shape legend and conventions as in :mod:`attention_course.reference`, which re-exports every
public name here.
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    _as_float_array,
    _as_mask_matrix,
    _check_qkv,
    _positive_int,
    _scale_or_default,
    _validate_mask,
    _working_dtype,
)


def _finite_or_zero(m: np.ndarray) -> np.ndarray:
    """The shift a running maximum gives to ``exp``: ``m`` itself, or 0 where ``m`` is ±inf.

    A row whose entries seen so far are all ``-inf`` has running maximum ``-inf``; shifting by
    it would compute ``-inf - (-inf) = NaN``. Shifting by 0 instead gives ``exp(-inf) = 0``.
    """
    return np.where(np.isfinite(m), m, m.dtype.type(0))  # same shape and dtype as m


def online_softmax(x, block_size):
    """Softmax over the last axis, reading the columns one block at a time.

    This is the recurrence at the heart of FlashAttention. The first pass streams over the
    blocks of ``block_size`` columns keeping, for every row, a running maximum ``m`` and a
    running sum ``denom = sum exp(x - m)`` of the columns seen so far. When a block raises the
    maximum from ``m_old`` to ``m_new``, the sum so far was computed relative to the old
    maximum and is rescaled by ``exp(m_old - m_new)`` before the block's own terms are added::

        m_new = max(m_old, max(block))
        denom_new = denom_old * exp(m_old - m_new) + sum(exp(block - m_new))

    A second pass over the blocks then writes ``exp(x - m) / denom`` with the final ``m``
    and ``denom``. (:func:`tiled_attention` needs no second pass: it rescales its running output
    instead.) No exponent is ever positive, so nothing overflows, and a row that is all
    ``-inf`` gives zeros, as in :func:`softmax`.

    Parameters
    ----------
    x : (..., n) array_like
        Scores, at least one dimension; the softmax runs over the last axis.
    block_size : int
        Number of columns read at a time (any positive integer; it need not divide ``n``,
        and may exceed it).

    Returns
    -------
    p : (..., n) ndarray
        Same shape and dtype as ``x``, equal to ``softmax(x, axis=-1)`` up to rounding.

    Raises
    ------
    ValueError
        If ``x`` has no axis or ``block_size`` is not a positive integer.
    """
    x = _as_float_array(x, "x")
    if x.ndim < 1:
        raise ValueError(f"x must have at least one axis (..., n), got shape {x.shape}.")
    block_size = _positive_int(block_size, "block_size")
    n = x.shape[-1]
    starts = range(0, n, block_size)

    m = np.full((*x.shape[:-1], 1), -np.inf, dtype=x.dtype)  # (..., 1) running maximum
    denom = np.zeros((*x.shape[:-1], 1), dtype=x.dtype)  # (..., 1) running sum of exp(x - m)
    for start in starts:
        block = x[..., start : start + block_size]  # (..., n) -> (..., b), b <= block_size
        m_new = np.maximum(m, block.max(axis=-1, keepdims=True))  # (..., 1)
        shift = _finite_or_zero(m_new)  # (..., 1)
        denom *= np.exp(m - shift)  # rescale the old sum to the new maximum (exp(-inf) = 0)
        denom += np.exp(block - shift).sum(axis=-1, keepdims=True)  # (..., b) -> (..., 1)
        m = m_new

    shift = _finite_or_zero(m)  # (..., 1)
    p = np.zeros_like(x)  # (..., n); an all -inf row (denom = 0) stays zero
    for start in starts:
        block = x[..., start : start + block_size]  # (..., b)
        e = np.exp(block - shift)  # (..., b)
        np.divide(e, denom, out=p[..., start : start + block_size], where=denom > 0)
    return p


def tiled_attention(Q, K, V, block_size, mask=None, scale=None, *, q_block_size=None):
    """Scaled dot-product attention computed block by block, FlashAttention style.

    Gives the same output as :func:`scaled_dot_product_attention` but never holds the
    ``(n_q, n_k)`` score matrix: it walks over the keys and values in blocks of ``block_size``
    rows, and (optionally) over the queries in blocks of ``q_block_size`` rows, so the largest
    temporary is one ``(..., q_block_size, block_size)`` block of scores. For every query it
    keeps

    - ``m``     (..., n_q, 1)    the largest score seen so far,
    - ``denom`` (..., n_q, 1)    the running softmax denominator ``sum exp(score - m)``,
    - ``acc``   (..., n_q, d_v)  the running *un-normalised* output ``sum exp(score - m) v``,

    and when a block raises the maximum from ``m_old`` to ``m_new`` it multiplies ``denom`` and
    ``acc`` by ``exp(m_old - m_new)`` before adding the block's terms (see
    :func:`online_softmax`). At the end ``output = acc / denom``. A query whose keys
    are all masked keeps ``denom = 0`` and gets a zero output row, without NaN or warnings.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
        Queries.
    K : (..., n_k, d_k) array_like
        Keys.
    V : (..., n_k, d_v) array_like
        Values.
    block_size : int
        Number of keys (and values) per block.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key, broadcast as in
        :func:`scaled_dot_product_attention`; only one block of it is expanded at a time.
    scale : float, optional
        Factor the scores are multiplied by; defaults to ``1 / sqrt(d_k)``.
    q_block_size : int, optional
        Number of queries per block; the default ``None`` takes all queries at once, so the
        score block is ``(..., n_q, block_size)``. Set it to bound the memory at
        ``q_block_size × block_size`` scores whatever ``n_q``.

    Returns
    -------
    output : (..., n_q, d_v) ndarray
        Attention output, in the inputs' dtype (float16 is computed in float32, as in
        :func:`scaled_dot_product_attention`); no weights are returned, since they are never
        all in memory.

    Raises
    ------
    ValueError
        As :func:`scaled_dot_product_attention`, and if ``block_size`` or ``q_block_size`` is
        not a positive integer.
    """
    Q, K, V, batch, dtype = _check_qkv(Q, K, V)
    block_size = _positive_int(block_size, "block_size")
    n_q, d_k = Q.shape[-2:]
    n_k, d_v = V.shape[-2:]
    q_block_size = n_q if q_block_size is None else _positive_int(q_block_size, "q_block_size")
    scale = _scale_or_default(scale, d_k)
    if mask is not None:
        mask = _as_mask_matrix(_validate_mask(mask, (*batch, n_q, n_k)))
        # A broadcast view, not a copy, so that blocks can be sliced from it.
        mask = np.broadcast_to(mask, (*mask.shape[:-2], n_q, n_k))  # (..., n_q, n_k) view

    work = _working_dtype(dtype)  # float16 in float32, rounded back at the end
    # Scale the (..., n_q, d_k) queries once, not every block of scores.
    Q = np.multiply(Q, scale, dtype=work)  # (..., n_q, d_k), a new array
    # A view with all the batch dims (say V has some that Q and K lack), so every score block
    # has the shape (*batch, b_q, b_k) of the running statistics.
    Q = np.broadcast_to(Q, (*batch, n_q, d_k))  # (..., n_q, d_k) view, nothing copied
    K_T = np.swapaxes(K.astype(work, copy=False), -1, -2)  # (..., n_k, d_k) -> (..., d_k, n_k)
    V = V.astype(work, copy=False)
    output = np.zeros((*batch, n_q, d_v), dtype=work)  # fully masked queries stay zero
    neg_inf = work.type(-np.inf)
    # One score buffer for every full block, allocated once: (..., b_q, b_k).
    b_q, b_k = min(q_block_size, n_q), min(block_size, n_k)
    scores = np.empty((*batch, b_q, b_k), dtype=work)

    for q0 in range(0, n_q, q_block_size):
        q1 = min(q0 + q_block_size, n_q)
        Q_blk = Q[..., q0:q1, :]  # (..., n_q, d_k) -> (..., b_q, d_k)
        m = np.full((*batch, q1 - q0, 1), neg_inf, dtype=work)  # (..., b_q, 1)
        denom = np.zeros((*batch, q1 - q0, 1), dtype=work)  # (..., b_q, 1)
        acc = np.zeros((*batch, q1 - q0, d_v), dtype=work)  # (..., b_q, d_v)
        for k0 in range(0, n_k, block_size):
            k1 = min(k0 + block_size, n_k)
            # A view of the buffer; the last block of keys may be narrower: a fresh array then.
            S = scores[..., : q1 - q0, :] if k1 - k0 == b_k else None
            # (..., b_q, d_k) @ (..., d_k, b_k) -> (..., b_q, b_k)
            S = np.matmul(Q_blk, K_T[..., k0:k1], out=S)
            if mask is not None:
                np.copyto(S, neg_inf, where=~mask[..., q0:q1, k0:k1])  # (..., b_q, b_k)
            m_new = np.maximum(m, S.max(axis=-1, keepdims=True))  # (..., b_q, 1)
            shift = _finite_or_zero(m_new)  # (..., b_q, 1); 0 for rows still all -inf
            S -= shift
            np.exp(S, out=S)  # (..., b_q, b_k) un-normalised weights, every exponent <= 0
            alpha = np.exp(m - shift)  # (..., b_q, 1) rescale factor; exp(-inf) = 0
            denom *= alpha
            denom += S.sum(axis=-1, keepdims=True)  # (..., b_q, b_k) -> (..., b_q, 1)
            acc *= alpha
            acc += S @ V[..., k0:k1, :]  # (..., b_q, b_k) @ (..., b_k, d_v) -> (..., b_q, d_v)
            m = m_new
        np.divide(acc, denom, out=output[..., q0:q1, :], where=denom > 0)  # (..., b_q, d_v)
    return output.astype(dtype, copy=False)  # (..., n_q, d_v)
