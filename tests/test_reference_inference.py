"""Tests of :mod:`attention_course.reference`'s attention at inference (notebook 10).

- :func:`~attention_course.reference.grouped_query_attention` is compared with a per-head loop
  written below on top of ``tests/loop_reference.py`` (query head ``h`` reads the columns of
  kv head ``h // group`` of ``W_k`` and ``W_v``), and with
  :func:`~attention_course.reference.multi_head_attention` when ``n_kv_heads = n_heads``.
- :func:`~attention_course.reference.decode_step`, run token by token, is compared with every
  row of the loop's causal attention over the whole sequence, and its cache with the loop's
  keys and values.
- :func:`~attention_course.reference.sliding_window_mask` is compared with a double loop over
  ``(i, j)``.

In every example ``n``, ``d_model``, ``d_k``, ``d_v``, ``d_out``, ``n_heads`` and the batch
sizes are all different, so a swapped axis cannot go unnoticed.

Shape legend: ``...`` batch dimensions, ``n`` tokens (``n_q = n_k = n``), ``d_k`` / ``d_v``
widths of one head, ``n_heads`` query heads, ``n_kv_heads`` key/value heads, ``t`` cached
tokens.
"""

from __future__ import annotations

import math

import loop_reference as loop
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attention_course import reference as ref

TOL = {np.float32: 2e-5, np.float64: 1e-12}

# (batch, n, d_model, d_k, d_v, d_out, n_heads, n_kv_heads): all sizes different per row.
SIZES = [
    ((), 7, 5, 3, 4, 9, 6, 2),
    ((2,), 8, 11, 4, 3, 5, 6, 3),
    ((3, 2), 5, 9, 2, 7, 4, 8, 1),
    ((2,), 6, 10, 3, 5, 7, 4, 4),
]


def make_inputs(rng, batch, n, d_model, d_k, d_v, d_out, n_heads, n_kv_heads, dtype=np.float64):
    """X (..., n, d_model) and the GQA projections with kv widths n_kv_heads·d."""
    X = rng.normal(size=(*batch, n, d_model)).astype(dtype)
    W_q = (rng.normal(size=(d_model, n_heads * d_k)) / math.sqrt(d_model)).astype(dtype)
    W_k = (rng.normal(size=(d_model, n_kv_heads * d_k)) / math.sqrt(d_model)).astype(dtype)
    W_v = (rng.normal(size=(d_model, n_kv_heads * d_v)) / math.sqrt(d_model)).astype(dtype)
    W_o = (rng.normal(size=(n_heads * d_v, d_out)) / math.sqrt(n_heads * d_v)).astype(dtype)
    return X, W_q, W_k, W_v, W_o


