"""Notebook 09: ``softmax_backward(weights, grad_weights, axis=-1)`` and
``attention_backward(Q, K, V, grad_output, mask=None, scale=None)``, the backward pass.

The answers are compared with :func:`attention_course.reference.softmax_backward` and
:func:`attention_course.reference.attention_backward`, which ``tests/test_backward.py`` checks
against an explicit-Jacobian loop version and against central differences
(:func:`attention_course.reference.numerical_attention_gradients`); ``tests/`` also checks that
on every case's inputs here, the reference and central differences agree. A learner can run
the same numerical comparison on their own function in the notebook.

Fully masked rows must come out as zeros without NumPy warnings (:data:`~.framework.NO_WARNINGS`),
as in notebooks 06 and 08.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width, ``d_v`` value width; for ``softmax_backward`` the softmax axis has
``n_k`` entries and the array may have any other axes.
"""

from __future__ import annotations

import math

import numpy as np

from .. import reference as ref
from .framework import (
    NO_WARNINGS,
    Case,
    Exercise,
    Mistake,
    make_check,
    unchanged_inputs_case,
)
from .inputs import batch_and_sizes, lengths_mask, normal, qkv, sizes, two_sided_mask
from .mistakes import naive_softmax, safe_softmax, stable_softmax

_FORBIDDEN = frozenset(
    {
        "softmax_backward",
        "attention_backward",
        "numerical_gradient",
        "numerical_attention_gradients",
    }
)

_SOFTMAX_BACKWARD_FIX = (
    "the gradient to the scores is (diag(p) - p pᵀ) g, computed without the matrix as "
    "p * (g - np.sum(p * g, axis=axis, keepdims=True))"
)

# ============================================================================================
# softmax_backward(weights, grad_weights, axis=-1) -> (..., n_k)
# ============================================================================================


def _weights(rng, shape, axis=-1, spread=2.0):
    """Softmax weights along ``axis`` of random scores: every entry positive, slices sum to 1."""
    return safe_softmax(normal(rng, shape, spread), axis=axis)


def _softmax_backward_inputs(kind: str):
    def make(rng):
        (b1, b2), (n_q, n_k, n_c) = batch_and_sizes(rng, 3)
        if kind == "random":
            return [((_weights(rng, (n_q, n_k)), normal(rng, (n_q, n_k))), {})]
        if kind == "batch":
            shape = (b1, b2, n_q, n_k)
            return [((_weights(rng, shape), normal(rng, shape)), {})]
        if kind == "axis":
            shape = (n_q, n_k, n_c)
            return [
                ((_weights(rng, shape, axis=axis), normal(rng, shape)), {"axis": axis})
                for axis in (0, 1, -2)
            ]
        if kind == "masked_rows":
            scores = normal(rng, (b1, n_q, n_k), 2.0)
            mask = two_sided_mask(rng, (b1, n_q, n_k))
            mask[0, rng.integers(n_q)] = False  # a fully masked row: all-zero weights
            p = safe_softmax(np.where(mask, scores, -np.inf))
            return [((p, normal(rng, (b1, n_q, n_k))), {})]
        if kind == "float32":
            p = _weights(rng, (n_q, n_k)).astype(np.float32)
            return [((p, normal(rng, (n_q, n_k), 1.0, np.float32)), {})]
        if kind == "inputs_unchanged":
            shape = (b1, n_q, n_k)
            return [((_weights(rng, shape), normal(rng, shape)), {})]
        raise KeyError(kind)

    return make


def _square_weights_probe(rng):
    """Square (n, n) weights: a sum without keepdims broadcasts along the wrong axis but runs."""
    (n,) = sizes(rng, 1, 3)
    return (_weights(rng, (n, n)), normal(rng, (n, n))), {}


