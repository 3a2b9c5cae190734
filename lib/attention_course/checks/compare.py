"""Comparing a learner's answer with the reference, and saying how they differ.

Two kinds of output are compared: arrays of numbers, by closeness with tolerances that depend
on the dtype (:func:`close`), and boolean masks, exactly (:func:`same_mask`; 0/1 numbers count
as False/True there, so that the dtype can be judged on its own). The ``describe_*`` functions
write the "expected ..., got ..." part of a failure message: shape, dtype, the first differing
entry, and a hint when the difference has a recognisable pattern (swapped axes, a constant
factor, NaN, an integer dtype); :func:`error_hint` adds one for errors NumPy raises on batched
input.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .runner import Outcome

# ---- numbers ---------------------------------------------------------------------------------


def tolerances(dtype) -> tuple[float, float]:
    """(rtol, atol) for answers computed in ``dtype``."""
    if np.dtype(dtype) == np.float32:
        return 2e-4, 1e-5
    if np.dtype(dtype) == np.float16:
        return 1e-2, 1e-3
    return 1e-7, 1e-10


def _numeric(arr: np.ndarray) -> bool:
    return arr.dtype != object and (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    )


def as_array(value) -> np.ndarray | None:
    """``np.asarray(value)``, or None for what NumPy cannot make an array of."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(value)
    except Exception:  # noqa: BLE001 - ragged lists, odd objects
        return None


def exp_slack(dtype, magnitude: float) -> float:
    """Extra relative tolerance for outputs of np.exp: an exponent of size ``magnitude`` is only
    known to about one unit in the last place, eps * magnitude, and exp turns that absolute
    error into a relative one. A correct log-sum-exp softmax of float32 scores near 1e4 is off
    by ~1e-3 (exp(x - lse) with lse rounded); float64 scores never need this."""
    return 2.0 * float(np.finfo(dtype).eps) * magnitude if magnitude else 0.0


def close(got, expected, dtype, slack: float = 0.0) -> bool:
    """Same shape and values within the tolerances of ``dtype`` (NaN equals NaN)."""
    got = as_array(got)
    if got is None or got.shape != np.shape(expected) or not _numeric(got):
        return False
    rtol, atol = tolerances(dtype)
    rtol += slack
    scale = float(np.nanmax(np.abs(expected))) if np.size(expected) else 1.0
    with np.errstate(all="ignore"):
        return bool(
            np.allclose(got, expected, rtol=rtol, atol=atol * max(scale, 1.0), equal_nan=True)
        )


# ---- masks -----------------------------------------------------------------------------------


def same_mask(got, expected, dtype=None, slack: float = 0.0) -> bool:
    """Same shape and the same pattern (0/1 numbers count as False/True here)."""
    arr = as_array(got)
    expected = np.asarray(expected)
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


def describe_mask(got, expected: np.ndarray, layout: str) -> str:
    """Expected vs got for a boolean mask; both patterns when they are small."""
    arr = as_array(got)
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


# ---- outcomes --------------------------------------------------------------------------------

#: How two outputs are compared: (got, expected, dtype, slack) -> equal?
Agreement = Callable[..., bool]


def as_outputs(value, n_outputs: int):
    """A function's return value as a tuple of ``n_outputs`` outputs, or None if it is not.

    A tuple nested in the returned tuple counts as its items: ``decode_step``'s
    ``(output_t, (K_cache, V_cache))`` is three outputs (notebook 10 checks the nesting itself).
    """
    if n_outputs == 1:
        return (value,)
    if not isinstance(value, (tuple, list)):
        return None
    if len(value) == n_outputs:
        return tuple(value)
    flat = tuple(
        item for part in value for item in (part if isinstance(part, (tuple, list)) else (part,))
    )
    return flat if len(flat) == n_outputs else None


def same_outcome(a: Outcome, b: Outcome, n_outputs: int, dtype, agree: Agreement = close) -> bool:
    """Do two calls agree: both raised the same error, or both returned the same outputs?"""
    if a.error is not None or b.error is not None:
        return (
            a.error is not None
            and b.error is not None
            and type(a.error) is type(b.error)
            and str(a.error) == str(b.error)
        )
    got, expected = as_outputs(a.value, n_outputs), as_outputs(b.value, n_outputs)
    if got is None and expected is None:  # both returned something else than the tuple
        return agree(a.value, b.value, dtype) if isinstance(b.value, np.ndarray) else False
    if got is None or expected is None:
        return False
    return all(agree(g, e, dtype) for g, e in zip(got, expected, strict=True))


# ---- describing a difference in numbers ------------------------------------------------------


def shape_text(shape, layout: str) -> str:
    """``(2, 3) = (..., n_q, n_k)``: a shape and, if known, what its axes are."""
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


def describe_difference(
    got, expected: np.ndarray, label: str, layout: str = "", dtype=None, slack: float = 0.0
) -> str:
    """Expected vs got: type, shape, dtype, first differing entry, and a hint if one fits."""
    want = f"an array of shape {shape_text(expected.shape, layout)} and dtype {expected.dtype}"
    if got is None:
        return f"{label}: expected {want}, got None — is a `return` statement missing?"
    if isinstance(got, (tuple, list)) and got and all(isinstance(g, np.ndarray) for g in got):
        return (
            f"{label}: expected {want}, got a {type(got).__name__} of {len(got)} arrays "
            f"— return only the {label}."
        )
    arr = as_array(got)
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
        rtol, atol = tolerances(expected.dtype if dtype is None else dtype)
        rtol += slack
        scale = max(float(np.max(np.abs(expected))), 1.0) if expected.size else 1.0
        bad = ~np.isclose(arr, expected, rtol=rtol, atol=atol * scale, equal_nan=True)
        dtype = (
            f"and dtype {arr.dtype}"
            if arr.dtype == expected.dtype
            else f"dtype {arr.dtype} (the reference gives {expected.dtype})"
        )
        text = (
            f"{label}: right shape {shape_text(arr.shape, layout)} {dtype}{kind}, but wrong values"
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


def describe_outputs(
    value,
    expected: Sequence[np.ndarray],
    names: Sequence[str],
    layouts: Sequence[str],
    dtype,
    slack: float,
) -> str:
    """Expected vs got for a function that returns ``len(expected)`` arrays."""
    n_outputs = len(expected)
    layouts = list(layouts) + [""] * n_outputs
    got = as_outputs(value, n_outputs)
    if got is None:
        if value is None:
            what = "None — is a `return` statement missing?"
        elif isinstance(value, (tuple, list)):
            what = f"a {type(value).__name__} of {len(value)} items."
        elif isinstance(value, np.ndarray):
            what = (
                f"a single array of shape {value.shape}. Return both: `return {', '.join(names)}`."
            )
        else:
            what = f"{type(value).__name__}."
        wanted = ", ".join(
            f"{label} {shape_text(e.shape, layout)}"
            for label, e, layout in zip(names, expected, layouts, strict=False)
        )
        return f"Expected a tuple of {n_outputs} arrays ({wanted}), got {what}"
    return "\n".join(
        describe_difference(g, e, label, layout, dtype, slack)
        for g, e, label, layout in zip(got, expected, names, layouts, strict=False)
        if not close(g, e, dtype, slack)
    )


# ---- errors ----------------------------------------------------------------------------------

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


def error_hint(error: BaseException) -> str:
    """``"\\nHint: ..."`` for an error NumPy raises with a known cause, or ''."""
    text = str(error)
    for patterns, hint in _ERROR_HINTS:
        if any(p in text for p in patterns):
            return f"\nHint: {hint}"
    return ""
