"""Property tests of :mod:`attention_course.reference`, the implementation the grader trusts.

Every vectorised function is compared with the naive loops of ``tests/loop_reference.py``
on shapes drawn by hypothesis, in which ``n_q``, ``n_k``, ``d_k`` and ``d_v`` (and
``d_model``, ``d_model_z``) are always different, so a swapped axis cannot go unnoticed.
Leading batch dimensions (zero to two of them) are drawn too, and Q, K, V, X, Z and the masks
get batch shapes that only *broadcast* to each other (a dimension dropped or set to 1).

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``.

Random numbers come from ``np.random.default_rng(seed)`` with the seed drawn by hypothesis, so
a failing example is reproducible from the seed hypothesis prints.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings

import loop_reference as loop
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from strategies import BATCH_SHAPES, SEEDS, broadcast_to, distinct_sizes

from attention_course import reference as ref

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
TOL = 1e-12  # float64 agreement with the loop version
# Tolerance of a float16 / float32 result against the float64 loop version on the same inputs.
LOW_PRECISION_TOL = {np.float16: 2e-2, np.float32: 1e-5, np.float64: TOL}

# The suite must stay fast (< 20 s on 2 cores): few, small examples, no per-example deadline.
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# Strategies and helpers
# --------------------------------------------------------------------------------------------


def batch_of(*arrays: np.ndarray) -> tuple[int, ...]:
    """The broadcast batch shape (all but the last two axes) of several arrays."""
    return np.broadcast_shapes(*(a.shape[:-2] for a in arrays))


@st.composite
def attention_inputs(draw, *, broadcast: bool = True, batch=BATCH_SHAPES, magnitude: float = 1.0):
    """Q (..., n_q, d_k), K (..., n_k, d_k), V (..., n_k, d_v) with n_q, n_k, d_k, d_v distinct."""
    n_q, n_k, d_k, d_v = draw(distinct_sizes(4))
    full = draw(batch)
    q_b, k_b, v_b = (draw(broadcast_to(full)) if broadcast else full for _ in range(3))
    rng = np.random.default_rng(draw(SEEDS))
    Q = magnitude * rng.standard_normal((*q_b, n_q, d_k))
    K = magnitude * rng.standard_normal((*k_b, n_k, d_k))
    V = rng.standard_normal((*v_b, n_k, d_v))
    return Q, K, V


@st.composite
def random_masks(draw, batch: tuple[int, ...], n_q: int, n_k: int, rows_may_broadcast=True):
    """A boolean mask that broadcasts to (*batch, n_q, n_k), often with fully masked rows."""
    mask_batch = draw(broadcast_to(batch))
    rows = draw(st.sampled_from((n_q, 1))) if rows_may_broadcast else n_q
    p_attend = draw(st.sampled_from((0.0, 0.3, 0.7, 1.0)))
    rng = np.random.default_rng(draw(SEEDS))
    mask = rng.random((*mask_batch, rows, n_k)) < p_attend  # (..., n_q or 1, n_k)
    if draw(st.booleans()):
        mask[..., rng.integers(rows), :] = False  # one query row sees no key at all
    return mask


@st.composite
def cross_inputs(draw):
    """X, Z, W_q, W_k, W_v with n_q, n_k, d_k, d_v, d_model, d_model_z all different."""
    n_q, n_k, d_k, d_v, d_model, d_model_z = draw(distinct_sizes(6, max_size=8))
    full = draw(BATCH_SHAPES)
    x_b, z_b = draw(broadcast_to(full)), draw(broadcast_to(full))
    rng = np.random.default_rng(draw(SEEDS))
    X = rng.standard_normal((*x_b, n_q, d_model))
    Z = rng.standard_normal((*z_b, n_k, d_model_z))
    W_q = rng.standard_normal((d_model, d_k))
    W_k = rng.standard_normal((d_model_z, d_k))
    W_v = rng.standard_normal((d_model_z, d_v))
    return X, Z, W_q, W_k, W_v


@st.composite
def self_inputs(draw):
    """X (..., n, d_model), W_q, W_k (d_model, d_k), W_v (d_model, d_v); n, d_model, d_k, d_v
    all different."""
    n, d_model, d_k, d_v = draw(distinct_sizes(4))
    batch = draw(BATCH_SHAPES)
    rng = np.random.default_rng(draw(SEEDS))
    X = rng.standard_normal((*batch, n, d_model))
    W_q = rng.standard_normal((d_model, d_k))
    W_k = rng.standard_normal((d_model, d_k))
    W_v = rng.standard_normal((d_model, d_v))
    return X, W_q, W_k, W_v


def assert_same(actual, expected, what: str, tol: float = TOL) -> None:
    """Same shape, float64 values within ``tol`` of the loop version's."""
    assert np.shape(actual) == np.shape(expected), (
        f"{what}: expected shape {np.shape(expected)}, got {np.shape(actual)}"
    )
    assert_allclose(
        actual, expected, rtol=tol, atol=tol, err_msg=f"{what} differs from the loop version"
    )


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


# --------------------------------------------------------------------------------------------
# 1. Agreement with the loop version (float64, within 1e-12)
# --------------------------------------------------------------------------------------------


@FAST
@given(attention_inputs())
def test_dot_product_scores_matches_loop(qkv):
    Q, K, _ = qkv
    assert_same(ref.dot_product_scores(Q, K), loop.dot_product_scores(Q, K), "scores")


