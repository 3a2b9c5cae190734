"""Checks for notebooks 06–08: masks, multi-head attention, attention that fits in memory.

Built with the framework of :mod:`attention_course.checks` (:class:`~.checks.Exercise`,
:class:`~.checks.Case`, :class:`~.checks.Mistake`, ``_make_check``), and registered in
``checks.EXERCISES`` when :mod:`attention_course.checks` is imported, so notebooks call::

    checks.check_causal_mask(causal_mask, "rectangular")
    checks.check_masked_attention(scaled_dot_product_attention, "fully_masked", seed=1)

Three additions to the framework, for what it cannot judge by comparing values:

- **Masks are compared exactly**, as booleans. ``causal_mask`` and ``padding_mask`` take
  integers and return ``bool`` arrays, which the framework's float comparison does not handle:
  :func:`_check_mask` does the same job for them (same messages, same catalogue of mistakes).
  A mask with the right pattern but 0/1 numbers passes the value cases with a note and fails
  the ``"bool"`` case, which names the mistake.
- **Fully masked rows must come out without warnings.** Returning zeros after computing
  ``-inf - (-inf)`` or ``0 / 0`` and hiding the NaN is not accepted in the cases that test all
  masked rows (``masked_attention/fully_masked``, ``tiled_attention/mask``,
  ``online_softmax/neg_inf``): the message says which operation to avoid.
- **tiled_attention must not build the n_q × n_k matrix**: case ``"memory"`` runs the learner's
  function under :mod:`tracemalloc` (which NumPy reports its allocations to) and fails if its
  peak allocation exceeds a quarter of one ``n_q × n_k`` float64 matrix.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width (of one head), ``d_v`` value width (of one head), ``d_model`` /
``d_model_z`` widths of the token vectors ``X`` / ``Z``, ``n_heads`` heads, ``d_out`` width of
the output of multi-head attention, ``n`` length of the softmax axis.

Conventions (as in :mod:`attention_course.reference`): a boolean mask is **True where a query
may attend to a key**; a query whose keys are all masked gets zero weights and a zero output.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np

from . import checks as _checks
from . import reference as ref
from .checks import (
    EXERCISES,
    Case,
    CheckFailed,
    Exercise,
    Mistake,
    _case_seed,
    _fail,
    _make_check,
    _normal,
    _quiet_call,
    _run,
    _side_effects,
    _signature_problem,
)

__all__ = [
    "check_causal_mask",
    "check_padding_mask",
    "check_masked_attention",
    "check_multi_head_attention",
    "check_online_softmax",
    "check_tiled_attention",
]


# --------------------------------------------------------------------------------------------
# Sizes: every dimension of one call is different from every other
# --------------------------------------------------------------------------------------------


def _sizes(rng: np.random.Generator, count: int, low: int = 2, high: int = 14, exclude=()):
    """``count`` different integers from ``[low, high)``, none of them in ``exclude``."""
    pool = np.setdiff1d(np.arange(low, high), np.asarray(exclude, dtype=int))
    return [int(v) for v in rng.choice(pool, size=count, replace=False)]


def _batch_sizes(rng, count: int, low: int = 2, high: int = 14):
    """Two batch sizes (2–5) and ``count`` other sizes, all different."""
    b1, b2 = _sizes(rng, 2, 2, 6)
    return (b1, b2), _sizes(rng, count, low, high, exclude=(b1, b2))


def _non_divisor(rng, n: int, exclude=()) -> int:
    """A block size from 2 to n // 2 that does not divide ``n``: at least three blocks, the last
    one shorter than the others."""
    choices = [b for b in range(2, n // 2 + 1) if n % b and b not in exclude]
    choices = choices or [b for b in range(2, n // 2 + 1) if n % b] or [max(n - 1, 1)]
    return int(rng.choice(choices))


def _two_sided_mask(rng, shape) -> np.ndarray:
    """A random boolean mask (..., n_q, n_k) with at least one True and one False in every row."""
    for _ in range(100):
        mask = rng.random(shape) < 0.55
        if mask.any(axis=-1).all() and (~mask).any(axis=-1).all():
            return mask
    mask[..., 0], mask[..., -1] = True, False  # practically never reached
    return mask


def _lengths_mask(lengths, n_k: int) -> np.ndarray:
    """A padding mask (batch, 1, n_k): True where the key index is below the sequence's length."""
    return (np.arange(n_k) < np.asarray(lengths)[:, None])[:, None, :]


# --------------------------------------------------------------------------------------------
# Masks: compared exactly, as booleans
# --------------------------------------------------------------------------------------------


def _as_array(value):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged lists, odd objects
        return None


def _same_mask(got, expected: np.ndarray) -> bool:
    """Same shape and the same pattern (0/1 numbers count as False/True here)."""
    arr = _as_array(got)
    if arr is None or arr.shape != expected.shape or arr.dtype == object:
        return False
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
        return False
    with np.errstate(all="ignore"):
        return bool(np.array_equal(arr, expected))


def _grid(mask: np.ndarray) -> str:
    """A small mask as rows of 1 and 0 (one line per query, or per sequence)."""
    rows = np.asarray(mask).reshape(-1, np.asarray(mask).shape[-1])
    return "\n".join("    " + " ".join("1" if v else "0" for v in row) for row in rows)


def _describe_mask(got, expected: np.ndarray, layout: str) -> str:
    arr = _as_array(got)
    if got is None:
        return "Your function returned None — is a `return` statement missing?"
    if (
        arr is None
        or arr.dtype == object
        or not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number))
    ):
        return f"Expected a boolean array of shape {expected.shape} = {layout}, got {type(got)}."
    if arr.shape != expected.shape:
        text = (
            f"Expected a boolean array of shape {expected.shape} = {layout}, got shape {arr.shape}."
        )
        if arr.shape == expected.shape[::-1]:
            text += " The axes are swapped: rows are queries (n_q), columns keys (n_k)."
        return text
    bad = np.argwhere(arr != expected)
    index = tuple(int(i) for i in bad[0])
    text = (
        f"Right shape {expected.shape} = {layout}, but {len(bad)} of {expected.size} entries "
        f"differ; the first at index {index}: expected {bool(expected[index])}, got "
        f"{arr[index].item()!r}."
    )
    if arr.ndim >= 2 and arr.shape[-1] <= 16 and arr.size // arr.shape[-1] <= 16:
        text += f"\nExpected (1 = may attend):\n{_grid(expected)}\nYours:\n" + "\n".join(
            "    " + " ".join(f"{v:g}" if not isinstance(v, bool) else str(int(v)) for v in r)
            for r in arr.reshape(-1, arr.shape[-1]).tolist()
        )
    return text


