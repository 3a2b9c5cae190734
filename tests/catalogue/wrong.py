"""Wrong implementations, one mistake each, written the way learners write them.

Each function is registered with ``@wrong(exercise, case, *phrases)``: the check of
``exercise`` must fail on ``case`` (with the visible seed and with hidden seeds), and the
failure message must contain every phrase — the name of the mistake from the grader's
catalogue, or for an unnamed mistake the expected-versus-got description.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``.
"""

# ruff: noqa: E731 - a lambda wrapper is one of the learner habits under test

from __future__ import annotations

import functools
import math
import sys
import warnings

import numpy as np

import attention_course.reference as R  # noqa: N812 - a learner habit under test
from attention_course.reference import dot_product_scores as reference_scores
from attention_course.reference import softmax as sm

from .registry import wrong

NAMED_REFERENCE = "calls the course's reference"
DIFFERING = "the first differing entry is at index"


# ---- the learner's own correct building blocks, reused by the wrong attention functions -----


def _softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _attention(Q, K, V):
    d_k = Q.shape[-1]
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(d_k)  # (..., n_q, n_k)
    weights = _softmax(scores, axis=-1)
    return weights @ V, weights  # (..., n_q, d_v), (..., n_q, n_k)


# ============================================================================================
# dot_product_scores(Q, K) -> (..., n_q, n_k)
# ============================================================================================


@wrong("dot_product_scores", "random", "K Qᵀ instead of Q Kᵀ")
def scores_keys_first(Q, K):
    return K @ Q.T


@wrong("dot_product_scores", "random", "K was not transposed")
def scores_without_transpose(Q, K):
    return Q @ K


@wrong("dot_product_scores", "batch", "K.T used on batched input", "np.swapaxes(K, -1, -2)")
def scores_with_dot_T(Q, K):
    return Q @ K.T


@wrong("dot_product_scores", "batch", "np.dot(Q, K.T)")
def scores_np_dot_K_T(Q, K):
    return np.dot(Q, K.T)


@wrong("dot_product_scores", "batch", "np.dot (or np.inner / np.tensordot)")
def scores_np_dot_swapaxes(Q, K):
    return np.dot(Q, np.swapaxes(K, -1, -2))


@wrong("dot_product_scores", "batch", "np.dot (or np.inner / np.tensordot)")
def scores_np_inner(Q, K):
    return np.inner(Q, K)  # right for 2-D input only


@wrong("dot_product_scores", "random", "element-wise product")
def scores_elementwise(Q, K):
    return np.sum(Q * K, axis=-1)


@wrong("dot_product_scores", "random", "Qᵀ K")
def scores_queries_transposed(Q, K):
    return Q.T @ K


@wrong("dot_product_scores", "random", "axes don't match array", "np.swapaxes(K, -1, -2)")
def scores_transpose_3d_axes(Q, K):
    return Q @ K.transpose(0, 2, 1)  # written for (batch, n_k, d_k) input only


@wrong("dot_product_scores", "random", "integer dtype int64", DIFFERING)
def scores_loops_integer_array(Q, K):
    n_q, n_k = Q.shape[0], K.shape[0]
    scores = np.zeros((n_q, n_k), dtype=int)  # int: the fractions are cut off
    for i in range(n_q):
        for j in range(n_k):
            scores[i, j] = np.dot(Q[i], K[j])
    return scores


@wrong("dot_product_scores", "random", "not a NumPy array", "The values are right")
def scores_list_of_lists(Q, K):
    return [[float(np.dot(q, k)) for k in K] for q in Q]


@wrong("dot_product_scores", "random", "`return` statement missing")
def scores_no_return(Q, K):
    scores = Q @ np.swapaxes(K, -1, -2)  # noqa: F841 - the forgotten return is the mistake


@wrong("dot_product_scores", "random", DIFFERING, "1.001 times the expected one")
def scores_off_by_a_thousandth(Q, K):
    return Q @ np.swapaxes(K, -1, -2) * 1.001


