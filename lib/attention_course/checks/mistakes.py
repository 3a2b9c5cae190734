"""Known mistakes shared by several catalogues: wrong softmaxes and a wrong attention builder.

Each function here is a *mistake* (or a correct building block of one) that a catalogue turns
into a :class:`~.framework.Mistake`; none calls the reference, because a mistake is also run as
a learner's function in the tests.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width, ``d_v`` value width.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .framework import Mistake


def naive_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def stable_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def global_max_softmax(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / e.sum(axis=axis, keepdims=True)


def whole_array_softmax(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def sdpa_with(
    scale_fn=None,
    softmax_fn=None,
    transpose=None,
    swap=False,
    only_output=False,
    scale_after_softmax=False,
    return_scores=False,
):
    """Build a wrong attention from one deliberate change to the textbook version."""

    def attention(Q, K, V, *args, **kwargs):
        Kt = transpose(K) if transpose else np.swapaxes(K, -1, -2)
        scores = Q @ Kt  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
        if not scale_after_softmax:
            scores = scale_fn(scores, Q, K, V) if scale_fn else scores / Q.shape[-1] ** 0.5
        weights = softmax_fn(scores) if softmax_fn else stable_softmax(scores)
        if scale_after_softmax:
            weights = weights / Q.shape[-1] ** 0.5
        output = weights @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
        if only_output:
            return output
        if return_scores:
            return output, scores
        return (weights, output) if swap else (output, weights)

    return attention


SCALE_MISTAKES = (
    (
        "no scaling: the scores were not divided by √d_k",
        "divide the scores by math.sqrt(d_k), where d_k = Q.shape[-1]",
        lambda s, Q, K, V: s,
    ),
    (
        "scaled by d_k instead of √d_k (or both Q and K were divided by √d_k)",
        "divide the scores once by math.sqrt(d_k), not by d_k: the standard deviation of q·k "
        "grows like √d_k",
        lambda s, Q, K, V: s / Q.shape[-1],
    ),
    (
        "√d_k rounded to a whole number (int(np.sqrt(d_k)) or math.isqrt(d_k))",
        "keep the square root as a float: np.sqrt(d_k) or math.sqrt(d_k), without int()",
        lambda s, Q, K, V: s / int(np.sqrt(Q.shape[-1])),
    ),
    (
        "multiplied by √d_k instead of dividing",
        "divide the scores by math.sqrt(d_k); multiplying makes softmax saturate even more",
        lambda s, Q, K, V: s * np.sqrt(Q.shape[-1]),
    ),
    (
        "scaled by √n_k (the number of keys) instead of √d_k",
        "d_k is the width of a query/key vector, Q.shape[-1], not the number of keys "
        "K.shape[-2] or scores.shape[-1]",
        lambda s, Q, K, V: s / np.sqrt(K.shape[-2]),
    ),
    (
        "scaled by √n_q (the number of queries) instead of √d_k",
        "d_k is the width of a query/key vector, Q.shape[-1], not the number of queries "
        "Q.shape[-2]",
        lambda s, Q, K, V: s / np.sqrt(Q.shape[-2]),
    ),
    (
        "scaled by √d_v (the width of the values) instead of √d_k",
        "d_k is the width of the queries and keys, Q.shape[-1]; V.shape[-1] is d_v",
        lambda s, Q, K, V: s / np.sqrt(V.shape[-1]),
    ),
)

TRANSPOSE_FIX = (
    "use np.swapaxes(K, -1, -2) (or K.swapaxes(-1, -2), or "
    "np.einsum('...qd,...kd->...qk', Q, K)): it swaps only the last two axes; "
    "K.T and np.transpose(K) reverse *all* axes, including the batch axes"
)

DOT_NAME = (
    "np.dot (or np.inner / np.tensordot) used on batched input: it pairs every batch "
    "of one array with every batch of the other instead of broadcasting them like @"
)
DOT_FIX = "use the @ operator or np.matmul, which treat leading axes as batch axes"


def attention_mistakes(
    wrap: Callable[[Callable], Callable], one_sequence: bool = False
) -> tuple[Mistake, ...]:
    """Mistakes in the attention core, lifted by ``wrap`` to the exercise's own signature.

    With ``one_sequence`` (self-attention, where n_q = n_k = n) the two mistakes "scaled by √n_q"
    and "scaled by √n_k" are one: "scaled by √n".
    """
    scale_mistakes = SCALE_MISTAKES
    if one_sequence:
        scale_mistakes = tuple(m for m in SCALE_MISTAKES if "√n_" not in m[0]) + (
            (
                "scaled by √n (the length of the sequence, X.shape[-2]) instead of √d_k",
                "d_k is the width of the projected queries and keys, W_q.shape[1] (Q.shape[-1]), "
                "not the number of tokens",
                lambda s, Q, K, V: s / np.sqrt(K.shape[-2]),
            ),
        )
    mistakes = [
        Mistake(name, fix, wrap(sdpa_with(scale_fn=fn))) for name, fix, fn in scale_mistakes
    ]
    mistakes += [
        Mistake(
            "the weights were divided by √d_k after the softmax instead of the scores before it",
            "scale the scores first, then take the softmax: "
            "softmax(Q @ Kᵀ / math.sqrt(d_k)); the weights must sum to 1",
            wrap(sdpa_with(scale_after_softmax=True)),
        ),
        Mistake(
            "softmax over the wrong axis: you normalised over the query axis (axis=-2 or 0) "
            "instead of the key axis (axis=-1)",
            "normalise each query's row of scores: softmax(scores, axis=-1), so that "
            "weights.sum(axis=-1) is all ones",
            wrap(sdpa_with(softmax_fn=lambda s: stable_softmax(s, axis=-2))),
        ),
        Mistake(
            "softmax normalised over the whole array instead of each row",
            "use keepdims sums along the last axis: e / e.sum(axis=-1, keepdims=True)",
            wrap(sdpa_with(softmax_fn=whole_array_softmax)),
        ),
        Mistake(
            "unstable softmax: the maximum was not subtracted before np.exp, which "
            "overflowed to inf and gave NaN",
            "subtract scores.max(axis=-1, keepdims=True) before exponentiating; "
            "softmax is unchanged by the shift",
            wrap(sdpa_with(softmax_fn=naive_softmax)),
        ),
        Mistake(
            "softmax subtracted the maximum of the whole array instead of each row's "
            "maximum: rows far below it underflow to 0 / 0 = NaN",
            "subtract scores.max(axis=-1, keepdims=True), so that every row keeps an entry "
            "exp(0) = 1",
            wrap(sdpa_with(softmax_fn=global_max_softmax)),
        ),
        Mistake(
            "weights and output returned in the wrong order",
            "return (output, weights): the output (…, n_q, d_v) first, then the "
            "weights (…, n_q, n_k)",
            wrap(sdpa_with(swap=True)),
        ),
        Mistake(
            "returned the scores (before the softmax) instead of the attention weights",
            "return the weights softmax(scores), whose rows sum to 1, next to the output",
            wrap(sdpa_with(return_scores=True)),
        ),
        Mistake(
            "returned only the output, not (output, weights)",
            "return a tuple: return output, weights",
            wrap(sdpa_with(only_output=True)),
        ),
        Mistake(
            "K.T used on batched input: .T reverses all axes, batch axes included",
            TRANSPOSE_FIX,
            wrap(sdpa_with(transpose=lambda K: K.T)),
        ),
        Mistake(DOT_NAME, DOT_FIX, wrap(lambda Q, K, V, *a, **k: _sdpa_dot(Q, K, V))),
    ]
    return tuple(mistakes)


def _sdpa_dot(Q, K, V):
    scores = np.dot(Q, np.swapaxes(K, -1, -2)) / Q.shape[-1] ** 0.5
    weights = stable_softmax(scores)
    return np.dot(weights, V), weights


def safe_softmax(x, axis=-1):
    """Stable softmax whose all -inf slices give zeros, as the reference's (written out here:
    a mistake run as a learner's function must not call the reference)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # an all -inf slice: exp(-inf - 0) = 0, never NaN
    e = np.exp(x - m)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def finite_or_zero(m):
    return np.where(np.isfinite(m), m, 0.0)