def _mask_call_text(exercise: Exercise, args) -> str:
    parts = []
    for name, a in zip(exercise.arg_names, args, strict=False):
        shown = a.tolist() if isinstance(a, np.ndarray) else a
        parts.append(f"{name}={shown!r}")
    return ", ".join(parts)


_BOOL_FIX = (
    "build the mask with comparisons (np.arange(n) < ..., which give booleans) or pass "
    "dtype=bool (np.tri(n_q, n_k, dtype=bool), np.ones(..., dtype=bool)). With 0/1 numbers "
    "`~mask` gives -1 and -2 instead of the opposite mask, and `x[mask]` picks the rows 0 and 1 "
    "instead of the entries where the mask is True"
)

#: Sentences added when a learner's mask function raises on one case.
_MASK_ERROR_HINTS = {
    ("causal_mask", "default_n_k"): (
        "Hint: with one argument, n_k is None; start with `if n_k is None: n_k = n_q`."
    ),
}


def _check_mask(exercise_name: str, fn: Callable, case_name: str, seed: int | None = None):
    """Like the framework's check, but for functions of integers that return boolean masks."""
    exercise = EXERCISES[exercise_name]
    if case_name not in exercise.cases:
        raise ValueError(
            f"{exercise_name} has no check case {case_name!r}; the cases are "
            f"{sorted(exercise.cases)}."
        )
    case = exercise.cases[case_name]
    if not callable(fn):
        raise _fail(
            exercise,
            case,
            f"`{exercise.name}` is not a function (got {type(fn).__name__}). Did you overwrite "
            "it with a value?",
        )
    rng = np.random.default_rng(_case_seed(exercise_name, case_name, seed))
    notes: list[str] = []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for args, kwargs in case.make(rng):
            _check_one_mask(exercise, case_name, fn, args, kwargs, notes)
    print(f"✓ {exercise.name}: {case.description}.")
    for note in dict.fromkeys(notes):
        print(note)


def _check_one_mask(exercise: Exercise, case_name: str, fn, args, kwargs, notes) -> None:
    case = exercise.cases[case_name]
    layout = exercise.output_layouts[0]
    called_with = f"Called with: {_mask_call_text(exercise, args)}."
    problem = _signature_problem(fn, args, kwargs)
    if problem is not None:
        raise _fail(
            exercise,
            case,
            f"The check calls `{exercise.name}({_mask_call_text(exercise, args)})`, but "
            f"{problem}. Define it as `def {exercise.signature}:`.",
        )
    learner = _run(fn, args, kwargs, exercise.forbidden, exercise.arg_names)
    if learner.called_reference:
        raise _fail(
            exercise,
            case,
            f"Your function calls the course's reference `{learner.called_reference}` instead "
            "of computing the answer itself. Write it with NumPy operations; the reference is "
            "there for the demos and later notebooks, not for this exercise.",
        )
    if isinstance(learner.error, NotImplementedError):
        raise _fail(
            exercise,
            case,
            f"`{exercise.name}` is not implemented yet: replace `raise NotImplementedError()` "
            "with your code and run its cell again.",
        )
    expected = np.asarray(exercise.reference(*args, **kwargs))
    got = learner.value
    if learner.error is None and _same_mask(got, expected):
        arr = np.asarray(got)
        if not isinstance(got, np.ndarray):
            raise _fail(
                exercise,
                case,
                f"The pattern is right, but your mask came back as a {type(got).__name__}, not "
                "a NumPy array: return np.array(...) of it, with dtype=bool.\n" + called_with,
            )
        if arr.dtype != np.bool_:
            if case_name == "bool":
                raise _fail(
                    exercise,
                    case,
                    f"Likely mistake: the mask holds 0/1 numbers (dtype {arr.dtype}) instead of "
                    f"booleans.\nHow to fix it: {_BOOL_FIX}.\n{called_with}",
                )
            notes.append(
                f"Note for {exercise.name}: your mask has dtype {arr.dtype}, not bool; the "
                "test that it returns booleans will fail."
            )
        if learner.mutated:
            if case.check_inputs_unchanged:
                raise _fail(
                    exercise,
                    case,
                    f"Your function modified its input in place ({', '.join(learner.mutated)}): "
                    "the answer is right, but the caller's array was changed. Avoid in-place "
                    "operations such as `lengths.sort()` or `lengths -= ...` on the inputs.",
                )
            notes.append(
                f"Note for {exercise.name}: your function modified its input "
                f"({', '.join(learner.mutated)}) in place; the test that inputs are left "
                "unchanged will fail."
            )
        return

    extra = _side_effects(learner)
    if learner.error is None:
        for mistake in exercise.mistakes:
            wrong = _quiet_call(mistake.fn, args, kwargs)
            if wrong.error is not None or _same_mask(wrong.value, expected):
                continue
            if _same_mask(got, np.asarray(wrong.value)):
                raise _fail(
                    exercise,
                    case,
                    f"Likely mistake: {mistake.name}.\nHow to fix it: {mistake.fix}.\n"
                    f"{_describe_mask(got, expected, layout)}\n{called_with}{extra}",
                )
        raise _fail(
            exercise, case, f"{_describe_mask(got, expected, layout)}\n{called_with}{extra}"
        )
    hint = _MASK_ERROR_HINTS.get((exercise.name, case_name), "")
    raise _fail(
        exercise,
        case,
        f"Your function raised {type(learner.error).__name__}: {learner.error}"
        f"{learner.error_where}.{' ' + hint if hint else ''}\n{called_with}{extra}",
    )


def _mask_check_function(name: str) -> Callable:
    def check(fn: Callable, case: str = "random", seed: int | None = None) -> None:
        _check_mask(name, fn, case, seed)

    check.__name__ = check.__qualname__ = f"check_{name}"
    check.__doc__ = (
        f"Check a learner's ``{name}`` on one case; print ``✓ ...`` or raise CheckFailed.\n\n"
        f"Parameters\n----------\nfn : callable\n    The learner's ``{name}``.\n"
        f"case : str\n    One of {sorted(EXERCISES[name].cases)}.\n"
        "seed : int, optional\n    Another seed gives other sizes (hidden tests)."
    )
    return check


# ---- causal_mask ----------------------------------------------------------------------------