@wrong("dot_product_scores", "random", NAMED_REFERENCE)
def scores_alias_of_reference(Q, K):
    return reference_scores(Q, K)


@wrong("dot_product_scores", "batch", "values to unpack", "read sizes from the end")
def scores_2d_only_loops(Q, K):
    n_q, d_k = Q.shape  # fails on batched input
    n_k, _ = K.shape
    return np.array([[Q[i] @ K[j] for j in range(n_k)] for i in range(n_q)])


# ============================================================================================
# scale_scores(scores, d_k) -> (..., n_q, n_k)
# ============================================================================================


@wrong("scale_scores", "random", "scaled by d_k instead of √d_k")
def scale_by_d_k(scores, d_k):
    return scores / d_k


@wrong("scale_scores", "random", "multiplied by √d_k instead of dividing")
def scale_multiplied(scores, d_k):
    return scores * np.sqrt(d_k)


@wrong("scale_scores", "random", "d_k ** 1/2", "** binds tighter than /")
def scale_power_precedence(scores, d_k):
    return scores / d_k**1 / 2


@wrong("scale_scores", "random", "floor division")
def scale_floor_division(scores, d_k):
    return scores // np.sqrt(d_k)


@wrong("scale_scores", "random", "scaled by √n_k")
def scale_by_number_of_keys(scores, d_k):
    return scores / np.sqrt(scores.shape[-1])


@wrong("scale_scores", "random", "returned the scores unscaled")
def scale_forgot_to_scale(scores, d_k):
    return scores


@wrong("scale_scores", "inputs_unchanged", "modified its input in place (scores)")
def scale_in_place(scores, d_k):
    scores /= np.sqrt(d_k)  # changes the caller's array
    return scores


@wrong("scale_scores", "random", "rounded to a whole number")
def scale_integer_square_root(scores, d_k):
    return scores / int(np.sqrt(d_k))


@wrong("scaled_dot_product_attention", "random", "rounded to a whole number")
def attention_integer_square_root(Q, K, V):
    d_k = Q.shape[-1]
    weights = _softmax(Q @ np.swapaxes(K, -1, -2) / math.isqrt(d_k))
    return weights @ V, weights


@wrong("scale_scores", "random", DIFFERING, "times the expected one")
def scale_by_square_root_of_d_k_plus_one(scores, d_k):
    return scores / np.sqrt(d_k + 1)


@wrong("scale_scores", "random", "`return` statement missing")
def scale_no_return(scores, d_k):
    scores = scores / np.sqrt(d_k)  # noqa: F841 - the forgotten return is the mistake


wrong("scale_scores", "random", NAMED_REFERENCE, name="scale_partial_of_reference")(
    functools.partial(R.scale_scores)
)


# ============================================================================================
# softmax(x, axis=-1) -> same shape as x
# ============================================================================================


@wrong("softmax", "large", "no max subtraction", "RuntimeWarning: overflow encountered in exp")
def softmax_without_max(x, axis=-1):
    e = np.exp(x)  # overflows (and warns) for scores above ~709
    return e / np.sum(e, axis=axis, keepdims=True)


@wrong("softmax", "random", "you normalised over the query axis")
def softmax_axis_0(x, axis=-1):
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


@wrong("softmax", "axis", "`axis` argument is ignored")
def softmax_ignores_axis(x, axis=-1):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@wrong("softmax", "random", "whole array instead of along the axis")
def softmax_sum_of_everything(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


@wrong("softmax", "large", "maximum of the whole array")
def softmax_global_max(x, axis=-1):
    e = np.exp(x - np.max(x))  # one max for every row: rows far below it underflow
    return e / np.sum(e, axis=axis, keepdims=True)


@wrong("softmax", "random", "keepdims missing")
def softmax_without_keepdims(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis))
    return e / np.sum(e, axis=axis)


