"""Checks that grade a learner's functions and say *what* is wrong.

Every graded test cell in the course calls one check::

    from attention_course import checks
    checks.check_softmax(softmax, "large")          # visible test
    checks.check_softmax(softmax, "large", seed=7)  # hidden test: other seed, other shapes

A check runs the learner's function on inputs built for one *case* (random input, batch
dimensions, large magnitudes, float32, ...), compares the answer with the reference in
:mod:`attention_course.reference`, and either prints one line starting with ``✓`` or raises
:class:`CheckFailed`. When the answer is wrong, the check runs a catalogue of known mistakes
(softmax over the wrong axis, scaling by ``d_k`` instead of ``sqrt(d_k)``, ``K.T`` on batched
input, ...) on the same inputs and, if the learner's answer matches one, names it and says how
to fix it. Otherwise it reports what was expected and what came back: shape, dtype and the
first differing entry.

Rules every check follows:

- Dimensions are always all different (``n_q != n_k != d_k != d_v != d_model``), so a wrong
  transpose cannot pass by accident.
- Warnings raised by learner code and anything it writes to stderr are captured and reported in
  the message: nothing reaches stderr, where nbgrader would score the cell zero.
- A learner function that calls the reference implementation of the function it is meant to
  write fails with a message.
- Failure messages never quote the test cell, so hidden tests stay hidden in feedback.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import reference as ref

__all__ = [
    "CheckFailed",
    "EXERCISES",
    "check_dot_product_scores",
    "check_scale_scores",
    "check_softmax",
    "check_weighted_sum",
    "check_scaled_dot_product_attention",
    "check_self_attention",
    "check_cross_attention",
]


class CheckFailed(AssertionError):  # noqa: N818 - reads as a verdict
    """A learner's function gave a wrong answer; the message says what and, if known, why.

    IPython (and so nbgrader's feedback) shows only the message, not the traceback: the
    traceback would quote the test cell, which for hidden tests must stay hidden.
    """

    def _render_traceback_(self) -> list[str]:  # IPython hook: replaces the traceback
        return [f"\x1b[31mCheckFailed\x1b[0m: {self}"]


# --------------------------------------------------------------------------------------------
# Running learner code safely
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened when a function was called: a value or an exception, plus side effects."""

    value: Any = None
    error: BaseException | None = None
    error_where: str = ""
    warnings: list[str] = field(default_factory=list)
    stderr: str = ""
    called_reference: str | None = None
    mutated: list[str] = field(default_factory=list)


_REFERENCE_CODES = {
    getattr(ref, name).__code__: name
    for name in ref.__all__
    if callable(getattr(ref, name, None)) and hasattr(getattr(ref, name), "__code__")
}


def _learner_frame(tb) -> str:
    """Describe the innermost traceback frame that is not inside this package or NumPy."""
    frames = traceback.extract_tb(tb)
    for frame in reversed(frames):
        if "attention_course" in frame.filename or f"{np.__name__}" in frame.filename.split("/"):
            continue
        line = (frame.line or "").strip()
        return f" at the line `{line}`" if line else ""
    return ""


def _run(fn: Callable, args: Sequence, kwargs: dict, forbidden: frozenset[str],
         arg_names: Sequence[str] = ()) -> Outcome:
    """Call ``fn`` on copies of the inputs, capturing warnings, stderr and reference calls."""
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    kw_copies = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                 for k, v in kwargs.items()}
    outcome = Outcome()
    seen_reference: list[str] = []

    def profiler(frame, event, arg):
        if event == "call":
            name = _REFERENCE_CODES.get(frame.f_code)
            if name in forbidden:
                seen_reference.append(name)

    stderr = io.StringIO()
    old_profile = sys.getprofile()
    # Underflow (exp of a very negative number -> 0) is expected in a stable softmax.
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn", under="ignore"), \
            contextlib.redirect_stderr(stderr):
        warnings.simplefilter("always")
        sys.setprofile(profiler)
        try:
            outcome.value = fn(*copies, **kw_copies)
        except Exception as exc:  # noqa: BLE001 - any learner error becomes a message
            outcome.error = exc
            outcome.error_where = _learner_frame(exc.__traceback__)
        finally:
            sys.setprofile(old_profile)
    outcome.warnings = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    outcome.stderr = stderr.getvalue().strip()
    outcome.called_reference = seen_reference[0] if seen_reference else None
    names = list(arg_names)[: len(args)] + [f"argument {i + 1}" for i in range(len(arg_names),
                                                                            len(args))]
    for name, original, copy in zip(names, args, copies, strict=True):
        if isinstance(original, np.ndarray) and not np.array_equal(original, copy, equal_nan=True):
            outcome.mutated.append(name)
    for name, original in kwargs.items():
        if isinstance(original, np.ndarray) and not np.array_equal(
            original, kw_copies[name], equal_nan=True
        ):
            outcome.mutated.append(name)
    return outcome


def _quiet_call(fn: Callable, args: Sequence, kwargs: dict) -> Outcome:
    """Call a reference or mistake function, silencing its warnings (they are expected)."""
    outcome = Outcome()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            outcome.value = fn(*[np.array(a, copy=True) if isinstance(a, np.ndarray) else a
                                 for a in args], **kwargs)
        except Exception as exc:  # noqa: BLE001
            outcome.error = exc
    return outcome


