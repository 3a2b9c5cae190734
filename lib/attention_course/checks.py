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
first differing entry, plus a hint when the difference has a recognisable pattern (swapped
axes, a constant factor, NaN, an integer dtype, an error NumPy raises for batched input).

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of the token
vectors ``X`` / ``Z``.

Rules every check follows:

- Dimensions are always all different (``n_q != n_k != d_k != d_v != d_model`` and the batch
  sizes), so a wrong transpose cannot pass by accident. Only the *probes* that diagnose a
  mistake make some sizes equal on purpose, so that the mistaken code runs at all.
- Warnings raised by learner code and anything it writes to stderr are captured and reported in
  the message: nothing reaches stderr, where nbgrader would score the cell zero.
- A learner function that calls the reference implementation of the function it is meant to
  write (directly, through an alias, a module, ``functools.partial`` or a wrapper) fails with a
  message.
- Failure messages never quote the test cell, so hidden tests stay hidden in feedback.
- Any correct implementation passes: loops returning float64 for float32 input, einsum,
  ``scipy.special.softmax``, a log-sum-exp softmax, a ``list`` ``[output, weights]`` ...
  A known mistake is only named when the learner's answer is wrong *and* equals what that
  mistake gives on the same input (mistakes that agree with the reference there are skipped).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import os
import sys
import sysconfig
import tempfile
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
_REFERENCE_NAMES = frozenset(_REFERENCE_CODES.values())
_REFERENCE_FILE = os.path.normcase(os.path.abspath(ref.__file__))


def _reference_name(code) -> str | None:
    """The reference function ``code`` belongs to, if any.

    Identity of the code object catches aliases, ``import ... as``, ``functools.partial`` and
    wrappers; the file name also catches a reference module that was reloaded.
    """
    name = _REFERENCE_CODES.get(code)
    if name is None and code.co_name in _REFERENCE_NAMES:
        if os.path.normcase(os.path.abspath(code.co_filename)) == _REFERENCE_FILE:
            name = code.co_name
    return name