@wrong("softmax", "random", "keepdims missing in the sum")
def softmax_without_keepdims_in_sum(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / e.sum(axis=axis)


@wrong("softmax", "random", "forgot the exponential")
def softmax_without_exp(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


@wrong("softmax", "large", "subtracted the mean")
def softmax_minus_mean(x, axis=-1):
    e = np.exp(x - np.mean(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@wrong("softmax", "large", "subtracted the minimum")
def softmax_minus_min(x, axis=-1):
    e = np.exp(x - np.min(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


ENDLESS_LOOP = "endless loop"


@wrong("softmax", "random", ENDLESS_LOOP, "did not return within", "`while True:`")
def softmax_while_true_never_breaks(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    while True:  # "renormalise until the total is 1": the total of all rows is n_q, never 1
        p = p / p.sum(axis=axis, keepdims=True)
        if abs(p.sum() - 1.0) < 1e-12:
            break
    return p


@wrong("softmax", "random", "log-softmax")
def softmax_returns_log_probabilities(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


@wrong("softmax", "random", "maximum of the exponentials instead of their sum")
def softmax_divided_by_max(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.max(e, axis=axis, keepdims=True)


@wrong("softmax", "inputs_unchanged", "modified its input in place (x)")
def softmax_in_place(x, axis=-1):
    x -= np.max(x, axis=axis, keepdims=True)  # changes the caller's array
    np.exp(x, out=x)
    x /= np.sum(x, axis=axis, keepdims=True)
    return x


@wrong("softmax", "random", "not a NumPy array")
def softmax_rows_as_lists(x, axis=-1):
    rows = []
    for row in x:
        e = [math.exp(v - max(row)) for v in row]
        rows.append([v / sum(e) for v in e])
    return rows


@wrong("softmax", "axis", "your function takes the parameters (x)", "def softmax(x, axis=-1)")
def softmax_without_axis_parameter(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


@wrong("softmax", "random", "forgot the exponential", "wrote to stderr", "debug")
def softmax_debug_print_to_stderr(x, axis=-1):
    print("debug: shape", x.shape, file=sys.stderr)
    return x / np.sum(x, axis=axis, keepdims=True)


@wrong("softmax", "random", DIFFERING, "UserWarning: check my softmax")
def softmax_warns_and_is_off(x, axis=-1):
    warnings.warn("check my softmax", stacklevel=1)
    return _softmax(x, axis=axis) + 1e-3


# `from attention_course.reference import softmax as sm`, then `softmax = sm`:
wrong("softmax", "random", NAMED_REFERENCE, name="softmax_is_the_reference")(sm)


@wrong("softmax", "random", NAMED_REFERENCE)
def softmax_through_the_module(x, axis=-1):
    return R.softmax(x, axis=axis)


softmax_lambda_wrapper = wrong("softmax", "random", NAMED_REFERENCE, name="softmax_lambda_wrapper")(
    lambda x, axis=-1: sm(x, axis)
)


# ============================================================================================
# weighted_sum(weights, V) -> (..., n_q, d_v)
# ============================================================================================


@wrong("weighted_sum", "random", "V @ weights")
def weighted_values_first(weights, V):
    return V @ weights


@wrong("weighted_sum", "random", "weightsᵀ @ V")
def weighted_transposed_weights(weights, V):
    return weights.T @ V


@wrong("weighted_sum", "random", "element-wise product")
def weighted_elementwise(weights, V):
    return weights * V


@wrong("weighted_sum", "batch", "np.dot (or np.inner / np.tensordot)")
def weighted_np_dot(weights, V):
    return np.dot(weights, V)


@wrong("weighted_sum", "random", "summed over the query axis")
def weighted_sum_over_queries(weights, V):
    return np.sum(weights[:, :, None] * V[None, :, :], axis=0)


@wrong("weighted_sum", "batch", "tensordot", "first* axis")
def weighted_tensordot(weights, V):
    return np.tensordot(weights, V, axes=1)  # right for 2-D input only


@wrong("weighted_sum", "random", "integer dtype", DIFFERING)
def weighted_loops_integer_array(weights, V):
    n_q, n_k = weights.shape
    out = np.zeros((n_q, V.shape[1]), dtype=np.int64)
    for i in range(n_q):
        for j in range(n_k):
            out[i] += (weights[i, j] * V[j]).astype(np.int64)
    return out


@wrong("weighted_sum", "random", "a tuple of 2 arrays", "return only the output")
def weighted_returns_weights_too(weights, V):
    return weights @ V, weights


@wrong("weighted_sum", "random", NAMED_REFERENCE)
def weighted_calls_reference(weights, V):
    return R.weighted_sum(weights, V)


# ============================================================================================
# scaled_dot_product_attention(Q, K, V) -> (output (..., n_q, d_v), weights (..., n_q, n_k))
# ============================================================================================


def _attention_with(scale):
    def attention(Q, K, V):
        scores = Q @ np.swapaxes(K, -1, -2) * scale(Q, K, V)
        weights = _softmax(scores, axis=-1)
        return weights @ V, weights

    return attention


@wrong("scaled_dot_product_attention", "random", "no scaling")
def attention_unscaled(Q, K, V):
    weights = _softmax(Q @ np.swapaxes(K, -1, -2))
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "random", "scaled by d_k instead of √d_k")
def attention_scaled_by_d_k(Q, K, V):
    return _attention_with(lambda Q, K, V: 1 / Q.shape[-1])(Q, K, V)


@wrong("scaled_dot_product_attention", "random", "scaled by d_k instead of √d_k")
def attention_scales_q_and_k(Q, K, V):
    d_k = Q.shape[-1]
    Q, K = Q / np.sqrt(d_k), K / np.sqrt(d_k)  # scaled twice: Q Kᵀ / d_k
    weights = _softmax(Q @ np.swapaxes(K, -1, -2))
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "random", "scaled by √n_k")
def attention_scaled_by_n_k(Q, K, V):
    return _attention_with(lambda Q, K, V: 1 / np.sqrt(K.shape[-2]))(Q, K, V)


@wrong("scaled_dot_product_attention", "random", "scaled by √d_v")
def attention_scaled_by_d_v(Q, K, V):
    return _attention_with(lambda Q, K, V: 1 / np.sqrt(V.shape[-1]))(Q, K, V)


@wrong("scaled_dot_product_attention", "random", "multiplied by √d_k instead of dividing")
def attention_multiplied(Q, K, V):
    return _attention_with(lambda Q, K, V: np.sqrt(Q.shape[-1]))(Q, K, V)


@wrong("scaled_dot_product_attention", "random", "you normalised over the query axis")
def attention_softmax_over_queries(Q, K, V):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    weights = _softmax(scores, axis=0)
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "large", "maximum was not subtracted")
def attention_naive_softmax(Q, K, V):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    e = np.exp(scores)
    weights = e / e.sum(axis=-1, keepdims=True)
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "large", "maximum of the whole array")
def attention_global_max_softmax(Q, K, V):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    e = np.exp(scores - scores.max())
    weights = e / e.sum(axis=-1, keepdims=True)
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "batch", "K.T used on batched input")
def attention_K_T(Q, K, V):
    weights = _softmax(Q @ K.T / np.sqrt(Q.shape[-1]))
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "batch", "np.dot (or np.inner / np.tensordot)")
def attention_np_dot(Q, K, V):
    weights = _softmax(np.dot(Q, np.swapaxes(K, -1, -2)) / np.sqrt(Q.shape[-1]))
    return np.dot(weights, V), weights


@wrong("scaled_dot_product_attention", "random", "K was not transposed")
def attention_without_transpose(Q, K, V):
    weights = _softmax(np.matmul(Q, K) / np.sqrt(Q.shape[-1]))
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "random", "weights and output returned in the wrong order")
def attention_swapped_return(Q, K, V):
    output, weights = _attention(Q, K, V)
    return weights, output


@wrong("scaled_dot_product_attention", "random", "returned only the output")
def attention_only_output(Q, K, V):
    return _attention(Q, K, V)[0]


@wrong("scaled_dot_product_attention", "random", "`return` statement missing")
def attention_no_return(Q, K, V):
    output, weights = _attention(Q, K, V)  # noqa: F841 - the forgotten return is the mistake


@wrong("scaled_dot_product_attention", "random", "after the softmax")
def attention_scaled_after_softmax(Q, K, V):
    weights = _softmax(Q @ np.swapaxes(K, -1, -2)) / np.sqrt(Q.shape[-1])
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "random", "returned the scores (before the softmax)")
def attention_returns_scores(Q, K, V):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    return _softmax(scores) @ V, scores


@wrong("scaled_dot_product_attention", "inputs_unchanged", "modified its input in place (Q)")
def attention_scales_queries_in_place(Q, K, V):
    Q /= np.sqrt(Q.shape[-1])  # changes the caller's queries
    weights = _softmax(Q @ np.swapaxes(K, -1, -2))
    return weights @ V, weights


@wrong("scaled_dot_product_attention", "random", "output: right shape", DIFFERING)
def attention_output_off_by_a_thousandth(Q, K, V):
    output, weights = _attention(Q, K, V)
    return output * (1 + 1e-3), weights


@wrong("scaled_dot_product_attention", "random", NAMED_REFERENCE)
def attention_calls_reference(Q, K, V):
    return R.scaled_dot_product_attention(Q, K, V)


@wrong("scaled_dot_product_attention", "random", "your function takes the parameters (Q, K)")
def attention_missing_values(Q, K):
    weights = _softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1]))
    return weights @ K, weights