def _softmax_backward_with(mode: str):
    """A softmax backward with one deliberate mistake (``mode``)."""

    def softmax_backward(weights, grad_weights, axis=-1):
        p, g = weights, grad_weights
        if mode == "no_ppt":
            return p * g
        if mode == "diagonal":
            return p * (1 - p) * g
        if mode == "no_p":
            return g - np.sum(p * g, axis=axis, keepdims=True)
        if mode == "sign":
            return p * (g + np.sum(p * g, axis=axis, keepdims=True))
        if mode == "sum_of_g":
            return p * (g - np.sum(g, axis=axis, keepdims=True))
        if mode == "axis_ignored":
            return p * (g - np.sum(p * g, axis=-1, keepdims=True))
        if mode == "axis_0":
            return p * (g - np.sum(p * g, axis=0, keepdims=True))
        if mode == "whole_array":
            return p * (g - np.sum(p * g))
        if mode == "no_keepdims":
            return p * (g - np.sum(p * g, axis=axis))
        raise ValueError(mode)  # pragma: no cover - a typo in the catalogue below

    return softmax_backward


_SOFTMAX_BACKWARD = Exercise(
    name="softmax_backward",
    arg_names=("weights", "grad_weights"),
    reference=ref.softmax_backward,
    n_outputs=1,
    output_names=("grad_scores",),
    signature="softmax_backward(weights, grad_weights, axis=-1)",
    arg_layouts=("", ""),
    output_layouts=("",),
    cases={
        "random": Case(
            "matches the reference on random weights", _softmax_backward_inputs("random")
        ),
        "batch": Case("works with leading batch dimensions", _softmax_backward_inputs("batch")),
        "axis": Case("respects the `axis` argument", _softmax_backward_inputs("axis")),
        "masked_rows": Case(
            "gives zeros for masked entries and all-zero (fully masked) rows",
            _softmax_backward_inputs("masked_rows"),
        ),
        "float32": Case("works in float32", _softmax_backward_inputs("float32")),
        "inputs_unchanged": unchanged_inputs_case(_softmax_backward_inputs("inputs_unchanged")),
    },
    mistakes=(
        Mistake(
            "the -p pᵀ term of the softmax Jacobian is missing: you returned p * g, as if the "
            "Jacobian were diag(p)",
            f"subtract each slice's weighted mean of g: {_SOFTMAX_BACKWARD_FIX}",
            _softmax_backward_with("no_ppt"),
        ),
        Mistake(
            "only the diagonal of the Jacobian was used: p * (1 - p) * g ignores the "
            "off-diagonal entries -p_i p_j, through which every score moves every weight",
            _SOFTMAX_BACKWARD_FIX,
            _softmax_backward_with("diagonal"),
        ),
        Mistake(
            "the factor p is missing: g - sum(p * g) must still be multiplied by p",
            _SOFTMAX_BACKWARD_FIX,
            _softmax_backward_with("no_p"),
        ),
        Mistake(
            "the sign of the correction is flipped: p * (g + sum(p * g))",
            f"subtract the weighted mean: {_SOFTMAX_BACKWARD_FIX}",
            _softmax_backward_with("sign"),
        ),
        Mistake(
            "summed g instead of p * g: the term to subtract is the weighted mean pᵀg",
            _SOFTMAX_BACKWARD_FIX,
            _softmax_backward_with("sum_of_g"),
        ),
        Mistake(
            "the `axis` argument is ignored: your sum always runs over the last axis",
            "pass axis=axis (with keepdims=True) to the sum",
            _softmax_backward_with("axis_ignored"),
        ),
        Mistake(
            "wrong reduction axis: you summed p * g over axis 0 (the queries) instead of the "
            "softmax axis",
            "sum over the axis the softmax normalised: np.sum(p * g, axis=axis, keepdims=True), "
            "by default the last axis (the keys)",
            _softmax_backward_with("axis_0"),
        ),
        Mistake(
            "summed p * g over the whole array instead of each slice",
            "sum along the softmax axis only: np.sum(p * g, axis=axis, keepdims=True)",
            _softmax_backward_with("whole_array"),
        ),
        Mistake(
            "keepdims missing: np.sum(p * g, axis=axis) lost its axis, so each entry is "
            "corrected with another row's sum",
            "np.sum(p * g, axis=axis, keepdims=True): keepdims keeps the summed axis (size 1) "
            "so that it broadcasts along the right axis",
            _softmax_backward_with("no_keepdims"),
            probe=_square_weights_probe,
        ),
    ),
    forbidden=_FORBIDDEN,
)