# --------------------------------------------------------------------------------------------
# Comparing answers
# --------------------------------------------------------------------------------------------


def _tolerances(dtype) -> tuple[float, float]:
    if np.dtype(dtype) == np.float32:
        return 2e-4, 1e-5
    if np.dtype(dtype) == np.float16:
        return 1e-2, 1e-3
    return 1e-7, 1e-10


def _close(got, expected, dtype) -> bool:
    try:
        got = np.asarray(got)
    except Exception:  # noqa: BLE001
        return False
    if got.dtype == object or got.shape != np.shape(expected):
        return False
    if not (np.issubdtype(got.dtype, np.floating) or np.issubdtype(got.dtype, np.integer)):
        return False
    rtol, atol = _tolerances(dtype)
    scale = float(np.nanmax(np.abs(expected))) if np.size(expected) else 1.0
    return bool(np.allclose(got, expected, rtol=rtol, atol=atol * max(scale, 1.0),
                            equal_nan=True))


def _same_outcome(a: Outcome, b: Outcome, n_outputs: int, dtype) -> bool:
    """Do two calls agree: both raised the same error, or both returned the same arrays?"""
    if a.error is not None or b.error is not None:
        return (
            a.error is not None
            and b.error is not None
            and type(a.error) is type(b.error)
            and str(a.error) == str(b.error)
        )
    got, expected = _as_outputs(a.value, n_outputs), _as_outputs(b.value, n_outputs)
    if got is None and expected is None:  # both returned something else than the tuple
        return _close(a.value, b.value, dtype) if isinstance(b.value, np.ndarray) else False
    if got is None or expected is None:
        return False
    return all(_close(g, e, dtype) for g, e in zip(got, expected, strict=True))


def _as_outputs(value, n_outputs: int):
    if n_outputs == 1:
        return (value,)
    if isinstance(value, (tuple, list)) and len(value) == n_outputs:
        return tuple(value)
    return None


def _describe_difference(got, expected, label: str) -> str:
    """Expected vs got: shape, dtype, first differing entry."""
    if got is None:
        return f"{label}: expected an array of shape {expected.shape}, got None — is a " \
               "`return` statement missing?"
    try:
        arr = np.asarray(got)
    except Exception:  # noqa: BLE001
        return f"{label}: expected an array of shape {expected.shape}, got {type(got).__name__}."
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number)):
        return f"{label}: expected a numeric array, got {type(got).__name__} of dtype {arr.dtype}."
    if arr.shape != expected.shape:
        return (f"{label}: expected shape {expected.shape}, got shape {arr.shape} "
                f"(dtype {arr.dtype}).")
    with np.errstate(all="ignore"):
        bad = ~np.isclose(arr, expected, rtol=_tolerances(expected.dtype)[0],
                          atol=_tolerances(expected.dtype)[1], equal_nan=True)
    index = tuple(int(i) for i in np.argwhere(bad)[0]) if bad.any() else None
    text = f"{label}: right shape {arr.shape} and dtype {arr.dtype}, but wrong values"
    if index is not None:
        text += (f"; the first differing entry is at index {index}: expected "
                 f"{expected[index]:.6g}, got {arr[index]:.6g}")
        n_bad = int(bad.sum())
        text += f" ({n_bad} of {bad.size} entries differ)."
    if np.isnan(arr).any() and not np.isnan(expected).any():
        text += " Your answer contains NaN."
    elif np.isinf(arr).any() and not np.isinf(expected).any():
        text += " Your answer contains inf."
    return text


# --------------------------------------------------------------------------------------------
# Exercises, cases and mistakes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation, with its name and how to fix it.

    ``fn`` takes the same arguments as the learner's function. If ``probe`` is given, the
    diagnosis runs both on the inputs it builds (from a generator) instead of the case's own
    inputs — for mistakes that only show a comparable answer on specially shaped input.
    """

    name: str
    fix: str
    fn: Callable
    probe: Callable[[np.random.Generator], tuple[tuple, dict]] | None = None


@dataclass(frozen=True)
class Case:
    description: str
    make: Callable[[np.random.Generator], list[tuple[tuple, dict]]]
    check_inputs_unchanged: bool = False


@dataclass(frozen=True)
class Exercise:
    name: str
    arg_names: tuple[str, ...]
    reference: Callable
    n_outputs: int
    output_names: tuple[str, ...]
    cases: dict[str, Case]
    mistakes: tuple[Mistake, ...]
    forbidden: frozenset[str]


def _distinct(rng: np.random.Generator, count: int, low: int = 2, high: int = 12) -> list[int]:
    """``count`` different sizes, so that no two dimensions can be confused."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=count, replace=False)]


def _normal(rng, shape, scale=1.0, dtype=np.float64):
    return (rng.standard_normal(shape) * scale).astype(dtype)


_BATCH_RANGE = (2, 14)


def _batch_and_sizes(rng, n_sizes: int):
    """Two batch sizes and ``n_sizes`` matrix sizes, all different from each other."""
    values = _distinct(rng, n_sizes + 2, *_BATCH_RANGE)
    return tuple(values[:2]), values[2:]


# ---- mistakes shared by several exercises ---------------------------------------------------


