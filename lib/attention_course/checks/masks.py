"""Notebook 06: ``causal_mask``, ``padding_mask`` and attention under a mask.

The masks are compared exactly, as booleans (:attr:`~.framework.OutputKind.MASK`): a mask with
the right pattern but 0/1 numbers passes the value cases with a note and fails the ``"bool"``
case, which names the mistake. Masked attention (the learner's
``scaled_dot_product_attention(Q, K, V, mask=None)``, checked as ``masked_attention``) must give
fully masked rows zeros without NumPy warnings (:data:`~.framework.NO_WARNINGS`).

Conventions (as in :mod:`attention_course.reference`): a boolean mask is **True where a query
may attend to a key**; a query whose keys are all masked gets zero weights and a zero output.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width, ``d_v`` value width, ``batch`` sequences of a padding mask.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .framework import (
    NO_WARNINGS,
    Case,
    Exercise,
    Mistake,
    OutputKind,
    Requirement,
    Trial,
    inputs_unchanged,
    make_check,
    unchanged_inputs_case,
)
from .inputs import batch_sizes, lengths_mask, qkv, scaled_scores, sizes, two_sided_mask
from .mistakes import safe_softmax, stable_softmax

_BOOL_FIX = (
    "build the mask with comparisons (np.arange(n) < ..., which give booleans) or pass "
    "dtype=bool (np.tri(n_q, n_k, dtype=bool), np.ones(..., dtype=bool)). With 0/1 numbers "
    "`~mask` gives -1 and -2 instead of the opposite mask, and `x[mask]` picks the rows 0 and 1 "
    "instead of the entries where the mask is True"
)


def _not_bool(trial: Trial) -> str | None:
    dtype = np.asarray(trial.outcome.value).dtype
    if dtype == np.bool_:
        return None
    return (
        f"Likely mistake: the mask holds 0/1 numbers (dtype {dtype}) instead of booleans.\n"
        f"How to fix it: {_BOOL_FIX}.\n{trial.called_with}"
    )


def _bool_note(trial: Trial) -> str:
    dtype = np.asarray(trial.outcome.value).dtype
    return f"your mask has dtype {dtype}, not bool; the test that it returns booleans will fail."


#: A mask must hold booleans: with 0/1 numbers ``~mask`` and ``x[mask]`` go wrong.
BOOL_DTYPE = Requirement(_not_bool, _bool_note)
_LENGTHS_UNCHANGED = inputs_unchanged(
    "Avoid in-place operations such as `lengths.sort()` or `lengths -= ...` on the inputs."
)


def _causal_inputs(kind: str):
    def make(rng):
        if kind == "square":
            (n,) = sizes(rng, 1, 3)
            return [((n, n), {})]
        if kind == "rectangular":
            small, large = sorted(sizes(rng, 2, 2))
            return [((small, large), {}), ((large, small), {})]  # n_q < n_k, then n_q > n_k
        if kind == "default_n_k":
            (n,) = sizes(rng, 1, 3)
            return [((n,), {})]
        if kind == "bool":
            n_q, n_k = sizes(rng, 2)
            return [((n_q, n_k), {})]
        raise KeyError(kind)

    return make


def _causal_with(k=0, upper=False, invert=False, bottom_right=False, swap=False):
    def causal(n_q, n_k=None):
        n_k = n_q if n_k is None else n_k
        rows, cols = (n_k, n_q) if swap else (n_q, n_k)
        shift = k + (cols - rows if bottom_right else 0)
        ones = np.ones((rows, cols), dtype=bool)
        mask = np.triu(ones, k=shift) if upper else np.tril(ones, k=shift)
        return ~mask if invert else mask

    return causal


_CAUSAL = Exercise(
    name="causal_mask",
    arg_names=("n_q", "n_k"),
    reference=ref.causal_mask,
    n_outputs=1,
    output_names=("mask",),
    signature="causal_mask(n_q, n_k=None)",
    output_layouts=("(n_q, n_k)",),
    output=OutputKind.MASK,
    watch=(_LENGTHS_UNCHANGED, BOOL_DTYPE),
    cases={
        "square": Case(
            "gives the lower triangle, diagonal included, for n_q = n_k", _causal_inputs("square")
        ),
        "rectangular": Case(
            "is top-left aligned when n_q < n_k and when n_q > n_k", _causal_inputs("rectangular")
        ),
        "default_n_k": Case(
            "uses n_k = n_q when n_k is not given",
            _causal_inputs("default_n_k"),
            error_hint="Hint: with one argument, n_k is None; start with "
            "`if n_k is None: n_k = n_q`.",
        ),
        "bool": Case(
            "returns a boolean array (True = may attend)",
            _causal_inputs("bool"),
            requires=(BOOL_DTYPE,),
        ),
    },
    mistakes=(
        Mistake(
            "bottom-right aligned (np.tril(..., k=n_k - n_q)): that is the KV-cache "
            "convention, not PyTorch's is_causal=True",
            "align the mask top-left: query i may attend to keys 0 … i whatever n_q and n_k, "
            "i.e. np.tril(np.ones((n_q, n_k), dtype=bool)) with the default k=0",
            _causal_with(bottom_right=True),
        ),
        Mistake(
            "np.triu instead of np.tril: the upper triangle lets each query see the future keys "
            "i … n_k - 1",
            "take the lower triangle, np.tril: query i (row i) may attend to keys 0 … i",
            _causal_with(upper=True),
        ),
        Mistake(
            "the diagonal was excluded (k=-1): a query may not attend to its own position",
            "keep the diagonal: np.tril(..., k=0), so that query i sees keys 0 … i, itself "
            "included",
            _causal_with(k=-1),
        ),
        Mistake(
            "inverted mask: True marks the future keys that are blocked (True = blocked), but "
            "the course's convention, as PyTorch's scaled_dot_product_attention, is True = may "
            "attend",
            "return the allowed positions: np.tril(np.ones((n_q, n_k), dtype=bool)), without ~ "
            "and not np.triu(..., k=1)",
            _causal_with(upper=True, k=1),
        ),
        Mistake(
            "n_q and n_k swapped: the mask has shape (n_k, n_q)",
            "rows are queries and columns keys: shape (n_q, n_k)",
            _causal_with(swap=True),
        ),
    ),
    forbidden=frozenset({"causal_mask"}),
)


# ---- padding_mask ---------------------------------------------------------------------------


def _padding_inputs(rng):
    batch, n_k = sizes(rng, 2, 3)
    lengths = rng.integers(1, n_k, size=batch)  # (batch,) lengths strictly between 0 and n_k
    lengths[:2] = rng.permutation([0, n_k])  # always an empty and a full sequence
    return [((rng.permutation(lengths), n_k), {})]


_PADDING = Exercise(
    name="padding_mask",
    arg_names=("lengths", "n_k"),
    reference=ref.padding_mask,
    n_outputs=1,
    output_names=("mask",),
    signature="padding_mask(lengths, n_k)",
    output_layouts=("(batch, 1, n_k)",),
    output=OutputKind.MASK,
    watch=(_LENGTHS_UNCHANGED, BOOL_DTYPE),
    cases={
        "random": Case(
            "gives (batch, 1, n_k), True below each length (0 and n_k included)",
            _padding_inputs,
        ),
        "bool": Case(
            "returns a boolean array (True = a real token)", _padding_inputs, requires=(BOOL_DTYPE,)
        ),
        "inputs_unchanged": Case(
            "does not modify its input", _padding_inputs, requires=(_LENGTHS_UNCHANGED,)
        ),
    },
    mistakes=(
        Mistake(
            "<= instead of <: the key at index lengths[b] (the first padding position) counts "
            "as a real token",
            "a sequence of length L has the keys 0 … L-1: np.arange(n_k) < lengths[:, None]",
            lambda lengths, n_k: (np.arange(n_k) <= np.asarray(lengths)[:, None])[:, None, :],
        ),
        Mistake(
            "the middle axis is missing: shape (batch, n_k) instead of (batch, 1, n_k)",
            "add an axis for the queries with [:, None, :], so that the mask broadcasts against "
            "the weights (batch, n_q, n_k): every query of sequence b sees the same keys",
            lambda lengths, n_k: np.arange(n_k) < np.asarray(lengths)[:, None],
        ),
        Mistake(
            "the new axis is in the wrong place: shape (batch, n_k, 1) instead of (batch, 1, n_k)",
            "the size-1 axis stands for the queries and comes before the keys: [:, None, :]",
            lambda lengths, n_k: (np.arange(n_k) < np.asarray(lengths)[:, None])[:, :, None],
        ),
        Mistake(
            "inverted mask: True on the padding (the key_padding_mask convention of "
            "nn.MultiheadAttention, True = ignore)",
            "return True for the real tokens: np.arange(n_k) < lengths[:, None]; the course, "
            "like PyTorch's scaled_dot_product_attention, uses True = may attend",
            lambda lengths, n_k: (np.arange(n_k) >= np.asarray(lengths)[:, None])[:, None, :],
        ),
    ),
    forbidden=frozenset({"padding_mask"}),
)


def _hides_the_allowed_keys(scores, mask) -> bool:
    """A row whose largest *masked* score is more than 800 above every allowed score: masking
    after the softmax underflows all its allowed weights to 0, and renormalising gives 0 / 0."""
    s = np.broadcast_to(scores, np.broadcast_shapes(scores.shape, mask.shape))
    m = np.broadcast_to(mask, s.shape)
    blocked = np.where(m, -np.inf, s).max(axis=-1)
    allowed = np.where(m, s, -np.inf).max(axis=-1)
    return bool(((blocked - allowed) > 800).any())


def _masked_inputs(kind: str):
    def make(rng):
        (b1, _), (n_q, n_k, d_k, d_v) = batch_sizes(rng, 4, 3)
        if kind == "no_mask":
            return [(qkv(rng, (), n_q, n_k, d_k, d_v), {})]
        if kind == "causal":
            mask = np.tri(n_q, n_k, dtype=bool)  # (n_q, n_k), top-left aligned
            return [((*qkv(rng, (), n_q, n_k, d_k, d_v), mask), {})]
        if kind in ("padding", "inputs_unchanged", "float32"):
            dtype, scale = (np.float32, 4.0) if kind == "float32" else (np.float64, 1.0)
            lengths = rng.integers(1, n_k, size=b1)  # every sequence has a real token and a pad
            arrays = qkv(rng, (b1,), n_q, n_k, d_k, d_v, scale, dtype)
            return [((*arrays, lengths_mask(lengths, n_k)), {})]
        if kind == "random":
            mask = two_sided_mask(rng, (n_q, n_k))
            return [((*qkv(rng, (), n_q, n_k, d_k, d_v), mask), {})]
        if kind == "fully_masked":
            mask = two_sided_mask(rng, (n_q, n_k))
            mask[rng.choice(n_q, size=min(2, n_q - 1), replace=False)] = False
            lengths = rng.integers(1, n_k + 1, size=b1)
            lengths[rng.integers(b1)] = 0  # one sequence is all padding
            return [
                ((*qkv(rng, (), n_q, n_k, d_k, d_v), mask), {}),
                ((*qkv(rng, (b1,), n_q, n_k, d_k, d_v), lengths_mask(lengths, n_k)), {}),
            ]
        if kind == "large":
            for _ in range(100):
                Q, K, V = qkv(rng, (), n_q, n_k, d_k, d_v, 40.0)
                mask = two_sided_mask(rng, (n_q, n_k))
                s = scaled_scores(Q, K)
                if np.abs(s[mask]).max() > 800 and _hides_the_allowed_keys(s, mask):
                    break
            return [((Q, K, V, mask), {})]
        raise KeyError(kind)

    return make


def _masked_with(mode: str):
    """A masked attention with one deliberate mistake (``mode``)."""

    def attention(Q, K, V, mask=None):
        scale = 1.0 if mode == "no_scaling" else Q.shape[-1] ** -0.5  # a Python float
        scores = Q @ np.swapaxes(K, -1, -2) * scale  # (..., n_q, n_k)
        if mask is None or mode == "ignored":
            weights = safe_softmax(scores)
        elif mode in ("safe", "no_scaling"):
            weights = safe_softmax(np.where(mask, scores, -np.inf))
        elif mode == "inverted":
            weights = safe_softmax(np.where(~mask, scores, -np.inf))
        elif mode == "neg_inf_nan":
            weights = stable_softmax(np.where(mask, scores, -np.inf))
        elif mode == "finite_fill":
            weights = stable_softmax(np.where(mask, scores, -1e9))
        elif mode == "added":
            weights = stable_softmax(scores + mask)
        elif mode == "multiplied":
            weights = stable_softmax(scores * mask)
        elif mode == "after":
            weights = stable_softmax(scores) * mask
        elif mode == "after_renormalised":
            weights = stable_softmax(scores) * mask
            weights = weights / weights.sum(axis=-1, keepdims=True)
        elif mode == "unstable":  # the division is guarded, as notebook 06 asks
            e = np.exp(np.where(mask, scores, -np.inf))
            total = e.sum(axis=-1, keepdims=True)
            weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
        else:  # pragma: no cover - a typo in the catalogue below
            raise ValueError(mode)
        return weights @ V, weights  # (..., n_q, d_v), (..., n_q, n_k)

    return attention


_MASKED = Exercise(
    name="masked_attention",
    arg_names=("Q", "K", "V", "mask"),
    reference=lambda Q, K, V, mask=None: ref.scaled_dot_product_attention(Q, K, V, mask=mask),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="scaled_dot_product_attention(Q, K, V, mask=None)",
    shown_as="`scaled_dot_product_attention` (with a mask)",
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)", "(..., n_k, d_v)", "(..., n_q, n_k)"),
    output_layouts=("(..., n_q, d_v)", "(..., n_q, n_k)"),
    cases={
        "no_mask": Case("without a mask, is plain attention", _masked_inputs("no_mask")),
        "causal": Case("applies a causal mask (n_q, n_k)", _masked_inputs("causal")),
        "padding": Case("applies a padding mask (batch, 1, n_k)", _masked_inputs("padding")),
        "random": Case(
            "applies a random boolean mask (True = may attend)", _masked_inputs("random")
        ),
        "fully_masked": Case(
            "gives fully masked rows zeros, no NaN, no warnings",
            _masked_inputs("fully_masked"),
            requires=(NO_WARNINGS,),
        ),
        "large": Case("is stable for large scores under a mask", _masked_inputs("large")),
        "float32": Case("works in float32", _masked_inputs("float32")),
        "inputs_unchanged": unchanged_inputs_case(_masked_inputs("inputs_unchanged")),
    },
    mistakes=(
        Mistake(
            "the mask is ignored: every key still gets weight",
            "set the scores of masked keys (mask False) to -inf before the softmax: "
            "np.where(mask, scores, -np.inf)",
            _masked_with("ignored"),
        ),
        Mistake(
            "mask inverted: the keys where the mask is True were blocked (the True = blocked "
            "convention of nn.MultiheadAttention's masks), but here True = may attend",
            "keep the scores where mask is True and block the others: "
            "np.where(mask, scores, -np.inf)",
            _masked_with("inverted"),
        ),
        Mistake(
            "fully masked rows filled with -inf give NaN: their maximum is -inf and "
            "-inf - (-inf) = NaN",
            "after masking, replace a row maximum of -inf by 0 before subtracting it "
            "(m = np.where(np.isfinite(m), m, 0)), then divide only where the row sum is "
            "positive (np.divide(e, total, out=np.zeros_like(e), where=total > 0)): a fully "
            "masked row then gets zero weights and a zero output",
            _masked_with("neg_inf_nan"),
        ),
        Mistake(
            "masked scores filled with a large finite number (-1e9): a fully masked row gets "
            "uniform weights, 1/n_k each, so the query averages the padding",
            "fill with -np.inf, so that a masked key gets exactly zero weight, and give a row "
            "whose keys are all masked zero weights (divide only where the row sum is positive)",
            _masked_with("finite_fill"),
        ),
        Mistake(
            "the boolean mask was added to the scores (scores + mask), as if it were an "
            "additive float mask: True adds 1, False adds 0, nothing is blocked",
            "an additive mask holds 0 and -inf; a boolean mask selects: "
            "np.where(mask, scores, -np.inf)",
            _masked_with("added"),
        ),
        Mistake(
            "the scores were multiplied by the mask: a masked score becomes 0, and exp(0) = 1 "
            "still gives that key weight",
            "replace masked scores by -inf, not 0: np.where(mask, scores, -np.inf)",
            _masked_with("multiplied"),
        ),
        Mistake(
            "the mask was applied after the softmax without renormalising: the weights of a "
            "row no longer sum to 1",
            "mask the scores before the softmax (np.where(mask, scores, -np.inf)), so that the "
            "softmax spreads the whole weight over the allowed keys",
            _masked_with("after"),
        ),
        Mistake(
            "the mask was applied after the softmax and the rows renormalised: when a masked "
            "key has by far the largest score, the allowed weights underflow to 0 and 0 / 0 "
            "gives NaN",
            "mask the scores before the softmax: np.where(mask, scores, -np.inf); the maximum "
            "subtracted is then the largest *allowed* score",
            _masked_with("after_renormalised"),
        ),
        Mistake(
            "unstable softmax: the maximum was not subtracted before np.exp, which overflowed "
            "to inf and gave NaN",
            "subtract each row's maximum (of the masked scores) before np.exp",
            _masked_with("unstable"),
        ),
        Mistake(
            "no scaling: the scores were not divided by √d_k",
            "divide the scores by math.sqrt(d_k), where d_k = Q.shape[-1]",
            _masked_with("no_scaling"),
        ),
    ),
    forbidden=frozenset(
        {
            "scaled_dot_product_attention",
            "softmax",
            "self_attention",
            "cross_attention",
            "multi_head_attention",
            "online_softmax",
            "tiled_attention",
        }
    ),
)


check_causal_mask = make_check(_CAUSAL)
check_padding_mask = make_check(_PADDING)
check_masked_attention = make_check(_MASKED)
