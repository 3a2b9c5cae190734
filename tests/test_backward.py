"""Tests of the backward pass in :mod:`attention_course.reference` (notebook 09).

:func:`~attention_course.reference.softmax_backward` and
:func:`~attention_course.reference.attention_backward` are checked three independent ways:

- against the loops of ``tests/loop_reference.py`` (an explicit softmax Jacobian per row and
  the chain rule one entry at a time), within 1e-12 in float64;
- against central differences
  (:func:`~attention_course.reference.numerical_attention_gradients`) at the tolerance
  :func:`~attention_course.reference.numerical_gradient` documents; a deliberately wrong
  backward is shown to fail that same comparison, so it can fail;
- against properties that hold whatever the implementation: shifting every key by the same
  vector changes no output, so the key gradients sum to zero; ``grad_V = Pᵀ dO``.

Shapes are drawn by hypothesis with ``n_q``, ``n_k``, ``d_k``, ``d_v`` all different and batch
shapes that only broadcast to each other; masks include fully masked rows.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width.
"""

from __future__ import annotations

import contextlib
import re
import warnings

import loop_reference as loop
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from strategies import BATCH_SHAPES, SEEDS, broadcast_to, distinct_sizes

from attention_course import reference as ref

TOL = 1e-12  # float64 agreement with the loop version
LOW_PRECISION_TOL = {np.float16: 3e-2, np.float32: 2e-5}  # against the float64 result
# The tolerance numerical_gradient's docstring gives: rtol, and atol relative to the largest
# entry of the gradient.
NUMERICAL_RTOL, NUMERICAL_ATOL = 1e-5, 1e-6

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------
# Strategies and helpers
# --------------------------------------------------------------------------------------------


@st.composite
def backward_inputs(draw, max_size: int = 6, batch=BATCH_SHAPES, with_mask=True):
    """Q, K, V, grad_output, mask: n_q, n_k, d_k, d_v distinct, batch dims that broadcast.

    The mask (or None) broadcasts to the weights' shape and often has a fully masked row.
    """
    n_q, n_k, d_k, d_v = draw(distinct_sizes(4, max_size))
    full = draw(batch)
    q_b, k_b, v_b = (draw(broadcast_to(full)) for _ in range(3))
    rng = np.random.default_rng(draw(SEEDS))
    Q = rng.standard_normal((*q_b, n_q, d_k))
    K = rng.standard_normal((*k_b, n_k, d_k))
    V = rng.standard_normal((*v_b, n_k, d_v))
    out_batch = np.broadcast_shapes(q_b, k_b, v_b)
    grad_output = rng.standard_normal((*out_batch, n_q, d_v))
    mask = None
    if with_mask and draw(st.booleans()):
        mask_batch = draw(broadcast_to(out_batch))
        rows = draw(st.sampled_from((n_q, 1)))
        mask = rng.random((*mask_batch, rows, n_k)) < draw(st.sampled_from((0.3, 0.7, 1.0)))
        if draw(st.booleans()):
            mask[..., rng.integers(rows), :] = False  # a query that sees no key at all
    return Q, K, V, grad_output, mask


def assert_same(actual, expected, what: str, tol: float = TOL) -> None:
    """Same shape, values within ``tol`` of the independent version's."""
    assert np.shape(actual) == np.shape(expected), (
        f"{what}: expected shape {np.shape(expected)}, got {np.shape(actual)}"
    )
    assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=f"{what} differs")


def numerically_close(actual, numerical) -> bool:
    """The comparison numerical_gradient's docstring recommends."""
    atol = NUMERICAL_ATOL * max(float(np.max(np.abs(numerical), initial=0.0)), 1e-300)
    return np.shape(actual) == np.shape(numerical) and np.allclose(
        actual, numerical, rtol=NUMERICAL_RTOL, atol=atol
    )


@contextlib.contextmanager
def no_fp_warnings():
    """Turn every warning and every overflow / invalid / divide-by-zero into an error."""
    with (
        warnings.catch_warnings(),
        np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"),
    ):
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------------------------
# 1. Agreement with the loop version (explicit Jacobian, float64, within 1e-12)
# --------------------------------------------------------------------------------------------