def _naive_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _stable_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _sdpa_with(scale_fn=None, softmax_fn=None, transpose=None, swap=False, only_output=False):
    """Build a wrong attention from one deliberate change to the textbook version."""

    def attention(Q, K, V, *args, **kwargs):
        Kt = transpose(K) if transpose else np.swapaxes(K, -1, -2)
        scores = Q @ Kt  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
        scores = scale_fn(scores, Q, K, V) if scale_fn else scores / np.sqrt(Q.shape[-1])
        weights = softmax_fn(scores) if softmax_fn else _stable_softmax(scores)
        output = weights @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
        if only_output:
            return output
        return (weights, output) if swap else (output, weights)

    return attention


_SCALE_MISTAKES = (
    ("no scaling: the scores were not divided by √d_k",
     "divide the scores by np.sqrt(d_k), where d_k = Q.shape[-1]",
     lambda s, Q, K, V: s),
    ("scaled by d_k instead of √d_k",
     "divide by np.sqrt(d_k), not by d_k: the standard deviation of q·k grows like √d_k",
     lambda s, Q, K, V: s / Q.shape[-1]),
    ("multiplied by √d_k instead of dividing",
     "divide the scores by np.sqrt(d_k); multiplying makes softmax saturate even more",
     lambda s, Q, K, V: s * np.sqrt(Q.shape[-1])),
    ("scaled by √n_k (the number of keys) instead of √d_k",
     "d_k is the width of a query/key vector, Q.shape[-1], not the number of keys "
     "K.shape[-2] or scores.shape[-1]",
     lambda s, Q, K, V: s / np.sqrt(K.shape[-2])),
    ("scaled by √n_q (the number of queries) instead of √d_k",
     "d_k is the width of a query/key vector, Q.shape[-1], not the number of queries "
     "Q.shape[-2]",
     lambda s, Q, K, V: s / np.sqrt(Q.shape[-2])),
    ("scaled by √d_v (the width of the values) instead of √d_k",
     "d_k is the width of the queries and keys, Q.shape[-1]; V.shape[-1] is d_v",
     lambda s, Q, K, V: s / np.sqrt(V.shape[-1])),
)

_TRANSPOSE_FIX = ("use np.swapaxes(K, -1, -2) (or K.swapaxes(-1, -2), or "
                  "np.einsum('...qd,...kd->...qk', Q, K)): it swaps only the last two axes; "
                  "K.T and np.transpose(K) reverse *all* axes, including the batch axes")


def _attention_mistakes(wrap: Callable[[Callable], Callable]) -> tuple[Mistake, ...]:
    """Mistakes in the attention core, lifted by ``wrap`` to the exercise's own signature."""
    mistakes = [
        Mistake(name, fix, wrap(_sdpa_with(scale_fn=fn))) for name, fix, fn in _SCALE_MISTAKES
    ]
    mistakes += [
        Mistake("softmax taken over the query axis (axis=-2 / axis=0) instead of the key axis",
                "normalise each query's row of scores: softmax(scores, axis=-1), so that "
                "weights.sum(axis=-1) is all ones",
                wrap(_sdpa_with(softmax_fn=lambda s: _stable_softmax(s, axis=-2)))),
        Mistake("softmax normalised over the whole array instead of each row",
                "use keepdims sums along the last axis: e / e.sum(axis=-1, keepdims=True)",
                wrap(_sdpa_with(softmax_fn=lambda s: np.exp(s - s.max()) / np.exp(
                    s - s.max()).sum()))),
        Mistake("unstable softmax: the maximum was not subtracted before np.exp, which "
                "overflowed to inf and gave NaN",
                "subtract scores.max(axis=-1, keepdims=True) before exponentiating; "
                "softmax is unchanged by the shift",
                wrap(_sdpa_with(softmax_fn=_naive_softmax))),
        Mistake("weights and output returned in the wrong order",
                "return (output, weights): the output (…, n_q, d_v) first, then the "
                "weights (…, n_q, n_k)",
                wrap(_sdpa_with(swap=True))),
        Mistake("K.T used on batched input: .T reverses all axes, batch axes included",
                _TRANSPOSE_FIX,
                wrap(_sdpa_with(transpose=lambda K: K.T))),
        Mistake("np.dot used on batched input: np.dot does not broadcast batch axes like @",
                "use the @ operator or np.matmul, which treat leading axes as batch axes",
                wrap(lambda Q, K, V, *a, **k: _sdpa_dot(Q, K, V))),
    ]
    return tuple(mistakes)


def _sdpa_dot(Q, K, V):
    scores = np.dot(Q, np.swapaxes(K, -1, -2)) / np.sqrt(Q.shape[-1])
    weights = _stable_softmax(scores)
    return np.dot(weights, V), weights


# ---- dot_product_scores ---------------------------------------------------------------------


def _scores_inputs(batch: bool = False, dtype=np.float64, scale: float = 1.0):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k) = _batch_and_sizes(rng, 3)
        lead = (b1, b2) if batch else ()
        Q = _normal(rng, (*lead, n_q, d_k), scale, dtype)
        K = _normal(rng, (*lead, n_k, d_k), scale, dtype)
        return [((Q, K), {})]

    return make