_PACKAGE_DIR = os.path.normcase(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple(
    sorted(
        {
            os.path.normcase(os.path.abspath(path))
            for key, path in sysconfig.get_paths().items()
            if key in ("stdlib", "platstdlib", "purelib", "platlib")
        }
    )
)


def _is_library_file(filename: str) -> bool:
    path = os.path.normcase(os.path.abspath(filename))
    return (
        path.startswith(_PACKAGE_DIR)
        or path.startswith(_LIBRARY_DIRS)
        or "site-packages" in path
        or "dist-packages" in path
    )


def _learner_frame(tb) -> str:
    """Quote the innermost line of the learner's own code in a traceback (not NumPy's, SciPy's,
    the standard library's or this package's)."""
    for frame in reversed(traceback.extract_tb(tb)):
        if _is_library_file(frame.filename):
            continue
        line = (frame.line or "").strip()
        return f" at the line `{line}`" if line else ""
    return ""


@contextlib.contextmanager
def _capture_fd2(captured: list[str]):
    """Point file descriptor 2 at a temporary file while learner code runs.

    Output written below Python's ``sys.stderr`` (C libraries, subprocesses) would otherwise
    reach the kernel's stderr, which ipykernel forwards to the notebook: nbgrader scores that
    cell zero. What was written is appended to ``captured``.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable descriptor 2 (some embedded interpreters): nothing to capture
        yield
        return
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                captured.append(tmp.read().decode(errors="replace"))
    finally:
        os.close(saved)


def _copy(a):
    return np.array(a, copy=True) if isinstance(a, np.ndarray) else a


def _run(
    fn: Callable,
    args: Sequence,
    kwargs: dict,
    forbidden: frozenset[str],
    arg_names: Sequence[str] = (),
) -> Outcome:
    """Call ``fn`` on copies of the inputs, capturing warnings, stderr and reference calls."""
    copies = [_copy(a) for a in args]
    kw_copies = {k: _copy(v) for k, v in kwargs.items()}
    outcome = Outcome()
    seen_reference: list[str] = []

    def profiler(frame, event, arg):
        if event == "call":
            name = _reference_name(frame.f_code)
            if name is not None and name in forbidden:
                seen_reference.append(name)

    stderr = io.StringIO()
    fd_stderr: list[str] = []
    old_profile = sys.getprofile()
    # Underflow (exp of a very negative number -> 0) is expected in a stable softmax.
    with (
        _capture_fd2(fd_stderr),
        warnings.catch_warnings(record=True) as caught,
        np.errstate(all="warn", under="ignore"),
        contextlib.redirect_stderr(stderr),
    ):
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
    outcome.stderr = (stderr.getvalue() + "".join(fd_stderr)).strip()
    outcome.called_reference = seen_reference[0] if seen_reference else None
    names = list(arg_names)[: len(args)]
    names += [f"argument {i + 1}" for i in range(len(names), len(args))]
    for name, original, copy in zip(names, args, copies, strict=True):
        if isinstance(original, np.ndarray) and not _unchanged(original, copy):
            outcome.mutated.append(name)
    for name, original in kwargs.items():
        if isinstance(original, np.ndarray) and not _unchanged(original, kw_copies[name]):
            outcome.mutated.append(name)
    return outcome


def _unchanged(original: np.ndarray, copy) -> bool:
    return (
        isinstance(copy, np.ndarray)
        and copy.dtype == original.dtype
        and np.array_equal(original, copy, equal_nan=True)
    )


def _quiet_call(fn: Callable, args: Sequence, kwargs: dict) -> Outcome:
    """Call a reference or mistake function, silencing its warnings (they are expected)."""
    outcome = Outcome()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            outcome.value = fn(*[_copy(a) for a in args], **kwargs)
        except Exception as exc:  # noqa: BLE001
            outcome.error = exc
    return outcome


def _signature_problem(fn: Callable, args: Sequence, kwargs: dict) -> str | None:
    """Why ``fn(*args, **kwargs)`` cannot bind to ``fn``'s parameters, or None if it can."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: just call them
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"your function takes {_describe_parameters(signature)} (Python says: {exc})"
    return None


def _describe_parameters(signature: inspect.Signature) -> str:
    params = list(signature.parameters)
    if not params:
        return "no parameters"
    return f"the parameters ({', '.join(str(p) for p in signature.parameters.values())})"


# --------------------------------------------------------------------------------------------
# Comparing answers
# --------------------------------------------------------------------------------------------


def _tolerances(dtype) -> tuple[float, float]:
    if np.dtype(dtype) == np.float32:
        return 2e-4, 1e-5
    if np.dtype(dtype) == np.float16:
        return 1e-2, 1e-3
    return 1e-7, 1e-10


def _numeric(arr: np.ndarray) -> bool:
    return arr.dtype != object and (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    )


def _as_array(value) -> np.ndarray | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged lists, odd objects
        return None


def _exp_slack(dtype, magnitude: float) -> float:
    """Extra relative tolerance for outputs of np.exp: an exponent of size ``magnitude`` is only
    known to about one unit in the last place, eps * magnitude, and exp turns that absolute
    error into a relative one. A correct log-sum-exp softmax of float32 scores near 1e4 is off
    by ~1e-3 (exp(x - lse) with lse rounded); float64 scores never need this."""
    return 2.0 * float(np.finfo(dtype).eps) * magnitude if magnitude else 0.0


def _close(got, expected, dtype, slack: float = 0.0) -> bool:
    got = _as_array(got)
    if got is None or got.shape != np.shape(expected) or not _numeric(got):
        return False
    rtol, atol = _tolerances(dtype)
    rtol += slack
    scale = float(np.nanmax(np.abs(expected))) if np.size(expected) else 1.0
    with np.errstate(all="ignore"):
        return bool(
            np.allclose(got, expected, rtol=rtol, atol=atol * max(scale, 1.0), equal_nan=True)
        )


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


def _shape_text(shape, layout: str) -> str:
    return f"{tuple(shape)}" + (f" = {layout}" if layout else "")


def _shape_hint(got: tuple, expected: tuple) -> str:
    """A sentence on how a wrong shape relates to the expected one, or ''."""
    if len(got) == len(expected) >= 2 and got == (*expected[:-2], expected[-1], expected[-2]):
        return (
            " The last two axes are swapped: the rows of your answer should be the "
            "columns. Check the order of the operands of your matrix products."
        )
    if len(got) == len(expected) > 2 and got == expected[::-1]:
        return (
            " Every axis is reversed, which is what .T / np.transpose do to an array with "
            "batch dimensions: use np.swapaxes(a, -1, -2) to swap only the last two."
        )
    if len(got) > len(expected):
        return (
            " Your answer has more dimensions than expected: np.dot, np.inner and "
            "np.tensordot pair every batch of one array with every batch of the other. "
            "Use @ (np.matmul), which treats the leading axes as batch axes."
        )
    if len(got) < len(expected):
        return (
            " Your answer has fewer dimensions than expected: did a sum or an index drop "
            "an axis, or does your code ignore the leading batch dimensions?"
        )
    if got[:-2] != expected[:-2]:
        return " The batch dimensions (all but the last two) differ."
    return ""


def _pattern_hint(arr: np.ndarray, expected: np.ndarray) -> str:
    """A sentence on a recognisable pattern in wrong values of the right shape, or ''."""
    if np.isnan(arr).any() and not np.isnan(expected).any():
        return (
            " Your answer contains NaN: typically np.exp overflowed to inf and inf / inf "
            "gave NaN, or a whole row underflowed to 0 and 0 / 0 gave NaN."
        )
    if np.isinf(arr).any() and not np.isinf(expected).any():
        return " Your answer contains inf: a value overflowed (np.exp of a large number?)."
    if np.issubdtype(arr.dtype, np.integer):
        return (
            f" Your answer has the integer dtype {arr.dtype}, so the fractions were cut "
            "off: build the result as a float array (np.zeros(shape) is float; do not "
            "pass dtype=int)."
        )
    finite = np.isfinite(expected) & np.isfinite(arr)
    big = finite & (np.abs(expected) > 1e-6 * max(float(np.max(np.abs(expected))), 1e-300))
    if big.sum() >= 2:
        ratio = arr[big].astype(np.float64) / expected[big].astype(np.float64)
        middle = float(np.median(ratio))
        if middle != 0 and np.allclose(ratio, middle, rtol=1e-5, atol=0):
            return (
                f" Every entry is {middle:.6g} times the expected one: a constant factor "
                "is off (a scale, a square root, a division?)."
            )
        shift = arr[finite].astype(np.float64) - expected[finite].astype(np.float64)
        spread = max(float(np.max(np.abs(expected[finite]))), 1.0)
        if shift.size >= 2 and np.allclose(shift, shift[0], rtol=0, atol=1e-6 * spread):
            return f" Every entry is off by the same amount, {float(shift[0]):.6g}."
    return ""


def _describe_difference(
    got, expected: np.ndarray, label: str, layout: str = "", dtype=None, slack: float = 0.0
) -> str:
    """Expected vs got: type, shape, dtype, first differing entry, and a hint if one fits."""
    want = f"an array of shape {_shape_text(expected.shape, layout)} and dtype {expected.dtype}"
    if got is None:
        return f"{label}: expected {want}, got None — is a `return` statement missing?"
    if isinstance(got, (tuple, list)) and got and all(isinstance(g, np.ndarray) for g in got):
        return (
            f"{label}: expected {want}, got a {type(got).__name__} of {len(got)} arrays "
            f"— return only the {label}."
        )
    arr = _as_array(got)
    kind = "" if isinstance(got, np.ndarray) else f" (a {type(got).__name__}, not a NumPy array)"
    if arr is None or not (arr.dtype != object and np.issubdtype(arr.dtype, np.number)):
        dtype = "" if arr is None else f" of dtype {arr.dtype}"
        return f"{label}: expected {want}, got {type(got).__name__}{dtype}."
    if arr.shape != expected.shape:
        return (
            f"{label}: expected {want}, got shape {arr.shape} and dtype {arr.dtype}{kind}."
            + _shape_hint(arr.shape, expected.shape)
        )
    with np.errstate(all="ignore"):
        rtol, atol = _tolerances(expected.dtype if dtype is None else dtype)
        rtol += slack
        scale = max(float(np.max(np.abs(expected))), 1.0) if expected.size else 1.0
        bad = ~np.isclose(arr, expected, rtol=rtol, atol=atol * scale, equal_nan=True)
        dtype = (
            f"and dtype {arr.dtype}"
            if arr.dtype == expected.dtype
            else f"dtype {arr.dtype} (the reference gives {expected.dtype})"
        )
        text = (
            f"{label}: right shape {_shape_text(arr.shape, layout)} {dtype}{kind}, but wrong values"
        )
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            text += (
                f": the first differing entry is at index {index}, expected "
                f"{float(expected[index]):.6g}, got {float(arr[index]):.6g} "
                f"({int(bad.sum())} of {bad.size} entries differ)."
            )
        else:
            text += "."
        return text + _pattern_hint(arr, expected)


# Sentences added to "Your function raised ..." when NumPy's error message has a known cause.
_ERROR_HINTS = (
    (
        ("matmul: Input operand", "not aligned", "core dimension"),
        "In A @ B the last axis of A must have the size of the second-to-last axis of B: compare "
        "each product with the shapes below. To transpose keys, use np.swapaxes(K, -1, -2): K.T "
        "reverses all axes, batch axes included.",
    ),
    (
        ("axes don't match array",),
        "An explicit axes tuple such as K.transpose(0, 2, 1) fits only one number of dimensions; "
        "np.swapaxes(K, -1, -2) swaps the last two axes whatever the batch dimensions.",
    ),
    (
        ("shape-mismatch for sum",),
        "np.tensordot(a, b, axes=1) contracts the last axis of a with the *first* axis of b, which "
        "for batched input is a batch axis: use a @ b (np.matmul), which treats the leading axes "
        "as batch axes.",
    ),
    (
        ("could not be broadcast",),
        "Two shapes do not broadcast. A reduction such as x.max(axis=...) or x.sum(axis=...) "
        "drops that axis unless you pass keepdims=True.",
    ),
    (
        ("values to unpack", "too many indices", "out of bounds for axis"),
        "Your code assumes a fixed number of dimensions, but the input can have leading batch "
        "dimensions: read sizes from the end (Q.shape[-1]) and index from the end (x[..., i, :]).",
    ),
)


def _error_hint(error: BaseException) -> str:
    text = str(error)
    for patterns, hint in _ERROR_HINTS:
        if any(p in text for p in patterns):
            return f"\nHint: {hint}"
    return ""


# --------------------------------------------------------------------------------------------
# Exercises, cases and mistakes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation, with its name and how to fix it.

    ``fn`` takes the same arguments as the learner's function. If ``probe`` is given, the
    diagnosis runs both on the inputs it builds (from a generator) instead of the case's own
    inputs — for mistakes that only give a comparable answer on specially shaped input (for
    example ``Q @ K`` without a transpose, which needs ``n_k == d_k`` to run at all).
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
    signature: str = ""
    arg_layouts: tuple[str, ...] = ()
    output_layouts: tuple[str, ...] = ()
    # Largest magnitude the function exponentiates, from its arguments (see _exp_slack).
    exp_magnitude: Callable[..., float] | None = None


def _distinct(rng: np.random.Generator, count: int, low: int = 2, high: int = 14) -> list[int]:
    """``count`` different sizes, so that no two dimensions can be confused."""
    return [int(v) for v in rng.choice(np.arange(low, high), size=count, replace=False)]


def _normal(rng, shape, scale=1.0, dtype=np.float64):
    return (rng.standard_normal(shape) * scale).astype(dtype)


_BATCH_SIZES = np.arange(2, 6)  # small batches keep a learner's Python loops fast
_MATRIX_SIZES = np.arange(2, 14)


def _is_square(n: int) -> bool:
    return math.isqrt(n) ** 2 == n


def _batch_and_sizes(rng, n_sizes: int, d_k_at: int | None = None):
    """Two batch sizes and ``n_sizes`` matrix sizes, all different from each other.

    ``sizes[d_k_at]`` is never a perfect square, so that int(np.sqrt(d_k)) is always wrong.
    """
    b1, b2 = (int(v) for v in rng.choice(_BATCH_SIZES, size=2, replace=False))
    free = np.setdiff1d(_MATRIX_SIZES, (b1, b2))
    sizes = [int(v) for v in rng.choice(free, size=n_sizes, replace=False)]
    if d_k_at is not None and _is_square(sizes[d_k_at]):
        other = next(i for i, v in enumerate(sizes) if not _is_square(v))
        sizes[d_k_at], sizes[other] = sizes[other], sizes[d_k_at]
    return (b1, b2), sizes


def _row_scales(rng, n: int) -> np.ndarray:
    """(n, 1) factors from 0.1 to 1.5 in random order: rows of very different magnitudes."""
    return rng.permutation(np.geomspace(0.1, 1.5, n))[:, None]


def _adversarial(scores) -> bool:
    """Scores that break an unstable softmax: some above 800 (np.exp overflows float64 at
    ~709), and a row whose maximum lies more than 800 below the largest score (subtracting one
    global maximum underflows that whole row to 0 / 0)."""
    s = np.asarray(scores, dtype=np.float64)
    top = float(s.max())
    return top > 800 and top - float(s.max(axis=-1).min()) > 800


def _redraw_until_adversarial(make, scores_of):
    """Draw ``make``'s inputs again (from the same generator, so still deterministic) until
    their scores are adversarial; give up after 50 draws."""

    def make_adversarial(rng):
        for _ in range(50):
            calls = make(rng)
            if all(_adversarial(scores_of(*args)) for args, _ in calls):
                break
        return calls

    return make_adversarial


# ---- mistakes shared by several exercises ---------------------------------------------------


def _naive_softmax(x, axis=-1):
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def _stable_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _global_max_softmax(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / e.sum(axis=axis, keepdims=True)


def _whole_array_softmax(x, axis=-1):
    e = np.exp(x - np.max(x))
    return e / e.sum()


def _sdpa_with(
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
            scores = scale_fn(scores, Q, K, V) if scale_fn else scores / np.sqrt(Q.shape[-1])
        weights = softmax_fn(scores) if softmax_fn else _stable_softmax(scores)
        if scale_after_softmax:
            weights = weights / np.sqrt(Q.shape[-1])
        output = weights @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
        if only_output:
            return output
        if return_scores:
            return output, scores
        return (weights, output) if swap else (output, weights)

    return attention


_SCALE_MISTAKES = (
    (
        "no scaling: the scores were not divided by √d_k",
        "divide the scores by np.sqrt(d_k), where d_k = Q.shape[-1]",
        lambda s, Q, K, V: s,
    ),
    (
        "scaled by d_k instead of √d_k (or both Q and K were divided by √d_k)",
        "divide the scores once by np.sqrt(d_k), not by d_k: the standard deviation of q·k "
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
        "divide the scores by np.sqrt(d_k); multiplying makes softmax saturate even more",
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

_TRANSPOSE_FIX = (
    "use np.swapaxes(K, -1, -2) (or K.swapaxes(-1, -2), or "
    "np.einsum('...qd,...kd->...qk', Q, K)): it swaps only the last two axes; "
    "K.T and np.transpose(K) reverse *all* axes, including the batch axes"
)

_DOT_NAME = (
    "np.dot (or np.inner / np.tensordot) used on batched input: it pairs every batch "
    "of one array with every batch of the other instead of broadcasting them like @"
)
_DOT_FIX = "use the @ operator or np.matmul, which treat leading axes as batch axes"


def _attention_mistakes(
    wrap: Callable[[Callable], Callable], one_sequence: bool = False
) -> tuple[Mistake, ...]:
    """Mistakes in the attention core, lifted by ``wrap`` to the exercise's own signature.

    With ``one_sequence`` (self-attention, where n_q = n_k = n) the two mistakes "scaled by √n_q"
    and "scaled by √n_k" are one: "scaled by √n".
    """
    scale_mistakes = _SCALE_MISTAKES
    if one_sequence:
        scale_mistakes = tuple(m for m in _SCALE_MISTAKES if "√n_" not in m[0]) + (
            (
                "scaled by √n (the length of the sequence, X.shape[-2]) instead of √d_k",
                "d_k is the width of the projected queries and keys, W_q.shape[1] (Q.shape[-1]), "
                "not the number of tokens",
                lambda s, Q, K, V: s / np.sqrt(K.shape[-2]),
            ),
        )
    mistakes = [
        Mistake(name, fix, wrap(_sdpa_with(scale_fn=fn))) for name, fix, fn in scale_mistakes
    ]
    mistakes += [
        Mistake(
            "the weights were divided by √d_k after the softmax instead of the scores before it",
            "scale the scores first, then take the softmax: "
            "softmax(Q @ Kᵀ / np.sqrt(d_k)); the weights must sum to 1",
            wrap(_sdpa_with(scale_after_softmax=True)),
        ),
        Mistake(
            "softmax over the wrong axis: you normalised over the query axis (axis=-2 or 0) "
            "instead of the key axis (axis=-1)",
            "normalise each query's row of scores: softmax(scores, axis=-1), so that "
            "weights.sum(axis=-1) is all ones",
            wrap(_sdpa_with(softmax_fn=lambda s: _stable_softmax(s, axis=-2))),
        ),
        Mistake(
            "softmax normalised over the whole array instead of each row",
            "use keepdims sums along the last axis: e / e.sum(axis=-1, keepdims=True)",
            wrap(_sdpa_with(softmax_fn=_whole_array_softmax)),
        ),
        Mistake(
            "unstable softmax: the maximum was not subtracted before np.exp, which "
            "overflowed to inf and gave NaN",
            "subtract scores.max(axis=-1, keepdims=True) before exponentiating; "
            "softmax is unchanged by the shift",
            wrap(_sdpa_with(softmax_fn=_naive_softmax)),
        ),
        Mistake(
            "softmax subtracted the maximum of the whole array instead of each row's "
            "maximum: rows far below it underflow to 0 / 0 = NaN",
            "subtract scores.max(axis=-1, keepdims=True), so that every row keeps an entry "
            "exp(0) = 1",
            wrap(_sdpa_with(softmax_fn=_global_max_softmax)),
        ),
        Mistake(
            "weights and output returned in the wrong order",
            "return (output, weights): the output (…, n_q, d_v) first, then the "
            "weights (…, n_q, n_k)",
            wrap(_sdpa_with(swap=True)),
        ),
        Mistake(
            "returned the scores (before the softmax) instead of the attention weights",
            "return the weights softmax(scores), whose rows sum to 1, next to the output",
            wrap(_sdpa_with(return_scores=True)),
        ),
        Mistake(
            "returned only the output, not (output, weights)",
            "return a tuple: return output, weights",
            wrap(_sdpa_with(only_output=True)),
        ),
        Mistake(
            "K.T used on batched input: .T reverses all axes, batch axes included",
            _TRANSPOSE_FIX,
            wrap(_sdpa_with(transpose=lambda K: K.T)),
        ),
        Mistake(_DOT_NAME, _DOT_FIX, wrap(lambda Q, K, V, *a, **k: _sdpa_dot(Q, K, V))),
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


def _square_keys_probe(rng):
    """Q (n_q, d_k) and K (d_k, d_k): ``Q @ K`` without a transpose runs on this input."""
    n_q, d_k = _distinct(rng, 2)
    return (_normal(rng, (n_q, d_k)), _normal(rng, (d_k, d_k))), {}


def _same_count_probe(rng):
    """Q and K with as many rows (n_q == n_k), so that row-wise products run."""
    n, d_k = _distinct(rng, 2)
    return (_normal(rng, (n, d_k)), _normal(rng, (n, d_k))), {}


_DOT_PRODUCT = Exercise(
    name="dot_product_scores",
    arg_names=("Q", "K"),
    reference=ref.dot_product_scores,
    n_outputs=1,
    output_names=("scores",),
    signature="dot_product_scores(Q, K)",
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)"),
    output_layouts=("(..., n_q, n_k)",),
    cases={
        "random": Case("matches the reference on random 2-D input", _scores_inputs()),
        "batch": Case("works with leading batch dimensions", _scores_inputs(batch=True)),
        "float32": Case("works in float32", _scores_inputs(dtype=np.float32, scale=10.0)),
        "inputs_unchanged": Case(
            "does not modify its inputs", _scores_inputs(batch=True), check_inputs_unchanged=True
        ),
    },
    mistakes=(
        Mistake(
            "computed K Qᵀ instead of Q Kᵀ: the result is transposed, (n_k, n_q)",
            "put the queries first: scores[i, j] = Q[i] · K[j], i.e. Q @ Kᵀ",
            lambda Q, K: K @ np.swapaxes(Q, -1, -2),
        ),
        Mistake(
            "K.T used on batched input: .T reverses all axes, batch axes included",
            _TRANSPOSE_FIX,
            lambda Q, K: Q @ K.T,
        ),
        Mistake(
            "np.dot(Q, K.T) used on batched input: np.dot does not broadcast batch axes, "
            "and .T reverses all axes",
            "use Q @ np.swapaxes(K, -1, -2): @ treats leading axes as batch axes",
            lambda Q, K: np.dot(Q, K.T),
        ),
        Mistake(_DOT_NAME, _DOT_FIX, lambda Q, K: np.dot(Q, np.swapaxes(K, -1, -2))),
        Mistake(
            "K was not transposed: Q @ K multiplies (n_q, d_k) by (n_k, d_k)",
            "transpose the keys' last two axes: Q @ np.swapaxes(K, -1, -2)",
            lambda Q, K: Q @ K,
            probe=_square_keys_probe,
        ),
        Mistake(
            "computed Qᵀ K, a (d_k, d_k) matrix, instead of Q Kᵀ, (n_q, n_k)",
            "transpose the keys, not the queries: Q @ np.swapaxes(K, -1, -2)",
            lambda Q, K: np.swapaxes(Q, -1, -2) @ K,
            probe=_same_count_probe,
        ),
        Mistake(
            "element-wise product (Q * K).sum(-1): that pairs query i with key i only",
            "each score pairs *every* query with *every* key: Q @ Kᵀ gives (n_q, n_k)",
            lambda Q, K: (Q * K).sum(-1),
            probe=_same_count_probe,
        ),
    ),
    forbidden=frozenset(
        {"dot_product_scores", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
)


# ---- scale_scores ---------------------------------------------------------------------------


def _scale_inputs(batch: bool = False, dtype=np.float64):
    def make(rng):
        (b1, b2), (n_q, n_k) = _batch_and_sizes(rng, 2)
        # Keys wider than the score matrix, as in real models: d_k differs from every size.
        d_k = int(rng.choice([d for d in range(16, 65) if not _is_square(d)]))
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
    signature="scale_scores(scores, d_k)",
    arg_layouts=("(..., n_q, n_k)", ""),
    output_layouts=("(..., n_q, n_k)",),
    cases={
        "random": Case("matches the reference on random input", _scale_inputs()),
        "batch": Case("works with leading batch dimensions", _scale_inputs(batch=True)),
        "float32": Case("works in float32", _scale_inputs(dtype=np.float32)),
        "inputs_unchanged": Case(
            "does not modify its inputs", _scale_inputs(batch=True), check_inputs_unchanged=True
        ),
    },
    mistakes=(
        Mistake(
            "scaled by d_k instead of √d_k",
            "divide by np.sqrt(d_k): the standard deviation of q·k grows like √d_k, "
            "its variance like d_k",
            lambda s, d_k: s / d_k,
        ),
        Mistake(
            "multiplied by √d_k instead of dividing",
            "return scores / np.sqrt(d_k)",
            lambda s, d_k: s * np.sqrt(d_k),
        ),
        Mistake(
            "wrote d_k ** 1/2 (or d_k ** -1/2), which Python reads as (d_k ** 1) / 2: "
            "** binds tighter than /",
            "put the exponent in parentheses, d_k ** (1/2), or write d_k ** 0.5 or np.sqrt(d_k)",
            lambda s, d_k: s / d_k**1 / 2,
        ),
        Mistake(
            "√d_k rounded to a whole number (int(np.sqrt(d_k)) or math.isqrt(d_k))",
            "keep the square root as a float: np.sqrt(d_k) or math.sqrt(d_k), without int()",
            lambda s, d_k: s / int(np.sqrt(d_k)),
        ),
        Mistake(
            "floor division: scores // np.sqrt(d_k) rounds every score down",
            "use true division: scores / np.sqrt(d_k)",
            lambda s, d_k: s // np.sqrt(d_k),
        ),
        Mistake(
            "scaled by √n_k (the number of keys, scores.shape[-1]) instead of √d_k",
            "use the d_k argument: it is the query/key width, which the score matrix does not know",
            lambda s, d_k: s / np.sqrt(s.shape[-1]),
        ),
        Mistake(
            "scaled by √n_q (scores.shape[-2]) instead of √d_k",
            "use the d_k argument, not a dimension of the score matrix",
            lambda s, d_k: s / np.sqrt(s.shape[-2]),
        ),
        Mistake(
            "divided by d_k² instead of √d_k",
            "divide once by np.sqrt(d_k)",
            lambda s, d_k: s / d_k**2,
        ),
        Mistake("returned the scores unscaled", "return scores / np.sqrt(d_k)", lambda s, d_k: s),
    ),
    forbidden=frozenset(
        {"scale_scores", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
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
            for _ in range(50):
                offsets = rng.uniform(-9000, 9000, size=(n_q, 1))
                x = np.clip(offsets + _normal(rng, (n_q, n_k), 1000.0), -1e4, 1e4)
                if _adversarial(x):
                    break
            return [((x,), {}), ((x.astype(np.float32),), {})]
        if kind == "axis":
            x = _normal(rng, (n_q, n_k, n_c), 2.0)
            return [((x,), {"axis": 0}), ((x,), {"axis": 1}), ((x,), {"axis": -2})]
        if kind == "inputs_unchanged":
            return [((_normal(rng, (b1, n_q, n_k), 3.0),), {})]
        raise KeyError(kind)

    return make


def _square_scores_probe(rng):
    """A square (n, n) input: a softmax without keepdims broadcasts wrongly but still runs."""
    (n,) = _distinct(rng, 1, 3)
    return (_normal(rng, (n, n), 3.0),), {}


def _softmax_axis_ignored(x, axis=-1):
    return _stable_softmax(x, axis=-1)


def _softmax_no_keepdims(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis))
    return e / np.sum(e, axis=axis)


def _softmax_no_keepdims_in_sum(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis)


def _softmax_no_keepdims_in_max(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_shift_without_exp(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _softmax_shift(shift):
    def softmax(x, axis=-1):
        e = np.exp(x - shift(x, axis))
        return e / e.sum(axis=axis, keepdims=True)

    return softmax


_SOFTMAX = Exercise(
    name="softmax",
    arg_names=("x",),
    reference=ref.softmax,
    n_outputs=1,
    output_names=("softmax",),
    signature="softmax(x, axis=-1)",
    exp_magnitude=lambda x, axis=-1: float(np.max(np.abs(x))),
    arg_layouts=("",),
    output_layouts=("",),
    cases={
        "random": Case("matches the reference on random input", _softmax_inputs("random")),
        "large": Case(
            "is stable for large scores (|x| up to 1e4, float64 and float32)",
            _softmax_inputs("large"),
        ),
        "axis": Case("respects the `axis` argument", _softmax_inputs("axis")),
        "batch": Case("works with leading batch dimensions", _softmax_inputs("batch")),
        "float32": Case("works in float32 with scores in the hundreds", _softmax_inputs("float32")),
        "inputs_unchanged": Case(
            "does not modify its input",
            _softmax_inputs("inputs_unchanged"),
            check_inputs_unchanged=True,
        ),
    },
    mistakes=(
        Mistake(
            "the `axis` argument is ignored: your softmax always normalises the last axis",
            "pass axis=axis to both the max and the sum (with keepdims=True)",
            _softmax_axis_ignored,
        ),
        Mistake(
            "softmax over the wrong axis: you normalised over the query axis (axis 0) instead "
            "of the axis asked for (by default the last one, the key axis)",
            "use the `axis` argument, whose default -1 makes each row (one query's "
            "scores) sum to 1",
            lambda x, axis=-1: _stable_softmax(x, axis=0),
        ),
        Mistake(
            "normalised over the whole array instead of along the axis",
            "sum along the axis with keepdims=True: e / e.sum(axis=axis, keepdims=True)",
            _whole_array_softmax,
        ),
        Mistake(
            "no max subtraction: np.exp overflowed to inf and the division gave NaN",
            "subtract x.max(axis=axis, keepdims=True) before np.exp; softmax is "
            "unchanged by that shift and every exponent becomes ≤ 0",
            _naive_softmax,
        ),
        Mistake(
            "subtracted the maximum of the whole array instead of each slice's maximum: "
            "rows far below it underflow to 0/0 = NaN",
            "use x.max(axis=axis, keepdims=True) so that every row keeps an entry equal "
            "to exp(0) = 1",
            _global_max_softmax,
        ),
        Mistake(
            "subtracted the mean instead of the maximum: entries far above the mean still "
            "overflow np.exp",
            "subtract x.max(axis=axis, keepdims=True): then every exponent is ≤ 0",
            _softmax_shift(lambda x, axis: x.mean(axis=axis, keepdims=True)),
        ),
        Mistake(
            "subtracted the minimum instead of the maximum: every exponent is ≥ 0, so "
            "np.exp overflows",
            "subtract x.max(axis=axis, keepdims=True): then every exponent is ≤ 0",
            _softmax_shift(lambda x, axis: x.min(axis=axis, keepdims=True)),
        ),
        Mistake(
            "forgot the exponential: divided the scores by their sum",
            "exponentiate first: e = np.exp(x - max); then e / e.sum(...)",
            lambda x, axis=-1: x / x.sum(axis=axis, keepdims=True),
        ),
        Mistake(
            "forgot the exponential: divided the shifted scores x - max by their sum",
            "exponentiate the shifted scores: e = np.exp(x - max); then e / e.sum(...)",
            _softmax_shift_without_exp,
        ),
        Mistake(
            "returned the log-softmax x - logsumexp(x), not the probabilities",
            "exponentiate it: np.exp(x - logsumexp(x, axis=axis, keepdims=True))",
            lambda x, axis=-1: np.log(_stable_softmax(x, axis=axis)),
        ),
        Mistake(
            "divided by the maximum of the exponentials instead of their sum",
            "normalise with the sum: e / e.sum(axis=axis, keepdims=True)",
            lambda x, axis=-1: np.exp(x - x.max(axis=axis, keepdims=True)),
        ),
        Mistake(
            "keepdims missing: x.max(axis) / e.sum(axis) broadcast against the wrong axis",
            "use keepdims=True in both the max and the sum",
            _softmax_no_keepdims,
            probe=_square_scores_probe,
        ),
        Mistake(
            "keepdims missing in the sum: e.sum(axis) lost its axis, so each entry is "
            "divided by another row's sum",
            "e / e.sum(axis=axis, keepdims=True): keepdims keeps the summed axis (size 1) "
            "so that it broadcasts along the right axis",
            _softmax_no_keepdims_in_sum,
            probe=_square_scores_probe,
        ),
        Mistake(
            "keepdims missing in the max: x.max(axis) lost its axis, so each entry is "
            "shifted by another row's maximum",
            "x - x.max(axis=axis, keepdims=True): keepdims keeps the reduced axis (size 1) "
            "so that it broadcasts along the right axis",
            _softmax_no_keepdims_in_max,
            probe=_square_scores_probe,
        ),
    ),
    forbidden=frozenset(
        {"softmax", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
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


def _square_weighted_probe(rng):
    """n_q == n_k == d_v, so that every mix-up of the two operands still runs."""
    (n,) = _distinct(rng, 1, 3)
    return (ref.softmax(_normal(rng, (n, n), 2.0)), _normal(rng, (n, n))), {}


_WEIGHTED = Exercise(
    name="weighted_sum",
    arg_names=("weights", "V"),
    reference=ref.weighted_sum,
    n_outputs=1,
    output_names=("output",),
    signature="weighted_sum(weights, V)",
    arg_layouts=("(..., n_q, n_k)", "(..., n_k, d_v)"),
    output_layouts=("(..., n_q, d_v)",),
    cases={
        "random": Case("matches the reference on random input", _weighted_inputs()),
        "batch": Case("works with leading batch dimensions", _weighted_inputs(batch=True)),
        "float32": Case("works in float32", _weighted_inputs(dtype=np.float32)),
        "inputs_unchanged": Case(
            "does not modify its inputs", _weighted_inputs(batch=True), check_inputs_unchanged=True
        ),
    },
    mistakes=(
        Mistake(_DOT_NAME, _DOT_FIX, lambda w, V: np.dot(w, V)),
        Mistake(
            "summed the values without the weights",
            "multiply each value row by its weight before summing: weights @ V",
            lambda w, V: np.broadcast_to(V.sum(-2, keepdims=True), (*w.shape[:-1], V.shape[-1])),
        ),
        Mistake(
            "summed over the query axis instead of the key axis: the result has one row per key",
            "output[i] = Σ_j weights[i, j] · V[j]: sum over j, the key axis, i.e. weights @ V",
            lambda w, V: (w[..., :, :, None] * V[..., None, :, :]).sum(axis=-3),
        ),
        Mistake(
            "multiplied V by the weights (V @ weights) instead of weights @ V",
            "each output row mixes value rows: weights (n_q, n_k) @ V (n_k, d_v)",
            lambda w, V: V @ w,
            probe=_square_weighted_probe,
        ),
        Mistake(
            "transposed the weights (weightsᵀ @ V): that mixes by key, not by query",
            "use the weights as they are: weights @ V",
            lambda w, V: np.swapaxes(w, -1, -2) @ V,
            probe=_square_weighted_probe,
        ),
        Mistake(
            "element-wise product instead of a matrix product",
            "use weights @ V: output[i] = Σ_j weights[i, j] · V[j]",
            lambda w, V: w * V,
            probe=_square_weighted_probe,
        ),
    ),
    forbidden=frozenset(
        {"weighted_sum", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
)


# ---- scaled_dot_product_attention -----------------------------------------------------------


def _sdpa_inputs(batch: bool = False, dtype=np.float64, scale: float = 1.0, large: bool = False):
    def make(rng):
        (b1, b2), (n_q, n_k, d_k, d_v) = _batch_and_sizes(rng, 4, d_k_at=2)
        lead = (b1, b2) if batch else ()
        Q = _normal(rng, (*lead, n_q, d_k), scale, dtype)
        if large:
            Q = (Q * _row_scales(rng, n_q)).astype(dtype)
        K = _normal(rng, (*lead, n_k, d_k), scale, dtype)
        V = _normal(rng, (*lead, n_k, d_v), 1.0, dtype)
        return [((Q, K, V), {})]

    if large:
        return _redraw_until_adversarial(
            make, lambda Q, K, V: Q @ np.swapaxes(K, -1, -2) / math.sqrt(Q.shape[-1])
        )
    return make


def _square_keys_sdpa_probe(rng):
    """n_k == d_k, so that ``Q @ K`` without a transpose runs."""
    n_q, d_k, d_v = _distinct(rng, 3)
    return (_normal(rng, (n_q, d_k)), _normal(rng, (d_k, d_k)), _normal(rng, (d_k, d_v))), {}


_SDPA = Exercise(
    name="scaled_dot_product_attention",
    arg_names=("Q", "K", "V"),
    reference=lambda Q, K, V: ref.scaled_dot_product_attention(Q, K, V),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="scaled_dot_product_attention(Q, K, V)",
    exp_magnitude=lambda Q, K, V: float(
        np.max(np.abs(Q @ np.swapaxes(K, -1, -2))) / math.sqrt(Q.shape[-1])
    ),
    arg_layouts=("(..., n_q, d_k)", "(..., n_k, d_k)", "(..., n_k, d_v)"),
    output_layouts=("(..., n_q, d_v)", "(..., n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random 2-D input", _sdpa_inputs()),
        "batch": Case("works with leading batch dimensions", _sdpa_inputs(batch=True)),
        "large": Case("is stable for large scores", _sdpa_inputs(scale=40.0, large=True)),
        "float32": Case("works in float32", _sdpa_inputs(dtype=np.float32, scale=6.0)),
        "inputs_unchanged": Case(
            "does not modify its inputs", _sdpa_inputs(batch=True), check_inputs_unchanged=True
        ),
    },
    mistakes=_attention_mistakes(lambda f: f)
    + (
        Mistake(
            "K was not transposed: Q @ K multiplies (n_q, d_k) by (n_k, d_k)",
            "transpose the keys' last two axes: Q @ np.swapaxes(K, -1, -2)",
            _sdpa_with(transpose=lambda K: K),
            probe=_square_keys_sdpa_probe,
        ),
    ),
    forbidden=frozenset({"scaled_dot_product_attention", "self_attention", "cross_attention"}),
)


# ---- self_attention and cross_attention ------------------------------------------------------


def _projection_inputs(cross: bool, batch: bool = False, dtype=np.float64, large: bool = False):
    scale = 40.0 if large else 1.0

    def make(rng):
        (b1, b2), (n_q, n_k, d_k, d_v, d_model, d_model_z) = _batch_and_sizes(rng, 6, d_k_at=2)
        lead = (b1, b2) if batch else ()
        X = _normal(rng, (*lead, n_q, d_model), scale, dtype)
        if large:
            X = (X * _row_scales(rng, n_q)).astype(dtype)
        if not cross:
            W = [
                _normal(rng, (d_model, d), 1.0 / math.sqrt(d_model), dtype) for d in (d_k, d_k, d_v)
            ]
            return [((X, *W), {})]
        Z = _normal(rng, (*lead, n_k, d_model_z), scale, dtype)
        W_q = _normal(rng, (d_model, d_k), 1.0 / math.sqrt(d_model), dtype)
        W_k = _normal(rng, (d_model_z, d_k), 1.0 / math.sqrt(d_model_z), dtype)
        W_v = _normal(rng, (d_model_z, d_v), 1.0 / math.sqrt(d_model_z), dtype)
        return [((X, Z, W_q, W_k, W_v), {})]

    if large:
        return _redraw_until_adversarial(make, _projected_scores)
    return make


def _projected_scores(X, *args):
    """The scaled scores of self-attention (X, W_q, W_k, W_v) or cross-attention (X, Z, ...)."""
    Z, W_q, W_k = (X, *args[:2]) if len(args) == 3 else args[:3]
    Q, K = X @ W_q, Z @ W_k  # (..., n_q, d_k), (..., n_k, d_k)
    return Q @ np.swapaxes(K, -1, -2) / math.sqrt(W_q.shape[1])


def _square_cross_probe(rng):
    """Cross-attention input where X and Z have the same shape, so that a mix-up of the two
    sequences (or of W_q and W_k) still gives an answer that can be compared."""
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
    """Lift an attention core (Q, K, V) -> (output, weights) to cross_attention's signature."""

    def cross_attention(X, Z, W_q, W_k, W_v, *args, **kwargs):
        return attn(X @ W_q, Z @ W_k, Z @ W_v)

    return cross_attention


_D_K_FIX = "d_k is the width of the projected queries, W_q.shape[1] (Q.shape[-1])"


def _scaled_by(width: Callable) -> Callable:
    """An attention core that divides the scores by √width(inputs) instead of √d_k."""

    def scale_fn(s, Q, K, V):
        return s / np.sqrt(width())

    return _sdpa_with(scale_fn=scale_fn)


_SELF = Exercise(
    name="self_attention",
    arg_names=("X", "W_q", "W_k", "W_v"),
    reference=lambda X, W_q, W_k, W_v: ref.self_attention(X, W_q, W_k, W_v),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="self_attention(X, W_q, W_k, W_v)",
    exp_magnitude=lambda *args: float(np.max(np.abs(_projected_scores(*args)))),
    arg_layouts=("(..., n, d_model)", "(d_model, d_k)", "(d_model, d_k)", "(d_model, d_v)"),
    output_layouts=("(..., n, d_v)", "(..., n, n)"),
    cases={
        "random": Case("matches the reference on random input", _projection_inputs(cross=False)),
        "batch": Case(
            "works with leading batch dimensions", _projection_inputs(cross=False, batch=True)
        ),
        "large": Case(
            "is stable for large inputs (scores in the thousands)",
            _projection_inputs(cross=False, large=True),
        ),
        "float32": Case("works in float32", _projection_inputs(cross=False, dtype=np.float32)),
        "inputs_unchanged": Case(
            "does not modify its inputs",
            _projection_inputs(cross=False, batch=True),
            check_inputs_unchanged=True,
        ),
    },
    mistakes=_attention_mistakes(_self_as_cross, one_sequence=True)
    + (
        Mistake(
            "scaled by √d_model (the width of X) instead of √d_k",
            _D_K_FIX,
            lambda X, W_q, W_k, W_v, *a, **k: _scaled_by(lambda: X.shape[-1])(
                X @ W_q, X @ W_k, X @ W_v
            ),
        ),
        Mistake(
            "W_q and W_k swapped: queries projected with W_k and keys with W_q",
            "Q = X @ W_q, K = X @ W_k, V = X @ W_v",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_k, X @ W_q, X @ W_v
            ),
        ),
        Mistake(
            "the keys were projected with W_q (K = X @ W_q) instead of W_k",
            "K = X @ W_k: each of Q, K and V has its own projection",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, X @ W_q, X @ W_v
            ),
        ),
        Mistake(
            "the values were not projected: V = X instead of X @ W_v",
            "project the values too: V = X @ W_v, so the output has width d_v",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(X @ W_q, X @ W_k, X),
        ),
        Mistake(
            "projected with the transposed matrices (W @ X or X @ W.T)",
            "W_q has shape (d_model, d_k): Q = X @ W_q gives (n, d_k)",
            lambda X, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q.T, X @ W_k.T, X @ W_v.T
            ),
        ),
    ),
    forbidden=frozenset({"self_attention", "cross_attention"}),
)

_CROSS = Exercise(
    name="cross_attention",
    arg_names=("X", "Z", "W_q", "W_k", "W_v"),
    reference=lambda X, Z, W_q, W_k, W_v: ref.cross_attention(X, Z, W_q, W_k, W_v),
    n_outputs=2,
    output_names=("output", "weights"),
    signature="cross_attention(X, Z, W_q, W_k, W_v)",
    exp_magnitude=lambda *args: float(np.max(np.abs(_projected_scores(*args)))),
    arg_layouts=(
        "(..., n_q, d_model)",
        "(..., n_k, d_model_z)",
        "(d_model, d_k)",
        "(d_model_z, d_k)",
        "(d_model_z, d_v)",
    ),
    output_layouts=("(..., n_q, d_v)", "(..., n_q, n_k)"),
    cases={
        "random": Case("matches the reference on random input", _projection_inputs(cross=True)),
        "batch": Case(
            "works with leading batch dimensions", _projection_inputs(cross=True, batch=True)
        ),
        "large": Case(
            "is stable for large inputs (scores in the thousands)",
            _projection_inputs(cross=True, large=True),
        ),
        "float32": Case("works in float32", _projection_inputs(cross=True, dtype=np.float32)),
        "inputs_unchanged": Case(
            "does not modify its inputs",
            _projection_inputs(cross=True, batch=True),
            check_inputs_unchanged=True,
        ),
    },
    mistakes=_attention_mistakes(_cross_as)
    + (
        Mistake(
            "scaled by √d_model (the width of X) instead of √d_k",
            _D_K_FIX,
            lambda X, Z, W_q, W_k, W_v, *a, **k: _scaled_by(lambda: X.shape[-1])(
                X @ W_q, Z @ W_k, Z @ W_v
            ),
        ),
        Mistake(
            "scaled by √d_model_z (the width of Z) instead of √d_k",
            _D_K_FIX,
            lambda X, Z, W_q, W_k, W_v, *a, **k: _scaled_by(lambda: Z.shape[-1])(
                X @ W_q, Z @ W_k, Z @ W_v
            ),
        ),
        Mistake(
            "the values were not projected: V = Z instead of Z @ W_v",
            "project the values too: V = Z @ W_v, so the output has width d_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, Z @ W_k, Z
            ),
        ),
        Mistake(
            "keys and values taken from X instead of Z",
            "in cross-attention the queries come from X, the keys and values from Z: "
            "K = Z @ W_k, V = Z @ W_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, X @ W_k, X @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "the values taken from X instead of Z",
            "keys and values come from the same sequence, Z: V = Z @ W_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, Z @ W_k, X @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "the keys taken from X instead of Z",
            "keys and values come from the same sequence, Z: K = Z @ W_k",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_q, X @ W_k, Z @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "X and Z swapped: the queries come from Z and the keys and values from X",
            "queries from X (Q = X @ W_q), keys and values from Z",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                Z @ W_q, X @ W_k, X @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "the queries taken from Z instead of X",
            "the queries come from X, the sequence that asks: Q = X @ W_q",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                Z @ W_q, Z @ W_k, Z @ W_v
            ),
            probe=_square_cross_probe,
        ),
        Mistake(
            "W_q and W_k swapped: queries projected with W_k and keys with W_q",
            "Q = X @ W_q, K = Z @ W_k, V = Z @ W_v",
            lambda X, Z, W_q, W_k, W_v, *a, **k: ref.scaled_dot_product_attention(
                X @ W_k, Z @ W_q, Z @ W_v
            ),
            probe=_square_cross_probe,
        ),
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


_MATCH, _MISMATCH, _UNTELLABLE = "match", "mismatch", "untellable"


def _verdict(
    exercise: Exercise,
    mistake: Mistake,
    fn: Callable,
    args,
    kwargs,
    learner: Outcome,
    expected: Outcome,
    dtype,
    rng: np.random.Generator,
) -> str:
    """Does the learner's answer equal what ``mistake`` gives, on these inputs or its probe?"""
    if mistake.probe is not None:
        args, kwargs = mistake.probe(rng)
        learner = _run(fn, args, kwargs, exercise.forbidden)
        expected = _quiet_call(exercise.reference, args, kwargs)
        dtype = next(a.dtype for a in args if isinstance(a, np.ndarray))
        if _same_outcome(learner, expected, exercise.n_outputs, dtype):
            return _MISMATCH  # right on the probe: the learner's bug is another one
    wrong = _quiet_call(mistake.fn, args, kwargs)
    # A "mistake" that agrees with the reference on these inputs proves nothing.
    if _same_outcome(wrong, expected, exercise.n_outputs, dtype):
        return _UNTELLABLE
    if wrong.error is not None and learner.error is None:
        return _MISMATCH
    return _MATCH if _same_outcome(learner, wrong, exercise.n_outputs, dtype) else _MISMATCH


def _diagnose(
    exercise: Exercise,
    fn: Callable,
    args,
    kwargs,
    learner: Outcome,
    dtype,
    rng: np.random.Generator,
) -> list[Mistake]:
    """The known mistakes whose answers match the learner's, most likely first.

    Every mistake is tried on the case's inputs (or on its probe). When several match — large
    scores saturate the softmax, so that different wrong scalings all give one-hot weights —
    they are tried again on up to three fresh "random" inputs, and only those that still match
    (or cannot be told from the reference there) are kept. Order in the list: as in the
    catalogue.
    """
    expected = _quiet_call(exercise.reference, args, kwargs)
    candidates = [
        m
        for m in exercise.mistakes
        if _verdict(exercise, m, fn, args, kwargs, learner, expected, dtype, rng) == _MATCH
    ]
    # Break ties on fresh "random" inputs: two wrong scalings can coincide on one input
    # (int(√6) = √4), rarely on three.
    for _ in range(3):
        if len(candidates) < 2 or "random" not in exercise.cases:
            break
        (t_args, t_kwargs), *_ = exercise.cases["random"].make(rng)
        t_learner = _run(fn, t_args, t_kwargs, exercise.forbidden)
        t_expected = _quiet_call(exercise.reference, t_args, t_kwargs)
        t_dtype = next(a.dtype for a in t_args if isinstance(a, np.ndarray))
        verdicts = [
            _verdict(exercise, m, fn, t_args, t_kwargs, t_learner, t_expected, t_dtype, rng)
            for m in candidates
        ]
        decisive = [m for m, v in zip(candidates, verdicts, strict=True) if v == _MATCH]
        possible = [m for m, v in zip(candidates, verdicts, strict=True) if v != _MISMATCH]
        candidates = decisive or possible or candidates
    return candidates


def _side_effects(outcome: Outcome) -> str:
    notes = []
    if outcome.warnings:
        notes.append("Your code raised these warnings: " + "; ".join(outcome.warnings) + ".")
    if outcome.stderr:
        notes.append(f"Your code wrote to stderr: {outcome.stderr[:300]!r}.")
    if outcome.mutated:
        notes.append(
            f"Your function also modified its input ({', '.join(outcome.mutated)}) in place."
        )
    return ("\n" + "\n".join(notes)) if notes else ""


def _check(exercise_name: str, fn: Callable, case_name: str, seed: int | None = None) -> None:
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
            f"`{exercise.name}` is not a function (got "
            f"{type(fn).__name__}). Did you overwrite it with a value?",
        )
    rng = np.random.default_rng(_case_seed(exercise_name, case_name, seed))
    notes: list[str] = []
    # Our own comparisons must not warn either: nbgrader scores any stderr output as zero.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for args, kwargs in case.make(rng):
            _check_one(exercise, case, fn, args, kwargs, rng, notes)
    print(f"✓ {exercise.name}: {case.description}.")
    for note in dict.fromkeys(notes):
        print(note)


def _signature(args, kwargs, names: Sequence[str], layouts: Sequence[str] = ()) -> str:
    layouts = list(layouts) + [""] * (len(args) - len(layouts))
    parts = [
        f"{name} of shape {_shape_text(a.shape, layout)} ({a.dtype})"
        if isinstance(a, np.ndarray)
        else f"{name}={a!r}"
        for name, a, layout in zip(names, args, layouts, strict=False)
    ]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _call_text(exercise: Exercise, args, kwargs) -> str:
    names = list(exercise.arg_names[: len(args)]) + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{exercise.name}({', '.join(names)})"


def _check_one(
    exercise: Exercise, case: Case, fn: Callable, args, kwargs, rng, notes: list[str]
) -> None:
    dtype = next(a.dtype for a in args if isinstance(a, np.ndarray))
    called_with = (
        f"Called with: {_signature(args, kwargs, exercise.arg_names, exercise.arg_layouts)}."
    )

    problem = _signature_problem(fn, args, kwargs)
    if problem is not None:
        raise _fail(
            exercise,
            case,
            (
                f"The check calls `{_call_text(exercise, args, kwargs)}`, but {problem}. "
                f"Define it as `def {exercise.signature or exercise.name + '(...)'}:` (any extra "
                "parameter needs a default value, such as mask=None)."
            ),
        )

    learner = _run(fn, args, kwargs, exercise.forbidden, exercise.arg_names)
    if learner.called_reference:
        raise _fail(
            exercise,
            case,
            (
                f"Your function calls the course's reference `{learner.called_reference}` "
                "instead of computing the answer itself. Write it with NumPy operations; the "
                "reference is there for the demos and later notebooks, not for this exercise."
            ),
        )
    if isinstance(learner.error, NotImplementedError):
        raise _fail(
            exercise,
            case,
            (
                f"`{exercise.name}` is not implemented yet: replace `raise "
                "NotImplementedError()` with your code and run its cell again."
            ),
        )

    expected = _quiet_call(exercise.reference, args, kwargs)
    assert expected.error is None, f"reference failed on check input: {expected.error!r}"
    expected_outputs = _as_outputs(expected.value, exercise.n_outputs)
    got_outputs = None if learner.error else _as_outputs(learner.value, exercise.n_outputs)
    slack = 0.0
    if exercise.exp_magnitude is not None:
        slack = _exp_slack(dtype, _quiet_call(exercise.exp_magnitude, args, kwargs).value or 0.0)
    correct = got_outputs is not None and all(
        _close(g, e, dtype, slack) for g, e in zip(got_outputs, expected_outputs, strict=True)
    )

    if correct:
        not_arrays = [
            f"your {label} came back as a {type(g).__name__}"
            for g, label in zip(got_outputs, exercise.output_names, strict=True)
            if not isinstance(g, np.ndarray)
        ]
        if not_arrays:
            raise _fail(
                exercise,
                case,
                (
                    f"The values are right, but {' and '.join(not_arrays)}, not a NumPy array: "
                    "code that uses your result needs .shape, @ and NumPy's axis arguments. "
                    "Build the result with NumPy operations, or return np.array(...) of it.\n"
                    f"{called_with}"
                ),
            )
        if learner.mutated:
            if case.check_inputs_unchanged:
                raise _fail(
                    exercise,
                    case,
                    (
                        f"Your function modified its input in place ({', '.join(learner.mutated)})"
                        ": the answer is right, but the caller's array was changed. Avoid in-place "
                        "operators such as `x -= ...`, `x /= ...` or `np.exp(x, out=x)` on the "
                        "inputs; write `x = x - ...` to make a new array (or work on x.copy())."
                    ),
                )
            notes.append(
                f"Note for {exercise.name}: your function modified its input "
                f"({', '.join(learner.mutated)}) in place; the test that inputs are "
                "left unchanged will fail."
            )
        side = _side_effects(Outcome(warnings=learner.warnings, stderr=learner.stderr))
        if side:
            notes.append(f"Note for {exercise.name}:{side}")
        return

    mistakes = _diagnose(exercise, fn, args, kwargs, learner, dtype, rng)
    extra = _side_effects(learner)
    if mistakes:
        mistake, *others = mistakes
        also = "".join(f"\nYour answer also matches this mistake: {m.name}." for m in others)
        raise _fail(
            exercise,
            case,
            (
                f"Likely mistake: {mistake.name}.\nHow to fix it: {mistake.fix}.{also}\n"
                f"{called_with}{extra}"
            ),
        )
    if learner.error is not None:
        raise _fail(
            exercise,
            case,
            (
                f"Your function raised {type(learner.error).__name__}: {learner.error}"
                f"{learner.error_where}.{_error_hint(learner.error)}\n{called_with}{extra}"
            ),
        )
    layouts = list(exercise.output_layouts) + [""] * exercise.n_outputs
    if got_outputs is None:
        value = learner.value
        if value is None:
            got = "None — is a `return` statement missing?"
        elif isinstance(value, (tuple, list)):
            got = f"a {type(value).__name__} of {len(value)} items."
        elif isinstance(value, np.ndarray):
            got = (
                f"a single array of shape {value.shape}. Return both: "
                f"`return {', '.join(exercise.output_names)}`."
            )
        else:
            got = f"{type(value).__name__}."
        wanted = ", ".join(
            f"{label} {_shape_text(e.shape, layout)}"
            for label, e, layout in zip(
                exercise.output_names, expected_outputs, layouts, strict=False
            )
        )
        body = f"Expected a tuple of {exercise.n_outputs} arrays ({wanted}), got {got}"
        raise _fail(exercise, case, f"{body}\n{called_with}{extra}")
    lines = [
        _describe_difference(g, e, label, layout, dtype, slack)
        for g, e, label, layout in zip(
            got_outputs, expected_outputs, exercise.output_names, layouts, strict=False
        )
        if not _close(g, e, dtype, slack)
    ]
    raise _fail(exercise, case, "\n".join(lines) + f"\n{called_with}{extra}")


def _make_check(name: str) -> Callable:
    def check(fn: Callable, case: str = "random", seed: int | None = None) -> None:
        _check(name, fn, case, seed)

    check.__name__ = f"check_{name}"
    check.__qualname__ = f"check_{name}"
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


# Exercises of notebooks 06–08 (masks, multi-head, tiled attention) register themselves here.
from .checks_beyond import *  # noqa: E402, F403
