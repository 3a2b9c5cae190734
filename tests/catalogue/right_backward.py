"""Correct backward passes for notebook 09: each must get full marks on every case and seed.

An explicit Jacobian per row (einsum), loops, a log-sum-exp forward, the scale folded into the
queries, one built on the learner's own ``softmax_backward`` ...

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width; ``n`` the softmax axis.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import right

# ============================================================================================
# softmax_backward(weights, grad_weights, axis=-1)
# ============================================================================================


@right("softmax_backward")
def softmax_backward_two_terms(weights, grad_weights, axis=-1):
    weighted_mean = np.sum(weights * grad_weights, axis=axis, keepdims=True)
    return weights * grad_weights - weights * weighted_mean


@right("softmax_backward")
def softmax_backward_explicit_jacobian(weights, grad_weights, axis=-1):
    p = np.moveaxis(weights, axis, -1)  # (..., n)
    g = np.moveaxis(grad_weights, axis, -1)  # (..., n)
    eye = np.eye(p.shape[-1], dtype=p.dtype)  # (n, n)
    J = p[..., :, None] * eye - p[..., :, None] * p[..., None, :]  # (..., n, n) diag(p) - p pᵀ
    grad = np.einsum("...ij,...i->...j", J, g)  # Jᵀ g, (..., n)
    return np.moveaxis(grad, -1, axis)


@right("softmax_backward")
def softmax_backward_loops(weights, grad_weights, axis=-1):
    p = np.moveaxis(np.asarray(weights), axis, -1)  # (..., n)
    g = np.moveaxis(np.asarray(grad_weights), axis, -1)
    out = np.zeros_like(p)
    for index in np.ndindex(*p.shape[:-1]):
        row_p, row_g = p[index], g[index]
        dot = sum(row_p[j] * row_g[j] for j in range(len(row_p)))
        out[index] = [row_p[j] * (row_g[j] - dot) for j in range(len(row_p))]
    return np.moveaxis(out, -1, axis)


# ============================================================================================
# attention_backward(Q, K, V, grad_output, mask=None, scale=None)
# ============================================================================================


def _safe_softmax(S):
    m = np.max(S, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # a fully masked row: shift by 0, never -inf
    e = np.exp(S - m)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


@right("attention_backward")
def attention_backward_einsum_jacobian(Q, K, V, grad_output, mask=None, scale=None):
    scale = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    S = scale * np.einsum("...qd,...kd->...qk", Q, K)  # (..., n_q, n_k)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = _safe_softmax(S)
    n_k = P.shape[-1]
    eye = np.eye(n_k, dtype=P.dtype)  # (n_k, n_k), in the inputs' dtype
    J = np.einsum("...qk,kl->...qkl", P, eye) - np.einsum("...qk,...ql->...qkl", P, P)
    dP = np.einsum("...qv,...kv->...qk", grad_output, V)  # (..., n_q, n_k)
    dS = np.einsum("...qkl,...qk->...ql", J, dP)  # (..., n_q, n_k)
    dQ = scale * np.einsum("...qk,...kd->...qd", dS, K)
    dK = scale * np.einsum("...qk,...qd->...kd", dS, Q)
    dV = np.einsum("...qk,...qv->...kv", P, grad_output)
    return dQ, dK, dV


@right("attention_backward")
def attention_backward_loops(Q, K, V, grad_output, mask=None, scale=None):
    n_q, d_k = Q.shape[-2:]
    n_k = K.shape[-2]
    scale = 1 / math.sqrt(d_k) if scale is None else scale
    batch = Q.shape[:-2]
    full_mask = (
        np.ones((*batch, n_q, n_k), bool)
        if mask is None
        else np.broadcast_to(mask, (*batch, n_q, n_k))
    )
    dQ, dK, dV = np.zeros_like(Q), np.zeros_like(K), np.zeros_like(V)
    for b in np.ndindex(*batch):
        for i in range(n_q):
            live = [j for j in range(n_k) if full_mask[b + (i,)][j]]
            if not live:
                continue  # a fully masked query: no weight, no gradient
            s = {j: scale * float(Q[b + (i,)] @ K[b + (j,)]) for j in live}
            top = max(s.values())
            e = {j: math.exp(s[j] - top) for j in live}
            total = sum(e.values())
            p = {j: e[j] / total for j in live}
            dp = {j: float(grad_output[b + (i,)] @ V[b + (j,)]) for j in live}
            mean = sum(p[j] * dp[j] for j in live)
            for j in live:
                ds = p[j] * (dp[j] - mean)
                dQ[b + (i,)] += scale * ds * K[b + (j,)]
                dK[b + (j,)] += scale * ds * Q[b + (i,)]
                dV[b + (j,)] += p[j] * grad_output[b + (i,)]
    return dQ, dK, dV


@right("attention_backward")
def attention_backward_logsumexp(Q, K, V, grad_output, mask=None, scale=None):
    scale = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    S = scale * (Q @ np.swapaxes(K, -1, -2))  # (..., n_q, n_k)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    m = np.max(S, axis=-1, keepdims=True)
    dead = ~np.isfinite(m)  # (..., n_q, 1): queries with no key
    m = np.where(dead, 0.0, m)
    lse = m + np.log(np.sum(np.exp(S - m), axis=-1, keepdims=True), where=~dead,
                     out=np.zeros_like(m))  # fmt: skip
    P = np.where(dead, 0.0, np.exp(S - lse))  # exp(-inf) = 0 for masked keys
    dP = grad_output @ np.swapaxes(V, -1, -2)  # (..., n_q, n_k)
    dS = P * dP - P * np.sum(P * dP, axis=-1, keepdims=True)
    dQ = scale * (dS @ K)
    dK = scale * (np.swapaxes(dS, -1, -2) @ Q)
    return dQ, dK, np.swapaxes(P, -1, -2) @ grad_output


@right("attention_backward")
def attention_backward_scale_folded_into_queries(Q, K, V, grad_output, mask=None, scale=None):
    scale = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    Q_s = Q * scale  # a new array: the caller's Q is untouched
    S = Q_s @ K.swapaxes(-1, -2)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = _safe_softmax(S)
    dP = grad_output @ V.swapaxes(-1, -2)
    dS = P * (dP - (P * dP).sum(-1, keepdims=True))
    return scale * (dS @ K), dS.swapaxes(-1, -2) @ Q_s, P.swapaxes(-1, -2) @ grad_output


@right("attention_backward")
def attention_backward_with_own_softmax_backward(Q, K, V, grad_output, mask=None, scale=None):
    scale = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    S = scale * np.matmul(Q, np.swapaxes(K, -1, -2))
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = _safe_softmax(S)
    dP = np.matmul(grad_output, np.swapaxes(V, -1, -2))
    dS = softmax_backward_two_terms(P, dP, axis=-1) * scale  # the scale once, into dS
    return dS @ K, np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output
