"""The grader of notebooks 06–08 against learner implementations, wrong and right.

The exercises are those of :mod:`attention_course.checks_beyond`: ``causal_mask``,
``padding_mask``, ``masked_attention`` (the learner's ``scaled_dot_product_attention(Q, K, V,
mask=None)``), ``multi_head_attention``, ``online_softmax`` and ``tiled_attention``.

- Every wrong implementation below, written as a learner would, loses points: the check case a
  grader author would expect fails — with the visible seed and with hidden-test seeds — and the
  message names the mistake (asserted by a distinctive phrase).
- Every correct alternative (einsum, loops, ``np.tri``, an additive mask, a single-pass online
  softmax, tiles over queries as well as keys, a FlashAttention-1 style update, ...) gets full
  marks on every case, with seeds None and 1..3.
- A stub that still raises ``NotImplementedError`` fails every case with "not implemented".
- Nothing ever reaches stderr (nbgrader scores a test cell with stderr output as zero).

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width (of one head), ``d_v`` value width (of one head), ``n_heads`` heads, ``n`` the
softmax axis, ``b`` keys per block.
"""

# ruff: noqa: E731 - lambdas are among the learner habits under test

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from attention_course import checks
from attention_course import reference as R  # noqa: N812 - a learner habit under test
from attention_course.checks import EXERCISES, CheckFailed

ROOT = Path(__file__).resolve().parents[1]
NAMES = (
    "causal_mask",
    "padding_mask",
    "masked_attention",
    "multi_head_attention",
    "online_softmax",
    "tiled_attention",
)
HIDDEN_SEEDS = (1, 2, 3)


@dataclass(frozen=True)
class Wrong:
    id: str
    fn: Callable
    exercise: str
    fails: str  # the case that must fail
    says: tuple[str, ...]  # phrases its failure message must contain


@dataclass(frozen=True)
class Right:
    id: str
    fn: Callable
    exercise: str


WRONG: list[Wrong] = []
RIGHT: list[Right] = []


def wrong(exercise: str, fails: str, *says: str):
    def register(fn):
        WRONG.append(Wrong(fn.__name__, fn, exercise, fails, says))
        return fn

    return register


def right(exercise: str):
    def register(fn):
        RIGHT.append(Right(fn.__name__, fn, exercise))
        return fn

    return register


def outcome(exercise: str, fn, case: str, seed: int | None = None) -> tuple[str | None, str]:
    """Run one check: (failure message or None if it passed, what it printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            getattr(checks, f"check_{exercise}")(fn, case, seed=seed)
        except CheckFailed as failure:
            return failure.message, printed.getvalue()
    return None, printed.getvalue()


# ---- a learner's correct building blocks -----------------------------------------------------


def _softmax(x, axis=-1):
    """The learner's stable softmax from notebook 03 (NaN on an all -inf row)."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _safe_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _attend(Q, K, V, mask=None):
    """A learner's correct masked attention (notebook 06)."""
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = _safe_softmax(scores)
    return weights @ V, weights


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


def _scores(Q, K):
    return Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])  # (..., n_q, n_k)


@wrong("masked_attention", "causal", "the mask is ignored")
def masked_ignores_the_mask(Q, K, V, mask=None):
    weights = _softmax(_scores(Q, K))
    return weights @ V, weights


@wrong("masked_attention", "random", "mask inverted", "True = may attend")
def masked_true_means_blocked(Q, K, V, mask=None):
    scores = _scores(Q, K)
    if mask is not None:
        scores = np.where(mask, -np.inf, scores)
    weights = _safe_softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "fully_masked", "filled with -inf give NaN", "np.isfinite(m)")
def masked_textbook_neg_inf(Q, K, V, mask=None):
    scores = _scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = _softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "fully_masked", "large finite number (-1e9)", "uniform weights")
def masked_finite_fill(Q, K, V, mask=None):
    scores = _scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -1e9)
    weights = _softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "causal", "added to the scores (scores + mask)")
def masked_added_as_float(Q, K, V, mask=None):
    scores = _scores(Q, K)
    if mask is not None:
        scores = scores + mask
    weights = _softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "causal", "multiplied by the mask")
def masked_multiplied(Q, K, V, mask=None):
    scores = _scores(Q, K)
    if mask is not None:
        scores = scores * mask
    weights = _softmax(scores)
    return weights @ V, weights


@wrong("masked_attention", "padding", "after the softmax without renormalising")
def masked_after_softmax(Q, K, V, mask=None):
    weights = _softmax(_scores(Q, K))
    if mask is not None:
        weights = weights * mask
    return weights @ V, weights