_DOT_PRODUCT = Exercise(
    name="dot_product_scores",
    arg_names=("Q", "K"),
    reference=ref.dot_product_scores,
    n_outputs=1,
    output_names=("scores",),
    cases={
        "random": Case("matches the reference on random 2-D input", _scores_inputs()),
        "batch": Case("works with leading batch dimensions", _scores_inputs(batch=True)),
        "float32": Case("works in float32", _scores_inputs(dtype=np.float32, scale=10.0)),
        "inputs_unchanged": Case("does not modify its inputs", _scores_inputs(batch=True),
                                 check_inputs_unchanged=True),
    },
    mistakes=(
        Mistake("computed K Qᵀ instead of Q Kᵀ: the result is transposed, (n_k, n_q)",
                "put the queries first: scores[i, j] = Q[i] · K[j], i.e. Q @ Kᵀ",
                lambda Q, K: K @ np.swapaxes(Q, -1, -2)),
        Mistake("K was not transposed: Q @ K multiplies (n_q, d_k) by (n_k, d_k)",
                "transpose the keys' last two axes: Q @ np.swapaxes(K, -1, -2)",
                lambda Q, K: Q @ K),
        Mistake("K.T used on batched input: .T reverses all axes, batch axes included",
                _TRANSPOSE_FIX, lambda Q, K: Q @ K.T),
        Mistake("np.dot used on batched input: np.dot does not broadcast batch axes like @",
                "use the @ operator or np.matmul, which treat leading axes as batch axes",
                lambda Q, K: np.dot(Q, np.swapaxes(K, -1, -2))),
        Mistake("np.dot(Q, K.T) used on batched input: np.dot does not broadcast batch axes, "
                "and .T reverses all axes",
                "use Q @ np.swapaxes(K, -1, -2): @ treats leading axes as batch axes",
                lambda Q, K: np.dot(Q, K.T)),
        Mistake("element-wise product summed over the wrong axis",
                "each score is a dot product of a query row with a key row: Q @ Kᵀ",
                lambda Q, K: (Q * K).sum(-1)),
    ),
    forbidden=frozenset({"dot_product_scores", "scaled_dot_product_attention"}),
)


# ---- scale_scores ---------------------------------------------------------------------------


def _scale_inputs(batch: bool = False, dtype=np.float64):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k) = _batch_and_sizes(rng, 3)
        d_k = int(d_k) * 3  # keys wider than the score matrix, as in real models
        lead = (b1, b2) if batch else ()
        scores = _normal(rng, (*lead, n_q, n_k), math.sqrt(d_k), dtype)
        return [((scores, d_k), {})]

    return make


_SCALE = Exercise(
    name="scale_scores",
    arg_names=("scores", "d_k"),
    reference=ref.scale_scores,
    n_outputs=1,
    output_names=("scaled scores",),
    cases={
        "random": Case("matches the reference on random input", _scale_inputs()),
        "batch": Case("works with leading batch dimensions", _scale_inputs(batch=True)),
        "float32": Case("works in float32", _scale_inputs(dtype=np.float32)),
        "inputs_unchanged": Case("does not modify its inputs", _scale_inputs(batch=True),
                                 check_inputs_unchanged=True),
    },
    mistakes=(
        Mistake("scaled by d_k instead of √d_k",
                "divide by np.sqrt(d_k): the standard deviation of q·k grows like √d_k, "
                "its variance like d_k",
                lambda s, d_k: s / d_k),
        Mistake("multiplied by √d_k instead of dividing",
                "return scores / np.sqrt(d_k)",
                lambda s, d_k: s * np.sqrt(d_k)),
        Mistake("scaled by √n_k (the number of keys, scores.shape[-1]) instead of √d_k",
                "use the d_k argument: it is the query/key width, which the score matrix "
                "does not know",
                lambda s, d_k: s / np.sqrt(s.shape[-1])),
        Mistake("scaled by √n_q (scores.shape[-2]) instead of √d_k",
                "use the d_k argument, not a dimension of the score matrix",
                lambda s, d_k: s / np.sqrt(s.shape[-2])),
        Mistake("divided by d_k²  or by √d_k twice",
                "divide once by np.sqrt(d_k)",
                lambda s, d_k: s / d_k**2),
        Mistake("returned the scores unscaled",
                "return scores / np.sqrt(d_k)",
                lambda s, d_k: s),
    ),
    forbidden=frozenset({"scale_scores"}),
)


# ---- softmax ---------------------------------------------------------------------------------


def _softmax_inputs(kind: str):
    def make(rng):
        (b1, b2), (n_q, n_k, n_c) = _batch_and_sizes(rng, 3)
        if kind == "random":
            return [((_normal(rng, (n_q, n_k), 3.0),), {})]
        if kind == "batch":
            return [((_normal(rng, (b1, b2, n_q, n_k), 3.0),), {})]
        if kind == "float32":
            # Scores of a few hundred: fine in float64, but np.exp overflows float32 at ~88.
            return [((_normal(rng, (n_q, n_k), 150.0, np.float32),), {})]
        if kind == "large":
            # Rows centred far apart: subtracting one global max underflows whole rows.
            offsets = rng.uniform(-9000, 9000, size=(n_q, 1))
            x = offsets + _normal(rng, (n_q, n_k), 1000.0)
            x = np.clip(x, -1e4, 1e4)
            return [((x,), {}), ((x.astype(np.float32),), {})]
        if kind == "axis":
            x = _normal(rng, (n_q, n_k, n_c), 2.0)
            return [((x,), {"axis": 0}), ((x,), {"axis": 1}), ((x,), {"axis": -2})]
        if kind == "inputs_unchanged":
            return [((_normal(rng, (b1, n_q, n_k), 3.0),), {})]
        raise KeyError(kind)

    return make


