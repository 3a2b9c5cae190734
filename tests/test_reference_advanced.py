"""Tests of the "beyond the core" part of :mod:`attention_course.reference`.

- :func:`~attention_course.reference.multi_head_attention` is compared with an independent
  per-head loop written below (slice the columns of each head, run a hand-written attention,
  concatenate, ``@ W_o``), and with :func:`~attention_course.reference.cross_attention` for
  one head.
- :func:`~attention_course.reference.online_softmax` is compared with
  :func:`~attention_course.reference.softmax` for many block sizes.
- :func:`~attention_course.reference.tiled_attention` is compared with
  :func:`~attention_course.reference.scaled_dot_product_attention` for many block sizes, and
  tracemalloc checks that it never allocates an ``n_q × n_k`` array.

In every drawn example ``n_q``, ``n_k``, ``d_k``, ``d_v`` (and ``d_model``, ``d_model_z``,
``d_out``, ``n_heads``) are all different, so a swapped axis cannot go unnoticed.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width (of one head), ``d_v`` value width (of one head), ``d_model`` / ``d_model_z``
widths of ``X`` / ``Z``, ``d_out`` width of the multi-head output.

Random numbers come from ``np.random.default_rng(seed)`` with the seed drawn by hypothesis.
"""

from __future__ import annotations

import contextlib
import math
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from strategies import BATCH_SHAPES, SEEDS, broadcast_to, distinct_sizes

from attention_course import reference as ref

TOL = {np.float16: 2e-2, np.float32: 2e-5, np.float64: 1e-12}

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# Strategies and helpers
# --------------------------------------------------------------------------------------------


@st.composite
def random_masks(draw, batch: tuple[int, ...], n_q: int, n_k: int):
    """A boolean mask that broadcasts to (*batch, n_q, n_k), often with fully masked rows."""
    mask_batch = draw(broadcast_to(batch))
    rows = draw(st.sampled_from((n_q, 1)))
    p_attend = draw(st.sampled_from((0.0, 0.3, 0.7, 1.0)))
    rng = np.random.default_rng(draw(SEEDS))
    mask = rng.random((*mask_batch, rows, n_k)) < p_attend  # (..., n_q or 1, n_k)
    if draw(st.booleans()):
        mask[..., rng.integers(rows), :] = False  # one query row sees no key at all
    return mask


@st.composite
def masks_for(draw, batch: tuple[int, ...], n_q: int, n_k: int):
    """None, a random mask, a causal mask or a padding mask, for weights (*batch, n_q, n_k)."""
    kind = draw(st.sampled_from(("none", "random", "causal", "padding")))
    if kind == "random":
        return draw(random_masks(batch, n_q, n_k))
    if kind == "causal":
        return ref.causal_mask(n_q, n_k)  # (n_q, n_k)
    if kind == "padding" and batch:
        lengths = draw(st.lists(st.integers(0, n_k), min_size=batch[-1], max_size=batch[-1]))
        return ref.padding_mask(lengths, n_k)  # (batch[-1], 1, n_k)
    return None


@st.composite
def attention_inputs(draw, dtype=np.float64, magnitude: float = 1.0):
    """Q, K, V (batch dims that only broadcast) with n_q, n_k, d_k, d_v distinct, and a mask."""
    n_q, n_k, d_k, d_v = draw(distinct_sizes(4, max_size=9))
    full = draw(BATCH_SHAPES)
    q_b, k_b, v_b = (draw(broadcast_to(full)) for _ in range(3))
    rng = np.random.default_rng(draw(SEEDS))
    Q = (magnitude * rng.standard_normal((*q_b, n_q, d_k))).astype(dtype)
    K = (magnitude * rng.standard_normal((*k_b, n_k, d_k))).astype(dtype)
    V = rng.standard_normal((*v_b, n_k, d_v)).astype(dtype)
    batch = np.broadcast_shapes(q_b, k_b, v_b)
    return Q, K, V, draw(masks_for(batch, n_q, n_k))