@FAST
@given(attention_inputs(), st.sampled_from((int, np.int64)))
def test_scale_scores_matches_loop(qkv, int_type):
    Q, K, _ = qkv
    scores = Q @ np.swapaxes(K, -1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    d_k = int_type(Q.shape[-1])
    assert_same(ref.scale_scores(scores, d_k), loop.scale_scores(scores, int(d_k)), "scaled")


@FAST
@given(attention_inputs(), st.sampled_from((1.0, 30.0, 300.0)), st.data())
def test_softmax_matches_loop_with_masked_entries(qkv, spread, data):
    Q, K, _ = qkv
    n_q, n_k = Q.shape[-2], K.shape[-2]
    x = spread * ref.dot_product_scores(Q, K)  # (..., n_q, n_k)
    mask = data.draw(random_masks(x.shape[:-2], n_q, n_k), label="mask")
    x = np.where(mask, x, -np.inf)  # some entries, and some whole rows, are -inf
    assert_same(ref.softmax(x), loop.softmax(x), "softmax(x)")
    assert_same(ref.softmax(x, axis=-1), loop.softmax(x), "softmax(x, axis=-1)")


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                  elements=st.floats(-50, 50)), st.data())  # fmt: skip
def test_softmax_along_any_axis_matches_loop(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    # The loop version works on the last axis: move `axis` there and back.
    expected = np.moveaxis(loop.softmax(np.moveaxis(x, axis, -1)), -1, axis)
    assert_same(ref.softmax(x, axis=axis), expected, f"softmax(x, axis={axis})")


@FAST
@given(attention_inputs())
def test_weighted_sum_matches_loop(qkv):
    Q, K, V = qkv
    weights = loop.softmax(loop.dot_product_scores(Q, K))  # (..., n_q, n_k)
    assert_same(ref.weighted_sum(weights, V), loop.weighted_sum(weights, V), "weighted sum")


def assert_attention_matches_loop(Q, K, V, mask=None, scale=None, tol=TOL):
    kwargs = {} if scale is None else {"scale": scale}
    output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask, **kwargs)
    expected_output, expected_weights = loop.scaled_dot_product_attention(
        Q, K, V, mask=mask, scale=scale
    )
    assert_same(weights, expected_weights, "attention weights", tol)
    assert_same(output, expected_output, "attention output", tol)


@FAST
@given(attention_inputs())
def test_attention_matches_loop_without_mask(qkv):
    assert_attention_matches_loop(*qkv)


@FAST
@given(attention_inputs(), st.data())
def test_attention_matches_loop_with_random_mask(qkv, data):
    Q, K, V = qkv
    mask = data.draw(random_masks(batch_of(Q, K, V), Q.shape[-2], K.shape[-2]), label="mask")
    assert_attention_matches_loop(Q, K, V, mask=mask)


@FAST
@given(attention_inputs())
def test_attention_matches_loop_with_causal_mask(qkv):
    Q, K, V = qkv
    n_q, n_k = Q.shape[-2], K.shape[-2]  # always different here: n_q > n_k and n_q < n_k
    output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=ref.causal_mask(n_q, n_k))
    expected = loop.scaled_dot_product_attention(Q, K, V, mask=loop.causal_mask(n_q, n_k))
    assert_same(weights, expected[1], "causal attention weights")
    assert_same(output, expected[0], "causal attention output")


@FAST
@given(
    attention_inputs(broadcast=False, batch=st.lists(st.integers(1, 3), min_size=1, max_size=2)),
    st.data(),
)
def test_attention_matches_loop_with_padding_mask(qkv, data):
    Q, K, V = qkv
    n_batch, n_k = K.shape[-3], K.shape[-2]  # the mask broadcasts over any dims before batch
    lengths = data.draw(
        st.lists(st.integers(0, n_k), min_size=n_batch, max_size=n_batch), label="lengths"
    )
    output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=ref.padding_mask(lengths, n_k))
    expected = loop.scaled_dot_product_attention(Q, K, V, mask=loop.padding_mask(lengths, n_k))
    assert_same(weights, expected[1], "padded attention weights")
    assert_same(output, expected[0], "padded attention output")


@FAST
@given(attention_inputs(), st.floats(-4, 4), st.data())
def test_attention_honours_an_explicit_scale(qkv, scale, data):
    Q, K, V = qkv
    mask = data.draw(st.none() | random_masks(batch_of(Q, K, V), Q.shape[-2], K.shape[-2]))
    assert_attention_matches_loop(Q, K, V, mask=mask, scale=scale)


@FAST
@given(cross_inputs(), st.booleans(), st.data())
def test_cross_attention_matches_loop(inputs, with_mask, data):
    X, Z, *_ = inputs
    mask = None
    if with_mask:
        mask = data.draw(random_masks(batch_of(X, Z), X.shape[-2], Z.shape[-2]), label="mask")
    output, weights = ref.cross_attention(*inputs, mask=mask)
    expected_output, expected_weights = loop.cross_attention(*inputs, mask=mask)
    assert_same(weights, expected_weights, "cross-attention weights")
    assert_same(output, expected_output, "cross-attention output")


@FAST
@given(self_inputs(), st.sampled_from(("none", "causal", "random")), st.data())
def test_self_attention_matches_loop(inputs, mask_kind, data):
    X = inputs[0]
    n = X.shape[-2]
    mask = {
        "none": lambda: None,
        "causal": lambda: ref.causal_mask(n),
        "random": lambda: data.draw(random_masks(X.shape[:-2], n, n), label="mask"),
    }[mask_kind]()
    output, weights = ref.self_attention(*inputs, mask=mask)
    expected_output, expected_weights = loop.self_attention(*inputs, mask=mask)
    assert_same(weights, expected_weights, f"self-attention weights (mask: {mask_kind})")
    assert_same(output, expected_output, f"self-attention output (mask: {mask_kind})")


def test_array_likes_are_accepted():
    Q = [[1.0, 0.0, 2.0], [0.5, -1.0, 0.0]]  # n_q = 2, d_k = 3
    K = [[1.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 3.0]]  # n_k = 4
    V = [[1.0], [2.0], [3.0], [4.0]]  # d_v = 1
    output, weights = ref.scaled_dot_product_attention(Q, K, V)
    expected_output, expected_weights = loop.scaled_dot_product_attention(Q, K, V)
    assert_same(weights, expected_weights, "weights from nested lists")
    assert_same(output, expected_output, "output from nested lists")


# --------------------------------------------------------------------------------------------
# 2. Mathematical properties
# --------------------------------------------------------------------------------------------


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5),
                  elements=st.floats(-700, 700)), st.data())  # fmt: skip