def _softmax_axis_ignored(x, axis=-1):
    return _stable_softmax(x, axis=-1)


def _softmax_global_max(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_no_keepdims(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis))
    return e / np.sum(e, axis=axis)


_SOFTMAX = Exercise(
    name="softmax",
    arg_names=("x",),
    reference=ref.softmax,
    n_outputs=1,
    output_names=("softmax",),
    cases={
        "random": Case("matches the reference on random input", _softmax_inputs("random")),
        "large": Case("is stable for large scores (|x| up to 1e4, float64 and float32)",
                      _softmax_inputs("large")),
        "axis": Case("respects the `axis` argument", _softmax_inputs("axis")),
        "batch": Case("works with leading batch dimensions", _softmax_inputs("batch")),
        "float32": Case("works in float32 with scores in the hundreds",
                        _softmax_inputs("float32")),
        "inputs_unchanged": Case("does not modify its input",
                                 _softmax_inputs("inputs_unchanged"),
                                 check_inputs_unchanged=True),
    },
    mistakes=(
        Mistake("the `axis` argument is ignored: your softmax always normalises the last axis",
                "pass axis=axis to both the max and the sum (with keepdims=True)",
                _softmax_axis_ignored),
        Mistake("normalised over the wrong axis (axis=0, the query axis, instead of the last)",
                "the default is axis=-1: each row (one query's scores) must sum to 1",
                lambda x, axis=-1: _stable_softmax(x, axis=0)),
        Mistake("normalised over the whole array instead of along the axis",
                "sum along the axis with keepdims=True: e / e.sum(axis=axis, keepdims=True)",
                lambda x, axis=-1: np.exp(x - x.max()) / np.exp(x - x.max()).sum()),
        Mistake("no max subtraction: np.exp overflowed to inf and the division gave NaN",
                "subtract x.max(axis=axis, keepdims=True) before np.exp; softmax is "
                "unchanged by that shift and every exponent becomes ≤ 0",
                _naive_softmax),
        Mistake("subtracted the maximum of the whole array instead of each slice's maximum: "
                "rows far below it underflow to 0/0 = NaN",
                "use x.max(axis=axis, keepdims=True) so that every row keeps an entry equal "
                "to exp(0) = 1",
                _softmax_global_max),
        Mistake("keepdims missing: x.max(axis) / e.sum(axis) broadcast against the wrong axis",
                "use keepdims=True in both the max and the sum",
                _softmax_no_keepdims),
        Mistake("forgot the exponential: divided the scores by their sum",
                "exponentiate first: e = np.exp(x - max); then e / e.sum(...)",
                lambda x, axis=-1: x / x.sum(axis=axis, keepdims=True)),
    ),
    forbidden=frozenset({"softmax", "scaled_dot_product_attention"}),
)


# ---- weighted_sum ---------------------------------------------------------------------------


def _weighted_inputs(batch: bool = False, dtype=np.float64):
    def make(rng):
        (b1, b2), (n_q, n_k, d_v) = _batch_and_sizes(rng, 3)
        lead = (b1, b2) if batch else ()
        weights = ref.softmax(_normal(rng, (*lead, n_q, n_k), 2.0)).astype(dtype)
        V = _normal(rng, (*lead, n_k, d_v), 1.0, dtype)
        return [((weights, V), {})]

    return make


_WEIGHTED = Exercise(
    name="weighted_sum",
    arg_names=("weights", "V"),
    reference=ref.weighted_sum,
    n_outputs=1,
    output_names=("output",),
    cases={
        "random": Case("matches the reference on random input", _weighted_inputs()),
        "batch": Case("works with leading batch dimensions", _weighted_inputs(batch=True)),
        "float32": Case("works in float32", _weighted_inputs(dtype=np.float32)),
        "inputs_unchanged": Case("does not modify its inputs", _weighted_inputs(batch=True),
                                 check_inputs_unchanged=True),
    },
    mistakes=(
        Mistake("multiplied V by the weights (V @ weights) instead of weights @ V",
                "each output row mixes value rows: weights (n_q, n_k) @ V (n_k, d_v)",
                lambda w, V: V @ w),
        Mistake("transposed the weights (weightsᵀ @ V): that mixes by key, not by query",
                "use the weights as they are: weights @ V",
                lambda w, V: np.swapaxes(w, -1, -2) @ V),
        Mistake("np.dot used on batched input: np.dot does not broadcast batch axes like @",
                "use the @ operator or np.matmul",
                lambda w, V: np.dot(w, V)),
        Mistake("element-wise product instead of a matrix product",
                "use weights @ V: output[i] = Σ_j weights[i, j] · V[j]",
                lambda w, V: w * V),
        Mistake("summed the values without the weights",
                "multiply each value row by its weight before summing: weights @ V",
                lambda w, V: np.broadcast_to(V.sum(-2, keepdims=True),
                                             (*w.shape[:-1], V.shape[-1]))),
    ),
    forbidden=frozenset({"weighted_sum", "scaled_dot_product_attention"}),
)


# ---- scaled_dot_product_attention -----------------------------------------------------------