def loop_gqa(X, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    """Grouped-query self-attention head by head with the loop reference; float64.

    Returns output (..., n, d_out), weights (..., n_heads, n, n), and the keys and values of
    every kv head, (..., n_kv_heads, n, d_k) and (..., n_kv_heads, n, d_v).
    """
    X = np.asarray(X, dtype=np.float64)
    d_k = W_q.shape[1] // n_heads
    d_v = W_v.shape[1] // n_kv_heads
    group = n_heads // n_kv_heads
    keys = [loop._project(X, W_k[:, g * d_k : (g + 1) * d_k]) for g in range(n_kv_heads)]
    values = [loop._project(X, W_v[:, g * d_v : (g + 1) * d_v]) for g in range(n_kv_heads)]
    heads, weights = [], []
    for h in range(n_heads):
        Q = loop._project(X, W_q[:, h * d_k : (h + 1) * d_k])  # (..., n, d_k)
        out, w = loop.scaled_dot_product_attention(Q, keys[h // group], values[h // group], mask)
        heads.append(out)
        weights.append(w)
    concat = np.concatenate(heads, axis=-1)  # (..., n, n_heads·d_v)
    output = concat @ np.asarray(W_o, dtype=np.float64)  # (..., n, n_heads·d_v) @ (.., d_out)
    return output, np.stack(weights, axis=-3), np.stack(keys, -3), np.stack(values, -3)


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("masked", [False, True])
def test_grouped_query_attention_matches_the_per_head_loop(sizes, masked):
    batch, n, *_, n_heads, n_kv_heads = sizes
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(len(batch) + n), *sizes)
    mask = ref.causal_mask(n) if masked else None
    output, weights = ref.grouped_query_attention(X, X, W_q, W_k, W_v, W_o, n_heads, n_kv_heads,
                                                  mask=mask)  # fmt: skip
    expected, expected_weights, _, _ = loop_gqa(X, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask)
    assert output.shape == (*batch, n, W_o.shape[1])
    assert weights.shape == (*batch, n_heads, n, n)
    assert_allclose(output, expected, rtol=1e-12, atol=1e-12)
    assert_allclose(weights, expected_weights, rtol=1e-12, atol=1e-12)


def test_grouping_is_by_block_not_interleaved():
    """With 4 query heads on 2 kv heads, heads 0 and 1 share kv head 0: their weights agree
    when their query projections agree, while heads 0 and 2 (different kv heads) differ."""
    rng = np.random.default_rng(3)
    X, W_q, W_k, W_v, W_o = make_inputs(rng, (), 6, 5, 3, 2, 7, 4, 2)
    W_q[:, 3:6] = W_q[:, 0:3]  # query head 1 = query head 0
    W_q[:, 6:9] = W_q[:, 0:3]  # query head 2 = query head 0
    _, weights = ref.grouped_query_attention(X, X, W_q, W_k, W_v, W_o, 4, 2)
    assert_allclose(weights[0], weights[1], rtol=1e-12)
    assert not np.allclose(weights[0], weights[2])


@pytest.mark.parametrize("sizes", [s for s in SIZES if s[-1] == s[-2]])
def test_as_many_kv_heads_as_query_heads_is_multi_head_attention(sizes):
    batch, n, *_, n_heads, _ = sizes
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(5), *sizes)
    mask = ref.causal_mask(n)
    gqa = ref.grouped_query_attention(X, X, W_q, W_k, W_v, W_o, n_heads, n_heads, mask=mask)
    mha = ref.multi_head_attention(X, X, W_q, W_k, W_v, W_o, n_heads, mask=mask)
    assert_array_equal(gqa[0], mha[0])
    assert_array_equal(gqa[1], mha[1])


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decode_step_by_step_gives_every_row_of_causal_attention(sizes, dtype):
    batch, n, d_model, d_k, d_v, d_out, n_heads, n_kv_heads = sizes
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(n), *sizes, dtype=dtype)
    expected, _, keys, values = loop_gqa(X, W_q, W_k, W_v, W_o, n_heads, n_kv_heads,
                                         loop.causal_mask(n))  # fmt: skip
    cache = None
    tol = TOL[dtype]
    for t in range(n):
        out, cache = ref.decode_step(X[..., t : t + 1, :], cache, W_q, W_k, W_v, W_o, n_heads,
                                     n_kv_heads)  # fmt: skip
        assert out.shape == (*batch, 1, d_out) and out.dtype == dtype
        assert_allclose(out[..., 0, :], expected[..., t, :], rtol=tol, atol=tol,
                        err_msg=f"token {t}")  # fmt: skip
        K_cache, V_cache = cache
        assert K_cache.shape == (*batch, n_kv_heads, t + 1, d_k) and K_cache.dtype == dtype
        assert V_cache.shape == (*batch, n_kv_heads, t + 1, d_v) and V_cache.dtype == dtype
        assert_allclose(K_cache, keys[..., : t + 1, :], rtol=tol, atol=tol)
        assert_allclose(V_cache, values[..., : t + 1, :], rtol=tol, atol=tol)


def test_n_kv_heads_none_means_n_heads():
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(1), (2,), 4, 7, 3, 5, 6, 2, 2)
    a, cache_a = ref.decode_step(X[..., :1, :], None, W_q, W_k, W_v, W_o, 2)
    b, cache_b = ref.decode_step(X[..., :1, :], None, W_q, W_k, W_v, W_o, 2, 2)
    assert_array_equal(a, b)
    assert_array_equal(cache_a[0], cache_b[0])


def test_decode_step_leaves_its_inputs_and_the_old_cache_unchanged():
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(2), (3,), 5, 8, 2, 4, 6, 4, 2)
    _, cache = ref.decode_step(X[..., :1, :], None, W_q, W_k, W_v, W_o, 4, 2)
    arrays = (X, W_q, W_k, W_v, W_o, *cache)
    copies = [a.copy() for a in arrays]
    _, new_cache = ref.decode_step(X[..., 1:2, :], cache, W_q, W_k, W_v, W_o, 4, 2)
    for before, after in zip(copies, arrays, strict=True):
        assert_array_equal(before, after)
    assert new_cache[0] is not cache[0] and new_cache[0].shape[-2] == 2