@FAST
@given(backward_inputs(), st.sampled_from((None, 1.0, 0.37, -2.5)))
def test_attention_backward_matches_loop(inputs, scale):
    Q, K, V, dO, mask = inputs
    actual = ref.attention_backward(Q, K, V, dO, mask=mask, scale=scale)
    expected = loop.attention_backward(Q, K, V, dO, mask=mask, scale=scale)
    for name, a, e in zip(("grad_Q", "grad_K", "grad_V"), actual, expected, strict=True):
        assert_same(a, e, name)


@FAST
@given(backward_inputs(), st.sampled_from((1.0, 30.0)))
def test_softmax_backward_matches_the_explicit_jacobian_with_masked_rows(inputs, spread):
    Q, K, _, _, mask = inputs
    scores = spread * (Q @ np.swapaxes(K, -1, -2))  # (..., n_q, d_k) @ (..., d_k, n_k)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)  # some entries, maybe whole rows, are -inf
    p = ref.softmax(scores)  # (..., n_q, n_k)
    g = np.random.default_rng(0).standard_normal(p.shape)
    assert_same(ref.softmax_backward(p, g), loop.softmax_backward(p, g), "grad_scores")


@FAST
@given(backward_inputs(with_mask=False), st.data())
def test_softmax_backward_along_any_axis_matches_loop(inputs, data):
    Q, K, _, _, _ = inputs
    scores = Q @ np.swapaxes(K, -1, -2)  # (..., n_q, n_k)
    axis = data.draw(st.integers(-scores.ndim, scores.ndim - 1), label="axis")
    p = ref.softmax(scores, axis=axis)
    g = np.random.default_rng(1).standard_normal(p.shape)
    # The loop version works on the last axis: move `axis` there and back.
    moved = loop.softmax_backward(np.moveaxis(p, axis, -1), np.moveaxis(g, axis, -1))
    expected = np.moveaxis(moved, -1, axis)
    assert_same(ref.softmax_backward(p, g, axis=axis), expected, f"axis={axis}")


# --------------------------------------------------------------------------------------------
# 2. Agreement with central differences, and a wrong backward that this comparison catches
# --------------------------------------------------------------------------------------------


@QUICK
@given(backward_inputs(max_size=5), st.sampled_from((None, 1.0, 2.0)))
def test_attention_backward_matches_the_numerical_gradient(inputs, scale):
    Q, K, V, dO, mask = inputs
    actual = ref.attention_backward(Q, K, V, dO, mask=mask, scale=scale)
    numerical = ref.numerical_attention_gradients(Q, K, V, dO, mask=mask, scale=scale)
    for name, a, n in zip(("grad_Q", "grad_K", "grad_V"), actual, numerical, strict=True):
        assert numerically_close(a, n), f"{name}: max |difference| {np.max(np.abs(a - n))}"


