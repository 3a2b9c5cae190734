"""Wrong implementations for notebooks 06-08, one mistake each, written the way learners write
them: ``causal_mask``, ``padding_mask``, ``masked_attention`` (the learner's
``scaled_dot_product_attention(Q, K, V, mask=None)``), ``multi_head_attention``,
``online_softmax`` and ``tiled_attention``.

Each function is registered with ``@wrong(exercise, case, *phrases)``: the check of
``exercise`` must fail on ``case`` (with the visible seed and with hidden seeds), and the
failure message must contain every phrase.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width (of one head), ``d_v`` value width (of one head), ``n_heads`` heads, ``n`` the
softmax axis, ``b`` keys per block.
"""

# ruff: noqa: E731 - lambdas are among the learner habits under test

from __future__ import annotations

import math

import numpy as np

from attention_course import reference as R  # noqa: N812 - a learner habit under test

from .blocks_beyond import (
    attend,
    head_mask,
    merge,
    online,
    project,
    safe_softmax,
    scaled_scores,
    softmax,
    tiled,
)
from .registry import wrong

# ============================================================================================
# causal_mask(n_q, n_k=None) -> (n_q, n_k) bool
# ============================================================================================


@wrong("causal_mask", "rectangular", "bottom-right aligned", "is_causal=True")
def causal_bottom_right(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.tril(np.ones((n_q, n_k), dtype=bool), k=n_k - n_q)


@wrong("causal_mask", "square", "np.triu instead of np.tril")
def causal_upper_triangle(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.triu(np.ones((n_q, n_k), dtype=bool))


@wrong("causal_mask", "square", "the diagonal was excluded")
def causal_without_diagonal(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.arange(n_k)[None, :] < np.arange(n_q)[:, None]


@wrong("causal_mask", "square", "inverted mask", "True = may attend")
def causal_marks_the_future(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.triu(np.ones((n_q, n_k), dtype=bool), k=1)  # "the positions to hide"


@wrong("causal_mask", "bool", "0/1 numbers (dtype float64)", "dtype=bool")
def causal_float_ones(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.tril(np.ones((n_q, n_k)))


@wrong("causal_mask", "bool", "0/1 numbers (dtype int64)")
def causal_int_tri(n_q, n_k=None):
    return np.tri(n_q, n_k, dtype=int)


@wrong("causal_mask", "default_n_k", "raised TypeError", "n_k is None")
def causal_forgets_the_default(n_q, n_k=None):
    return np.tril(np.ones((n_q, n_k), dtype=bool))


@wrong("causal_mask", "rectangular", "n_q and n_k swapped")
def causal_keys_first(n_q, n_k=None):
    n_k = n_q if n_k is None else n_k
    return np.tril(np.ones((n_k, n_q), dtype=bool))


# ============================================================================================
# padding_mask(lengths, n_k) -> (batch, 1, n_k) bool
# ============================================================================================


@wrong("padding_mask", "random", "<= instead of <")
def padding_less_or_equal(lengths, n_k):
    return (np.arange(n_k) <= lengths[:, None])[:, None, :]


@wrong("padding_mask", "random", "the middle axis is missing", "[:, None, :]")
def padding_without_query_axis(lengths, n_k):
    return np.arange(n_k) < lengths[:, None]


@wrong("padding_mask", "random", "inverted mask", "key_padding_mask")
def padding_marks_the_pads(lengths, n_k):
    return (np.arange(n_k) >= lengths[:, None])[:, None, :]


@wrong("padding_mask", "bool", "0/1 numbers (dtype int64)")
def padding_as_integers(lengths, n_k):
    return (np.arange(n_k) < lengths[:, None]).astype(int)[:, None, :]


@wrong("padding_mask", "inputs_unchanged", "modified its input in place (lengths)")
def padding_last_index_in_place(lengths, n_k):
    lengths -= 1  # index of each sequence's last real token
    return (np.arange(n_k) <= lengths[:, None])[:, None, :]


@wrong("padding_mask", "random", "calls the course's reference `padding_mask`")
def padding_from_the_reference(lengths, n_k):
    return R.padding_mask(lengths, n_k)


# ============================================================================================
# scaled_dot_product_attention(Q, K, V, mask=None), checked as "masked_attention"
# ============================================================================================


@wrong("masked_attention", "causal", "the mask is ignored")
def masked_ignores_the_mask(Q, K, V, mask=None):
    weights = softmax(scaled_scores(Q, K))
    return weights @ V, weights


@wrong("masked_attention", "random", "mask inverted", "True = may attend")
def masked_true_means_blocked(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = np.where(mask, -np.inf, scores)
    weights = safe_softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "fully_masked", "filled with -inf give NaN", "np.isfinite(m)")
def masked_textbook_neg_inf(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "fully_masked", "large finite number (-1e9)", "uniform weights")
def masked_finite_fill(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    weights = softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "causal", "added to the scores (scores + mask)")
def masked_added_as_float(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = scores + mask
    weights = softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "causal", "multiplied by the mask")
def masked_multiplied(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = scores * mask
    weights = softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "padding", "after the softmax without renormalising")
def masked_after_softmax(Q, K, V, mask=None):
    weights = softmax(scaled_scores(Q, K))
    if mask is not None:
        weights = weights * mask
    return weights @ V, weights


@wrong("masked_attention", "large", "unstable softmax")
def masked_without_max(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores)
    total = e.sum(axis=-1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return weights @ V, weights


@wrong("masked_attention", "fully_masked", "right values, but NumPy warned", "nan_to_num")
def masked_hides_the_nan(Q, K, V, mask=None):
    output, weights = masked_textbook_neg_inf(Q, K, V, mask)
    return np.nan_to_num(output), np.nan_to_num(weights)


@wrong("masked_attention", "fully_masked", "NumPy warned", "is not enough")
def masked_where_divides_everywhere(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    m = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(m), m, 0))
    total = e.sum(axis=-1, keepdims=True)
    weights = np.where(total > 0, e / total, 0.0)  # e / total runs 0 / 0 first
    return weights @ V, weights


@wrong("masked_attention", "random", "calls the course's reference `softmax`")
def masked_with_reference_softmax(Q, K, V, mask=None):
    scores = scaled_scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = R.softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "no_mask", "`scaled_dot_product_attention` (with a mask)", "not")
def masked_stub_message(Q, K, V, mask=None):
    raise NotImplementedError()


# ============================================================================================
# multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None)
# ============================================================================================


@wrong("multi_head_attention", "random", "strided reshape", "contiguous block")
def mha_strided_split(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = project(X, Z, W_q, W_k, W_v, n_heads, strided=True)
    heads, weights = attend(Q, K, V, head_mask(mask))
    return merge(heads) @ W_o, weights


@wrong("multi_head_attention", "random", "√(n_heads·d_k), the total width")
def mha_total_width_scale(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = project(X, Z, W_q, W_k, W_v, n_heads)
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(W_q.shape[1])
    if mask is not None:
        scores = np.where(head_mask(mask), scores, -np.inf)
    weights = safe_softmax(scores)
    return merge(weights @ V) @ W_o, weights


@wrong("multi_head_attention", "random", "W_o forgotten")
def mha_without_output_projection(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = attend(*project(X, Z, W_q, W_k, W_v, n_heads), head_mask(mask))
    return merge(heads), weights


@wrong("multi_head_attention", "random", "softmax taken over the head axis")
def mha_softmax_over_heads(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = project(X, Z, W_q, W_k, W_v, n_heads)
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])  # (..., n_heads, n_q, n_k)
    if mask is not None:
        scores = np.where(head_mask(mask), scores, -np.inf)
    weights = safe_softmax(scores, axis=-3)
    return merge(weights @ V) @ W_o, weights


@wrong("multi_head_attention", "random", "heads concatenated in reverse order")
def mha_heads_reversed(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = project(X, Z, W_q, W_k, W_v, n_heads)
    heads, weights = attend(Q, K, V, head_mask(mask))
    concat = np.concatenate([heads[..., h, :, :] for h in reversed(range(n_heads))], axis=-1)
    return concat @ W_o, weights


@wrong("multi_head_attention", "random", "(..., n_q, n_heads, n_k)")
def mha_weights_queries_first(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = attend(*project(X, Z, W_q, W_k, W_v, n_heads), head_mask(mask))
    return merge(heads) @ W_o, np.swapaxes(weights, -2, -3)


@wrong("multi_head_attention", "random", "averaged over the heads", "average_attn_weights")
def mha_average_weights(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = attend(*project(X, Z, W_q, W_k, W_v, n_heads), head_mask(mask))
    return merge(heads) @ W_o, weights.mean(axis=-3)


@wrong("multi_head_attention", "mask", "not given a head axis", "mask[..., None, :, :]")
def mha_mask_without_head_axis(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = attend(*project(X, Z, W_q, W_k, W_v, n_heads), mask)
    return merge(heads) @ W_o, weights


@wrong("multi_head_attention", "random", "calls the course's reference `multi_head_attention`")
def mha_from_the_reference(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    return R.multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask)


# ============================================================================================
# online_softmax(x, block_size) -> (..., n)
# ============================================================================================


@wrong("online_softmax", "random", "the running sum was not rescaled", "np.exp(m_old - m_new)")
def online_without_rescale(x, block_size):
    return online(x, block_size, rescale=False)


@wrong("online_softmax", "random", "(wrong sign)")
def online_rescale_wrong_sign(x, block_size):
    return online(x, block_size, sign=-1)


@wrong("online_softmax", "random", "(wrong sign)")
def online_wrong_sign_from_the_first_block(x, block_size):
    first = x[..., :block_size]
    m = first.max(axis=-1, keepdims=True)
    total = np.exp(first - m).sum(axis=-1, keepdims=True)
    for start in range(block_size, x.shape[-1], block_size):
        block = x[..., start : start + block_size]
        m_new = np.maximum(m, block.max(axis=-1, keepdims=True))
        total = total * np.exp(m_new - m) + np.exp(block - m_new).sum(axis=-1, keepdims=True)
        m = m_new
    return np.exp(x - m) / total


@wrong("online_softmax", "large", "each block's own maximum")
def online_forgets_the_running_max(x, block_size):
    return online(x, block_size, running=False)


@wrong("online_softmax", "large", "one maximum for the whole block")
def online_block_max_without_axis(x, block_size):
    return online(x, block_size, row_max=False)


@wrong("online_softmax", "neg_inf", "NaN on rows that are all -inf")
def online_nan_on_empty_rows(x, block_size):
    return online(x, block_size, guard=False)


@wrong("online_softmax", "random", "each block normalised on its own")
def online_softmax_per_block(x, block_size):
    blocks = [softmax(x[..., s : s + block_size]) for s in range(0, x.shape[-1], block_size)]
    return np.concatenate(blocks, axis=-1)


@wrong("online_softmax", "random", "endless loop", "start += block_size")
def online_forgets_to_advance(x, block_size):
    m = np.full(x.shape[:-1] + (1,), -np.inf)
    total = np.zeros(x.shape[:-1] + (1,))
    start = 0
    while start < x.shape[-1]:
        block = x[..., start : start + block_size]
        m_new = np.maximum(m, block.max(axis=-1, keepdims=True))
        total = total * np.exp(m - m_new) + np.exp(block - m_new).sum(axis=-1, keepdims=True)
        m = m_new  # ... and start += block_size is missing: the same block forever
    return np.exp(x - m) / total


STREAMING = "does not read the rows one block at a time"


@wrong("online_softmax", "streaming", STREAMING, "maximum of a whole row", "running maximum m")
def online_plain_softmax_zeroing_empty_rows(x, block_size):
    """The mistake of issue 15: a plain softmax that zeroes all -inf rows has right values."""
    return safe_softmax(x)


@wrong("online_softmax", "streaming", STREAMING, "maximum of a whole row")
def online_softmax_of_the_row_then_split(x, block_size):
    """Softmax of the whole row, then written out block by block: blocks only in name."""
    p = safe_softmax(x)
    blocks = [p[..., s : s + block_size] for s in range(0, x.shape[-1], block_size)]
    return np.concatenate(blocks, axis=-1)


@wrong("online_softmax", "streaming", STREAMING, "maximum of a whole row")
def online_max_of_the_row_first(x, block_size):
    """The maximum of the whole row first; then the sum block by block (no rescaling needed)."""
    m = x.max(axis=-1, keepdims=True)
    shift = np.where(np.isfinite(m), m, 0)
    total = np.zeros_like(m)
    for start in range(0, x.shape[-1], block_size):
        total = total + np.exp(x[..., start : start + block_size] - shift).sum(-1, keepdims=True)
    e = np.exp(x - shift)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@wrong("online_softmax", "streaming", STREAMING, "the sum of a whole row")
def online_sum_of_the_row_at_the_end(x, block_size):
    """Streams the maximum correctly, then sums exp(x - m) over the whole row at once."""
    m = np.full(x.shape[:-1] + (1,), -np.inf, dtype=x.dtype)
    for start in range(0, x.shape[-1], block_size):
        m = np.maximum(m, x[..., start : start + block_size].max(axis=-1, keepdims=True))
    e = np.exp(x - np.where(np.isfinite(m), m, 0))
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@wrong("online_softmax", "random", "`m = m_new` missing", "m = m_new")
def online_forgets_to_carry_the_max(x, block_size):
    m = np.full(x.shape[:-1] + (1,), -np.inf, dtype=x.dtype)
    total = np.zeros_like(m)
    for start in range(0, x.shape[-1], block_size):
        block = x[..., start : start + block_size]
        m_new = np.maximum(m, block.max(axis=-1, keepdims=True))
        shift = np.where(np.isfinite(m_new), m_new, 0)
        total = total * np.exp(m - shift) + np.exp(block - shift).sum(axis=-1, keepdims=True)
        # ... m = m_new is missing: m stays -inf
    e = np.exp(x - np.where(np.isfinite(m_new), m_new, 0))
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@wrong("online_softmax", "random", "calls the course's reference `softmax`")
def online_is_just_the_softmax(x, block_size):
    return R.softmax(x, axis=-1)


# ============================================================================================
# tiled_attention(Q, K, V, block_size, mask=None) -> (..., n_q, d_v)
# ============================================================================================


@wrong("tiled_attention", "random", "the accumulator was not rescaled")
def tiled_without_accumulator_rescale(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, rescale_acc=False)


@wrong("tiled_attention", "random", "each block normalised on its own")
def tiled_softmax_per_block(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, per_block=True)


@wrong("tiled_attention", "random", "divided by the running sum inside the loop")
def tiled_divides_inside_the_loop(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, divide_inside=True)


@wrong("tiled_attention", "random", "(wrong sign)")
def tiled_rescale_wrong_sign(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, sign=-1)


@wrong("tiled_attention", "mask", "NaN on fully masked rows")
def tiled_nan_on_masked_rows(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, guard=False)


@wrong("tiled_attention", "large", "no maximum subtracted")
def tiled_without_max(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, subtract_max=False)


@wrong("tiled_attention", "mask", "right values, but NumPy warned", "is not enough")
def tiled_where_divides_everywhere(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, block_size, mask, where_divide=True)


MEMORY = "whole rows of scores instead of one block of keys at a time"


@wrong("tiled_attention", "memory", MEMORY, "Compute one block at a time")
def tiled_scores_first(Q, K, V, block_size, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])  # all n_q x n_k at once...
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    m = np.max(scores, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    total = np.zeros((*scores.shape[:-1], 1))
    acc = np.zeros((*scores.shape[:-1], V.shape[-1]))
    for k0 in range(0, K.shape[-2], block_size):  # ...then "tiles" over it
        P = np.exp(scores[..., k0 : k0 + block_size] - m)
        total = total + P.sum(axis=-1, keepdims=True)
        acc = acc + P @ V[..., k0 : k0 + block_size, :]
    return np.divide(acc, total, out=np.zeros_like(acc), where=total > 0)


@wrong("tiled_attention", "memory", MEMORY, "such rows")
def tiled_over_queries_only(Q, K, V, block_size, mask=None):
    """Blocks of block_size *queries*, each against every key: (block_size, n_k) scores."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    full = None if mask is None else np.broadcast_to(mask, (*mask.shape[:-2], n_q, n_k))
    outputs = []
    for q0 in range(0, n_q, block_size):
        sub = None if full is None else full[..., q0 : q0 + block_size, :]
        outputs.append(attend(Q[..., q0 : q0 + block_size, :], K, V, sub)[0])
    return np.concatenate(outputs, axis=-2)


@wrong("tiled_attention", "memory", MEMORY, "a loop over the queries", "K @ Q[i]")
def tiled_one_query_at_a_time_whole_row(Q, K, V, block_size, mask=None):
    """The mistake of issue 15: a loop over the queries, each holding its whole (1, n_k) row of
    scores; right values, and it never holds the n_q x n_k matrix."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    full = None if mask is None else np.broadcast_to(mask, (*np.shape(mask)[:-2], n_q, n_k))
    rows = []
    for i in range(n_q):
        sub = None if full is None else full[..., i : i + 1, :]
        rows.append(attend(Q[..., i : i + 1, :], K, V, sub)[0])  # scores (..., 1, n_k)
    return np.concatenate(rows, axis=-2)


@wrong("tiled_attention", "memory", MEMORY, "block_size ignored")
def tiled_block_size_ignored(Q, K, V, block_size, mask=None):
    return tiled(Q, K, V, K.shape[-2], mask)  # one block of all the keys


@wrong("tiled_attention", "memory", MEMORY, "mask of ones made when mask is None")
def tiled_mask_of_ones_by_default(Q, K, V, block_size, mask=None):
    if mask is None:
        mask = np.ones((Q.shape[-2], K.shape[-2]), dtype=bool)  # n_q x n_k, if only of bools
    return tiled(Q, K, V, block_size, mask)


@wrong("tiled_attention", "memory", MEMORY, "a copy of all of K or V")
def tiled_scales_all_the_keys(Q, K, V, block_size, mask=None):
    """Right blocks, but scales all of K first: an (n_k, d_k) copy, larger than a score row."""
    K = K / math.sqrt(K.shape[-1])
    return tiled(Q * math.sqrt(Q.shape[-1]), K, V, block_size, mask)  # tiled scales Q again


@wrong("tiled_attention", "float32", "came back as float64 for float32 input", "np.zeros(shape)")
def tiled_float64_accumulators(Q, K, V, block_size, mask=None):
    """As if m, total and acc were made with np.zeros / np.full without dtype= (float64)."""
    return tiled(Q, K, V, block_size, mask).astype(np.float64)


@wrong("tiled_attention", "random", "calls the course's reference `scaled_dot_product_attention`")
def tiled_from_the_reference(Q, K, V, block_size, mask=None):
    return R.scaled_dot_product_attention(Q, K, V, mask=mask)[0]