def _causal_inputs(kind: str):
    def make(rng):
        if kind == "square":
            (n,) = _sizes(rng, 1, 3)
            return [((n, n), {})]
        if kind == "rectangular":
            small, large = sorted(_sizes(rng, 2, 2))
            return [((small, large), {}), ((large, small), {})]  # n_q < n_k, then n_q > n_k
        if kind == "default_n_k":
            (n,) = _sizes(rng, 1, 3)
            return [((n,), {})]
        if kind == "bool":
            n_q, n_k = _sizes(rng, 2)
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
    cases={
        "square": Case(
            "gives the lower triangle, diagonal included, for n_q = n_k", _causal_inputs("square")
        ),
        "rectangular": Case(
            "is top-left aligned when n_q < n_k and when n_q > n_k", _causal_inputs("rectangular")
        ),
        "default_n_k": Case("uses n_k = n_q when n_k is not given", _causal_inputs("default_n_k")),
        "bool": Case("returns a boolean array (True = may attend)", _causal_inputs("bool")),
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
    batch, n_k = _sizes(rng, 2, 3)
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
    cases={
        "random": Case(
            "gives (batch, 1, n_k), True below each length (0 and n_k included)",
            _padding_inputs,
        ),
        "bool": Case("returns a boolean array (True = a real token)", _padding_inputs),
        "inputs_unchanged": Case(
            "does not modify its input", _padding_inputs, check_inputs_unchanged=True
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


# --------------------------------------------------------------------------------------------
# Masked scaled dot-product attention (notebook 06)
# --------------------------------------------------------------------------------------------


def _qkv(rng, lead, n_q, n_k, d_k, d_v, scale=1.0, dtype=np.float64):
    Q = _normal(rng, (*lead, n_q, d_k), scale, dtype)
    K = _normal(rng, (*lead, n_k, d_k), scale, dtype)
    V = _normal(rng, (*lead, n_k, d_v), 1.0, dtype)
    return Q, K, V


def _scores(Q, K) -> np.ndarray:
    Q64, K64 = np.asarray(Q, np.float64), np.asarray(K, np.float64)
    return Q64 @ np.swapaxes(K64, -1, -2) / math.sqrt(Q.shape[-1])  # (..., n_q, n_k)


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
        (b1, _), (n_q, n_k, d_k, d_v) = _batch_sizes(rng, 4, 3)
        if kind == "no_mask":
            return [(_qkv(rng, (), n_q, n_k, d_k, d_v), {})]
        if kind == "causal":
            mask = np.tri(n_q, n_k, dtype=bool)  # (n_q, n_k), top-left aligned
            return [((*_qkv(rng, (), n_q, n_k, d_k, d_v), mask), {})]
        if kind in ("padding", "inputs_unchanged", "float32"):
            dtype, scale = (np.float32, 4.0) if kind == "float32" else (np.float64, 1.0)
            lengths = rng.integers(1, n_k, size=b1)  # every sequence has a real token and a pad
            qkv = _qkv(rng, (b1,), n_q, n_k, d_k, d_v, scale, dtype)
            return [((*qkv, _lengths_mask(lengths, n_k)), {})]
        if kind == "random":
            mask = _two_sided_mask(rng, (n_q, n_k))
            return [((*_qkv(rng, (), n_q, n_k, d_k, d_v), mask), {})]
        if kind == "fully_masked":
            mask = _two_sided_mask(rng, (n_q, n_k))
            mask[rng.choice(n_q, size=min(2, n_q - 1), replace=False)] = False
            lengths = rng.integers(1, n_k + 1, size=b1)
            lengths[rng.integers(b1)] = 0  # one sequence is all padding
            return [
                ((*_qkv(rng, (), n_q, n_k, d_k, d_v), mask), {}),
                ((*_qkv(rng, (b1,), n_q, n_k, d_k, d_v), _lengths_mask(lengths, n_k)), {}),
            ]
        if kind == "large":
            for _ in range(100):
                Q, K, V = _qkv(rng, (), n_q, n_k, d_k, d_v, 40.0)
                mask = _two_sided_mask(rng, (n_q, n_k))
                s = _scores(Q, K)
                if np.abs(s[mask]).max() > 800 and _hides_the_allowed_keys(s, mask):
                    break
            return [((Q, K, V, mask), {})]
        raise KeyError(kind)

    return make


def _safe_softmax(x, axis=-1):
    """Stable softmax whose all -inf slices give zeros, as the reference's (written out here:
    a mistake run as a learner's function must not call the reference)."""
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # an all -inf slice: exp(-inf - 0) = 0, never NaN
    e = np.exp(x - m)
    total = e.sum(axis=axis, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _stable_softmax(x, axis=-1):
    """The textbook stable softmax: an all -inf slice gives NaN (-inf - (-inf))."""
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _masked_with(mode: str):
    """A masked attention with one deliberate mistake (``mode``)."""

    def attention(Q, K, V, mask=None):
        scale = 1.0 if mode == "no_scaling" else 1.0 / np.sqrt(Q.shape[-1])
        scores = Q @ np.swapaxes(K, -1, -2) * scale  # (..., n_q, n_k)
        if mask is None or mode == "ignored":
            weights = _safe_softmax(scores)
        elif mode in ("safe", "no_scaling"):
            weights = _safe_softmax(np.where(mask, scores, -np.inf))
        elif mode == "inverted":
            weights = _safe_softmax(np.where(~mask, scores, -np.inf))
        elif mode == "neg_inf_nan":
            weights = _stable_softmax(np.where(mask, scores, -np.inf))
        elif mode == "finite_fill":
            weights = _stable_softmax(np.where(mask, scores, -1e9))
        elif mode == "added":
            weights = _stable_softmax(scores + mask)
        elif mode == "multiplied":
            weights = _stable_softmax(scores * mask)
        elif mode == "after":
            weights = _stable_softmax(scores) * mask
        elif mode == "after_renormalised":
            weights = _stable_softmax(scores) * mask
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
        ),
        "large": Case("is stable for large scores under a mask", _masked_inputs("large")),
        "float32": Case("works in float32", _masked_inputs("float32")),
        "inputs_unchanged": Case(
            "does not modify its inputs",
            _masked_inputs("inputs_unchanged"),
            check_inputs_unchanged=True,
        ),
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
            "divide the scores by np.sqrt(d_k), where d_k = Q.shape[-1]",
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


# --------------------------------------------------------------------------------------------
# Multi-head attention (notebook 07)
# --------------------------------------------------------------------------------------------


def _mha_arrays(rng, lead_x, lead_z, n_q, n_k, d_model, d_model_z, d_k, d_v, d_out, n_heads,
                dtype=np.float64):  # fmt: skip
    X = _normal(rng, (*lead_x, n_q, d_model), 1.0, dtype)
    Z = _normal(rng, (*lead_z, n_k, d_model_z), 1.0, dtype)
    W_q = _normal(rng, (d_model, n_heads * d_k), 1.0 / math.sqrt(d_model), dtype)
    W_k = _normal(rng, (d_model_z, n_heads * d_k), 1.0 / math.sqrt(d_model_z), dtype)
    W_v = _normal(rng, (d_model_z, n_heads * d_v), 1.0 / math.sqrt(d_model_z), dtype)
    W_o = _normal(rng, (n_heads * d_v, d_out), 1.0 / math.sqrt(n_heads * d_v), dtype)
    return X, Z, W_q, W_k, W_v, W_o, n_heads


def _mha_sizes(rng, batch: bool, one_head: bool = False):
    """(batch sizes, n_heads, [n_q, n_k, d_model, d_model_z, d_k, d_v, d_out]), all different."""
    lead = tuple(_sizes(rng, 2, 2, 6)) if batch else ()
    n_heads = 1 if one_head else _sizes(rng, 1, 2, 7, exclude=lead)[0]
    dims = _sizes(rng, 7, 2, 14, exclude=(*lead, n_heads))
    return lead, n_heads, dims


def _mha_inputs(kind: str):
    def make(rng):
        if kind == "random":
            _, h, dims = _mha_sizes(rng, batch=False)
            return [(_mha_arrays(rng, (), (), *dims, h), {})]
        if kind == "one_head":
            _, h, dims = _mha_sizes(rng, batch=False, one_head=True)
            return [(_mha_arrays(rng, (), (), *dims, h), {})]
        if kind in ("batch", "inputs_unchanged", "float32"):
            lead, h, dims = _mha_sizes(rng, batch=True)
            if kind == "float32":
                lead = lead[:1]
            dtype = np.float32 if kind == "float32" else np.float64
            return [(_mha_arrays(rng, lead, lead, *dims, h, dtype=dtype), {})]
        if kind == "mask":
            _, h, dims = _mha_sizes(rng, batch=False)
            n_q, n_k = dims[:2]
            causal = ((*_mha_arrays(rng, (), (), *dims, h), np.tri(n_q, n_k, dtype=bool)), {})
            lead, h, dims = _mha_sizes(rng, batch=True)
            b = lead[0]
            lengths = rng.integers(1, dims[1], size=b)
            padding = (
                (*_mha_arrays(rng, (b,), (b,), *dims, h), _lengths_mask(lengths, dims[1])),
                {},
            )
            return [causal, padding]
        raise KeyError(kind)

    return make


def _mha_mask_probe(rng):
    """Batch size = n_heads and a padding mask whose lengths all differ: a mask used without a
    head axis then runs, but gives head h the padding of sequence h."""
    b = _sizes(rng, 1, 2, 6)[0]
    n_q, n_k, d_model, d_model_z, d_k, d_v, d_out = _sizes(rng, 7, 2, 14, exclude=(b,))
    n_k = max(n_k, b + 2)
    arrays = _mha_arrays(rng, (b,), (b,), n_q, n_k, d_model, d_model_z, d_k, d_v, d_out, b)
    lengths = rng.choice(np.arange(1, n_k), size=b, replace=False)
    return (*arrays, _lengths_mask(lengths, n_k)), {}


def _mha_with(
    split="contiguous",
    width="head",
    project=True,
    softmax_axis=-1,
    reverse_heads=False,
    weights_layout="heads",
    head_axis_on_mask=True,
    only_output=False,
):
    """Multi-head attention with one deliberate change to the textbook version."""

    def split_heads(A, n_heads, d):
        if split == "strided":  # column c = i·n_heads + h goes to head h
            A = A.reshape(*A.shape[:-1], d, n_heads)  # (..., n, d, n_heads)
            return np.moveaxis(A, -1, -3)  # -> (..., n_heads, n, d)
        A = A.reshape(*A.shape[:-1], n_heads, d)  # (..., n, n_heads, d)
        return np.swapaxes(A, -2, -3)  # -> (..., n_heads, n, d)

    def mha(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
        d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
        Q = split_heads(X @ W_q, n_heads, d_k)  # (..., n_heads, n_q, d_k)
        K = split_heads(Z @ W_k, n_heads, d_k)  # (..., n_heads, n_k, d_k)
        V = split_heads(Z @ W_v, n_heads, d_v)  # (..., n_heads, n_k, d_v)
        scale = {"head": d_k, "total": n_heads * d_k, "none": 1}[width]
        scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(scale)  # (..., n_heads, n_q, n_k)
        if mask is not None:
            mask = np.asarray(mask)
            scores = np.where(mask[..., None, :, :] if head_axis_on_mask else mask, scores, -np.inf)
        weights = _safe_softmax(scores, axis=softmax_axis)
        heads = weights @ V  # (..., n_heads, n_q, d_v)
        if reverse_heads:
            heads = heads[..., ::-1, :, :]
        heads = np.swapaxes(heads, -2, -3)  # (..., n_q, n_heads, d_v)
        concat = heads.reshape(*heads.shape[:-2], n_heads * d_v)  # (..., n_q, n_heads·d_v)
        output = concat @ W_o if project else concat
        if weights_layout == "queries":
            weights = np.swapaxes(weights, -2, -3)  # (..., n_q, n_heads, n_k)
        elif weights_layout == "mean":
            weights = weights.mean(axis=-3)  # (..., n_q, n_k)
        return output if only_output else (output, weights)

    return mha


_MHA = Exercise(
    name="multi_head_attention",
    arg_names=("X", "Z", "W_q", "W_k", "W_v", "W_o", "n_heads", "mask"),
    reference=lambda X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None: ref.multi_head_attention(
        X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask
    ),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None)",
    arg_layouts=(
        "(..., n_q, d_model)",
        "(..., n_k, d_model_z)",
        "(d_model, n_heads·d_k)",
        "(d_model_z, n_heads·d_k)",
        "(d_model_z, n_heads·d_v)",
        "(n_heads·d_v, d_out)",
        "",
        "(..., n_q, n_k)",
    ),
    output_layouts=("(..., n_q, d_out)", "(..., n_heads, n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random 2-D input", _mha_inputs("random")),
        "batch": Case("works with leading batch dimensions", _mha_inputs("batch")),
        "mask": Case(
            "applies a causal and a padding mask to every head",
            _mha_inputs("mask"),
        ),
        "one_head": Case(
            "with n_heads = 1, is single-head attention followed by W_o", _mha_inputs("one_head")
        ),
        "float32": Case("works in float32", _mha_inputs("float32")),
        "inputs_unchanged": Case(
            "does not modify its inputs",
            _mha_inputs("inputs_unchanged"),
            check_inputs_unchanged=True,
        ),
    },
    mistakes=(
        Mistake(
            "heads split with a strided reshape (..., d_k, n_heads): head h got the columns "
            "h, h + n_heads, h + 2·n_heads, … instead of its contiguous block h·d_k:(h+1)·d_k",
            "reshape to (..., n, n_heads, d_k) — the head first, then its d_k columns — and "
            "move the head axis before the rows with np.swapaxes(..., -2, -3)",
            _mha_with(split="strided"),
        ),
        Mistake(
            "scaled by √(n_heads·d_k), the total width, instead of √d_k of one head",
            "each head's score is a dot product of d_k = W_q.shape[1] // n_heads numbers: "
            "divide by np.sqrt(d_k) of one head",
            _mha_with(width="total"),
        ),
        Mistake(
            "no scaling: the scores were not divided by √d_k",
            "divide each head's scores by np.sqrt(d_k), d_k = W_q.shape[1] // n_heads",
            _mha_with(width="none"),
        ),
        Mistake(
            "W_o forgotten: returned the concatenated heads (..., n_q, n_heads·d_v)",
            "project the concatenation with the output matrix: concat @ W_o gives "
            "(..., n_q, d_out)",
            _mha_with(project=False),
        ),
        Mistake(
            "softmax taken over the head axis instead of the key axis",
            "normalise each query's row of scores within its head: softmax over axis=-1 of the "
            "(..., n_heads, n_q, n_k) scores",
            _mha_with(softmax_axis=-3),
        ),
        Mistake(
            "heads concatenated in reverse order",
            "concatenate head 0, head 1, …, head n_heads-1 in this order, so that head h fills "
            "the rows h·d_v:(h+1)·d_v of W_o",
            _mha_with(reverse_heads=True),
        ),
        Mistake(
            "weights returned with shape (..., n_q, n_heads, n_k) instead of "
            "(..., n_heads, n_q, n_k)",
            "keep the head axis before the queries: weights[..., h, :, :] is the map of head h",
            _mha_with(weights_layout="queries"),
        ),
        Mistake(
            "weights averaged over the heads (what PyTorch's nn.MultiheadAttention returns by "
            "default, average_attn_weights=True) instead of one map per head",
            "return every head's weights, shape (..., n_heads, n_q, n_k)",
            _mha_with(weights_layout="mean"),
        ),
        Mistake(
            "the mask was not given a head axis: a padding mask (batch, 1, n_k) then lines "
            "its batch axis up with the head axis of the scores (..., n_heads, n_q, n_k)",
            "insert the head axis before the queries: mask[..., None, :, :] has shape "
            "(..., 1, n_q, n_k) and applies to every head",
            _mha_with(head_axis_on_mask=False),
            probe=_mha_mask_probe,
        ),
        Mistake(
            "returned only the output, not (output, weights)",
            "return a tuple: return output, weights",
            _mha_with(only_output=True),
        ),
    ),
    forbidden=frozenset({"multi_head_attention"}),
)


# --------------------------------------------------------------------------------------------
# Online softmax (notebook 08)
# --------------------------------------------------------------------------------------------


def _online_inputs(kind: str):
    def make(rng):
        b1, b2 = _sizes(rng, 2, 2, 6)
        (n,) = _sizes(rng, 1, 7, 14, exclude=(b1, b2))  # several blocks per row
        (n_q,) = _sizes(rng, 1, 4, 14, exclude=(b1, b2, n))
        block = _non_divisor(rng, n, exclude=(n_q, b1, b2))
        if kind == "random":
            x = _normal(rng, (n_q, n), 3.0)
            return [((x, 1), {}), ((x, block), {}), ((x, n + int(rng.integers(1, 5))), {})]
        if kind == "large":
            # Rows centred thousands apart; half rise (the maximum grows block after block),
            # half fall (the first block holds the maximum, the last lies far below it).
            offsets = rng.uniform(-5000.0, 5000.0, size=(n_q, 1))
            slopes = rng.permutation(np.resize([300.0, -300.0], n_q))[:, None]
            x = offsets + slopes * np.arange(n) + _normal(rng, (n_q, n), 40.0)
            return [((x, block), {})]
        if kind == "neg_inf":
            x = _normal(rng, (n_q, n), 3.0)
            x[0] = -np.inf  # a row with no finite entry
            x[1, : block + 1] = -np.inf  # its first block is all -inf (left padding)
            x[2, n - block + 1 :] = -np.inf  # trailing -inf
            x[3:][rng.random((n_q - 3, n)) < 0.3] = -np.inf  # scattered -inf
            x = rng.permutation(x)
            return [((x, block), {}), ((x, 1), {})]
        if kind == "batch":
            return [((_normal(rng, (b1, b2, n_q, n), 3.0), block), {})]
        if kind == "float32":
            return [((_normal(rng, (n_q, n), 30.0, np.float32), block), {})]
        if kind == "inputs_unchanged":
            return [((_normal(rng, (b1, n_q, n), 3.0), block), {})]
        raise KeyError(kind)

    return make


def _finite_or_zero(m):
    return np.where(np.isfinite(m), m, 0.0)


def _online_with(rescale="right", max_of="running", guard=True, init="neg_inf", per_block=False):
    """An online softmax with one deliberate change (the reference's algorithm otherwise)."""

    def online(x, block_size):
        x = np.asarray(x)
        n = x.shape[-1]
        if per_block:
            return np.concatenate(
                [_safe_softmax(x[..., s : s + block_size]) for s in range(0, n, block_size)],
                axis=-1,
            )
        starts = list(range(0, n, block_size))
        m = np.full((*x.shape[:-1], 1), -np.inf)  # (..., 1)
        denom = np.zeros((*x.shape[:-1], 1))  # (..., 1)
        if init == "first_block":
            first = x[..., :block_size]
            m = first.max(axis=-1, keepdims=True)
            denom = np.exp(first - m).sum(axis=-1, keepdims=True)
            starts = starts[1:]
        for s in starts:
            block = x[..., s : s + block_size]  # (..., b)
            if max_of == "whole_block":  # one maximum for the whole block, all rows together
                block_max = np.full_like(m, block.max())
            else:
                block_max = block.max(axis=-1, keepdims=True)  # (..., 1)
            m_new = block_max if max_of == "block" else np.maximum(m, block_max)
            shift = _finite_or_zero(m_new) if guard else m_new
            if rescale == "right":
                denom = denom * np.exp(m - shift)
            elif rescale == "wrong_sign":
                denom = denom * np.exp(shift - m)
            denom = denom + np.exp(block - shift).sum(axis=-1, keepdims=True)
            m = m_new
        shift = _finite_or_zero(m) if guard else m
        e = np.exp(x - shift)  # (..., n)
        if not guard:
            return e / denom
        return np.divide(e, denom, out=np.zeros_like(e), where=denom > 0)

    return online


_ONLINE = Exercise(
    name="online_softmax",
    arg_names=("x", "block_size"),
    reference=ref.online_softmax,
    n_outputs=1,
    output_names=("softmax",),
    signature="online_softmax(x, block_size)",
    arg_layouts=("(..., n)", ""),
    output_layouts=("(..., n)",),
    cases={
        "random": Case(
            "matches softmax for block sizes 1, a non-divisor of n, and > n",
            _online_inputs("random"),
        ),
        "large": Case(
            "is stable for scores in the thousands whose maximum moves",
            _online_inputs("large"),
        ),
        "neg_inf": Case(
            "gives zeros for all -inf rows, no NaN, no warnings",
            _online_inputs("neg_inf"),
        ),
        "batch": Case("works with leading batch dimensions", _online_inputs("batch")),
        "float32": Case("works in float32", _online_inputs("float32")),
        "inputs_unchanged": Case(
            "does not modify its input",
            _online_inputs("inputs_unchanged"),
            check_inputs_unchanged=True,
        ),
    },
    mistakes=(
        Mistake(
            "each block normalised on its own: every block's weights sum to 1",
            "keep one running maximum m and one running sum for the whole row across the "
            "blocks, and divide by the final sum only at the end",
            _online_with(per_block=True),
        ),
        Mistake(
            "the running sum was not rescaled when the maximum changed: terms computed against "
            "the old maximum were added to terms computed against the new one",
            "before adding a block, multiply the running sum by np.exp(m_old - m_new): "
            "denom = denom * np.exp(m_old - m_new) + np.exp(block - m_new).sum(-1, keepdims=True)",
            _online_with(rescale="none"),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): the old sum grows instead of shrinking",
            "the factor is np.exp(m_old - m_new) <= 1: the old terms exp(x - m_old) become "
            "exp(x - m_new) when multiplied by exp(m_old - m_new)",
            _online_with(rescale="wrong_sign", init="first_block"),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the sum 0 gives NaN",
            "the factor is np.exp(m_old - m_new) <= 1 (it is exp(-inf) = 0 for the first "
            "block, which correctly drops the empty sum)",
            _online_with(rescale="wrong_sign", guard=False),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the sum 0 gives a NaN sum, so no sum is positive "
            "and every weight came out 0",
            "the factor is np.exp(m_old - m_new) <= 1 (it is exp(-inf) = 0 for the first "
            "block, which correctly drops the empty sum)",
            _online_with(rescale="wrong_sign"),
        ),
        Mistake(
            "the running maximum was replaced by each block's own maximum: a block whose "
            "scores lie far below an earlier one makes np.exp overflow",
            "keep the running maximum: m_new = np.maximum(m_old, block.max(axis=-1, "
            "keepdims=True))",
            _online_with(max_of="block"),
        ),
        Mistake(
            "one maximum for the whole block (all rows together) instead of each row's own: "
            "rows far below it underflow to 0",
            "take the maximum along the last axis only: block.max(axis=-1, keepdims=True)",
            _online_with(max_of="whole_block"),
        ),
        Mistake(
            "NaN on rows that are all -inf (or start with an all -inf block): the running "
            "maximum is -inf there and -inf - (-inf) = NaN",
            "shift by 0 where the running maximum is -inf (np.where(np.isfinite(m), m, 0)), "
            "and divide only where the sum is positive (np.divide(e, denom, "
            "out=np.zeros_like(e), where=denom > 0))",
            _online_with(guard=False),
        ),
    ),
    forbidden=frozenset(
        {
            "online_softmax",
            "softmax",
            "scaled_dot_product_attention",
            "tiled_attention",
            "multi_head_attention",
            "self_attention",
            "cross_attention",
        }
    ),
    exp_magnitude=lambda x, *args, **kwargs: float(
        np.max(np.abs(np.where(np.isfinite(x), x, 0.0)), initial=0.0)
    ),
)


# --------------------------------------------------------------------------------------------
# Tiled attention (notebook 08)
# --------------------------------------------------------------------------------------------

#: Sizes of the "memory" case: n_q x n_k float64 scores are ~2-3 MB, a block of them ~40 kB.
_MEMORY_SIZES = {"n_q": (100, 140), "n_k": (2400, 3000), "d_k": (8, 16), "d_v": (16, 24),
                 "block_size": (24, 48)}  # fmt: skip
#: Peak allocation allowed in the "memory" case, as a fraction of one n_q x n_k matrix.
MEMORY_FRACTION = 0.25


def _tiled_inputs(kind: str):
    def make(rng):
        b1, b2 = _sizes(rng, 2, 2, 6)
        (n_k,) = _sizes(rng, 1, 7, 14, exclude=(b1, b2))  # several blocks of keys
        n_q, d_k, d_v = _sizes(rng, 3, 2, 14, exclude=(b1, b2, n_k))
        block = _non_divisor(rng, n_k, exclude=(n_q, d_k, d_v, b1, b2))
        if kind == "random":
            Q, K, V = _qkv(rng, (), n_q, n_k, d_k, d_v)
            return [((Q, K, V, b), {}) for b in (1, block, n_k + int(rng.integers(1, 5)))]
        if kind == "mask":
            mask = _two_sided_mask(rng, (n_q, n_k))
            mask[rng.choice(n_q, size=min(2, n_q - 1), replace=False)] = False
            lengths = rng.integers(1, n_k + 1, size=b1)
            lengths[rng.integers(b1)] = 0  # one sequence is all padding
            return [
                ((*_qkv(rng, (), n_q, n_k, d_k, d_v), block, mask), {}),
                ((*_qkv(rng, (b1,), n_q, n_k, d_k, d_v), block, _lengths_mask(lengths, n_k)), {}),
            ]
        if kind == "batch":
            return [((*_qkv(rng, (b1, b2), n_q, n_k, d_k, d_v), block), {})]
        if kind == "large":
            for _ in range(100):
                Q, K, V = _qkv(rng, (), n_q, n_k, d_k, d_v, 40.0)
                if np.abs(_scores(Q, K)).max() > 800:
                    break
            return [((Q, K, V, block), {})]
        if kind == "float32":
            return [((*_qkv(rng, (b1,), n_q, n_k, d_k, d_v, 4.0, np.float32), block), {})]
        if kind == "inputs_unchanged":
            lengths = rng.integers(1, n_k, size=b1)
            qkv = _qkv(rng, (b1,), n_q, n_k, d_k, d_v)
            return [((*qkv, block, _lengths_mask(lengths, n_k)), {})]
        if kind == "memory":
            n_q, n_k, d_k, d_v, block = (int(rng.integers(*r)) for r in _MEMORY_SIZES.values())
            return [((*_qkv(rng, (), n_q, n_k, d_k, d_v), block), {})]
        raise KeyError(kind)

    return make


def _tiled_with(
    rescale_acc=True,
    rescale_denom=True,
    wrong_sign=False,
    guard=True,
    subtract_max=True,
    scale=True,
    per_block=False,
    divide_inside=False,
    init="neg_inf",
    full_matrix=False,
):
    """Tiled attention (over key blocks) with one deliberate change."""

    def tiled(Q, K, V, block_size, mask=None):
        n_q, d_k = Q.shape[-2:]
        n_k = K.shape[-2]
        if scale:
            Q = Q / np.sqrt(d_k)
        batch = np.broadcast_shapes(Q.shape[:-2], K.shape[:-2], V.shape[:-2])
        if mask is not None:
            batch = np.broadcast_shapes(batch, np.shape(mask)[:-2])
            mask = np.broadcast_to(mask, (*batch, n_q, n_k))
        if full_matrix:
            S = Q @ np.swapaxes(K, -1, -2)
            if mask is not None:
                S = np.where(mask, S, -np.inf)
            return _safe_softmax(S) @ V
        m = np.full((*batch, n_q, 1), -np.inf)
        denom = np.zeros((*batch, n_q, 1))
        acc = np.zeros((*batch, n_q, V.shape[-1]))
        for k0 in range(0, n_k, block_size):
            S = Q @ np.swapaxes(K[..., k0 : k0 + block_size, :], -1, -2)  # (..., n_q, b)
            if mask is not None:
                S = np.where(mask[..., k0 : k0 + block_size], S, -np.inf)
            V_blk = V[..., k0 : k0 + block_size, :]  # (..., b, d_v)
            if per_block:
                acc = acc + _safe_softmax(S) @ V_blk
                continue
            if init == "first_block" and k0 == 0:
                m = S.max(axis=-1, keepdims=True)
            m_new = np.maximum(m, S.max(axis=-1, keepdims=True))
            if not subtract_max:
                m_new = np.zeros_like(m_new)
            shift = _finite_or_zero(m_new) if guard else m_new
            alpha = np.exp(shift - m) if wrong_sign else np.exp(m - shift)
            P = np.exp(S - shift)  # (..., n_q, b)
            new_denom = denom * (alpha if rescale_denom else 1.0) + P.sum(axis=-1, keepdims=True)
            if divide_inside:  # keeps acc normalised but forgets to undo the old division
                acc = (acc * alpha + P @ V_blk) / np.where(new_denom > 0, new_denom, 1.0)
            else:
                acc = acc * (alpha if rescale_acc else 1.0) + P @ V_blk
            denom, m = new_denom, m_new
        if per_block or divide_inside:
            return acc
        if not guard:
            return acc / denom
        return np.divide(acc, denom, out=np.zeros_like(acc), where=denom > 0)

    return tiled


_TILED = Exercise(
    name="tiled_attention",
    arg_names=("Q", "K", "V", "block_size", "mask"),
    reference=lambda Q, K, V, block_size, mask=None: ref.tiled_attention(
        Q, K, V, block_size, mask=mask
    ),
    n_outputs=1,
    output_names=("output",),
    signature="tiled_attention(Q, K, V, block_size, mask=None)",
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)", "(..., n_k, d_v)", "", "(..., n_q, n_k)"),
    output_layouts=("(..., n_q, d_v)",),
    cases={
        "random": Case(
            "matches attention for block sizes 1, a non-divisor of n_k, > n_k",
            _tiled_inputs("random"),
        ),
        "mask": Case(
            "applies a mask; fully masked rows give zeros, no warnings",
            _tiled_inputs("mask"),
        ),
        "batch": Case("works with leading batch dimensions", _tiled_inputs("batch")),
        "large": Case("is stable for large scores", _tiled_inputs("large")),
        "float32": Case("works in float32", _tiled_inputs("float32")),
        "memory": Case(
            "never holds the whole n_q × n_k score matrix (peak measured)",
            _tiled_inputs("memory"),
        ),
        "inputs_unchanged": Case(
            "does not modify its inputs",
            _tiled_inputs("inputs_unchanged"),
            check_inputs_unchanged=True,
        ),
    },
    mistakes=(
        Mistake(
            "each block normalised on its own (a softmax per block) and the blocks' outputs "
            "added: every block gets a total weight of 1",
            "keep a running maximum m, a running sum denom and an un-normalised accumulator acc "
            "across the blocks, and divide acc by denom once, after the last block",
            _tiled_with(per_block=True),
        ),
        Mistake(
            "the accumulator was not rescaled when the maximum changed (the running sum was)",
            "multiply both the running sum and the accumulator by alpha = np.exp(m_old - m_new) "
            "before adding the block: acc = acc * alpha + P @ V_block",
            _tiled_with(rescale_acc=False),
        ),
        Mistake(
            "neither the running sum nor the accumulator was rescaled when the maximum changed",
            "multiply both by alpha = np.exp(m_old - m_new) before adding the block's terms",
            _tiled_with(rescale_acc=False, rescale_denom=False),
        ),
        Mistake(
            "the accumulator was divided by the running sum inside the loop without undoing "
            "the previous division: the old output must be multiplied back by the old sum",
            "keep acc un-normalised (acc = acc * alpha + P @ V_block) and divide by denom once, "
            "after the loop",
            _tiled_with(divide_inside=True),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): the old terms grow instead of "
            "shrinking",
            "alpha = np.exp(m_old - m_new) <= 1 turns exp(s - m_old) into exp(s - m_new)",
            _tiled_with(wrong_sign=True, init="first_block"),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the empty sum 0 gives NaN",
            "alpha = np.exp(m_old - m_new) <= 1; on the first block it is exp(-inf) = 0",
            _tiled_with(wrong_sign=True, guard=False),
        ),
        Mistake(
            "rescaled with exp(m_new - m_old) (wrong sign): with the running maximum starting "
            "at -inf, exp(+inf) = inf times the empty sum 0 gives a NaN sum, so no sum is "
            "positive and every output row came out 0",
            "alpha = np.exp(m_old - m_new) <= 1; on the first block it is exp(-inf) = 0",
            _tiled_with(wrong_sign=True),
        ),
        Mistake(
            "NaN on fully masked rows: their running maximum stays -inf and -inf - (-inf) = NaN",
            "shift by 0 where the running maximum is -inf (np.where(np.isfinite(m), m, 0)), and "
            "divide only where the sum is positive (np.divide(acc, denom, "
            "out=np.zeros_like(acc), where=denom > 0))",
            _tiled_with(guard=False),
        ),
        Mistake(
            "no maximum subtracted: np.exp of large scores overflowed to inf and gave NaN",
            "keep a running maximum m of each query's scores and exponentiate S - m_new",
            _tiled_with(subtract_max=False),
        ),
        Mistake(
            "no scaling: the scores were not divided by √d_k",
            "divide the scores (or the queries, once) by np.sqrt(d_k), d_k = Q.shape[-1]",
            _tiled_with(scale=False),
        ),
    ),
    forbidden=frozenset(
        {
            "tiled_attention",
            "scaled_dot_product_attention",
            "softmax",
            "online_softmax",
            "multi_head_attention",
            "self_attention",
            "cross_attention",
        }
    ),
)