def _sdpa_inputs(batch: bool = False, dtype=np.float64, scale: float = 1.0):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k, d_v) = _batch_and_sizes(rng, 4)
        lead = (b1, b2) if batch else ()
        Q = _normal(rng, (*lead, n_q, d_k), scale, dtype)
        K = _normal(rng, (*lead, n_k, d_k), scale, dtype)
        V = _normal(rng, (*lead, n_k, d_v), 1.0, dtype)
        return [((Q, K, V), {})]

    return make


_SDPA = Exercise(
    name="scaled_dot_product_attention",
    arg_names=("Q", "K", "V"),
    reference=lambda Q, K, V: ref.scaled_dot_product_attention(Q, K, V),
    n_outputs=2,
    output_names=("output", "weights"),
    cases={
        "random": Case("matches the reference on random 2-D input", _sdpa_inputs()),
        "batch": Case("works with leading batch dimensions", _sdpa_inputs(batch=True)),
        "large": Case("is stable for large scores", _sdpa_inputs(scale=40.0)),
        "float32": Case("works in float32", _sdpa_inputs(dtype=np.float32, scale=6.0)),
        "inputs_unchanged": Case("does not modify its inputs", _sdpa_inputs(batch=True),
                                 check_inputs_unchanged=True),
    },
    mistakes=_attention_mistakes(lambda f: f) + (
        Mistake("K was not transposed: Q @ K multiplies (n_q, d_k) by (n_k, d_k)",
                "transpose the keys' last two axes: Q @ np.swapaxes(K, -1, -2)",
                _sdpa_with(transpose=lambda K: K)),
        Mistake("returned only the output, not (output, weights)",
                "return a tuple: return output, weights",
                _sdpa_with(only_output=True)),
    ),
    forbidden=frozenset({"scaled_dot_product_attention", "self_attention", "cross_attention"}),
)


# ---- self_attention and cross_attention ------------------------------------------------------


def _projection_inputs(cross: bool, batch: bool = False, dtype=np.float64):
    def make(rng):
        (b1, _), (n_q, n_k, d_k, d_v, d_model, d_model_z) = _batch_and_sizes(rng, 6)
        lead = (b1,) if batch else ()
        X = _normal(rng, (*lead, n_q, d_model), 1.0, dtype)
        if not cross:
            W = [_normal(rng, (d_model, d), 1.0 / math.sqrt(d_model), dtype)
                 for d in (d_k, d_k, d_v)]
            return [((X, *W), {})]
        Z = _normal(rng, (*lead, n_k, d_model_z), 1.0, dtype)
        W_q = _normal(rng, (d_model, d_k), 1.0 / math.sqrt(d_model), dtype)
        W_k = _normal(rng, (d_model_z, d_k), 1.0 / math.sqrt(d_model_z), dtype)
        W_v = _normal(rng, (d_model_z, d_v), 1.0 / math.sqrt(d_model_z), dtype)
        return [((X, Z, W_q, W_k, W_v), {})]

    return make


def _square_cross_probe(rng):
    """Cross-attention input where X and Z have the same shape, so that a mix-up of the two
    sequences still gives an answer that can be compared."""
    n, d_k, d_v, d_model = _distinct(rng, 4)
    X = _normal(rng, (n, d_model))
    Z = _normal(rng, (n, d_model))
    W_q, W_k = (_normal(rng, (d_model, d_k), 1 / math.sqrt(d_model)) for _ in range(2))
    W_v = _normal(rng, (d_model, d_v), 1 / math.sqrt(d_model))
    return (X, Z, W_q, W_k, W_v), {}


def _self_as_cross(attn):
    """Lift an attention core (Q, K, V) -> (output, weights) to self_attention's signature."""
    def self_attention(X, W_q, W_k, W_v, *args, **kwargs):
        return attn(X @ W_q, X @ W_k, X @ W_v)
    return self_attention


def _cross_as(attn):
    def cross_attention(X, Z, W_q, W_k, W_v, *args, **kwargs):
        return attn(X @ W_q, Z @ W_k, Z @ W_v)
    return cross_attention


_SELF = Exercise(
    name="self_attention",
    arg_names=("X", "W_q", "W_k", "W_v"),
    reference=lambda X, W_q, W_k, W_v: ref.self_attention(X, W_q, W_k, W_v),
    n_outputs=2,
    output_names=("output", "weights"),
    cases={
        "random": Case("matches the reference on random input",
                       _projection_inputs(cross=False)),
        "batch": Case("works with a leading batch dimension",
                      _projection_inputs(cross=False, batch=True)),
        "float32": Case("works in float32", _projection_inputs(cross=False, dtype=np.float32)),
        "inputs_unchanged": Case("does not modify its inputs",
                                 _projection_inputs(cross=False, batch=True),
                                 check_inputs_unchanged=True),
    },
    mistakes=_attention_mistakes(_self_as_cross) + (
        Mistake("scaled by √d_model (the width of X) instead of √d_k",
                "d_k is the width of the projected queries, W_q.shape[1] (Q.shape[-1])",
                lambda X, W_q, W_k, W_v, *a, **k: _sdpa_with(
                    scale_fn=lambda s, *_: s / np.sqrt(X.shape[-1]))(X @ W_q, X @ W_k, X @ W_v)),
        Mistake("W_q and W_k swapped: queries projected with W_k and keys with W_q",
                "Q = X @ W_q, K = X @ W_k, V = X @ W_v",
                lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    X @ W_k, X @ W_q, X @ W_v)),
        Mistake("the values were not projected: V = X instead of X @ W_v",
                "project the values too: V = X @ W_v, so the output has width d_v",
                lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    X @ W_q, X @ W_k, X)),
        Mistake("projected with the transposed matrices (W @ X or X @ W.T)",
                "W_q has shape (d_model, d_k): Q = X @ W_q gives (n, d_k)",
                lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    X @ W_q.T, X @ W_k.T, X @ W_v.T)),
    ),
    forbidden=frozenset({"self_attention", "cross_attention"}),
)

