"""Wrong backward passes for notebook 09, one mistake each, written the way learners write them.

Each function is registered with ``@wrong(exercise, case, *phrases)``: the check of
``exercise`` must fail on ``case`` (with the visible seed and with hidden seeds), and the
failure message must contain every phrase — the name of the mistake from the grader's
catalogue, or for an unnamed mistake the expected-versus-got description.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width; ``P`` the weights (..., n_q, n_k), ``dO`` the gradient of
the output (..., n_q, d_v), ``dP`` / ``dS`` the gradients of the weights / scores
(..., n_q, n_k).
"""

from __future__ import annotations

import math

import numpy as np

import attention_course.reference as R  # noqa: N812 - a learner habit under test

from .registry import wrong

DIFFERING = "the first differing entry is at index"
NAMED_REFERENCE = "calls the course's reference"


# ---- the learner's own correct building blocks -----------------------------------------------


def _softmax(S):
    """Row softmax whose fully masked (all -inf) rows give zeros, without warnings."""
    m = np.max(S, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(S - m)
    total = np.sum(e, axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _weights(Q, K, mask, scale):
    """P = softmax(scale · Q Kᵀ), masked keys -inf: (..., n_q, n_k)."""
    S = scale * (Q @ np.swapaxes(K, -1, -2))  # (..., n_q, d_k) @ (..., d_k, n_k)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    return _softmax(S)


def _scale(Q, scale):
    return 1 / math.sqrt(Q.shape[-1]) if scale is None else scale


# ============================================================================================
# softmax_backward(weights, grad_weights, axis=-1) -> (..., n_k)
# ============================================================================================


@wrong("softmax_backward", "random", "the -p pᵀ term of the softmax Jacobian is missing")
def softmax_backward_diag_only(weights, grad_weights, axis=-1):
    return weights * grad_weights


@wrong("softmax_backward", "random", "only the diagonal of the Jacobian was used")
def softmax_backward_p_one_minus_p(weights, grad_weights, axis=-1):
    # d p_i / d s_i = p_i (1 - p_i) ... and the other entries forgotten
    return weights * (1 - weights) * grad_weights


@wrong("softmax_backward", "axis", "the `axis` argument is ignored")
def softmax_backward_last_axis_always(weights, grad_weights, axis=-1):
    p, g = weights, grad_weights
    return p * (g - (p * g).sum(axis=-1, keepdims=True))


@wrong("softmax_backward", "random", "keepdims missing")
def softmax_backward_without_keepdims(weights, grad_weights, axis=-1):
    p, g = weights, grad_weights
    return p * (g - np.sum(p * g, axis=axis))


@wrong("softmax_backward", "random", "summed g instead of p * g")
def softmax_backward_sum_of_g(weights, grad_weights, axis=-1):
    return weights * (grad_weights - grad_weights.sum(axis=axis, keepdims=True))


@wrong("softmax_backward", "inputs_unchanged", "modified its input in place (grad_weights)")
def softmax_backward_in_place(weights, grad_weights, axis=-1):
    grad_weights -= np.sum(weights * grad_weights, axis=axis, keepdims=True)
    grad_weights *= weights
    return grad_weights


@wrong("softmax_backward", "random", DIFFERING)
def softmax_backward_jacobian_sign_flipped(weights, grad_weights, axis=-1):
    p = np.moveaxis(weights, axis, -1)  # (..., n)
    g = np.moveaxis(grad_weights, axis, -1)
    J = p[..., :, None] * p[..., None, :] - p[..., :, None] * np.eye(p.shape[-1])  # p pᵀ - diag
    return np.moveaxis(np.einsum("...ij,...i->...j", J, g), -1, axis)


@wrong("softmax_backward", "random", NAMED_REFERENCE)
def softmax_backward_by_reference(weights, grad_weights, axis=-1):
    return R.softmax_backward(weights, grad_weights, axis=axis)


# ============================================================================================
# attention_backward(Q, K, V, grad_output, mask=None, scale=None) -> (dQ, dK, dV)
# ============================================================================================


@wrong("attention_backward", "random", "the -p pᵀ term of the softmax Jacobian is missing")
def attention_backward_diag_softmax(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)  # (..., n_q, n_k)
    dS = P * dP
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "only the diagonal of the softmax Jacobian")
def attention_backward_p_one_minus_p(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dS = P * (1 - P) * (grad_output @ np.swapaxes(V, -1, -2))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "the softmax backward was skipped")
def attention_backward_through_no_softmax(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dS = grad_output @ np.swapaxes(V, -1, -2)  # dP used as dS
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "wrong reduction axis in the softmax backward")
def attention_backward_sum_over_queries(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - (P * dP).sum(axis=-2, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "keepdims missing in the softmax backward")
def attention_backward_without_keepdims(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - (P * dP).sum(axis=-1))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "the scale was forgotten in the chain rule")
def attention_backward_scale_forgotten(Q, K, V, grad_output, mask=None, scale=None):
    P = _weights(Q, K, mask, _scale(Q, scale))
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return dS @ K, np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "the scale was applied twice")
def attention_backward_scale_twice(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True)) * scale  # scaled here ...
    dQ = scale * dS @ K  # ... and here again
    dK = scale * np.swapaxes(dS, -1, -2) @ Q
    return dQ, dK, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "dV was multiplied by the scale too")