# ============================================================================================
# attention_backward(Q, K, V, grad_output, mask=None, scale=None)
#     -> (grad_Q (..., n_q, d_k), grad_K (..., n_k, d_k), grad_V (..., n_k, d_v))
# ============================================================================================


def _grad_output(rng, lead, n_q, d_v, dtype=np.float64):
    return normal(rng, (*lead, n_q, d_v), 1.0, dtype)


def _backward_inputs(kind: str):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k, d_v) = batch_and_sizes(rng, 4, d_k_at=2)
        if kind == "random":
            Q, K, V = qkv(rng, (), n_q, n_k, d_k, d_v)
            return [((Q, K, V, _grad_output(rng, (), n_q, d_v)), {})]
        if kind == "batch":
            Q, K, V = qkv(rng, (b1, b2), n_q, n_k, d_k, d_v)
            return [((Q, K, V, _grad_output(rng, (b1, b2), n_q, d_v)), {})]
        if kind == "scale":
            Q, K, V = qkv(rng, (b1,), n_q, n_k, d_k, d_v)
            dO = _grad_output(rng, (b1,), n_q, d_v)
            return [((Q, K, V, dO, None, 1.0), {}), ((Q, K, V, dO, None, 0.37), {})]
        if kind == "mask":
            Q, K, V = qkv(rng, (b1,), n_q, n_k, d_k, d_v)
            mask = two_sided_mask(rng, (b1, n_q, n_k))
            return [((Q, K, V, _grad_output(rng, (b1,), n_q, d_v), mask), {})]
        if kind == "fully_masked":
            mask = two_sided_mask(rng, (n_q, n_k))
            mask[rng.choice(n_q, size=min(2, n_q - 1), replace=False)] = False
            lengths = rng.integers(1, n_k + 1, size=b1)
            lengths[rng.integers(b1)] = 0  # one sequence is all padding
            return [
                ((*qkv(rng, (), n_q, n_k, d_k, d_v), _grad_output(rng, (), n_q, d_v), mask), {}),
                (
                    (
                        *qkv(rng, (b1,), n_q, n_k, d_k, d_v),
                        _grad_output(rng, (b1,), n_q, d_v),
                        lengths_mask(lengths, n_k),
                    ),
                    {},
                ),
            ]
        if kind == "large":
            # Scores in the thousands: np.exp overflows unless the row maximum is subtracted.
            Q, K, V = qkv(rng, (), n_q, n_k, d_k, d_v, 30.0)
            return [((Q, K, V, _grad_output(rng, (), n_q, d_v)), {})]
        if kind == "float32":
            Q, K, V = qkv(rng, (b1,), n_q, n_k, d_k, d_v, 1.0, np.float32)
            return [((Q, K, V, _grad_output(rng, (b1,), n_q, d_v, np.float32)), {})]
        if kind == "inputs_unchanged":
            Q, K, V = qkv(rng, (b1,), n_q, n_k, d_k, d_v)
            mask = two_sided_mask(rng, (b1, n_q, n_k))
            return [((Q, K, V, _grad_output(rng, (b1,), n_q, d_v), mask), {})]
        raise KeyError(kind)

    return make


def _probe(equal: str):
    """Inputs where two sizes are equal, so that a shape mistake runs at all: ``"n_q=n_k"``
    (``dS @ Q``, ``P @ dO``, a sum without keepdims) or ``"d_v=n_k"`` (``dO @ V``)."""

    def probe(rng):
        n, d_k, other = sizes(rng, 3, 3)
        n_q, n_k, d_v = (n, n, other) if equal == "n_q=n_k" else (other, n, n)
        Q, K, V = qkv(rng, (), n_q, n_k, d_k, d_v)
        return (Q, K, V, _grad_output(rng, (), n_q, d_v)), {}

    return probe