def test_softmax_slices_are_non_negative_and_sum_to_one(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1), label="axis")
    p = ref.softmax(x, axis=axis)
    assert p.shape == x.shape, f"softmax changed the shape {x.shape} to {p.shape}"
    assert np.all(p >= 0), f"softmax gave negative entries: {p[p < 0]}"
    assert_allclose(p.sum(axis=axis), 1.0, rtol=0, atol=TOL, err_msg=f"sums along axis {axis}")


@FAST
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
                  elements=st.floats(-50, 50)), SEEDS)  # fmt: skip
def test_softmax_is_invariant_to_a_per_row_shift(x, seed):
    shift = np.random.default_rng(seed).uniform(-100, 100, size=(*x.shape[:-1], 1))  # (..., 1)
    assert_allclose(
        ref.softmax(x + shift),
        ref.softmax(x),
        rtol=0,
        atol=TOL,
        err_msg="adding a constant to every entry of a row changed that row's softmax",
    )


@FAST
@given(attention_inputs(), st.booleans(), st.data())
def test_attention_is_equivariant_to_permuting_the_keys(qkv, with_mask, data):
    Q, K, V = qkv
    n_q, n_k = Q.shape[-2], K.shape[-2]
    perm = np.array(data.draw(st.permutations(range(n_k)), label="perm"))
    mask = data.draw(random_masks(batch_of(Q, K, V), n_q, n_k), label="mask") if with_mask else None
    output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    permuted_output, permuted_weights = ref.scaled_dot_product_attention(
        Q, K[..., perm, :], V[..., perm, :], mask=None if mask is None else mask[..., perm]
    )
    assert_allclose(
        permuted_output, output, rtol=0, atol=TOL,
        err_msg="permuting the rows of K and V together changed the output",
    )  # fmt: skip
    assert_allclose(
        permuted_weights, weights[..., perm], rtol=0, atol=TOL,
        err_msg="permuting the keys did not permute the weight columns the same way",
    )  # fmt: skip


@FAST
@given(self_inputs(), st.booleans(), st.data())
def test_self_attention_is_equivariant_to_permuting_the_tokens(inputs, with_mask, data):
    X, W_q, W_k, W_v = inputs
    n = X.shape[-2]
    perm = np.array(data.draw(st.permutations(range(n)), label="perm"))
    mask = None
    if with_mask:
        mask = data.draw(random_masks(X.shape[:-2], n, n, rows_may_broadcast=False), label="mask")
    output, weights = ref.self_attention(X, W_q, W_k, W_v, mask=mask)
    permuted_mask = None if mask is None else mask[..., perm, :][..., perm]
    permuted_output, permuted_weights = ref.self_attention(
        X[..., perm, :], W_q, W_k, W_v, mask=permuted_mask
    )
    assert_allclose(
        permuted_output, output[..., perm, :], rtol=0, atol=TOL,
        err_msg="permuting the tokens did not permute the output rows the same way",
    )  # fmt: skip
    assert_allclose(
        permuted_weights, weights[..., perm, :][..., perm], rtol=0, atol=TOL,
        err_msg="permuting the tokens did not permute the weights' rows and columns",
    )  # fmt: skip


@FAST
@given(self_inputs(), st.data())
def test_causal_self_attention_ignores_later_tokens(inputs, data):
    X, W_q, W_k, W_v = inputs
    n = X.shape[-2]
    t = data.draw(st.integers(1, n), label="t")
    changed = X.copy()
    changed[..., t:, :] = np.random.default_rng(t).standard_normal(changed[..., t:, :].shape)
    output, _ = ref.self_attention(X, W_q, W_k, W_v, mask=ref.causal_mask(n))
    changed_output, _ = ref.self_attention(changed, W_q, W_k, W_v, mask=ref.causal_mask(n))
    assert_allclose(
        changed_output[..., :t, :], output[..., :t, :], rtol=0, atol=TOL,
        err_msg=f"with a causal mask, changing tokens {t}.. changed the outputs of tokens < {t}",
    )  # fmt: skip


@FAST
@given(
    attention_inputs(broadcast=False, batch=st.lists(st.integers(1, 3), min_size=1, max_size=2)),
    st.data(),
)
def test_padded_keys_get_zero_weight_and_do_not_matter(qkv, data):
    Q, K, V = qkv
    n_batch, n_k = K.shape[-3], K.shape[-2]
    lengths = data.draw(st.lists(st.integers(0, n_k), min_size=n_batch, max_size=n_batch))
    mask = ref.padding_mask(lengths, n_k)  # (batch, 1, n_k)
    output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    # Overwrite every padded key and value with garbage: nothing may change.
    padded = np.broadcast_to(~mask[..., 0, :, None], K.shape[:-2] + (n_k, 1))  # (..., n_k, 1)
    garbage_output, garbage_weights = ref.scaled_dot_product_attention(
        Q, np.where(padded, 1e3, K), np.where(padded, -1e3, V), mask=mask
    )
    for b, length in enumerate(lengths):
        assert np.all(weights[..., b, :, length:] == 0), f"sequence {b} attends to padding"
        expected_total = 1.0 if length else 0.0  # length 0: a fully masked sequence
        assert_allclose(weights[..., b, :, :].sum(-1), expected_total, atol=TOL)
    assert_allclose(garbage_output, output, rtol=0, atol=TOL, err_msg="padding changed output")
    assert_allclose(garbage_weights, weights, rtol=0, atol=TOL, err_msg="padding changed weights")


@FAST
@given(attention_inputs())
def test_default_scale_is_one_over_sqrt_d_k(qkv):
    Q, K, V = qkv
    default = ref.scaled_dot_product_attention(Q, K, V)
    explicit = ref.scaled_dot_product_attention(Q, K, V, scale=1 / math.sqrt(Q.shape[-1]))
    for name, got, expected in zip(("output", "weights"), default, explicit, strict=True):
        assert_allclose(
            got, expected, rtol=0, atol=TOL, err_msg=f"scale=None vs scale=1/sqrt(d_k): {name}"
        )