@st.composite
def multi_head_inputs(draw, n_heads=None, dtype=np.float64):
    """X, Z, W_q, W_k, W_v, W_o, n_heads and a mask; every size different from the others."""
    n_heads = draw(st.integers(1, 4)) if n_heads is None else n_heads
    sizes = draw(distinct_sizes(7, max_size=9, avoid=(n_heads,)))
    n_q, n_k, d_k, d_v, d_model, d_model_z, d_out = sizes
    full = draw(BATCH_SHAPES)
    x_b, z_b = draw(broadcast_to(full)), draw(broadcast_to(full))
    rng = np.random.default_rng(draw(SEEDS))
    X = rng.standard_normal((*x_b, n_q, d_model)).astype(dtype)
    Z = rng.standard_normal((*z_b, n_k, d_model_z)).astype(dtype)
    W_q = rng.standard_normal((d_model, n_heads * d_k)).astype(dtype)
    W_k = rng.standard_normal((d_model_z, n_heads * d_k)).astype(dtype)
    W_v = rng.standard_normal((d_model_z, n_heads * d_v)).astype(dtype)
    W_o = rng.standard_normal((n_heads * d_v, d_out)).astype(dtype)
    mask = draw(masks_for(np.broadcast_shapes(x_b, z_b), n_q, n_k))
    return X, Z, W_q, W_k, W_v, W_o, n_heads, mask


@contextlib.contextmanager
def no_fp_warnings():
    """Turn every warning, and every overflow / invalid / divide-by-zero, into an error.

    Underflow stays silent: exp of a very negative number is 0 in a stable softmax.
    """
    with (
        warnings.catch_warnings(),
        np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"),
    ):
        warnings.simplefilter("error")
        yield


def assert_close(actual, expected, what: str, dtype=np.float64) -> None:
    """Same shape and dtype-appropriate agreement, with a sentence saying what differs."""
    assert np.shape(actual) == np.shape(expected), (
        f"{what}: expected shape {np.shape(expected)}, got {np.shape(actual)}"
    )
    tol = TOL[np.dtype(dtype).type]
    assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=f"{what} differs")


# --------------------------------------------------------------------------------------------
# An independent multi-head attention: loops over batch, heads and queries.
# --------------------------------------------------------------------------------------------


def attention_by_hand(Q, K, V, mask):
    """One unbatched attention, one query row at a time.

    Q (n_q, d_k), K (n_k, d_k), V (n_k, d_v), mask (n_q, n_k) of bool
    -> output (n_q, d_v), weights (n_q, n_k); a fully masked row gives zeros.
    """
    n_q, d_k = Q.shape
    n_k, d_v = V.shape
    output, weights = np.zeros((n_q, d_v)), np.zeros((n_q, n_k))
    for i in range(n_q):
        allowed = [j for j in range(n_k) if mask[i, j]]
        if not allowed:
            continue
        scores = [float(Q[i] @ K[j]) / math.sqrt(d_k) for j in allowed]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        for j, e in zip(allowed, exps, strict=True):
            weights[i, j] = e / sum(exps)
        output[i] = weights[i] @ V  # (n_k,) @ (n_k, d_v) -> (d_v,)
    return output, weights