def _swap(A):
    return np.swapaxes(A, -1, -2)  # (..., a, b) -> (..., b, a)


def _through_softmax(mode: str, P, dP):
    """dS from dP through the row softmax P, with one deliberate change unless ``"right"``."""
    if mode == "right":
        return P * (dP - np.sum(P * dP, axis=-1, keepdims=True))
    if mode == "no_ppt":
        return P * dP
    if mode == "diagonal":
        return P * (1 - P) * dP
    if mode == "skipped":
        return dP
    if mode == "queries_axis":
        return P * (dP - np.sum(P * dP, axis=-2, keepdims=True))
    if mode == "no_keepdims":
        return P * (dP - np.sum(P * dP, axis=-1))  # runs only when n_q = n_k
    raise ValueError(mode)  # pragma: no cover - a typo in the catalogue below


def _backward_with(
    softmax_backward="right",
    chain_scale="right",
    default_scale="sqrt",
    scale_argument=True,
    forward_scaled=True,
    grad_V="right",
    grad_P="right",
    grad_K="right",
    mask_rule="where",
    softmax=safe_softmax,
    transpose=_swap,
    order="right",
    nan_to_num=False,
):
    """An attention backward with one deliberate change (the reference's algorithm otherwise)."""

    def attention_backward(Q, K, V, grad_output, mask=None, scale=None):
        d_k = Q.shape[-1]
        default = 1 / math.sqrt(d_k) if default_scale == "sqrt" else 1 / d_k
        scale = default if scale is None or not scale_argument else scale
        S = Q @ transpose(K)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
        S = S * scale if forward_scaled else S
        if mask is not None and mask_rule == "where":
            S = np.where(mask, S, -np.inf)
        elif mask is not None and mask_rule == "multiplied":
            S = S * mask
        P = softmax(S)  # (..., n_q, n_k)
        dO = grad_output
        if grad_V == "no_transpose":
            dV = P @ dO  # runs only when n_q = n_k
        else:
            dV = transpose(P) @ dO  # (..., n_k, n_q) @ (..., n_q, d_v) -> (..., n_k, d_v)
            dV = dV * scale if grad_V == "scaled" else dV
        if grad_P == "no_transpose":
            dP = dO @ V  # runs only when d_v = n_k
        else:
            dP = dO @ transpose(V)  # (..., n_q, d_v) @ (..., d_v, n_k) -> (..., n_q, n_k)
        dS = _through_softmax(softmax_backward, P, dP)  # (..., n_q, n_k)
        factor = {"right": scale, "forgotten": 1.0, "twice": scale * scale}[chain_scale]
        dQ = factor * (dS @ K)  # (..., n_q, n_k) @ (..., n_k, d_k) -> (..., n_q, d_k)
        if grad_K == "no_transpose":
            dK = factor * (dS @ Q)  # runs only when n_q = n_k
        else:
            dK = factor * (transpose(dS) @ Q)  # (..., n_k, n_q) @ (..., n_q, d_k)
        grads = (dK, dQ, dV) if order == "K_first" else (dQ, dK, dV)
        return tuple(np.nan_to_num(g) for g in grads) if nan_to_num else grads

    return attention_backward


def _largest_score(Q, K, V, grad_output, mask=None, scale=None) -> float:
    """Largest |scale · q · k|: what the recomputed softmax exponentiates (for the tolerance)."""
    scale = 1 / math.sqrt(Q.shape[-1]) if scale is None else scale
    scores = np.asarray(Q, np.float64) @ _swap(np.asarray(K, np.float64))  # (..., n_q, n_k)
    return float(np.max(np.abs(scores), initial=0.0)) * abs(scale)


_SCALE_FIX = (
    "S = scale · Q Kᵀ, so each of dQ = scale · dS K and dK = scale · dSᵀ Q carries the "
    "factor scale exactly once (and dV = Pᵀ dO none)"
)