@QUICK
@given(attention_inputs())
def test_scale_zero_gives_uniform_weights(qkv):
    Q, K, V = qkv
    n_k = K.shape[-2]
    output, weights = ref.scaled_dot_product_attention(Q, K, V, scale=0.0)
    assert_allclose(weights, np.full(weights.shape, 1 / n_k), rtol=0, atol=TOL)
    expected_output = np.broadcast_to(V.mean(axis=-2, keepdims=True), output.shape)
    assert_allclose(output, expected_output, rtol=0, atol=TOL, err_msg="scale=0: mean of V")


# --------------------------------------------------------------------------------------------
# 3. Inputs are never modified, and no output is a view of an input
# --------------------------------------------------------------------------------------------


def _mutation_cases(dtype):
    rng = np.random.default_rng(0)
    n_q, n_k, d_k, d_v, d_model, d_model_z = 2, 3, 4, 5, 6, 7

    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)

    Q, K, V = arr(8, n_q, d_k), arr(8, n_k, d_k), arr(8, n_k, d_v)
    x = arr(8, n_q, n_k)
    x[0, 1, :] = -np.inf  # exercises softmax's all -inf branch
    x[1, 0, 2] = -np.inf
    mask = rng.random((8, n_q, n_k)) < 0.6
    mask[2, 0, :] = False
    W_q, W_k, W_v = arr(d_model, d_k), arr(d_model, d_k), arr(d_model, d_v)
    W_kz, W_vz = arr(d_model_z, d_k), arr(d_model_z, d_v)
    X, Z = arr(8, n_q, d_model), arr(8, n_k, d_model_z)
    Xs = arr(8, n_k, d_model)  # self-attention: n_q = n_k = 3
    self_mask = rng.random((8, n_k, n_k)) < 0.5
    return {
        "dot_product_scores": (ref.dot_product_scores, (Q, K), {}),
        "scale_scores": (ref.scale_scores, (x, d_k), {}),
        "scale_scores_d_k_1": (ref.scale_scores, (x, 1), {}),  # dividing by 1 still copies
        "softmax": (ref.softmax, (x,), {}),
        "softmax_axis_0": (ref.softmax, (x,), {"axis": 0}),
        "weighted_sum": (ref.weighted_sum, (np.abs(arr(8, n_q, n_k)), V), {}),
        "scaled_dot_product_attention": (
            ref.scaled_dot_product_attention,
            (Q, K, V),
            {"mask": mask, "scale": 0.7},
        ),
        "cross_attention": (ref.cross_attention, (X, Z, W_q, W_kz, W_vz), {"mask": mask}),
        "self_attention": (ref.self_attention, (Xs, W_q, W_k, W_v), {"mask": self_mask}),
        "padding_mask": (ref.padding_mask, (np.array([0, 3, 1, 2, 2, 1, 0, 3]), n_k), {}),
    }


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(_mutation_cases(np.float64)))
def test_inputs_are_not_modified_and_outputs_are_fresh(name, dtype):
    fn, args, kwargs = _mutation_cases(dtype)[name]
    inputs = {f"argument {i}": a for i, a in enumerate(args)} | kwargs
    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
    copies = {k: v.copy() for k, v in arrays.items()}
    result = fn(*args, **kwargs)
    for key, original in arrays.items():
        assert original.dtype == copies[key].dtype, f"{name} changed the dtype of its {key}"
        assert_array_equal(original, copies[key], err_msg=f"{name} modified its {key} in place")
    outputs = result if isinstance(result, tuple) else (result,)
    for out in outputs:
        for key, original in arrays.items():
            assert not np.shares_memory(out, original), (
                f"{name} returned a view of its {key}: writing to the result would change it"
            )


# --------------------------------------------------------------------------------------------
# 4. dtypes: float16 / float32 / float64 preserved, integers computed in float64
# --------------------------------------------------------------------------------------------


def _dtype_cases(dtype):
    """(reference call, loop call) pairs on the same inputs, rounded to ``dtype``."""
    rng = np.random.default_rng(1)
    n_q, n_k, d_k, d_v, d_model = 2, 3, 4, 5, 6

    def arr(*shape):
        values = rng.uniform(-1, 1, shape)
        if np.issubdtype(dtype, np.integer):
            values = rng.integers(-3, 4, shape)
        return values.astype(dtype)

    Q, K, V, x = arr(2, n_q, d_k), arr(2, n_k, d_k), arr(2, n_k, d_v), arr(2, n_q, n_k)
    X, W_q, W_k, W_v = arr(2, n_q, d_model), arr(d_model, d_k), arr(d_model, d_k), arr(d_model, d_v)
    Z = arr(2, n_k, d_model + 1)
    W_kz, W_vz = arr(d_model + 1, d_k), arr(d_model + 1, d_v)
    weights = np.abs(x).astype(dtype)
    mask = np.array([[True, False, True], [False, False, False]])  # query 1 sees nothing
    return {
        "dot_product_scores": lambda m: m.dot_product_scores(Q, K),
        "scale_scores": lambda m: m.scale_scores(x, d_k),
        "softmax": lambda m: m.softmax(x),
        "weighted_sum": lambda m: m.weighted_sum(weights, V),
        "scaled_dot_product_attention": lambda m: m.scaled_dot_product_attention(
            Q, K, V, mask=mask
        ),
        "cross_attention": lambda m: m.cross_attention(X, Z, W_q, W_kz, W_vz),
        "self_attention": lambda m: m.self_attention(X, W_q, W_k, W_v),
    }


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(_dtype_cases(np.float64)))
def test_float_dtype_is_preserved_and_values_are_right(name, dtype):
    call = _dtype_cases(dtype)[name]
    tol = LOW_PRECISION_TOL[dtype]
    with no_fp_warnings():
        got = _as_tuple(call(ref))
    expected = _as_tuple(call(loop))  # float64 loops on the same (rounded) numbers
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == dtype, f"{name} turned {np.dtype(dtype).name} input into {g.dtype}"
        assert_allclose(g, e, rtol=tol, atol=tol, err_msg=f"{name} in {np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype", (np.int32, np.int64, np.bool_), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(_dtype_cases(np.float64)))