def multi_head_by_loop(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    """Per batch index and per head: slice the head's columns, attend, concatenate, ``@ W_o``."""
    X, Z = np.asarray(X, dtype=np.float64), np.asarray(Z, dtype=np.float64)
    n_q, n_k = X.shape[-2], Z.shape[-2]
    d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
    batch = np.broadcast_shapes(X.shape[:-2], Z.shape[:-2])
    X = np.broadcast_to(X, (*batch, *X.shape[-2:]))  # (*batch, n_q, d_model)
    Z = np.broadcast_to(Z, (*batch, *Z.shape[-2:]))  # (*batch, n_k, d_model_z)
    mask = np.ones((n_q, n_k), dtype=bool) if mask is None else np.asarray(mask)
    mask = np.broadcast_to(mask, (*batch, n_q, n_k))  # the same mask for every head
    output = np.zeros((*batch, n_q, W_o.shape[1]))
    weights = np.zeros((*batch, n_heads, n_q, n_k))
    for index in np.ndindex(*batch):
        heads = []
        for h in range(n_heads):
            cols_k, cols_v = slice(h * d_k, (h + 1) * d_k), slice(h * d_v, (h + 1) * d_v)
            Q = X[index] @ W_q[:, cols_k]  # (n_q, d_model) @ (d_model, d_k) -> (n_q, d_k)
            K = Z[index] @ W_k[:, cols_k]  # (n_k, d_model_z) @ (d_model_z, d_k) -> (n_k, d_k)
            V = Z[index] @ W_v[:, cols_v]  # (n_k, d_model_z) @ (d_model_z, d_v) -> (n_k, d_v)
            head, weights[index + (h,)] = attention_by_hand(Q, K, V, mask[index])
            heads.append(head)
        concat = np.concatenate(heads, axis=-1)  # n_heads x (n_q, d_v) -> (n_q, n_heads·d_v)
        output[index] = concat @ W_o  # (n_q, n_heads·d_v) @ (n_heads·d_v, d_out) -> (n_q, d_out)
    return output, weights


# --------------------------------------------------------------------------------------------
# multi_head_attention
# --------------------------------------------------------------------------------------------


@FAST
@given(multi_head_inputs())
def test_multi_head_attention_matches_the_per_head_loop(inputs):
    output, weights = ref.multi_head_attention(*inputs)
    expected_output, expected_weights = multi_head_by_loop(*inputs)
    assert_close(weights, expected_weights, "multi-head weights (..., n_heads, n_q, n_k)")
    assert_close(output, expected_output, "multi-head output (..., n_q, d_out)")


@FAST
@given(multi_head_inputs(n_heads=1))
def test_one_head_is_cross_attention_followed_by_w_o(inputs):
    X, Z, W_q, W_k, W_v, W_o, n_heads, mask = inputs
    output, weights = ref.multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask)
    single, single_weights = ref.cross_attention(X, Z, W_q, W_k, W_v, mask=mask)
    assert_close(weights[..., 0, :, :], single_weights, "the one head's weights")
    # (..., n_q, d_v) @ (d_v, d_out) -> (..., n_q, d_out)
    assert_close(output, single @ W_o, "one head's output @ W_o")


@FAST
@given(multi_head_inputs())
def test_multi_head_weights_have_a_head_axis_and_rows_sum_to_one_or_zero(inputs):
    X, Z, W_q, W_k, W_v, W_o, n_heads, mask = inputs
    with no_fp_warnings():
        output, weights = ref.multi_head_attention(*inputs)
    batch = np.broadcast_shapes(X.shape[:-2], Z.shape[:-2])
    n_q, n_k = X.shape[-2], Z.shape[-2]
    assert weights.shape == (*batch, n_heads, n_q, n_k), f"weights shape {weights.shape}"
    assert output.shape == (*batch, n_q, W_o.shape[1]), f"output shape {output.shape}"
    assert np.all(weights >= 0)
    sees_a_key = np.ones((n_q, n_k), bool) if mask is None else mask
    sees_a_key = np.broadcast_to(sees_a_key, (*batch, n_q, n_k)).any(axis=-1)  # (..., n_q)
    expected_sums = np.broadcast_to(sees_a_key[..., None, :], weights.shape[:-1])
    message = "each row of every head sums to 1, or to 0 if fully masked"
    assert_allclose(weights.sum(axis=-1), expected_sums.astype(float), atol=1e-12,
                    err_msg=message)  # fmt: skip


@pytest.mark.parametrize("n_heads", [1, 2, 3])
def test_padding_mask_works_unchanged_and_padded_keys_do_not_matter(n_heads):
    """A padding_mask (batch, 1, n_k) is applied to every head: padded keys get zero weight,
    and each sequence's output equals that of the same sequence without its padding."""
    rng = np.random.default_rng(7)
    batch, n_q, n_k, d_k, d_v, d_model, d_out = 4, 5, 6, 2, 3, 7, 8
    X = rng.standard_normal((batch, n_q, d_model))
    Z = rng.standard_normal((batch, n_k, d_model))
    W_q, W_k = (rng.standard_normal((d_model, n_heads * d_k)) for _ in range(2))
    W_v, W_o = rng.standard_normal((d_model, n_heads * d_v)), rng.standard_normal((9, d_out))
    W_o = W_o[: n_heads * d_v]
    lengths = [6, 3, 1, 0]
    mask = ref.padding_mask(lengths, n_k)  # (batch, 1, n_k)
    with no_fp_warnings():
        output, weights = ref.multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask)
    for b, length in enumerate(lengths):
        assert_array_equal(weights[b, :, :, length:], 0.0, strict=False)
        if length == 0:
            assert_array_equal(output[b], 0.0, err_msg="a sequence with no key gives zeros")
            continue
        alone, _ = ref.multi_head_attention(X[b], Z[b, :length], W_q, W_k, W_v, W_o, n_heads)
        assert_close(output[b], alone, f"sequence {b} (length {length}) with vs without padding")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_multi_head_attention_preserves_the_dtype(dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 5, 6)).astype(dtype)
    W_q, W_k = (rng.standard_normal((6, 8)).astype(dtype) for _ in range(2))
    W_v, W_o = rng.standard_normal((6, 4)).astype(dtype), rng.standard_normal((4, 3)).astype(dtype)
    output, weights = ref.multi_head_attention(X, X, W_q, W_k, W_v, W_o, 2, ref.causal_mask(5))
    assert output.dtype == dtype and weights.dtype == dtype
    expected, expected_weights = multi_head_by_loop(X, X, W_q, W_k, W_v, W_o, 2,
                                                    ref.causal_mask(5))  # fmt: skip
    assert_close(weights, expected_weights, f"{np.dtype(dtype)} weights", dtype)
    assert_close(output, expected, f"{np.dtype(dtype)} output", dtype)