# --------------------------------------------------------------------------------------------
# Registration, and the checks
# --------------------------------------------------------------------------------------------

EXERCISES.update({ex.name: ex for ex in (_CAUSAL, _PADDING, _MASKED, _MHA, _ONLINE, _TILED)})

#: Cases whose all -inf (fully masked) rows must come out without NumPy warnings.
_NO_WARNINGS = {
    ("masked_attention", "fully_masked"),
    ("tiled_attention", "mask"),
    ("online_softmax", "neg_inf"),
}

_NO_WARNINGS_FIX = (
    "For an all -inf row your code still computes -inf - (-inf) or 0 / 0 and then hides the "
    "NaN. Avoid the invalid operation instead: replace a row maximum of -inf by 0 before "
    "subtracting it (m = np.where(np.isfinite(m), m, 0)), and divide only where the sum is "
    "positive (np.divide(e, total, out=np.zeros_like(e), where=total > 0)). Replacing the NaN "
    "afterwards (np.nan_to_num, np.isnan) does not count, and np.where(total > 0, e / total, 0) "
    "is not enough: it computes e / total everywhere first"
)


def _case_calls(name: str, case: str, seed: int | None):
    """The inputs a check passes for one case (the same draws as the check itself)."""
    rng = np.random.default_rng(_case_seed(name, case, seed))
    return EXERCISES[name].cases[case].make(rng)