@wrong("masked_attention", "large", "unstable softmax")
def masked_without_max(Q, K, V, mask=None):
    scores = _scores(Q, K)
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
    scores = _scores(Q, K)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    m = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(m), m, 0))
    total = e.sum(axis=-1, keepdims=True)
    weights = np.where(total > 0, e / total, 0.0)  # e / total runs 0 / 0 first
    return weights @ V, weights


@wrong("masked_attention", "random", "calls the course's reference `softmax`")
def masked_with_reference_softmax(Q, K, V, mask=None):
    scores = _scores(Q, K)
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


def _project(X, Z, W_q, W_k, W_v, n_heads, strided=False):
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads

    def split(A, d):
        if strided:
            return np.moveaxis(A.reshape(*A.shape[:-1], d, n_heads), -1, -3)
        return np.swapaxes(A.reshape(*A.shape[:-1], n_heads, d), -2, -3)

    return split(X @ W_q, d_k), split(Z @ W_k, d_k), split(Z @ W_v, d_v)


def _merge(heads):
    heads = np.swapaxes(heads, -2, -3)  # (..., n_q, n_heads, d_v)
    return heads.reshape(*heads.shape[:-2], -1)


def _head_mask(mask):
    return None if mask is None else np.asarray(mask)[..., None, :, :]