def test_integer_and_bool_inputs_are_computed_in_float64(name, dtype):
    call = _dtype_cases(dtype)[name]
    got = _as_tuple(call(ref))
    for g, e in zip(got, _as_tuple(call(loop)), strict=True):
        assert g.dtype == np.float64, f"{name} turned {np.dtype(dtype).name} input into {g.dtype}"
        assert_same(g, e, f"{name} on {np.dtype(dtype).name} input")


@pytest.mark.parametrize(
    ("dtypes", "expected"),
    [
        ((np.float16, np.float32, np.float16), np.float32),
        ((np.float32, np.float32, np.float64), np.float64),
        ((np.int64, np.float32, np.float32), np.float64),
    ],
)
def test_mixed_dtypes_promote_like_numpy(dtypes, expected):
    rng = np.random.default_rng(2)
    shapes = ((2, 4), (3, 4), (3, 5))  # (n_q, d_k), (n_k, d_k), (n_k, d_v)
    Q, K, V = (rng.integers(-2, 3, s).astype(d) for s, d in zip(shapes, dtypes, strict=True))
    output, weights = ref.scaled_dot_product_attention(Q, K, V)
    assert (output.dtype, weights.dtype) == (expected, expected)
    expected_output, _ = loop.scaled_dot_product_attention(Q, K, V)
    tol = LOW_PRECISION_TOL[expected]
    assert_allclose(output, expected_output, rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------
# 5. Extreme magnitudes, -inf rows and fully masked queries: finite, right, and silent
# --------------------------------------------------------------------------------------------


@FAST
@given(
    hnp.arrays(
        st.sampled_from((np.float32, np.float64)),
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(-1e4, 1e4, width=32),
    )
)
def test_softmax_of_huge_scores_is_finite_right_and_silent(x):
    with no_fp_warnings():
        p = ref.softmax(x)
    tol = LOW_PRECISION_TOL[x.dtype.type]
    assert p.dtype == x.dtype
    assert np.all(np.isfinite(p)), f"softmax gave non-finite values for |x| <= 1e4: {p}"
    assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=tol, err_msg="rows must sum to 1")
    assert_allclose(p, loop.softmax(x), rtol=0, atol=tol, err_msg="vs the loop version")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    ("x", "expected"),
    [
        ([1e4, -1e4, 0.0], [1.0, 0.0, 0.0]),  # exp(1e4) overflows without the max shift
        ([-1e4, -1e4], [0.5, 0.5]),  # exp(-1e4) underflows to 0/0 without it
        ([1e4, 1e4, -np.inf], [0.5, 0.5, 0.0]),
    ],
)
def test_softmax_of_huge_scores_examples(x, expected, dtype):
    with no_fp_warnings():
        p = ref.softmax(np.array(x, dtype=dtype))
    assert_allclose(p, expected, rtol=0, atol=1e-6, err_msg=f"softmax({x}) in {dtype.__name__}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_of_all_minus_inf_slices_is_zero(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4)).astype(dtype)  # (batch, n_q, n_k)
    x[0, 1, :] = -np.inf  # a whole row
    x[1, 2, 1:] = -np.inf  # all but one entry
    with no_fp_warnings():
        p = ref.softmax(x)
        p_axis0 = ref.softmax(np.full((3, 2), -np.inf, dtype=dtype), axis=0)
    assert not np.any(np.isnan(p)), "an all -inf row gave NaN"
    assert_array_equal(p[0, 1], 0.0, err_msg="an all -inf row must give zeros")
    assert_array_equal(p[1, 2], [1.0, 0.0, 0.0, 0.0], err_msg="a single finite entry gets all")
    assert_array_equal(p_axis0, 0.0, err_msg="all -inf columns (axis=0) must give zeros")
    assert_allclose(p, loop.softmax(x), rtol=0, atol=LOW_PRECISION_TOL[dtype])


@FAST
@given(attention_inputs(magnitude=1e3), st.data())
def test_attention_with_huge_scores_is_finite_and_silent(qkv, data):
    Q, K, V = qkv  # entries ~1e3: scores ~1e6, exp(score) overflows without the max shift
    mask = data.draw(st.none() | random_masks(batch_of(Q, K, V), Q.shape[-2], K.shape[-2]))
    with no_fp_warnings():
        output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    assert np.all(np.isfinite(output)) and np.all(np.isfinite(weights))
    # An error of eps * |score| ~ 1e-10 in a score moves a weight by that much relatively.
    assert_attention_matches_loop(Q, K, V, mask=mask, tol=1e-8)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_attention_with_huge_scores_picks_the_best_key(dtype):
    rng = np.random.default_rng(4)
    n_k, d_k, d_v = 5, 4, 2  # n_q = 3: one query per entry of `best`
    K = rng.standard_normal((n_k, d_k))
    K /= np.linalg.norm(K, axis=-1, keepdims=True)  # unit keys: q = c k_j scores key j highest
    best = np.array([4, 0, 2])
    Q = 1e4 * K[best]  # (n_q, d_k); scores ~ 5e3, far apart
    V = rng.standard_normal((n_k, d_v))
    with no_fp_warnings():
        output, weights = ref.scaled_dot_product_attention(
            Q.astype(dtype), K.astype(dtype), V.astype(dtype)
        )
    assert_allclose(weights, np.eye(n_k)[best], rtol=0, atol=1e-6, err_msg="one-hot weights")
    assert_allclose(output, V.astype(dtype)[best], rtol=0, atol=1e-6, err_msg="output = V[best]")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_fully_masked_query_gets_zero_weights_and_output(dtype):
    rng = np.random.default_rng(5)
    n_q, n_k, d_k, d_v = 3, 4, 5, 2
    Q = rng.standard_normal((2, n_q, d_k)).astype(dtype)
    K = rng.standard_normal((2, n_k, d_k)).astype(dtype)
    V = rng.standard_normal((2, n_k, d_v)).astype(dtype)
    mask = np.ones((2, n_q, n_k), dtype=bool)
    mask[0, 1, :] = False  # query 1 of batch 0 may attend to nothing
    mask[1, :, 2:] = False  # batch 1: a padding-like mask
    with no_fp_warnings():
        output, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
        all_masked, all_weights = ref.scaled_dot_product_attention(
            Q, K, V, mask=~np.ones_like(mask)
        )
    assert not np.isnan(output).any() and not np.isnan(weights).any(), "fully masked -> NaN"
    assert_array_equal(weights[0, 1], 0.0, err_msg="a fully masked query must get zero weights")
    assert_array_equal(output[0, 1], 0.0, err_msg="a fully masked query must output zeros")
    assert_array_equal(all_weights, 0.0, err_msg="everything masked: all weights zero")
    assert_array_equal(all_masked, 0.0, err_msg="everything masked: all outputs zero")
    assert_array_equal(weights[1, :, 2:], 0.0, err_msg="masked keys must get zero weight")
    expected_output, expected_weights = loop.scaled_dot_product_attention(Q, K, V, mask=mask)
    tol = LOW_PRECISION_TOL[dtype]
    assert_allclose(weights, expected_weights, rtol=tol, atol=tol)
    assert_allclose(output, expected_output, rtol=tol, atol=tol)


# --------------------------------------------------------------------------------------------
# 6. Masks
# --------------------------------------------------------------------------------------------


@FAST
@given(distinct_sizes(2, max_size=12), st.sampled_from((int, np.int64)))
def test_causal_mask_is_top_left_aligned_tril(sizes, int_type):
    n_q, n_k = sizes  # n_q < n_k and n_q > n_k both occur
    mask = ref.causal_mask(int_type(n_q), int_type(n_k))
    expected = np.tril(np.ones((n_q, n_k), dtype=bool))  # PyTorch's is_causal=True
    assert mask.dtype == np.bool_, f"causal_mask must be boolean, got {mask.dtype}"
    assert_array_equal(mask, expected, err_msg=f"causal_mask({n_q}, {n_k})", strict=True)
    assert_array_equal(mask, loop.causal_mask(n_q, n_k), strict=True)
    assert_array_equal(ref.causal_mask(n_q), np.tril(np.ones((n_q, n_q), bool)), strict=True)


def test_causal_mask_examples():
    assert_array_equal(
        ref.causal_mask(2, 4), [[1, 0, 0, 0], [1, 1, 0, 0]], err_msg="n_q < n_k: top-left"
    )
    assert_array_equal(
        ref.causal_mask(4, 2), [[1, 0], [1, 1], [1, 1], [1, 1]], err_msg="n_q > n_k: top-left"
    )


@FAST
@given(st.integers(1, 8), st.data())
def test_padding_mask_matches_loop(n_k, data):
    lengths = data.draw(st.lists(st.integers(0, n_k), min_size=0, max_size=4), label="lengths")
    dtype = data.draw(st.sampled_from((np.int64, np.int32, np.uint8)), label="dtype")
    mask = ref.padding_mask(np.array(lengths, dtype=dtype), n_k)
    assert mask.dtype == np.bool_
    assert_array_equal(mask, loop.padding_mask(lengths, n_k), strict=True)


def test_padding_mask_example():
    mask = ref.padding_mask([0, 2, 3], 3)
    expected = np.array([[[0, 0, 0]], [[1, 1, 0]], [[1, 1, 1]]], dtype=bool)  # (batch, 1, n_k)
    assert_array_equal(mask, expected, strict=True)


# --------------------------------------------------------------------------------------------
# 7. Every ValueError, with a message that names the argument and the sizes involved
# --------------------------------------------------------------------------------------------


def _ones(*shape, dtype=float):
    return np.ones(shape, dtype=dtype)


def _pattern(*fragments: str) -> str:
    """A regex matching the literal ``fragments`` in this order."""
    return ".*".join(re.escape(f) for f in fragments)


# Sizes used below, all different: n_q 2, n_k 3, d_k 4, d_v 5, d_model 6, d_model_z 7,
# batch 8 vs 9.
_Q, _K, _V = _ones(2, 4), _ones(3, 4), _ones(3, 5)
_X, _Z = _ones(2, 6), _ones(3, 7)
_W_q, _W_kz, _W_vz = _ones(6, 4), _ones(7, 4), _ones(7, 5)
_Xs, _W_k, _W_v = _ones(3, 6), _ones(6, 4), _ones(6, 5)  # self-attention: n = 3, d_model = 6
_OBJ = np.array([[1.0, 2.0]], dtype=object)
_sdpa = ref.scaled_dot_product_attention

VALUE_ERRORS = [
    # dot_product_scores
    ("scores: Q/K d_k", lambda: ref.dot_product_scores(_Q, _ones(3, 6)),
     ("Q's d_k (4)", "K's d_k (6)")),
    ("scores: Q 1-D", lambda: ref.dot_product_scores(_ones(4), _K),
     ("Q must have shape (..., n_q, d_k)", "(4,)")),
    ("scores: K 1-D", lambda: ref.dot_product_scores(_Q, _ones(4)),
     ("K must have shape (..., n_k, d_k)", "(4,)")),
    ("scores: batch", lambda: ref.dot_product_scores(_ones(8, 2, 4), _ones(9, 3, 4)),
     ("do not broadcast", "Q has batch shape (8,)", "K has batch shape (9,)")),
    ("scores: object Q", lambda: ref.dot_product_scores(_OBJ, _K), ("Q must be", "object")),
    ("scores: complex K", lambda: ref.dot_product_scores(_Q, _K * 1j), ("K must", "complex128")),
    ("scores: str Q", lambda: ref.dot_product_scores(np.array([["a"]]), _K), ("Q must", "<U1")),
    # scale_scores
    *[
        (f"scale_scores: d_k={d_k!r}", lambda d_k=d_k: ref.scale_scores(_ones(2, 3), d_k),
         ("d_k must be a positive integer", repr(d_k)))
        for d_k in (0, -3, 4.0, True, "4", None, np.float64(4.0))
    ],
    ("scale_scores: object scores", lambda: ref.scale_scores(_OBJ, 4), ("scores", "object")),
    # softmax
    ("softmax: axis 2", lambda: ref.softmax(_ones(2, 3), axis=2),
     ("axis 2 is out of range", "(2, 3)")),
    ("softmax: axis -3", lambda: ref.softmax(_ones(2, 3), axis=-3),
     ("axis -3 is out of range", "(2, 3)")),
    ("softmax: object x", lambda: ref.softmax(_OBJ), ("x must be", "object")),
    # weighted_sum
    ("weighted_sum: n_k", lambda: ref.weighted_sum(_ones(2, 3), _ones(4, 5)),
     ("weights' n_k (3)", "V's n_k (4)")),
    ("weighted_sum: weights 1-D", lambda: ref.weighted_sum(_ones(3), _V),
     ("weights must have shape (..., n_q, n_k)", "(3,)")),
    ("weighted_sum: V 1-D", lambda: ref.weighted_sum(_ones(2, 3), _ones(3)),
     ("V must have shape (..., n_k, d_v)", "(3,)")),
    ("weighted_sum: batch", lambda: ref.weighted_sum(_ones(8, 2, 3), _ones(9, 3, 5)),
     ("weights has batch shape (8,)", "V has batch shape (9,)")),
    ("weighted_sum: object V", lambda: ref.weighted_sum(_ones(2, 1), _OBJ), ("V must", "object")),
    # scaled_dot_product_attention
    ("sdpa: Q/K d_k", lambda: _sdpa(_Q, _ones(3, 6), _V), ("Q's d_k (4)", "K's d_k (6)")),
    ("sdpa: K/V n_k", lambda: _sdpa(_Q, _K, _ones(6, 5)), ("n_k", "K has 3", "V has 6")),
    ("sdpa: Q 1-D", lambda: _sdpa(_ones(4), _K, _V), ("Q must have shape", "(4,)")),
    ("sdpa: K 1-D", lambda: _sdpa(_Q, _ones(4), _V), ("K must have shape", "(4,)")),
    ("sdpa: V 1-D", lambda: _sdpa(_Q, _K, _ones(5)), ("V must have shape", "(5,)")),
    ("sdpa: batch", lambda: _sdpa(_ones(8, 2, 4), _ones(9, 3, 4), _ones(9, 3, 5)),
     ("Q has batch shape (8,)", "K has batch shape (9,)")),
    ("sdpa: int mask", lambda: _sdpa(_Q, _K, _V, mask=_ones(2, 3, dtype=int)),
     ("mask must be boolean", "int64")),
    ("sdpa: additive float mask", lambda: _sdpa(_Q, _K, _V, mask=np.zeros((2, 3))),
     ("mask must be boolean", "float64")),
    ("sdpa: 0/1 list mask", lambda: _sdpa(_Q, _K, _V, mask=[[1, 0, 1], [1, 1, 0]]),
     ("mask must be boolean",)),
    ("sdpa: object mask", lambda: _sdpa(_Q, _K, _V, mask=_ones(2, 3, dtype=object)),
     ("mask must be boolean", "object")),
    ("sdpa: transposed mask", lambda: _sdpa(_Q, _K, _V, mask=_ones(3, 2, dtype=bool)),
     ("mask of shape (3, 2)", "(2, 3)")),
    ("sdpa: mask n_k", lambda: _sdpa(_Q, _K, _V, mask=_ones(2, 4, dtype=bool)),
     ("mask of shape (2, 4)", "(2, 3)")),
    ("sdpa: mask extra batch", lambda: _sdpa(_Q, _K, _V, mask=_ones(8, 2, 3, dtype=bool)),
     ("mask of shape (8, 2, 3)", "(2, 3)")),
    *[
        (f"sdpa: scale={s!r}", lambda s=s: _sdpa(_Q, _K, _V, scale=s),
         ("scale must be a finite", repr(s)))
        for s in (np.inf, -np.inf, np.nan, np.array([0.5]))
    ],
    ("sdpa: object V", lambda: _sdpa(_Q, _K, _OBJ), ("V must be", "object")),
    # cross_attention: X (2, 6), Z (3, 7), W_q (6, 4), W_k (7, 4), W_v (7, 5)
    ("cross: X 1-D", lambda: ref.cross_attention(_ones(6), _Z, _W_q, _W_kz, _W_vz),
     ("X must have shape (..., n_q, d_model)", "(6,)")),
    ("cross: Z 1-D", lambda: ref.cross_attention(_X, _ones(7), _W_q, _W_kz, _W_vz),
     ("Z must have shape (..., n_k, d_model_z)", "(7,)")),
    ("cross: W_q rows", lambda: ref.cross_attention(_X, _Z, _ones(5, 4), _W_kz, _W_vz),
     ("W_q has 5 rows but X has width 6", "(6, d_k)")),
    ("cross: W_k rows", lambda: ref.cross_attention(_X, _Z, _W_q, _ones(6, 4), _W_vz),
     ("W_k has 6 rows but Z has width 7", "(7, d_k)")),
    ("cross: W_v rows", lambda: ref.cross_attention(_X, _Z, _W_q, _W_kz, _ones(6, 5)),
     ("W_v has 6 rows but Z has width 7", "(7, d_v)")),
    ("cross: W_q 1-D", lambda: ref.cross_attention(_X, _Z, _ones(6), _W_kz, _W_vz),
     ("W_q must be a matrix", "(6,)")),
    ("cross: W_v 3-D", lambda: ref.cross_attention(_X, _Z, _W_q, _W_kz, _ones(7, 5, 1)),
     ("W_v must be a matrix", "(7, 5, 1)")),
    ("cross: d_k", lambda: ref.cross_attention(_X, _Z, _W_q, _ones(7, 8), _W_vz),
     ("same d_k", "W_q gives 4", "W_k gives 8")),
    ("cross: batch",
     lambda: ref.cross_attention(_ones(8, 2, 6), _ones(9, 3, 7), _W_q, _W_kz, _W_vz),
     ("do not broadcast", "(8,)", "(9,)")),
    ("cross: mask shape",
     lambda: ref.cross_attention(_X, _Z, _W_q, _W_kz, _W_vz, mask=_ones(3, 2, dtype=bool)),
     ("mask of shape (3, 2)", "(2, 3)")),
    ("cross: int mask",
     lambda: ref.cross_attention(_X, _Z, _W_q, _W_kz, _W_vz, mask=_ones(2, 3, dtype=int)),
     ("mask must be boolean", "int64")),
    ("cross: object W_q", lambda: ref.cross_attention(_X, _Z, _OBJ, _W_kz, _W_vz),
     ("W_q must be", "object")),
    # self_attention: X (3, 6), W_q (6, 4), W_k (6, 4), W_v (6, 5)
    ("self: X 1-D", lambda: ref.self_attention(_ones(6), _W_q, _W_k, _W_v),
     ("X must have shape", "(6,)")),
    ("self: W_q rows", lambda: ref.self_attention(_Xs, _ones(5, 4), _W_k, _W_v),
     ("W_q has 5 rows but X has width 6",)),
    ("self: W_k rows", lambda: ref.self_attention(_Xs, _W_q, _ones(5, 4), _W_v),
     ("W_k has 5 rows", "width 6")),
    ("self: W_v rows", lambda: ref.self_attention(_Xs, _W_q, _W_k, _ones(5, 5)),
     ("W_v has 5 rows", "width 6")),
    ("self: d_k", lambda: ref.self_attention(_Xs, _W_q, _ones(6, 8), _W_v),
     ("same d_k", "W_q gives 4", "W_k gives 8")),
    ("self: mask shape",
     lambda: ref.self_attention(_Xs, _W_q, _W_k, _W_v, mask=_ones(2, 3, dtype=bool)),
     ("mask of shape (2, 3)", "(3, 3)")),
    # causal_mask
    *[
        (f"causal_mask: n_q={n!r}", lambda n=n: ref.causal_mask(n),
         ("n_q must be a positive integer", repr(n)))
        for n in (0, -1, 2.5, 3.0, True, None, "3")
    ],
    *[
        (f"causal_mask: n_k={n!r}", lambda n=n: ref.causal_mask(3, n),
         ("n_k must be a positive integer", repr(n)))
        for n in (0, -2, 4.0, False)
    ],
    # padding_mask
    ("padding: 2-D lengths", lambda: ref.padding_mask([[1, 2]], 3),
     ("lengths must be a 1-D array of integers", "(1, 2)")),
    ("padding: scalar length", lambda: ref.padding_mask(2, 3), ("lengths must be a 1-D", "()")),
    ("padding: float lengths", lambda: ref.padding_mask([1.0, 2.0], 3), ("lengths", "float64")),
    ("padding: bool lengths", lambda: ref.padding_mask([True, False], 3), ("lengths", "bool")),
    ("padding: object lengths", lambda: ref.padding_mask(np.array([1, 2], dtype=object), 3),
     ("lengths", "object")),
    ("padding: negative length", lambda: ref.padding_mask([-1, 2], 3),
     ("between 0 and n_k = 3", "[-1, 2]")),
    ("padding: length > n_k", lambda: ref.padding_mask([4, 1], 3),
     ("between 0 and n_k = 3", "[4, 1]")),
    *[
        (f"padding: n_k={n!r}", lambda n=n: ref.padding_mask([1, 2], n),
         ("n_k must be a positive integer", repr(n)))
        for n in (0, -3, 2.0, True)
    ],
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "fragments"),
    [pytest.param(call, fragments, id=name) for name, call, fragments in VALUE_ERRORS],
)
def test_invalid_input_raises_a_value_error_naming_the_problem(call, fragments):
    with pytest.raises(ValueError, match=_pattern(*fragments)):
        call()