@FAST
@given(backward_inputs(with_mask=False))
def test_softmax_backward_matches_the_numerical_gradient(inputs):
    Q, K, _, dO, _ = inputs
    scores = Q @ np.swapaxes(K, -1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    g = np.random.default_rng(2).standard_normal(scores.shape)
    numerical = ref.numerical_gradient(lambda s: np.sum(ref.softmax(s) * g), scores)
    actual = ref.softmax_backward(ref.softmax(scores), g)
    assert numerically_close(actual, numerical), np.max(np.abs(actual - numerical))


def _without_the_ppt_term(Q, K, V, dO, scale):
    """A classic mistake: dS = P * dP, the softmax Jacobian's -p pᵀ term forgotten."""
    P = ref.softmax(scale * (Q @ K.T))  # (n_q, d_k) @ (d_k, n_k) -> (n_q, n_k)
    dS = P * (dO @ V.T) * scale  # (n_q, d_v) @ (d_v, n_k) -> (n_q, n_k)
    return dS @ K, dS.T @ Q, P.T @ dO  # (n_q, d_k), (n_k, d_k), (n_k, d_v)


def test_the_numerical_comparison_catches_a_wrong_backward():
    rng = np.random.default_rng(3)
    n_q, n_k, d_k, d_v = 3, 5, 4, 2
    Q, K = rng.standard_normal((n_q, d_k)), rng.standard_normal((n_k, d_k))
    V, dO = rng.standard_normal((n_k, d_v)), rng.standard_normal((n_q, d_v))
    numerical = ref.numerical_attention_gradients(Q, K, V, dO)
    wrong = _without_the_ppt_term(Q, K, V, dO, 1 / np.sqrt(d_k))
    assert not numerically_close(wrong[0], numerical[0]), "missing -ppᵀ not caught in grad_Q"
    assert not numerically_close(wrong[1], numerical[1]), "missing -ppᵀ not caught in grad_K"
    assert numerically_close(wrong[2], numerical[2]), "grad_V does not involve the softmax"


def test_numerical_gradient_of_a_known_function_and_its_input_unchanged():
    x = np.random.default_rng(4).standard_normal((3, 4))  # any shape
    c = np.arange(12.0).reshape(3, 4)
    original = x.copy()
    grad = ref.numerical_gradient(lambda y: np.sum(c * np.sin(y)), x)
    assert_allclose(grad, c * np.cos(x), rtol=1e-8, atol=1e-8)
    assert_array_equal(x, original, err_msg="numerical_gradient modified its input")
    assert grad.dtype == np.float64 and grad.shape == x.shape


# --------------------------------------------------------------------------------------------
# 3. Properties: shift invariance, grad_V = Pᵀ dO, masks, fully masked rows
# --------------------------------------------------------------------------------------------


@FAST
@given(backward_inputs(batch=st.just(())))
def test_key_gradients_sum_to_zero_because_a_common_shift_of_the_keys_changes_nothing(inputs):
    Q, K, V, dO, mask = inputs
    _, grad_K, _ = ref.attention_backward(Q, K, V, dO, mask=mask)
    # Adding c to every key adds scale·(q·c) to a whole row of scores: softmax ignores it.
    assert_allclose(grad_K.sum(axis=-2), 0.0, atol=1e-12)


@FAST
@given(backward_inputs(batch=st.just(())))
def test_value_gradient_is_the_transposed_weights_times_grad_output(inputs):
    Q, K, V, dO, mask = inputs
    _, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)  # (n_q, n_k)
    _, _, grad_V = ref.attention_backward(Q, K, V, dO, mask=mask)
    assert_same(grad_V, weights.T @ dO, "grad_V")  # (n_k, n_q) @ (n_q, d_v) -> (n_k, d_v)


def test_masked_keys_get_no_gradient_and_fully_masked_rows_give_zeros_silently():
    rng = np.random.default_rng(5)
    n_q, n_k, d_k, d_v = 4, 6, 3, 5
    Q, K = rng.standard_normal((2, n_q, d_k)), rng.standard_normal((2, n_k, d_k))
    V, dO = rng.standard_normal((2, n_k, d_v)), rng.standard_normal((2, n_q, d_v))
    mask = rng.random((2, n_q, n_k)) < 0.6
    mask[..., 2] = False  # key 2 is hidden from every query
    mask[0, 1, :] = False  # query 1 of batch element 0 sees no key
    mask[1, :, 4] = True  # every other query sees at least key 4
    mask[0, [0, 2, 3], 4] = True
    with no_fp_warnings():
        grad_Q, grad_K, grad_V = ref.attention_backward(Q, K, V, dO, mask=mask)
    for name, grad in (("grad_Q", grad_Q), ("grad_K", grad_K), ("grad_V", grad_V)):
        assert np.all(np.isfinite(grad)), f"{name} has NaN or inf"
    assert_array_equal(grad_K[:, 2], 0.0, err_msg="a masked key received a gradient")
    assert_array_equal(grad_V[:, 2], 0.0, err_msg="a masked value received a gradient")
    assert_array_equal(grad_Q[0, 1], 0.0, err_msg="a fully masked query received a gradient")
    assert np.any(grad_Q[0, 0] != 0) and np.any(grad_K[:, 4] != 0)  # the rest is not all zero
    # A fully masked row of weights gives zeros in softmax_backward too.
    _, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    grad_scores = ref.softmax_backward(weights, rng.standard_normal(weights.shape))
    assert_array_equal(grad_scores[0, 1], 0.0)
    assert_array_equal(grad_scores[..., 2], 0.0)


def test_no_keys_at_all_gives_zero_gradients():
    Q, K, V = np.ones((2, 4)), np.ones((0, 4)), np.ones((0, 5))  # n_q 2, n_k 0, d_k 4, d_v 5
    grad_Q, grad_K, grad_V = ref.attention_backward(Q, K, V, np.ones((2, 5)))
    assert_array_equal(grad_Q, np.zeros((2, 4)), strict=True)
    assert grad_K.shape == (0, 4) and grad_V.shape == (0, 5)