def _require_no_warnings(name: str, fn: Callable, case: str, seed: int | None) -> None:
    exercise = EXERCISES[name]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for args, kwargs in _case_calls(name, case, seed):
            outcome = _run(fn, args, kwargs, exercise.forbidden, exercise.arg_names)
            if outcome.warnings:
                raise _fail(
                    exercise,
                    exercise.cases[case],
                    "Your function returns the right values, but NumPy warned while computing "
                    f"them: {'; '.join(outcome.warnings)}.\nHow to fix it: {_NO_WARNINGS_FIX}.",
                )


def _peak_bytes(fn: Callable, args, kwargs) -> int:
    """Peak bytes allocated (NumPy arrays included) while ``fn(*args, **kwargs)`` runs."""
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    sink: list[str] = []
    try:
        with (
            _checks._capture_fd2(sink),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(),
            np.errstate(all="ignore"),
        ):
            warnings.simplefilter("ignore")
            fn(*copies, **kwargs)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()


def _require_tiles(fn: Callable, seed: int | None) -> None:
    exercise = EXERCISES["tiled_attention"]
    for args, kwargs in _case_calls("tiled_attention", "memory", seed):
        Q, K = args[:2]
        n_q, n_k = Q.shape[-2], K.shape[-2]
        full = n_q * n_k * np.dtype(np.float64).itemsize
        try:
            peak = _peak_bytes(fn, args, kwargs)
        except Exception:  # noqa: BLE001 - it ran fine a moment ago in the value check
            return
        if peak > MEMORY_FRACTION * full:
            raise _fail(
                exercise,
                exercise.cases["memory"],
                f"Your tiled_attention allocated {peak / 1e6:.1f} MB at its peak, "
                f"{peak / full:.0%} of the full score matrix (n_q × n_k = {n_q} × {n_k} "
                f"float64 numbers, {full / 1e6:.1f} MB): about the size of the full score "
                "matrix, so it holds (most of) it at once. Compute one block at a time: the "
                f"scores of all queries against block_size = {args[3]} keys, "
                "(..., n_q, block_size), then the next block, keeping only the running "
                "maximum, the running sum and the accumulator between blocks. "
                f"(Allowed: {MEMORY_FRACTION:.0%} of the full matrix.)",
            )