def attention_backward_scaled_dV(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    grads = (dS @ K, np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output)
    return tuple(scale * g for g in grads)


@wrong("attention_backward", "scale", "the `scale` argument is ignored")
def attention_backward_scale_ignored(Q, K, V, grad_output, mask=None, scale=None):
    scale = 1 / math.sqrt(Q.shape[-1])
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "the default scale is 1/d_k instead of 1/√d_k")
def attention_backward_scale_one_over_d_k(Q, K, V, grad_output, mask=None, scale=None):
    if scale is None:
        scale = 1 / Q.shape[-1]
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "the weights were recomputed without the scale")
def attention_backward_unscaled_forward(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, 1.0)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "dK = dS Q instead of dSᵀ Q")
def attention_backward_dK_untransposed(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * dS @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "dV = P dO instead of Pᵀ dO")
def attention_backward_dV_untransposed(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, P @ grad_output


@wrong("attention_backward", "random", "dP = dO V instead of dO Vᵀ")
def attention_backward_dP_untransposed(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ V
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", "grad_Q and grad_K are swapped")
def attention_backward_keys_first(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, mask, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    dQ, dK = scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q
    return dK, dQ, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "batch", ".T used on batched input")
def attention_backward_dot_T(Q, K, V, grad_output, mask=None, scale=None):
    scale = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    S = scale * Q @ K.T
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = _softmax(S)
    dS = P * (grad_output @ V.T - np.sum(P * (grad_output @ V.T), axis=-1, keepdims=True))
    return scale * dS @ K, scale * dS.T @ Q, P.T @ grad_output


@wrong("attention_backward", "mask", "the mask is ignored in the backward pass")
def attention_backward_mask_ignored(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    P = _weights(Q, K, None, scale)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "mask", "the scores were multiplied by the mask")
def attention_backward_mask_times_scores(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    S = scale * Q @ np.swapaxes(K, -1, -2)
    P = _softmax(S * mask if mask is not None else S)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "fully_masked", "fully masked rows give NaN")
def attention_backward_nan_rows(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    S = scale * Q @ np.swapaxes(K, -1, -2)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    e = np.exp(S - S.max(axis=-1, keepdims=True))  # -inf - (-inf) = NaN on a dead row
    P = e / e.sum(axis=-1, keepdims=True)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "fully_masked", "was replaced afterwards (np.nan_to_num)")
def attention_backward_nan_hidden(Q, K, V, grad_output, mask=None, scale=None):
    grads = attention_backward_nan_rows(Q, K, V, grad_output, mask, scale)
    return tuple(np.nan_to_num(g) for g in grads)  # too late: the NaN has spread


@wrong("attention_backward", "fully_masked", "right values, but NumPy warned", "is not enough")
def attention_backward_nan_weights_patched(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    S = scale * Q @ np.swapaxes(K, -1, -2)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    e = np.exp(S - S.max(axis=-1, keepdims=True))
    total = e.sum(axis=-1, keepdims=True)
    P = np.where(total > 0, e / total, 0.0)  # the NaN rows are patched, the warning stays
    P = np.nan_to_num(P)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "large", "unstable softmax in the recomputed forward pass")
def attention_backward_unstable(Q, K, V, grad_output, mask=None, scale=None):
    scale = _scale(Q, scale)
    S = scale * Q @ np.swapaxes(K, -1, -2)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    e = np.exp(S)
    P = e / e.sum(axis=-1, keepdims=True)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, scale * np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "inputs_unchanged", "modified its input in place (Q)")
def attention_backward_scales_Q_in_place(Q, K, V, grad_output, mask=None, scale=None):  # noqa: N802
    scale = _scale(Q, scale)
    Q *= scale  # the caller's Q is changed
    S = Q @ np.swapaxes(K, -1, -2)
    if mask is not None:
        S = np.where(mask, S, -np.inf)
    P = _softmax(S)
    dP = grad_output @ np.swapaxes(V, -1, -2)
    dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    return scale * dS @ K, np.swapaxes(dS, -1, -2) @ Q, np.swapaxes(P, -1, -2) @ grad_output


@wrong("attention_backward", "random", NAMED_REFERENCE)
def attention_backward_numerically(Q, K, V, grad_output, mask=None, scale=None):
    return R.numerical_attention_gradients(Q, K, V, grad_output, mask=mask, scale=scale)