# ============================================================================================
# self_attention(X, W_q, W_k, W_v) -> (output (..., n, d_v), weights (..., n, n))
# ============================================================================================


@wrong("self_attention", "random", "W_q and W_k swapped")
def self_projections_swapped(X, W_q, W_k, W_v):
    return _attention(X @ W_k, X @ W_q, X @ W_v)


@wrong("self_attention", "random", "values were not projected")
def self_values_not_projected(X, W_q, W_k, W_v):
    return _attention(X @ W_q, X @ W_k, X)


@wrong("self_attention", "random", "keys were projected with W_q")
def self_keys_from_W_q(X, W_q, W_k, W_v):
    return _attention(X @ W_q, X @ W_q, X @ W_v)


@wrong("self_attention", "random", "scaled by √d_model")
def self_scaled_by_d_model(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    weights = _softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(X.shape[-1]))
    return weights @ V, weights


@wrong("self_attention", "random", "scaled by √n (the length of the sequence")
def self_scaled_by_sequence_length(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    weights = _softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(X.shape[-2]))
    return weights @ V, weights


@wrong("self_attention", "batch", "K.T used on batched input")
def self_K_T(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    weights = _softmax(Q @ K.T / np.sqrt(Q.shape[-1]))
    return weights @ V, weights


@wrong("self_attention", "random", "transposed matrices")
def self_transposed_projections(X, W_q, W_k, W_v):
    return _attention(X @ W_q.T, X @ W_k.T, X @ W_v.T)


@wrong("self_attention", "random", "weights and output returned in the wrong order")
def self_swapped_return(X, W_q, W_k, W_v):
    output, weights = _attention(X @ W_q, X @ W_k, X @ W_v)
    return weights, output


@wrong("self_attention", "large", "maximum was not subtracted")
def self_naive_softmax(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v
    e = np.exp(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1]))
    weights = e / e.sum(axis=-1, keepdims=True)
    return weights @ V, weights