def test_multi_head_attention_does_not_modify_its_inputs():
    rng = np.random.default_rng(5)
    args = [rng.standard_normal(shape) for shape in
            [(2, 3, 4), (2, 5, 6), (4, 6), (6, 6), (6, 8), (8, 7)]]  # fmt: skip
    mask = rng.random((2, 3, 5)) < 0.5
    copies = [a.copy() for a in args] + [mask.copy()]
    ref.multi_head_attention(*args, 2, mask=mask)
    for before, after in zip(copies, [*args, mask], strict=True):
        assert_array_equal(after, before, strict=True)


# --------------------------------------------------------------------------------------------
# online_softmax
# --------------------------------------------------------------------------------------------


@st.composite
def score_rows(draw, dtype=np.float64):
    """x (..., n) with large magnitudes, some -inf entries and some all -inf rows."""
    batch = draw(BATCH_SHAPES)
    n = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(SEEDS))
    magnitude = draw(st.sampled_from((1.0, 30.0, 1e4)))
    x = magnitude * rng.standard_normal((*batch, n))
    x[rng.random(x.shape) < draw(st.sampled_from((0.0, 0.3)))] = -np.inf
    if draw(st.booleans()) and x.ndim > 1:
        x[(0,) * (x.ndim - 1)] = -np.inf  # a whole row of -inf
    return x.astype(dtype)


