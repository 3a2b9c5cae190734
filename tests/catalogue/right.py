"""Correct alternatives to the reference: each must get full marks on every case and seed.

They are written the ways learners legitimately write them: einsum, ``np.matmul``, explicit
Python loops (which return float64 for float32 input — fine), broadcasting and a sum,
``np.tensordot`` where it is right, ``scipy.special.softmax``, a log-sum-exp softmax, scaling
the queries before the product, ``scores * d_k**-0.5``, ``math.sqrt``, in-place operations on a
copy, a ``list`` ``[output, weights]`` ...

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.special

from .registry import right

# ============================================================================================
# dot_product_scores(Q, K) -> (..., n_q, n_k)
# ============================================================================================


@right("dot_product_scores")
def scores_einsum(Q, K):
    return np.einsum("...qd,...kd->...qk", Q, K)


@right("dot_product_scores")
def scores_matmul_swapaxes(Q, K):
    return np.matmul(Q, K.swapaxes(-1, -2))  # (..., n_q, d_k) @ (..., d_k, n_k)


@right("dot_product_scores")
def scores_broadcast_and_sum(Q, K):
    # (..., n_q, 1, d_k) * (..., 1, n_k, d_k) -> (..., n_q, n_k, d_k) -> (..., n_q, n_k)
    return (Q[..., :, None, :] * K[..., None, :, :]).sum(axis=-1)


@right("dot_product_scores")
def scores_python_loops(Q, K):
    n_q, n_k = Q.shape[-2], K.shape[-2]
    scores = np.zeros((*Q.shape[:-2], n_q, n_k), dtype=np.result_type(Q, K))  # float32 stays
    for b in np.ndindex(*Q.shape[:-2]):
        q_rows, k_rows = Q[b].tolist(), K[b].tolist()
        for i in range(n_q):
            for j in range(n_k):
                scores[b + (i, j)] = sum(q * k for q, k in zip(q_rows[i], k_rows[j], strict=True))
    return scores


@right("dot_product_scores")
def scores_moveaxis(Q, K):
    return Q @ np.moveaxis(K, -1, -2)


# ============================================================================================
# scale_scores(scores, d_k) -> (..., n_q, n_k)
# ============================================================================================


@right("scale_scores")
def scale_power_minus_half(scores, d_k):
    return scores * d_k**-0.5


@right("scale_scores")
def scale_math_sqrt(scores, d_k):
    return scores / math.sqrt(d_k)


@right("scale_scores")
def scale_in_place_on_a_copy(scores, d_k):
    scaled = scores.copy()
    scaled /= np.sqrt(d_k)
    return scaled


@right("scale_scores")
def scale_np_divide_power_half(scores, d_k):
    return np.divide(scores, d_k ** (1 / 2))


# ============================================================================================
# softmax(x, axis=-1) -> same shape as x
# ============================================================================================


@right("softmax")
def softmax_textbook(x, axis=-1):
    shifted = x - np.max(x, axis=axis, keepdims=True)  # every exponent <= 0
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


@right("softmax")
def softmax_scipy(x, axis=-1):
    return scipy.special.softmax(x, axis=axis)


@right("softmax")
def softmax_scipy_logsumexp(x, axis=-1):
    return np.exp(x - scipy.special.logsumexp(x, axis=axis, keepdims=True))


@right("softmax")
def softmax_log_sum_exp_by_hand(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    log_total = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return np.exp(x - log_total)


@right("softmax")
def softmax_in_place_on_a_copy(x, axis=-1):
    e = x.copy()
    e -= e.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


@right("softmax")
def softmax_python_loops(x, axis=-1):
    moved = np.moveaxis(x, axis, -1)  # the axis to normalise last
    out = np.zeros(moved.shape, dtype=np.result_type(x, 1.0))  # float32 stays, int -> float64
    for index in np.ndindex(*moved.shape[:-1]):
        row = moved[index].tolist()
        top = max(row)
        e = [math.exp(v - top) for v in row]
        total = sum(e)
        out[index] = [v / total for v in e]
    return np.moveaxis(out, -1, axis)


@right("softmax")
def softmax_apply_along_axis(x, axis=-1):
    def one_row(row):
        e = np.exp(row - row.max())
        return e / e.sum()

    return np.apply_along_axis(one_row, axis, x)


# ============================================================================================
# weighted_sum(weights, V) -> (..., n_q, d_v)
# ============================================================================================


@right("weighted_sum")
def weighted_einsum(weights, V):
    return np.einsum("...qk,...kv->...qv", weights, V)


@right("weighted_sum")
def weighted_matmul(weights, V):
    return np.matmul(weights, V)


@right("weighted_sum")
def weighted_broadcast_and_sum(weights, V):
    # (..., n_q, n_k, 1) * (..., 1, n_k, d_v) -> (..., n_q, n_k, d_v) -> (..., n_q, d_v)
    return (weights[..., :, :, None] * V[..., None, :, :]).sum(axis=-2)


@right("weighted_sum")
def weighted_python_loops(weights, V):
    n_q, n_k, d_v = weights.shape[-2], weights.shape[-1], V.shape[-1]
    out = np.zeros((*weights.shape[:-2], n_q, d_v), dtype=np.result_type(weights, V))
    for b in np.ndindex(*weights.shape[:-2]):
        w, v = weights[b].tolist(), V[b].tolist()
        for i in range(n_q):
            for c in range(d_v):
                out[b + (i, c)] = sum(w[i][j] * v[j][c] for j in range(n_k))
    return out


# ============================================================================================
# scaled_dot_product_attention(Q, K, V) -> (output, weights)
# ============================================================================================


def _softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@right("scaled_dot_product_attention")
def attention_textbook(Q, K, V):
    d_k = Q.shape[-1]
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(d_k)  # (..., n_q, n_k); a Python float
    weights = _softmax(scores, axis=-1)
    output = weights @ V  # (..., n_q, d_v)
    return output, weights


@right("scaled_dot_product_attention")
def attention_einsum(Q, K, V):
    scores = np.einsum("...qd,...kd->...qk", Q, K) / math.sqrt(Q.shape[-1])
    weights = scipy.special.softmax(scores, axis=-1)
    return np.einsum("...qk,...kv->...qv", weights, V), weights


@right("scaled_dot_product_attention")
def attention_scales_queries_first(Q, K, V):
    Q = Q / math.sqrt(Q.shape[-1])  # a new array: the caller's Q is untouched
    weights = _softmax(Q @ K.swapaxes(-1, -2))
    return weights @ V, weights


@right("scaled_dot_product_attention")
def attention_power_minus_half_returns_list(Q, K, V):
    scores = np.matmul(Q, np.swapaxes(K, -1, -2)) * Q.shape[-1] ** -0.5
    weights = _softmax(scores)
    return [np.matmul(weights, V), weights]


@right("scaled_dot_product_attention")
def attention_log_sum_exp(Q, K, V):
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])
    weights = np.exp(scores - scipy.special.logsumexp(scores, axis=-1, keepdims=True))
    return weights @ V, weights


@right("scaled_dot_product_attention")
def attention_python_loops(Q, K, V):
    n_q, d_k, n_k, d_v = Q.shape[-2], Q.shape[-1], K.shape[-2], V.shape[-1]
    dtype = np.result_type(Q, K, V)  # float32 in, float32 out
    output = np.zeros((*Q.shape[:-2], n_q, d_v), dtype=dtype)
    weights = np.zeros((*Q.shape[:-2], n_q, n_k), dtype=dtype)
    for b in np.ndindex(*Q.shape[:-2]):
        q, k, v = Q[b].tolist(), K[b].tolist(), V[b].tolist()
        for i in range(n_q):
            row = [
                sum(a * c for a, c in zip(q[i], k[j], strict=True)) / math.sqrt(d_k)
                for j in range(n_k)
            ]
            top = max(row)
            e = [math.exp(s - top) for s in row]
            total = sum(e)
            for j in range(n_k):
                weights[b + (i, j)] = e[j] / total
            for c in range(d_v):
                output[b + (i, c)] = sum(e[j] / total * v[j][c] for j in range(n_k))
    return output, weights


# ============================================================================================
# self_attention(X, W_q, W_k, W_v) -> (output, weights)
# ============================================================================================


@right("self_attention")
def self_with_own_attention(X, W_q, W_k, W_v):
    Q, K, V = X @ W_q, X @ W_k, X @ W_v  # (..., n, d_k), (..., n, d_k), (..., n, d_v)
    return attention_textbook(Q, K, V)


@right("self_attention")
def self_tensordot_projections(X, W_q, W_k, W_v):
    # tensordot with axes=1 contracts X's last axis with W's first: right for any batch.
    Q, K, V = (np.tensordot(X, W, axes=1) for W in (W_q, W_k, W_v))
    return attention_einsum(Q, K, V)


@right("self_attention")
def self_einsum_everything(X, W_q, W_k, W_v):
    Q = np.einsum("...nm,mk->...nk", X, W_q)
    K = np.einsum("...nm,mk->...nk", X, W_k)
    V = np.einsum("...nm,mv->...nv", X, W_v)
    scores = np.einsum("...qk,...pk->...qp", Q, K) * W_q.shape[1] ** -0.5
    weights = scipy.special.softmax(scores, axis=-1)
    return np.einsum("...qp,...pv->...qv", weights, V), weights


@right("self_attention")
def self_one_big_projection(X, W_q, W_k, W_v):
    d_k = W_q.shape[1]
    QKV = X @ np.concatenate([W_q, W_k, W_v], axis=1)  # (..., n, 2 d_k + d_v)
    Q, K, V = QKV[..., :d_k], QKV[..., d_k : 2 * d_k], QKV[..., 2 * d_k :]
    return attention_textbook(Q, K, V)


@right("self_attention")
def self_as_cross_attention(X, W_q, W_k, W_v):
    return cross_with_own_attention(X, X, W_q, W_k, W_v)


# ============================================================================================
# cross_attention(X, Z, W_q, W_k, W_v) -> (output, weights)
# ============================================================================================


@right("cross_attention")
def cross_with_own_attention(X, Z, W_q, W_k, W_v):
    Q = X @ W_q  # (..., n_q, d_model) @ (d_model, d_k) -> (..., n_q, d_k)
    K = Z @ W_k  # (..., n_k, d_model_z) @ (d_model_z, d_k) -> (..., n_k, d_k)
    V = Z @ W_v  # (..., n_k, d_model_z) @ (d_model_z, d_v) -> (..., n_k, d_v)
    return attention_textbook(Q, K, V)


@right("cross_attention")
def cross_tensordot_and_loops(X, Z, W_q, W_k, W_v):
    Q = np.tensordot(X, W_q, axes=1)
    K = np.tensordot(Z, W_k, axes=1)
    V = np.tensordot(Z, W_v, axes=1)
    return attention_python_loops(Q, K, V)


@right("cross_attention")
def cross_scaled_queries_returns_list(X, Z, W_q, W_k, W_v):
    Q = (X @ W_q) / math.sqrt(W_q.shape[1])
    K, V = Z @ W_k, Z @ W_v
    weights = scipy.special.softmax(Q @ np.swapaxes(K, -1, -2), axis=-1)
    return [weights @ V, weights]