_CROSS = Exercise(
    name="cross_attention",
    arg_names=("X", "Z", "W_q", "W_k", "W_v"),
    reference=lambda X, Z, W_q, W_k, W_v: ref.cross_attention(X, Z, W_q, W_k, W_v),
    n_outputs=2,
    output_names=("output", "weights"),
    cases={
        "random": Case("matches the reference on random input",
                       _projection_inputs(cross=True)),
        "batch": Case("works with a leading batch dimension",
                      _projection_inputs(cross=True, batch=True)),
        "float32": Case("works in float32", _projection_inputs(cross=True, dtype=np.float32)),
        "inputs_unchanged": Case("does not modify its inputs",
                                 _projection_inputs(cross=True, batch=True),
                                 check_inputs_unchanged=True),
    },
    mistakes=_attention_mistakes(_cross_as) + (
        Mistake("keys and values taken from X instead of Z",
                "in cross-attention the queries come from X, the keys and values from Z: "
                "K = Z @ W_k, V = Z @ W_v",
                lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    X @ W_q, X @ W_k, X @ W_v),
                probe=_square_cross_probe),
        Mistake("the values taken from X instead of Z",
                "keys and values come from the same sequence, Z: V = Z @ W_v",
                lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    X @ W_q, Z @ W_k, X @ W_v),
                probe=_square_cross_probe),
        Mistake("the keys taken from X instead of Z",
                "keys and values come from the same sequence, Z: K = Z @ W_k",
                lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    X @ W_q, X @ W_k, Z @ W_v),
                probe=_square_cross_probe),
        Mistake("X and Z swapped: the queries come from Z and the keys and values from X",
                "queries from X (Q = X @ W_q), keys and values from Z",
                lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                    Z @ W_q, X @ W_k, X @ W_v),
                probe=_square_cross_probe),
        Mistake("scaled by √d_model (the width of X or Z) instead of √d_k",
                "d_k is the width of the projected queries, W_q.shape[1] (Q.shape[-1])",
                lambda X, Z, W_q, W_k, W_v, *a, **k: _sdpa_with(
                    scale_fn=lambda s, *_: s / np.sqrt(X.shape[-1]))(X @ W_q, Z @ W_k, Z @ W_v)),
        Mistake("scaled by √d_model_z (the width of Z) instead of √d_k",
                "d_k is the width of the projected queries, W_q.shape[1] (Q.shape[-1])",
                lambda X, Z, W_q, W_k, W_v, *a, **k: _sdpa_with(
                    scale_fn=lambda s, *_: s / np.sqrt(Z.shape[-1]))(X @ W_q, Z @ W_k, Z @ W_v)),
    ),
    forbidden=frozenset({"self_attention", "cross_attention"}),
)

EXERCISES: dict[str, Exercise] = {
    ex.name: ex for ex in (_DOT_PRODUCT, _SCALE, _SOFTMAX, _WEIGHTED, _SDPA, _SELF, _CROSS)
}


# --------------------------------------------------------------------------------------------
# The check itself
# --------------------------------------------------------------------------------------------


def _case_seed(exercise: str, case: str, seed: int | None) -> int:
    base = sum((i + 1) * ord(c) for i, c in enumerate(f"{exercise}/{case}"))
    return base if seed is None else base * 7919 + int(seed)


def _fail(exercise: Exercise, case: Case, body: str) -> CheckFailed:
    return CheckFailed(f"{exercise.name} — {case.description}: FAILED.\n{body}")


def _diagnose(exercise: Exercise, fn: Callable, args, kwargs, learner: Outcome, dtype,
              rng: np.random.Generator) -> Mistake | None:
    """Return the first known mistake whose answer matches the learner's."""
    expected = _quiet_call(exercise.reference, args, kwargs)
    for mistake in exercise.mistakes:
        if mistake.probe is None:
            m_args, m_kwargs, got = args, kwargs, learner
        else:
            m_args, m_kwargs = mistake.probe(rng)
            got = _run(fn, m_args, m_kwargs, exercise.forbidden)
            expected = _quiet_call(exercise.reference, m_args, m_kwargs)
        wrong = _quiet_call(mistake.fn, m_args, m_kwargs)
        if wrong.error is not None and got.error is None:
            continue
        # A "mistake" that agrees with the reference on these inputs proves nothing.
        if _same_outcome(wrong, expected, exercise.n_outputs, dtype):
            continue
        if _same_outcome(got, wrong, exercise.n_outputs, dtype):
            return mistake
    return None


def _side_effects(outcome: Outcome) -> str:
    notes = []
    if outcome.warnings:
        notes.append("Your code raised these warnings: " + "; ".join(outcome.warnings) + ".")
    if outcome.stderr:
        notes.append(f"Your code wrote to stderr: {outcome.stderr[:300]!r}.")
    return ("\n" + "\n".join(notes)) if notes else ""