def block_sizes_for(n: int) -> list[int]:
    """1, n, divisors and non-divisors of n, and sizes larger than n."""
    return sorted({1, 2, 3, max(1, n // 2), max(1, n - 1), n, n + 1, 2 * n + 5})


@FAST
@given(score_rows(), st.sampled_from((np.float32, np.float64)))
def test_online_softmax_equals_softmax_for_every_block_size(x, dtype):
    x = x.astype(dtype)
    expected = ref.softmax(x, axis=-1)
    for block_size in block_sizes_for(x.shape[-1]):
        with no_fp_warnings():
            p = ref.online_softmax(x, block_size)
        assert p.dtype == x.dtype, f"dtype {p.dtype} instead of {x.dtype}"
        assert_close(p, expected, f"online_softmax(x, block_size={block_size})", dtype)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 7, 8, 100])
def test_online_softmax_of_extreme_and_minus_inf_rows_is_right_and_silent(dtype, block_size):
    # exp(big) overflows in every dtype; big - (-big) still fits in float16 (max 65504).
    big = 1e4 if dtype != np.float16 else 3e4
    x = np.array([
        [big, -big, 0.0, big, -np.inf, 1.0, -np.inf],
        [-np.inf] * 7,  # fully masked: zeros, not NaN
        [-big, -big, -big, -big, -big, -big, -big],  # all equal: uniform
        [-np.inf, -np.inf, -np.inf, -np.inf, -np.inf, -np.inf, 3.0],  # the max comes last
    ], dtype=dtype)  # fmt: skip
    expected = np.array([
        [0.5, 0, 0, 0.5, 0, 0, 0], [0] * 7, [1 / 7] * 7, [0, 0, 0, 0, 0, 0, 1],
    ])  # fmt: skip
    with no_fp_warnings():
        p = ref.online_softmax(x, block_size)
    assert p.dtype == dtype
    assert_close(p, expected, f"online_softmax of extreme rows, block_size={block_size}", dtype)


def test_online_softmax_of_an_empty_axis_is_empty():
    p = ref.online_softmax(np.empty((3, 0), dtype=np.float32), 4)
    assert p.shape == (3, 0) and p.dtype == np.float32


# --------------------------------------------------------------------------------------------
# tiled_attention
# --------------------------------------------------------------------------------------------


@FAST
@given(attention_inputs(), st.sampled_from((np.float32, np.float64)), st.data())
def test_tiled_attention_equals_scaled_dot_product_attention(qkv, dtype, data):
    Q, K, V, mask = (a if a is None or a.dtype == bool else a.astype(dtype) for a in qkv)
    n_q, n_k = Q.shape[-2], K.shape[-2]
    expected, _ = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    q_block_size = data.draw(st.sampled_from((None, 1, 2, n_q, n_q + 3)), label="q_block_size")
    for block_size in block_sizes_for(n_k):
        with no_fp_warnings():
            output = ref.tiled_attention(Q, K, V, block_size, mask=mask,
                                         q_block_size=q_block_size)  # fmt: skip
        assert output.dtype == dtype, f"dtype {output.dtype} instead of {np.dtype(dtype)}"
        what = f"tiled_attention(block_size={block_size}, q_block_size={q_block_size})"
        assert_close(output, expected, what, dtype)


@FAST
@given(attention_inputs(magnitude=30.0), st.sampled_from((0.01, 1.0, 7.5)))
def test_tiled_attention_with_large_scores_and_explicit_scale(qkv, scale):
    Q, K, V, mask = qkv
    expected, _ = ref.scaled_dot_product_attention(Q, K, V, mask=mask, scale=scale)
    for block_size in (1, 3, K.shape[-2]):
        with no_fp_warnings():
            output = ref.tiled_attention(Q, K, V, block_size, mask=mask, scale=scale)
        # Scores of ~1e4 differ in their last bits between one matmul and blocked ones.
        what = f"tiled_attention(block_size={block_size}, scale={scale})"
        assert_allclose(output, expected, rtol=1e-9, atol=1e-9, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_tiled_attention_preserves_dtype_and_leaves_inputs_unchanged(dtype):
    rng = np.random.default_rng(11)
    Q = rng.standard_normal((2, 6, 3)).astype(dtype)
    K = rng.standard_normal((2, 9, 3)).astype(dtype)
    V = rng.standard_normal((1, 9, 4)).astype(dtype)
    mask = rng.random((6, 9)) < 0.6
    mask[2] = False  # a fully masked query
    copies = [a.copy() for a in (Q, K, V, mask)]
    with no_fp_warnings():
        output = ref.tiled_attention(Q, K, V, 4, mask=mask, q_block_size=4)
    for before, after in zip(copies, (Q, K, V, mask), strict=True):
        assert_array_equal(after, before, strict=True)
    assert output.dtype == dtype and output.shape == (2, 6, 4)
    assert_array_equal(output[:, 2], 0.0, err_msg="a fully masked query gives a zero row")
    expected, _ = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    assert_close(output, expected, f"{np.dtype(dtype)} tiled_attention", dtype)


def test_tiled_attention_promotes_mixed_and_integer_inputs_like_the_reference():
    Q = np.arange(6, dtype=np.int64).reshape(2, 3)
    K = np.ones((4, 3), dtype=np.float32)
    V = np.arange(20, dtype=np.float16).reshape(4, 5)
    expected, _ = ref.scaled_dot_product_attention(Q, K, V)
    output = ref.tiled_attention(Q, K, V, 3)
    assert output.dtype == expected.dtype == np.float64
    assert_close(output, expected, "tiled_attention on int64, float32 and float16 inputs")


def test_tiled_attention_with_no_keys_gives_zeros():
    output = ref.tiled_attention(np.ones((2, 3)), np.ones((0, 3)), np.ones((0, 5)), 4)
    assert_array_equal(output, np.zeros((2, 5)), strict=True)


def _peak_traced_bytes(function) -> int:
    """Peak bytes allocated (NumPy arrays included) while ``function()`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("q_block_size", [None, 64])
@pytest.mark.parametrize("with_mask", [False, True])
def test_tiled_attention_never_allocates_the_score_matrix(q_block_size, with_mask):
    """NumPy reports its allocations to tracemalloc, so the peak bounds every temporary."""
    rng = np.random.default_rng(0)
    n_q, n_k, d_k, d_v, block_size = 700, 900, 16, 24, 32
    Q = rng.standard_normal((n_q, d_k))
    K = rng.standard_normal((n_k, d_k))
    V = rng.standard_normal((n_k, d_v))
    mask = ref.causal_mask(n_q, n_k) if with_mask else None
    score_bytes = n_q * n_k * Q.itemsize  # 5.04 MB: what the naive version allocates
    naive = _peak_traced_bytes(lambda: ref.scaled_dot_product_attention(Q, K, V, mask=mask))
    assert naive >= score_bytes, "tracemalloc does not see NumPy's allocations here"
    tiled = _peak_traced_bytes(
        lambda: ref.tiled_attention(Q, K, V, block_size, mask=mask, q_block_size=q_block_size)
    )
    rows = n_q if q_block_size is None else q_block_size
    # Score block, plus Q scaled, the output and a few (rows, d_v) and (rows, 1) buffers.
    budget = 3 * rows * block_size * 8 + 4 * n_q * max(d_k, d_v) * 8
    assert tiled <= budget < score_bytes / 4, (
        f"tiled_attention allocated {tiled} bytes at its peak; an n_q x n_k score matrix "
        f"is {score_bytes} bytes and the budget of blocks is {budget} bytes"
    )


# --------------------------------------------------------------------------------------------
# Every ValueError names what disagrees
# --------------------------------------------------------------------------------------------

_rng = np.random.default_rng(1)
_X, _Z = _rng.standard_normal((2, 3, 6)), _rng.standard_normal((2, 5, 7))
_W_q, _W_k = _rng.standard_normal((6, 8)), _rng.standard_normal((7, 8))  # 2 heads of d_k 4
_W_v, _W_o = _rng.standard_normal((7, 10)), _rng.standard_normal((10, 9))  # 2 heads of d_v 5
_Q, _K, _V = (
    _rng.standard_normal((3, 4)),
    _rng.standard_normal((5, 4)),
    _rng.standard_normal((5, 6)),
)


def _mha(**changes):
    args = {"X": _X, "Z": _Z, "W_q": _W_q, "W_k": _W_k, "W_v": _W_v, "W_o": _W_o, "n_heads": 2}
    args.update(changes)
    return lambda: ref.multi_head_attention(**args)


def _tiled(**changes):
    args = {"Q": _Q, "K": _K, "V": _V, "block_size": 2}
    args.update(changes)
    return lambda: ref.tiled_attention(**args)


INVALID = [
    # multi_head_attention
    (_mha(n_heads=0), r"n_heads must be a positive integer, got 0"),
    (_mha(n_heads=2.0), r"n_heads must be a positive integer, got 2\.0"),
    (_mha(n_heads=3), r"W_q has 8 columns, which n_heads = 3 heads cannot share"),
    (_mha(W_q=np.ones((6, 0)), W_k=np.ones((7, 0))), r"W_q has 0 columns"),
    (_mha(W_v=np.ones((7, 9)), W_o=np.ones((9, 2))), r"W_v has 9 columns, which n_heads = 2"),
    (_mha(W_q=np.ones((5, 8))), r"W_q has 5 rows but X has width 6"),
    (_mha(W_k=np.ones((6, 8))), r"W_k has 6 rows but Z has width 7"),
    (_mha(W_v=np.ones((6, 10))), r"W_v has 6 rows but Z has width 7"),
    (_mha(W_k=np.ones((7, 6))), r"W_q gives 8 columns, W_k gives 6"),
    (_mha(W_o=np.ones((8, 9))), r"W_o has 8 rows .* n_heads·d_v = 2·5 = 10"),
    (_mha(W_o=np.ones((10,))), r"W_o must be a matrix .* \(10, d_out\), got shape \(10,\)"),
    (_mha(X=np.ones(6)), r"X must have shape \(\.\.\., n_q, d_model\)"),
    (_mha(Z=np.ones((3, 5, 7))), r"do not broadcast: X has batch shape \(2,\), Z has .*\(3,\)"),
    (_mha(mask=np.ones((2, 2, 3, 5), bool)), r"does not broadcast .* every head.* \(2, 2, 3, 5\)"),
    (_mha(mask=np.ones((3, 4), bool)), r"mask of shape \(3, 4\) does not broadcast .*\(2, 3, 5\)"),
    (_mha(mask=np.ones((3, 5), int)), r"mask must be boolean"),
    # online_softmax
    (lambda: ref.online_softmax(np.ones(4), 0), r"block_size must be a positive integer, got 0"),
    (lambda: ref.online_softmax(np.ones(4), 1.5), r"block_size must be a positive integer"),
    (lambda: ref.online_softmax(np.ones(4), True), r"block_size must be a positive integer"),
    (lambda: ref.online_softmax(np.float64(2.0), 2), r"at least one axis .* got shape \(\)"),
    (lambda: ref.online_softmax(np.ones(3) * 1j, 2), r"x must be an array of real numbers"),
    # tiled_attention
    (_tiled(K=np.ones((5, 3))), r"Q's d_k \(4\) must equal K's d_k \(3\)"),
    (_tiled(V=np.ones((6, 6))), r"K has 5 \(shape \(5, 4\)\), V has 6"),
    (_tiled(Q=np.ones(4)), r"Q must have shape \(\.\.\., n_q, d_k\)"),
    (_tiled(Q=np.ones((2, 3, 4)), K=np.ones((3, 5, 4))), r"Q has batch shape \(2,\), K has"),
    (_tiled(block_size=0), r"block_size must be a positive integer, got 0"),
    (_tiled(block_size=None), r"block_size must be a positive integer, got None"),
    (_tiled(q_block_size=-1), r"q_block_size must be a positive integer, got -1"),
    (_tiled(q_block_size=2.5), r"q_block_size must be a positive integer, got 2\.5"),
    (_tiled(mask=np.ones((4, 5), bool)), r"mask of shape \(4, 5\) does not broadcast .*\(3, 5\)"),
    (_tiled(mask=np.ones((3, 5))), r"mask must be boolean .* got dtype float64"),
    (_tiled(scale=np.inf), r"scale must be a finite real number, got inf"),
    (_tiled(scale="0.5"), r"scale must be a finite real number, got '0\.5'"),
    (_tiled(scale=1j), r"scale must be a finite real number"),
    (_tiled(scale=True), r"scale must be a finite real number, got True"),
]


@pytest.mark.parametrize(("call", "match"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_input_raises_a_value_error_naming_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_large_scale_is_not_turned_into_inf_in_float16():
    Q = np.full((2, 4), 1e-3, dtype=np.float16)  # scale * Q = 100: fine in float16
    K, V = np.ones((3, 4), dtype=np.float16), np.arange(15, dtype=np.float16).reshape(3, 5)
    with no_fp_warnings():
        output = ref.tiled_attention(Q, K, V, 2, scale=1e5)
    assert_close(output, np.broadcast_to(V.mean(axis=0), (2, 5)), "uniform weights", np.float16)


@pytest.mark.parametrize("q_block_size", [None, 3, 5])
@pytest.mark.parametrize("block_size", [2, 4, 20])
def test_tiled_attention_with_ragged_blocks_and_batch_dims_from_v_and_mask(
    block_size, q_block_size
):
    """Last query and key blocks shorter than the others; batch dims that only V (and, in
    part, the mask) carry, so the scores must be broadcast to them."""
    rng = np.random.default_rng(13)
    Q = rng.standard_normal((7, 3))  # n_q 7, d_k 3
    K = rng.standard_normal((9, 3))  # n_k 9
    V = rng.standard_normal((2, 3, 9, 4))  # batch (2, 3), d_v 4
    mask = rng.random((3, 7, 9)) < 0.5  # batch (3,): broadcasts to (2, 3)
    mask[1, 4] = False  # one fully masked query
    expected, _ = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    with no_fp_warnings():
        output = ref.tiled_attention(Q, K, V, block_size, mask=mask, q_block_size=q_block_size)
    assert output.shape == (2, 3, 7, 4)
    assert_close(output, expected, f"block_size={block_size}, q_block_size={q_block_size}")