@wrong("self_attention", "random", NAMED_REFERENCE)
def self_via_reference_cross_attention(X, W_q, W_k, W_v):
    return R.cross_attention(X, X, W_q, W_k, W_v)


@wrong("self_attention", "random", NAMED_REFERENCE)
def self_calls_reference(X, W_q, W_k, W_v):
    return R.self_attention(X, W_q, W_k, W_v)


# ============================================================================================
# cross_attention(X, Z, W_q, W_k, W_v) -> (output (..., n_q, d_v), weights (..., n_q, n_k))
# ============================================================================================


@wrong("cross_attention", "random", "keys and values taken from X instead of Z")
def cross_keys_and_values_from_X(X, Z, W_q, W_k, W_v):
    return _attention(X @ W_q, X @ W_k, X @ W_v)


@wrong("cross_attention", "random", "values taken from X instead of Z")
def cross_values_from_X(X, Z, W_q, W_k, W_v):
    return _attention(X @ W_q, Z @ W_k, X @ W_v)


@wrong("cross_attention", "random", "keys taken from X instead of Z")
def cross_keys_from_X(X, Z, W_q, W_k, W_v):
    return _attention(X @ W_q, X @ W_k, Z @ W_v)


@wrong("cross_attention", "random", "X and Z swapped")
def cross_sequences_swapped(X, Z, W_q, W_k, W_v):
    return _attention(Z @ W_q, X @ W_k, X @ W_v)