def test_saturated_scores_give_tiny_but_finite_gradients():
    """The paper's point, in numbers: unscaled wide dot products nearly stop the gradient."""
    rng = np.random.default_rng(6)
    n_q, n_k, d_k, d_v = 8, 9, 512, 7
    Q, K = rng.standard_normal((n_q, d_k)), rng.standard_normal((n_k, d_k))
    V, dO = rng.standard_normal((n_k, d_v)), rng.standard_normal((n_q, d_v))
    with no_fp_warnings():
        scaled = ref.attention_backward(Q, K, V, dO)[0]
        unscaled = ref.attention_backward(Q, K, V, dO, scale=1.0)[0]
    assert np.all(np.isfinite(unscaled))
    # Although its chain rule multiplies by scale = 1 instead of 1/√d_k ≈ 0.044, the unscaled
    # gradient is much smaller (here about 28 times): the saturated softmax lets little through.
    assert np.linalg.norm(unscaled) < 0.1 * np.linalg.norm(scaled)


# --------------------------------------------------------------------------------------------
# 4. dtypes, inputs unchanged, fresh outputs
# --------------------------------------------------------------------------------------------


def _small_case(dtype):
    rng = np.random.default_rng(7)
    n_q, n_k, d_k, d_v = 3, 5, 4, 2
    Q = rng.standard_normal((2, n_q, d_k)).astype(dtype)
    K = rng.standard_normal((n_k, d_k)).astype(dtype)  # shared by the batch
    V = rng.standard_normal((2, n_k, d_v)).astype(dtype)
    dO = rng.standard_normal((2, n_q, d_v)).astype(dtype)
    mask = rng.random((2, n_q, n_k)) < 0.6
    mask[1, 0, :] = False
    return Q, K, V, dO, mask


@pytest.mark.parametrize("dtype", [np.float16, np.float32], ids=lambda d: np.dtype(d).name)
def test_low_precision_dtypes_are_preserved_and_close_to_float64(dtype):
    Q, K, V, dO, mask = _small_case(dtype)
    expected = ref.attention_backward(*(a.astype(np.float64) for a in (Q, K, V, dO)), mask=mask)
    with no_fp_warnings():
        actual = ref.attention_backward(Q, K, V, dO, mask=mask)
    tol = LOW_PRECISION_TOL[dtype]
    for name, a, e in zip(("grad_Q", "grad_K", "grad_V"), actual, expected, strict=True):
        assert a.dtype == dtype, f"{name} has dtype {a.dtype}, not {np.dtype(dtype)}"
        assert_same(a, e, name, tol)
    _, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    g = np.ones_like(weights)
    assert ref.softmax_backward(weights, g).dtype == dtype


def test_integer_inputs_are_computed_in_float64():
    Q, K, V, dO, mask = _small_case(np.float64)
    as_int = [np.rint(3 * a).astype(np.int64) for a in (Q, K, V, dO)]
    actual = ref.attention_backward(*as_int, mask=mask)
    expected = loop.attention_backward(*as_int, mask=mask)
    for a, e in zip(actual, expected, strict=True):
        assert a.dtype == np.float64
        assert_same(a, e, "integer inputs")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_inputs_are_not_modified_and_outputs_are_fresh(dtype):
    Q, K, V, dO, mask = _small_case(dtype)
    _, weights = ref.scaled_dot_product_attention(Q, K, V, mask=mask)
    g = dO[..., :1] * np.ones_like(weights)  # (..., n_q, n_k)
    inputs = {"Q": Q, "K": K, "V": V, "grad_output": dO, "mask": mask, "weights": weights,
              "grad_weights": g}  # fmt: skip
    copies = {name: a.copy() for name, a in inputs.items()}
    outputs = [*ref.attention_backward(Q, K, V, dO, mask=mask)]
    outputs.append(ref.softmax_backward(weights, g))
    for name, original in inputs.items():
        assert_array_equal(original, copies[name], err_msg=f"{name} was modified in place")
        for out in outputs:
            assert not np.shares_memory(out, original), f"an output shares memory with {name}"


def test_gradients_of_broadcast_inputs_have_the_inputs_shapes():
    Q, K, V, dO, mask = _small_case(np.float64)  # K (n_k, d_k) is shared by 2 batch elements
    grad_Q, grad_K, grad_V = ref.attention_backward(Q, K, V, dO, mask=mask)
    assert (grad_Q.shape, grad_K.shape, grad_V.shape) == (Q.shape, K.shape, V.shape)
    per_element = [ref.attention_backward(Q[b], K, V[b], dO[b], mask=mask[b])[1] for b in (0, 1)]
    assert_same(grad_K, per_element[0] + per_element[1], "grad_K of a shared K")