def _strict(name: str, extra: Callable[[Callable, str, int | None], None]) -> Callable:
    """The framework's check of ``name``, followed by ``extra`` (which may raise CheckFailed);
    the ✓ line is printed only when both pass."""
    values = _make_check(name)

    def check(fn: Callable, case: str = "random", seed: int | None = None) -> None:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                values(fn, case, seed)
                extra(fn, case, seed)
        except CheckFailed as failure:
            raise _rename(name, failure) from None
        sys.stdout.write(printed.getvalue())

    check.__name__ = check.__qualname__ = f"check_{name}"
    check.__doc__ = values.__doc__
    return check


def _rename(name: str, failure: CheckFailed) -> CheckFailed:
    """The masked-attention exercise is the learner's ``scaled_dot_product_attention``."""
    if name != "masked_attention":
        return failure
    text = str(failure).replace(
        "`masked_attention` is not implemented yet",
        "`scaled_dot_product_attention` (with a mask) is not implemented yet",
    )
    return CheckFailed(text) if text != str(failure) else failure


def _no_warnings_where_required(name: str):
    def extra(fn, case, seed):
        if (name, case) in _NO_WARNINGS:
            _require_no_warnings(name, fn, case, seed)

    return extra


def _tiled_extra(fn, case, seed):
    _no_warnings_where_required("tiled_attention")(fn, case, seed)
    if case == "memory":
        _require_tiles(fn, seed)


check_causal_mask = _mask_check_function("causal_mask")
check_padding_mask = _mask_check_function("padding_mask")
check_masked_attention = _strict(
    "masked_attention", _no_warnings_where_required("masked_attention")
)
check_multi_head_attention = _make_check("multi_head_attention")
check_online_softmax = _strict("online_softmax", _no_warnings_where_required("online_softmax"))
check_tiled_attention = _strict("tiled_attention", _tiled_extra)

# Also available as attributes of attention_course.checks when this module is imported first.
for _name in __all__:
    setattr(_checks, _name, globals()[_name])