def test_grouped_query_attention_leaves_its_inputs_unchanged_and_keeps_float32():
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(4), (2,), 6, 9, 3, 4, 5, 6, 3,
                                        dtype=np.float32)  # fmt: skip
    arrays = (X, W_q, W_k, W_v, W_o)
    copies = [a.copy() for a in arrays]
    output, weights = ref.grouped_query_attention(X, X, W_q, W_k, W_v, W_o, 6, 3)
    assert output.dtype == weights.dtype == np.float32
    for before, after in zip(copies, arrays, strict=True):
        assert_array_equal(before, after)


@pytest.mark.parametrize(("n_q", "n_k", "window"), [(5, 7, 2), (7, 5, 3), (6, 6, 1), (4, 9, 20)])
def test_sliding_window_mask_matches_the_double_loop(n_q, n_k, window):
    expected = np.array([[i - window < j <= i for j in range(n_k)] for i in range(n_q)], dtype=bool)
    mask = ref.sliding_window_mask(n_q, n_k, window)
    assert mask.dtype == np.bool_
    assert_array_equal(mask, expected)


@pytest.mark.parametrize(("n_q", "n_k"), [(5, 7), (7, 5)])
def test_a_window_as_long_as_the_queries_is_the_causal_mask(n_q, n_k):
    assert_array_equal(ref.sliding_window_mask(n_q, n_k, n_q), ref.causal_mask(n_q, n_k))
    assert not np.array_equal(ref.sliding_window_mask(n_q, n_k, n_q - 1), ref.causal_mask(n_q, n_k))


def _gqa_call(n_heads=4, n_kv_heads=2, kv_cols=None, q_cols=None):
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(0), (), 5, 7, 3, 2, 6, 4, 2)
    W_k = W_k if kv_cols is None else np.ones((7, kv_cols))
    W_q = W_q if q_cols is None else np.ones((7, q_cols))
    return lambda: ref.grouped_query_attention(X, X, W_q, W_k, W_v, W_o, n_heads, n_kv_heads)


def _decode_call(x_rows=1, cache="ok"):
    X, W_q, W_k, W_v, W_o = make_inputs(np.random.default_rng(0), (2,), 5, 7, 3, 2, 6, 4, 2)
    good = (np.zeros((2, 2, 3, 3)), np.zeros((2, 2, 3, 2)))
    caches = {
        "ok": good,
        "single": good[0],
        "wrong_heads": (np.zeros((2, 4, 3, 3)), good[1]),
        "wrong_width": (good[0], np.zeros((2, 2, 3, 3))),
        "lengths": (good[0], np.zeros((2, 2, 4, 2))),
        "batch": (np.zeros((3, 2, 3, 3)), np.zeros((3, 2, 3, 2))),
    }
    x_t = X[..., :x_rows, :]
    return lambda: ref.decode_step(x_t, caches[cache], W_q, W_k, W_v, W_o, 4, 2)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (_gqa_call(n_heads=4, n_kv_heads=3), r"n_kv_heads = 3 must divide n_heads = 4"),
        (_gqa_call(n_kv_heads=0), r"n_kv_heads must be a positive integer"),
        (_gqa_call(kv_cols=5), r"W_k must have shape \(d_model, n_kv_heads·d_k\)"),
        (_gqa_call(kv_cols=8), r"same width d_k"),
        (_gqa_call(q_cols=10), r"W_q must have shape \(d_model, n_heads·d_k\)"),
        (_decode_call(x_rows=2), r"x_t must be one new token"),
        (_decode_call(cache="single"), r"cache must be None .* or the pair"),
        (_decode_call(cache="wrong_heads"), r"K_cache must have shape \(\.\.\., n_kv_heads"),
        (_decode_call(cache="wrong_width"), r"V_cache must have shape"),
        (_decode_call(cache="lengths"), r"same number of tokens t"),
        (_decode_call(cache="batch"), r"batch shape \(3,\) does not broadcast"),
        (lambda: ref.sliding_window_mask(4, 5, 0), r"window must be a positive integer"),
        (lambda: ref.sliding_window_mask(4, 5, 2.5), r"window must be a positive integer"),
    ],
)
def test_invalid_input_raises_a_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()