# --------------------------------------------------------------------------------------------
# 8. Regressions: bugs found in reference.py by these tests, now fixed.
# --------------------------------------------------------------------------------------------


def test_softmax_over_an_empty_axis_is_empty():
    p = ref.softmax(np.empty((2, 0)))  # n_q = 2 rows with n_k = 0 entries each
    assert p.shape == (2, 0) and p.dtype == np.float64


def test_attention_with_no_keys_gives_zeros_or_names_n_k():
    Q, K, V = _ones(2, 4), _ones(0, 4), _ones(0, 5)  # n_q 2, n_k 0, d_k 4, d_v 5
    try:
        output, weights = ref.scaled_dot_product_attention(Q, K, V)
    except ValueError as err:
        assert "n_k" in str(err), f"the error does not say that n_k = 0 is the problem: {err}"
    else:
        assert_array_equal(output, np.zeros((2, 5)), strict=True)
        assert weights.shape == (2, 0)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: ref.self_attention(_Xs, _W_q, _ones(5, 4), _W_v), id="W_k rows"),
        pytest.param(lambda: ref.self_attention(_Xs, _W_q, _W_k, _ones(5, 5)), id="W_v rows"),
        pytest.param(lambda: ref.self_attention(_Xs, _W_q, _W_k, _ones(6, 5, 1)), id="W_v 3-D"),
    ],
)
def test_self_attention_errors_name_x_not_z(call):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "Z" not in message and "X" in message, f"message names Z: {message}"


@pytest.mark.parametrize(
    "scale",
    [
        pytest.param("0.5", id="string"),
        pytest.param(1j, id="complex"),
        pytest.param(True, id="bool"),
    ],
)
def test_non_real_scale_raises_a_value_error(scale):
    try:
        ref.scaled_dot_product_attention(_Q, _K, _V, scale=scale)
    except ValueError as err:
        assert "scale" in str(err)
    else:
        raise AssertionError(f"scale={scale!r} was accepted")


def test_a_scale_that_overflows_the_input_dtype_is_not_turned_into_inf():
    Q = np.full((2, 4), 1e-3, dtype=np.float16)  # scale * Q = 100: fine in float16
    K, V = _ones(3, 4, dtype=np.float16), _ones(3, 5, dtype=np.float16)
    with no_fp_warnings():
        try:
            output, weights = ref.scaled_dot_product_attention(Q, K, V, scale=1e5)
        except ValueError as err:
            assert "scale" in str(err) and "float16" in str(err)
        else:
            assert np.all(np.isfinite(weights)) and np.all(np.isfinite(output))