# --------------------------------------------------------------------------------------------
# 5. Invalid input: a ValueError naming the problem
# --------------------------------------------------------------------------------------------


def _ones(*shape, dtype=float):
    return np.ones(shape, dtype=dtype)


def _pattern(*fragments: str) -> str:
    """A regex matching the literal ``fragments`` in this order."""
    return ".*".join(re.escape(f) for f in fragments)


# Sizes used below, all different: n_q 2, n_k 3, d_k 4, d_v 5; batch 8 vs 9.
_Q, _K, _V, _G = _ones(2, 4), _ones(3, 4), _ones(3, 5), _ones(2, 5)
_bwd = ref.attention_backward

VALUE_ERRORS = [
    ("bwd: Q/K d_k", lambda: _bwd(_Q, _ones(3, 6), _V, _G), ("Q's d_k (4)", "K's d_k (6)")),
    ("bwd: K/V n_k", lambda: _bwd(_Q, _K, _ones(6, 5), _G), ("n_k", "K has 3", "V has 6")),
    ("bwd: Q 1-D", lambda: _bwd(_ones(4), _K, _V, _G), ("Q must have shape", "(4,)")),
    ("bwd: batch", lambda: _bwd(_ones(8, 2, 4), _ones(9, 3, 4), _V, _G),
     ("Q has batch shape (8,)", "K has batch shape (9,)")),
    ("bwd: grad_output transposed", lambda: _bwd(_Q, _K, _V, _ones(5, 2)),
     ("grad_output must have the attention output's shape", "(2, 5)", "(5, 2)")),
    ("bwd: grad_output without batch", lambda: _bwd(_ones(8, 2, 4), _K, _V, _G),
     ("grad_output", "(8, 2, 5)", "(2, 5)")),
    ("bwd: grad_output object", lambda: _bwd(_Q, _K, _V, _G.astype(object)),
     ("grad_output must be", "object")),
    ("bwd: int mask", lambda: _bwd(_Q, _K, _V, _G, mask=_ones(2, 3, dtype=int)),
     ("mask must be boolean", "int64")),
    ("bwd: transposed mask", lambda: _bwd(_Q, _K, _V, _G, mask=_ones(3, 2, dtype=bool)),
     ("mask of shape (3, 2)", "(2, 3)")),
    *[
        (f"bwd: scale={s!r}", lambda s=s: _bwd(_Q, _K, _V, _G, scale=s),
         ("scale must be a finite", repr(s)))
        for s in (np.inf, np.nan, "0.5")
    ],
    ("softmax_backward: shapes", lambda: ref.softmax_backward(_ones(2, 3), _ones(3, 2)),
     ("grad_weights must have the weights' shape", "(2, 3)", "(3, 2)")),
    ("softmax_backward: axis", lambda: ref.softmax_backward(_ones(2, 3), _ones(2, 3), axis=2),
     ("axis 2 is out of range", "(2, 3)")),
    ("softmax_backward: object", lambda: ref.softmax_backward(_ones(2, 3).astype(object),
                                                              _ones(2, 3)),
     ("weights must be", "object")),
    ("numerical_gradient: eps 0", lambda: ref.numerical_gradient(np.sum, _Q, eps=0.0),
     ("eps must be a positive finite number", "0.0")),
    ("numerical_gradient: eps inf", lambda: ref.numerical_gradient(np.sum, _Q, eps=np.inf),
     ("eps must be a finite real number", "inf")),
    ("numerical_gradient: not a scalar", lambda: ref.numerical_gradient(lambda x: x, _Q),
     ("f must return a scalar", "(2, 4)")),
    ("numerical_attention_gradients: grad_output",
     lambda: ref.numerical_attention_gradients(_Q, _K, _V, _ones(5, 2)),
     ("grad_output must have the attention output's shape", "(2, 5)", "(5, 2)")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "fragments"),
    [pytest.param(call, fragments, id=name) for name, call, fragments in VALUE_ERRORS],
)
def test_invalid_input_raises_a_value_error_naming_the_problem(call, fragments):
    with pytest.raises(ValueError, match=_pattern(*fragments)):
        call()