@wrong("multi_head_attention", "random", "strided reshape", "contiguous block")
def mha_strided_split(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = _project(X, Z, W_q, W_k, W_v, n_heads, strided=True)
    heads, weights = _attend(Q, K, V, _head_mask(mask))
    return _merge(heads) @ W_o, weights


@wrong("multi_head_attention", "random", "√(n_heads·d_k), the total width")
def mha_total_width_scale(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = _project(X, Z, W_q, W_k, W_v, n_heads)
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(W_q.shape[1])
    if mask is not None:
        scores = np.where(_head_mask(mask), scores, -np.inf)
    weights = _safe_softmax(scores)
    return _merge(weights @ V) @ W_o, weights


@wrong("multi_head_attention", "random", "W_o forgotten")
def mha_without_output_projection(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = _attend(*_project(X, Z, W_q, W_k, W_v, n_heads), _head_mask(mask))
    return _merge(heads), weights


@wrong("multi_head_attention", "random", "softmax taken over the head axis")
def mha_softmax_over_heads(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = _project(X, Z, W_q, W_k, W_v, n_heads)
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])  # (..., n_heads, n_q, n_k)
    if mask is not None:
        scores = np.where(_head_mask(mask), scores, -np.inf)
    weights = _safe_softmax(scores, axis=-3)
    return _merge(weights @ V) @ W_o, weights


@wrong("multi_head_attention", "random", "heads concatenated in reverse order")
def mha_heads_reversed(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = _project(X, Z, W_q, W_k, W_v, n_heads)
    heads, weights = _attend(Q, K, V, _head_mask(mask))
    concat = np.concatenate([heads[..., h, :, :] for h in reversed(range(n_heads))], axis=-1)
    return concat @ W_o, weights


@wrong("multi_head_attention", "random", "(..., n_q, n_heads, n_k)")
def mha_weights_queries_first(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = _attend(*_project(X, Z, W_q, W_k, W_v, n_heads), _head_mask(mask))
    return _merge(heads) @ W_o, np.swapaxes(weights, -2, -3)


@wrong("multi_head_attention", "random", "averaged over the heads", "average_attn_weights")
def mha_average_weights(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = _attend(*_project(X, Z, W_q, W_k, W_v, n_heads), _head_mask(mask))
    return _merge(heads) @ W_o, weights.mean(axis=-3)


@wrong("multi_head_attention", "mask", "not given a head axis", "mask[..., None, :, :]")
def mha_mask_without_head_axis(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    heads, weights = _attend(*_project(X, Z, W_q, W_k, W_v, n_heads), mask)
    return _merge(heads) @ W_o, weights


@wrong("multi_head_attention", "random", "calls the course's reference `multi_head_attention`")
def mha_from_the_reference(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    return R.multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask)


# ============================================================================================
# online_softmax(x, block_size) -> (..., n)
# ============================================================================================


def _online(x, block_size, *, rescale=True, sign=1, running=True, guard=True, row_max=True):
    """A learner's online softmax; the keywords switch one step off (or get it wrong)."""
    m = np.full(x.shape[:-1] + (1,), -np.inf)
    total = np.zeros(x.shape[:-1] + (1,))
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


@wrong("online_softmax", "random", "the running sum was not rescaled", "np.exp(m_old - m_new)")
def online_without_rescale(x, block_size):
    return _online(x, block_size, rescale=False)


@wrong("online_softmax", "random", "(wrong sign)")
def online_rescale_wrong_sign(x, block_size):
    return _online(x, block_size, sign=-1)


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
    return _online(x, block_size, running=False)


@wrong("online_softmax", "large", "one maximum for the whole block")
def online_block_max_without_axis(x, block_size):
    return _online(x, block_size, row_max=False)


@wrong("online_softmax", "neg_inf", "NaN on rows that are all -inf")
def online_nan_on_empty_rows(x, block_size):
    return _online(x, block_size, guard=False)


@wrong("online_softmax", "random", "each block normalised on its own")
def online_softmax_per_block(x, block_size):
    blocks = [_softmax(x[..., s : s + block_size]) for s in range(0, x.shape[-1], block_size)]
    return np.concatenate(blocks, axis=-1)


@wrong("online_softmax", "random", "calls the course's reference `softmax`")
def online_is_just_the_softmax(x, block_size):
    return R.softmax(x, axis=-1)


# ============================================================================================
# tiled_attention(Q, K, V, block_size, mask=None) -> (..., n_q, d_v)
# ============================================================================================


def _tiled(
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
    Q = Q / np.sqrt(Q.shape[-1])
    m = np.full((*batch, n_q, 1), -np.inf)
    total = np.zeros((*batch, n_q, 1))
    acc = np.zeros((*batch, n_q, V.shape[-1]))
    for k0 in range(0, n_k, block_size):
        S = Q @ np.swapaxes(K[..., k0 : k0 + block_size, :], -1, -2)
        if mask is not None:
            S = np.where(mask[..., k0 : k0 + block_size], S, -np.inf)
        V_blk = V[..., k0 : k0 + block_size, :]
        if per_block:
            acc = acc + _safe_softmax(S) @ V_blk
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


@wrong("tiled_attention", "random", "the accumulator was not rescaled")
def tiled_without_accumulator_rescale(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, rescale_acc=False)


@wrong("tiled_attention", "random", "each block normalised on its own")
def tiled_softmax_per_block(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, per_block=True)


@wrong("tiled_attention", "random", "divided by the running sum inside the loop")
def tiled_divides_inside_the_loop(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, divide_inside=True)


@wrong("tiled_attention", "random", "(wrong sign)")
def tiled_rescale_wrong_sign(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, sign=-1)


@wrong("tiled_attention", "mask", "NaN on fully masked rows")
def tiled_nan_on_masked_rows(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, guard=False)


@wrong("tiled_attention", "large", "no maximum subtracted")
def tiled_without_max(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, subtract_max=False)


@wrong("tiled_attention", "mask", "right values, but NumPy warned", "is not enough")
def tiled_where_divides_everywhere(Q, K, V, block_size, mask=None):
    return _tiled(Q, K, V, block_size, mask, where_divide=True)


@wrong("tiled_attention", "memory", "full score matrix", "Compute one block at a time")
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


@wrong("tiled_attention", "memory", "full score matrix", "% of the full score matrix")
def tiled_over_queries_only(Q, K, V, block_size, mask=None):
    """Blocks of block_size *queries*, each against every key: (block_size, n_k) scores."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    full = None if mask is None else np.broadcast_to(mask, (*mask.shape[:-2], n_q, n_k))
    outputs = []
    for q0 in range(0, n_q, block_size):
        sub = None if full is None else full[..., q0 : q0 + block_size, :]
        outputs.append(_attend(Q[..., q0 : q0 + block_size, :], K, V, sub)[0])
    return np.concatenate(outputs, axis=-2)


@wrong("tiled_attention", "random", "calls the course's reference `scaled_dot_product_attention`")
def tiled_from_the_reference(Q, K, V, block_size, mask=None):
    return R.scaled_dot_product_attention(Q, K, V, mask=mask)[0]


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
    scores = np.einsum("...qd,...kd->...qk", Q, K) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = _safe_softmax(scores)
    return np.einsum("...qk,...kd->...qd", weights, V), weights


@right("masked_attention")
def masked_additive_logsumexp(Q, K, V, mask=None):
    """Converts the boolean mask to an additive one and uses a guarded log-sum-exp."""
    scores = _scores(Q, K)
    if mask is not None:
        scores = scores + np.where(mask, 0.0, -np.inf)
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
    weights = np.zeros((*batch, n_q, n_k))
    output = np.zeros((*batch, n_q, V.shape[-1]))
    for idx in np.ndindex(*batch):
        for i in range(n_q):
            allowed = keep[idx][i]
            if not allowed.any():
                continue
            s = Kb[idx][allowed] @ Qb[idx][i] / np.sqrt(Q.shape[-1])
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
    scores = np.einsum("...hqd,...hkd->...hqk", Q, K) / np.sqrt(d_k)
    if mask is not None:
        scores = np.where(np.asarray(mask)[..., None, :, :], scores, -np.inf)
    weights = _safe_softmax(scores)
    heads = np.einsum("...hqk,...hkd->...qhd", weights, V)
    return np.einsum("...qhd,hdo->...qo", heads, W_o.reshape(n_heads, d_v, -1)), weights


@right("multi_head_attention")
def mha_reshape_with_reference_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    Q, K, V = _project(X, Z, W_q, W_k, W_v, n_heads)
    heads, weights = R.scaled_dot_product_attention(Q, K, V, mask=_head_mask(mask))
    return _merge(heads) @ W_o, weights


@right("online_softmax")
def online_textbook(x, block_size):
    return _online(x, block_size)


@right("online_softmax")
def online_single_pass(x, block_size):
    """One pass over x: each block's exponentials are kept against the maximum of their time,
    and only rescaled (not recomputed) at the end."""
    m = np.full(x.shape[:-1] + (1,), -np.inf)
    total = np.zeros(x.shape[:-1] + (1,))
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
    return _tiled(Q, K, V, block_size, mask)


@right("tiled_attention")
def tiled_query_and_key_blocks(Q, K, V, block_size, mask=None):
    """Tiles over queries as well (as FlashAttention does), block_size x block_size scores."""
    n_q, n_k = Q.shape[-2], K.shape[-2]
    batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
    if mask is not None:
        batch = np.broadcast_shapes(batch, mask.shape[:-2])
        mask = np.broadcast_to(mask, (*batch, n_q, n_k))
    out = np.zeros((*batch, n_q, V.shape[-1]))
    for q0 in range(0, n_q, block_size):
        sub = None if mask is None else mask[..., q0 : q0 + block_size, :]
        out[..., q0 : q0 + block_size, :] = _tiled(
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
    m = np.full((*batch, n_q, 1), -np.inf)
    total = np.zeros((*batch, n_q, 1))
    out = np.zeros((*batch, n_q, V.shape[-1]))
    for k0 in range(0, n_k, block_size):
        S = np.einsum("...qd,...kd->...qk", Q, K[..., k0 : k0 + block_size, :])
        S = S / np.sqrt(Q.shape[-1])
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


# ============================================================================================
# The tests
# ============================================================================================


def test_catalogue_covers_every_new_exercise():
    assert len(WRONG) >= 20 and len(RIGHT) >= 8
    wrong_per, right_per = Counter(e.exercise for e in WRONG), Counter(e.exercise for e in RIGHT)
    for name in NAMES:
        assert name in EXERCISES, name
        assert wrong_per[name] >= 3, name
        assert right_per[name] >= 2, name
    assert len({e.id for e in WRONG + RIGHT}) == len(WRONG) + len(RIGHT), "ids must be unique"
    for entry in WRONG:
        assert entry.fails in EXERCISES[entry.exercise].cases, entry.id


@pytest.mark.parametrize("entry", WRONG, ids=[e.id for e in WRONG])
def test_wrong_implementation_loses_points_and_is_named(entry, capfd):
    message, _ = outcome(entry.exercise, entry.fn, entry.fails)
    assert message is not None, f"{entry.id} passes {entry.fails!r}"
    for phrase in entry.says:
        assert phrase in message, f"{phrase!r} missing from:\n{message}"
    assert message.startswith(f"{entry.exercise} — ")
    assert "Traceback" not in message and "check_" not in message and "seed" not in message
    for seed in HIDDEN_SEEDS:  # hidden tests: other sizes and values, the same verdict
        hidden, _ = outcome(entry.exercise, entry.fn, entry.fails, seed=seed)
        assert hidden is not None, f"{entry.id} passes {entry.fails!r} with seed={seed}"
        for phrase in entry.says:
            assert phrase in hidden, f"seed={seed}: {phrase!r} missing from:\n{hidden}"
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("entry", RIGHT, ids=[e.id for e in RIGHT])
def test_correct_alternative_gets_full_marks(entry, capfd):
    for seed in (None, *HIDDEN_SEEDS):
        for case in EXERCISES[entry.exercise].cases:
            message, printed = outcome(entry.exercise, entry.fn, case, seed=seed)
            assert message is None, f"{entry.id} fails {case!r} (seed={seed}):\n{message}"
            assert printed.startswith(f"✓ {entry.exercise}: "), printed
            assert "Note for" not in printed, printed
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", NAMES)
def test_a_stub_fails_every_case_with_not_implemented(name, capfd):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    for case in EXERCISES[name].cases:
        message, printed = outcome(name, stub, case)
        assert message is not None and "not implemented" in message, (case, message)
        assert "✓" not in printed
    assert capfd.readouterr().err == ""


def test_a_mask_with_the_right_pattern_but_numbers_passes_the_values_with_a_note():
    message, printed = outcome("causal_mask", causal_float_ones, "square")
    assert message is None
    assert "your mask has dtype float64, not bool" in printed


def test_a_wrong_mask_shows_both_patterns():
    message, _ = outcome("causal_mask", causal_upper_triangle, "square")
    assert "Expected (1 = may attend):\n    1 0" in message and "Yours:\n    1 1" in message
    assert "Called with: n_q=" in message


def test_the_memory_check_reports_the_sizes():
    message, _ = outcome("tiled_attention", tiled_scores_first, "memory")
    assert re.search(r"allocated \d+\.\d MB at its peak, \d+% of the full score matrix", message)
    assert "float64 numbers" in message and "block_size = " in message


def test_the_memory_check_works_while_tracemalloc_is_already_tracing():
    import tracemalloc

    tracemalloc.start()
    try:
        assert outcome("tiled_attention", tiled_textbook, "memory")[0] is None
        assert outcome("tiled_attention", tiled_scores_first, "memory")[0] is not None
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


def test_case_inputs_have_all_dimensions_different():
    """Sizes of one call are all different (the memory case apart, whose sizes are large)."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        for case in ("causal", "random", "padding"):
            for args, _ in EXERCISES["masked_attention"].cases[case].make(rng):
                Q, K, V = args[:3]
                sizes = [*Q.shape, K.shape[-2], V.shape[-1]]
                assert len(set(sizes)) == len(sizes), (case, sizes)
        for case in ("random", "batch", "one_head"):
            for args, _ in EXERCISES["multi_head_attention"].cases[case].make(rng):
                X, Z, W_q, W_k, W_v, W_o, n_heads = args[:7]
                d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
                sizes = [*X.shape, *Z.shape[-2:], d_k, d_v, W_o.shape[1]]
                sizes += [n_heads] if n_heads > 1 else []
                assert len(set(sizes)) == len(sizes), (case, sizes)
        (args, _), *_ = EXERCISES["tiled_attention"].cases["batch"].make(rng)
        Q, K, V, b = args[:4]
        sizes = [*Q.shape, K.shape[-2], V.shape[-1]]
        assert len(set(sizes)) == len(sizes) and 2 <= b <= K.shape[-2] // 2, sizes


def _notebook_checks():
    """(notebook, check name, case, points) of every graded test cell of notebooks 06-08."""
    found = []
    for path in sorted((ROOT / "solutions").glob("0[678]_*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade") and cell["cell_type"] == "code":
                source = "".join(cell["source"])
                calls = re.findall(r'checks\.(check_\w+)\(\w+, "(\w+)"\)', source)
                hidden = re.findall(r'checks\.(check_\w+)\(\w+, "(\w+)", seed=1\)', source)
                assert calls and calls == hidden, (path.name, meta["grade_id"])
                found += [(path.name, check, case, meta["points"]) for check, case in calls]
    return found


def test_notebook_test_cells_call_existing_cases_with_one_to_three_points():
    found = _notebook_checks()
    if not found:
        pytest.skip("notebooks 06-08 are not in solutions/ yet")
    for notebook, check, case, points in found:
        name = check.removeprefix("check_")
        assert name in NAMES, (notebook, check)
        assert case in EXERCISES[name].cases, (notebook, check, case)
        assert points in (1, 2, 3), (notebook, check, case, points)
    # every case of every new exercise is graded exactly once
    assert Counter((c.removeprefix("check_"), k) for _, c, k, _ in found) == Counter(
        (name, case) for name in NAMES for case in EXERCISES[name].cases
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_catalogued_mistake_committed_by_a_learner_is_named(name, capfd):
    """Run each Mistake of the grader's own catalogue as the learner's function: wherever the
    check fails, the message names that mistake (first, or among the answers it also matches:
    on fully masked rows, "-inf gives NaN" and "mask after the softmax, renormalised" agree)."""
    exercise = EXERCISES[name]
    for mistake in exercise.mistakes:
        failed = 0
        for case in exercise.cases:
            message, _ = outcome(name, mistake.fn, case)
            if message is None:
                continue  # this mistake agrees with the reference on this case
            failed += 1
            assert f"mistake: {mistake.name}." in message, (case, message)
        assert failed, f"no case tells {mistake.name!r} from the reference"
    assert capfd.readouterr().err == ""