@wrong("cross_attention", "random", "queries taken from Z instead of X")
def cross_queries_from_Z(X, Z, W_q, W_k, W_v):
    return _attention(Z @ W_q, Z @ W_k, Z @ W_v)


@wrong("cross_attention", "random", "W_q and W_k swapped")
def cross_projections_swapped(X, Z, W_q, W_k, W_v):
    return _attention(X @ W_k, Z @ W_q, Z @ W_v)


@wrong("cross_attention", "random", "values were not projected")
def cross_values_not_projected(X, Z, W_q, W_k, W_v):
    return _attention(X @ W_q, Z @ W_k, Z)


@wrong("cross_attention", "random", "scaled by √d_model_z")
def cross_scaled_by_width_of_Z(X, Z, W_q, W_k, W_v):
    Q, K, V = X @ W_q, Z @ W_k, Z @ W_v
    weights = _softmax(Q @ np.swapaxes(K, -1, -2) / np.sqrt(Z.shape[-1]))
    return weights @ V, weights


@wrong("cross_attention", "batch", "np.dot (or np.inner / np.tensordot)")
def cross_np_dot(X, Z, W_q, W_k, W_v):
    Q, K, V = X @ W_q, Z @ W_k, Z @ W_v
    weights = _softmax(np.dot(Q, np.swapaxes(K, -1, -2)) / np.sqrt(Q.shape[-1]))
    return np.dot(weights, V), weights


@wrong("cross_attention", "random", "your function takes the parameters (X, Z, W_q, W_v)")
def cross_forgot_W_k(X, Z, W_q, W_v):
    return _attention(X @ W_q, Z @ W_q, Z @ W_v)


@wrong("cross_attention", "random", NAMED_REFERENCE)
def cross_calls_reference(X, Z, W_q, W_k, W_v):
    return R.cross_attention(X, Z, W_q, W_k, W_v)


# ============================================================================================
# Float32 in, float32 out: right values returned in float64 for float32 input
# ============================================================================================

FLOAT64_FOR_FLOAT32 = "came back as float64 for float32 input"


@wrong("dot_product_scores", "float32", FLOAT64_FOR_FLOAT32, "np.zeros(shape)", "dtype=x.dtype")
def scores_into_float64_zeros(Q, K):
    scores = np.zeros((*Q.shape[:-2], Q.shape[-2], K.shape[-2]))  # float64 whatever the input
    scores[...] = Q @ np.swapaxes(K, -1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    return scores


@wrong("scale_scores", "float32", FLOAT64_FOR_FLOAT32, "NEP 50", "math.sqrt(d_k)")
def scale_by_numpy_sqrt(scores, d_k):
    return scores / np.sqrt(d_k)  # np.float64 scalar: float32 scores become float64 (NumPy >= 2)


@wrong("scaled_dot_product_attention", "float32", FLOAT64_FOR_FLOAT32, "NEP 50", "d_k ** 0.5")
def attention_scaled_by_numpy_sqrt(Q, K, V):
    return _attention(Q, K, V)  # divides by np.sqrt(d_k)