def _check(exercise_name: str, fn: Callable, case_name: str, seed: int | None = None) -> None:
    exercise = EXERCISES[exercise_name]
    if case_name not in exercise.cases:
        raise ValueError(f"{exercise_name} has no check case {case_name!r}; the cases are "
                         f"{sorted(exercise.cases)}.")
    case = exercise.cases[case_name]
    if not callable(fn):
        raise _fail(exercise, case, f"`{exercise.name}` is not a function (got "
                    f"{type(fn).__name__}). Did you overwrite it with a value?")
    rng = np.random.default_rng(_case_seed(exercise_name, case_name, seed))
    for args, kwargs in case.make(rng):
        _check_one(exercise, case, fn, args, kwargs, rng)
    print(f"✓ {exercise.name}: {case.description}.")


def _signature(args, kwargs, names: Sequence[str]) -> str:
    parts = [f"{name} of shape {a.shape} ({a.dtype})" if isinstance(a, np.ndarray)
             else f"{name}={a!r}" for name, a in zip(names, args, strict=False)]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _check_one(exercise: Exercise, case: Case, fn: Callable, args, kwargs, rng) -> None:
    dtype = next(a.dtype for a in args if isinstance(a, np.ndarray))
    learner = _run(fn, args, kwargs, exercise.forbidden, exercise.arg_names)
    called_with = f"Called with: {_signature(args, kwargs, exercise.arg_names)}."

    if learner.called_reference:
        raise _fail(exercise, case, (
            f"Your function calls the course's reference `{learner.called_reference}` "
            "instead of computing the answer itself. Write it with NumPy operations; the "
            "reference is there for the demos and later notebooks, not for this exercise."))
    if isinstance(learner.error, NotImplementedError):
        raise _fail(exercise, case, (
            f"`{exercise.name}` is not implemented yet: replace `raise "
            "NotImplementedError()` with your code and run its cell again."))

    expected = _quiet_call(exercise.reference, args, kwargs)
    assert expected.error is None, f"reference failed on check input: {expected.error!r}"
    expected_outputs = _as_outputs(expected.value, exercise.n_outputs)
    got_outputs = None if learner.error else _as_outputs(learner.value, exercise.n_outputs)
    correct = got_outputs is not None and all(
        _close(g, e, dtype) for g, e in zip(got_outputs, expected_outputs, strict=True))

    if correct:
        if case.check_inputs_unchanged and learner.mutated:
            raise _fail(exercise, case, (
                f"Your function modified its input in place ({', '.join(learner.mutated)}): "
                "the answer is right, but the caller's array was changed. Avoid in-place "
                "operators such as `x -= ...`, `x /= ...` or `np.exp(x, out=x)` on the "
                "inputs; write `x = x - ...` to make a new array."))
        notes = _side_effects(learner)
        if notes:
            print(f"Note for {exercise.name}:{notes}")
        return

    mistake = _diagnose(exercise, fn, args, kwargs, learner, dtype, rng)
    extra = _side_effects(learner)
    if mistake is not None:
        raise _fail(exercise, case, (
            f"Likely mistake: {mistake.name}.\nHow to fix it: {mistake.fix}.\n"
            f"{called_with}{extra}"))
    if learner.error is not None:
        raise _fail(exercise, case, (
            f"Your function raised {type(learner.error).__name__}: {learner.error}"
            f"{learner.error_where}.\n{called_with}{extra}"))
    if got_outputs is None:
        if exercise.n_outputs > 1:
            body = (f"Expected a tuple of {exercise.n_outputs} arrays "
                    f"({', '.join(exercise.output_names)}), got {type(learner.value).__name__}"
                    + (" — is a `return` statement missing?" if learner.value is None else "."))
        else:
            body = _describe_difference(None, expected_outputs[0], exercise.output_names[0])
        raise _fail(exercise, case, f"{body}\n{called_with}{extra}")
    lines = [
        _describe_difference(g, e, label)
        for g, e, label in zip(got_outputs, expected_outputs, exercise.output_names, strict=True)
        if not _close(g, e, dtype)
    ]
    raise _fail(exercise, case, "\n".join(lines) + f"\n{called_with}{extra}")


def _make_check(name: str) -> Callable:
    def check(fn: Callable, case: str = "random", seed: int | None = None) -> None:
        _check(name, fn, case, seed)

    check.__name__ = f"check_{name}"
    check.__doc__ = (
        f"Check a learner's ``{name}`` on one case; print ``✓ ...`` or raise CheckFailed.\n\n"
        f"Parameters\n----------\nfn : callable\n    The learner's ``{name}``.\n"
        f"case : str\n    One of {sorted(EXERCISES[name].cases)}.\n"
        "seed : int, optional\n    Another seed gives other sizes and values (hidden tests)."
    )
    return check


check_dot_product_scores = _make_check("dot_product_scores")
check_scale_scores = _make_check("scale_scores")
check_softmax = _make_check("softmax")
check_weighted_sum = _make_check("weighted_sum")
check_scaled_dot_product_attention = _make_check("scaled_dot_product_attention")
check_self_attention = _make_check("self_attention")
check_cross_attention = _make_check("cross_attention")