_ATTENTION_BACKWARD = Exercise(
    name="attention_backward",
    arg_names=("Q", "K", "V", "grad_output", "mask", "scale"),
    reference=ref.attention_backward,
    n_outputs=3,
    output_names=("grad_Q", "grad_K", "grad_V"),
    signature="attention_backward(Q, K, V, grad_output, mask=None, scale=None)",
    arg_layouts=(
        "(..., n_q, d_k)",
        "(..., n_k, d_k)",
        "(..., n_k, d_v)",
        "(..., n_q, d_v)",
        "(..., n_q, n_k)",
        "",
    ),  # fmt: skip
    output_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)", "(..., n_k, d_v)"),
    exp_magnitude=_largest_score,
    cases={
        "random": Case(
            "matches the reference on random input (default scale 1/√d_k)",
            _backward_inputs("random"),
        ),
        "batch": Case("works with leading batch dimensions", _backward_inputs("batch")),
        "scale": Case("uses the `scale` argument (1 and 0.37)", _backward_inputs("scale")),
        "mask": Case("gives masked keys no gradient (True = may attend)", _backward_inputs("mask")),
        "fully_masked": Case(
            "gives fully masked queries zero gradients, no NaN, no warnings",
            _backward_inputs("fully_masked"),
            requires=(NO_WARNINGS,),
        ),
        "large": Case("is stable for scores in the thousands", _backward_inputs("large")),
        "float32": Case("works in float32", _backward_inputs("float32")),
        "inputs_unchanged": unchanged_inputs_case(_backward_inputs("inputs_unchanged")),
    },
    mistakes=(
        Mistake(
            "the -p pᵀ term of the softmax Jacobian is missing: dS = P * dP",
            "each row of weights is one softmax with Jacobian diag(p) - p pᵀ: "
            "dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))",
            _backward_with(softmax_backward="no_ppt"),
        ),
        Mistake(
            "only the diagonal of the softmax Jacobian was used: dS = P * (1 - P) * dP",
            "the off-diagonal entries -p_i p_j count too: "
            "dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))",
            _backward_with(softmax_backward="diagonal"),
        ),
        Mistake(
            "the softmax backward was skipped: dS = dP, as if the weights were the scores",
            "go through the softmax: dS = P * (dP - np.sum(P * dP, axis=-1, keepdims=True))",
            _backward_with(softmax_backward="skipped"),
        ),
        Mistake(
            "wrong reduction axis in the softmax backward: np.sum(P * dP) over the queries "
            "(axis -2) instead of the keys",
            "each query's weights form one softmax over the keys: "
            "np.sum(P * dP, axis=-1, keepdims=True)",
            _backward_with(softmax_backward="queries_axis"),
        ),
        Mistake(
            "keepdims missing in the softmax backward: np.sum(P * dP, axis=-1) lost its "
            "axis, so each row is corrected with another row's sum",
            "np.sum(P * dP, axis=-1, keepdims=True)",
            _backward_with(softmax_backward="no_keepdims"),
            probe=_probe("n_q=n_k"),
        ),
        Mistake(
            "the scale was forgotten in the chain rule: dQ = dS K and dK = dSᵀ Q without the "
            "factor scale",
            _SCALE_FIX,
            _backward_with(chain_scale="forgotten"),
        ),
        Mistake(
            "the scale was applied twice: dQ and dK carry scale² (e.g. dS was scaled and then "
            "dQ, dK again)",
            _SCALE_FIX,
            _backward_with(chain_scale="twice"),
        ),
        Mistake(
            "dV was multiplied by the scale too: the values do not pass through the scaled scores",
            "dV = Pᵀ dO, without the scale",
            _backward_with(grad_V="scaled"),
        ),
        Mistake(
            "the `scale` argument is ignored: your function always uses 1/√d_k",
            "use scale when it is given, and 1/√d_k only when it is None: "
            "`if scale is None: scale = 1 / np.sqrt(d_k)`",
            _backward_with(scale_argument=False),
        ),
        Mistake(
            "the default scale is 1/d_k instead of 1/√d_k",
            "when scale is None use 1 / np.sqrt(d_k), with d_k = Q.shape[-1]",
            _backward_with(default_scale="d_k"),
        ),
        Mistake(
            "the weights were recomputed without the scale: P = softmax(Q Kᵀ), not "
            "softmax(scale · Q Kᵀ)",
            "recompute the forward pass exactly: P = softmax(scale · Q Kᵀ), masked as in "
            "the forward",
            _backward_with(forward_scaled=False),
        ),
        Mistake(
            "dK = dS Q instead of dSᵀ Q: key j collects dS[:, j], a column of dS",
            "dK = scale · np.swapaxes(dS, -1, -2) @ Q, shape (..., n_k, d_k)",
            _backward_with(grad_K="no_transpose"),
            probe=_probe("n_q=n_k"),
        ),
        Mistake(
            "dV = P dO instead of Pᵀ dO: value j collects column j of the weights",
            "dV = np.swapaxes(P, -1, -2) @ dO, shape (..., n_k, d_v)",
            _backward_with(grad_V="no_transpose"),
            probe=_probe("n_q=n_k"),
        ),
        Mistake(
            "dP = dO V instead of dO Vᵀ",
            "dP = dO @ np.swapaxes(V, -1, -2), shape (..., n_q, n_k)",
            _backward_with(grad_P="no_transpose"),
            probe=_probe("d_v=n_k"),
        ),
        Mistake(
            "returned (grad_K, grad_Q, grad_V): grad_Q and grad_K are swapped",
            "return grad_Q, grad_K, grad_V, in the order of the arguments Q, K, V",
            _backward_with(order="K_first"),
        ),
        Mistake(
            ".T used on batched input: it reverses all axes, batch axes included",
            "transpose with np.swapaxes(A, -1, -2) (or A.swapaxes(-1, -2)) for every Kᵀ, Vᵀ, "
            "Pᵀ and dSᵀ: it swaps only the last two axes; A.T and np.transpose(A) reverse all "
            "axes, the batch axes included",
            _backward_with(transpose=lambda A: A.T),
        ),
        Mistake(
            "the mask is ignored in the backward pass: masked keys get weight, and gradient",
            "recompute the weights exactly as the forward pass: "
            "np.where(mask, scores, -np.inf) before the softmax",
            _backward_with(mask_rule="ignored"),
        ),
        Mistake(
            "the scores were multiplied by the mask: a masked score becomes 0, and exp(0) = 1 "
            "still gives that key weight",
            "replace masked scores by -inf, not 0: np.where(mask, scores, -np.inf)",
            _backward_with(mask_rule="multiplied"),
        ),
        Mistake(
            "fully masked rows give NaN: their maximum is -inf and -inf - (-inf) = NaN, which "
            "spreads into dQ, dK and dV",
            "recompute the weights with a softmax that gives an all -inf row zeros: replace a "
            "row maximum of -inf by 0 before subtracting it and divide only where the row sum "
            "is positive (np.divide(e, total, out=np.zeros_like(e), where=total > 0))",
            _backward_with(softmax=stable_softmax),
        ),
        Mistake(
            "the NaN of fully masked rows was replaced afterwards (np.nan_to_num): by then it "
            "had spread, through the sums over the queries, into dK and dV of every key",
            "do not let NaN arise: recompute the weights with a softmax that gives an all -inf "
            "row zeros (a row maximum of -inf replaced by 0 before subtracting it, and "
            "np.divide(e, total, out=np.zeros_like(e), where=total > 0))",
            _backward_with(softmax=stable_softmax, nan_to_num=True),
        ),
        Mistake(
            "unstable softmax in the recomputed forward pass: the maximum was not subtracted "
            "before np.exp, which overflowed to inf and gave NaN",
            "subtract each row's maximum before np.exp",
            _backward_with(softmax=naive_softmax),
        ),
    ),
    forbidden=_FORBIDDEN,
)


check_softmax_backward = make_check(_SOFTMAX_BACKWARD)
check_attention_backward = make_check(_ATTENTION_BACKWARD)
