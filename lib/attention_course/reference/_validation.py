"""Input validation shared by the reference functions.

Every public function of :mod:`attention_course.reference` funnels its arguments through these
helpers, so a learner sees a sentence about *their* dimensions instead of a NumPy broadcasting
error. Shape legend as in :mod:`attention_course.reference`.
"""

from __future__ import annotations

import numpy as np


def _as_float_array(x, name: str) -> np.ndarray:
    """Return ``x`` as an ndarray with a floating dtype (integers and bools become float64)."""
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise ValueError(f"{name} must be an array of real numbers, got dtype {arr.dtype}.")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _require_ndim(arr: np.ndarray, name: str, layout: str) -> None:
    if arr.ndim < 2:
        raise ValueError(
            f"{name} must have shape {layout} (at least 2 dimensions), "
            f"got shape {arr.shape} with {arr.ndim} dimension(s)."
        )


def _require_same_d_k(Q: np.ndarray, K: np.ndarray) -> None:
    """Raise a ValueError unless queries (..., n_q, d_k) and keys (..., n_k, d_k) agree on d_k."""
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"Q's d_k ({Q.shape[-1]}) must equal K's d_k ({K.shape[-1]}): "
            f"got Q of shape {Q.shape} and K of shape {K.shape}."
        )


def _common_dtype(*arrays: np.ndarray) -> np.dtype:
    return np.result_type(*arrays)


def _batch_shape(*named: tuple[str, np.ndarray]) -> tuple[int, ...]:
    """Broadcast the leading batch dimensions (all but the last two) of several arrays."""
    try:
        return np.broadcast_shapes(*(arr.shape[:-2] for _, arr in named))
    except ValueError:
        described = ", ".join(f"{name} has batch shape {arr.shape[:-2]}" for name, arr in named)
        raise ValueError(f"The leading batch dimensions do not broadcast: {described}.") from None


def _validate_mask(mask, scores_shape: tuple[int, ...]) -> np.ndarray:
    """Check that ``mask`` is boolean and broadcastable to ``scores_shape`` (..., n_q, n_k)."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(
            f"mask must be boolean (True = may attend), got dtype {mask.dtype}. "
            "Convert a 0/1 mask with mask.astype(bool); an additive float mask "
            "(0 / -inf) is not accepted here."
        )
    try:
        broadcast = np.broadcast_shapes(mask.shape, scores_shape)
    except ValueError:
        broadcast = None
    if broadcast != tuple(scores_shape):
        raise ValueError(
            f"mask of shape {mask.shape} does not broadcast to the attention weights' shape "
            f"(..., n_q, n_k) = {tuple(scores_shape)}."
        )
    return mask


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _as_mask_matrix(mask: np.ndarray) -> np.ndarray:
    """Give a validated mask at least the two axes (n_q, n_k), adding leading 1s if needed."""
    return mask.reshape((1,) * max(0, 2 - mask.ndim) + mask.shape)


def _check_qkv(Q, K, V):
    """Validate Q, K, V exactly as :func:`scaled_dot_product_attention` does.

    Returns ``(Q, K, V, batch, dtype)`` with the broadcast batch shape and the common dtype.
    """
    Q = _as_float_array(Q, "Q")
    K = _as_float_array(K, "K")
    V = _as_float_array(V, "V")
    _require_ndim(Q, "Q", "(..., n_q, d_k)")
    _require_ndim(K, "K", "(..., n_k, d_k)")
    _require_ndim(V, "V", "(..., n_k, d_v)")
    _require_same_d_k(Q, K)
    if V.shape[-2] != K.shape[-2]:
        raise ValueError(
            f"K and V must have the same number of rows n_k: K has {K.shape[-2]} "
            f"(shape {K.shape}), V has {V.shape[-2]} (shape {V.shape})."
        )
    batch = _batch_shape(("Q", Q), ("K", K), ("V", V))
    return Q, K, V, batch, _common_dtype(Q, K, V)


def _scale_or_default(scale, d_k: int):
    """The factor the scores are multiplied by: ``scale`` checked to be a finite real number, or
    ``1 / sqrt(d_k)`` when it is None."""
    return 1.0 / np.sqrt(d_k) if scale is None else _finite_real(scale, "scale")


def _working_dtype(dtype) -> np.dtype:
    """The dtype the arithmetic is done in for results of ``dtype``: float32 and float64 as they
    are, float16 in float32 (NumPy has no float16 matmul kernels, and a large scale would
    overflow float16); the results are rounded back to ``dtype`` at the end."""
    return np.result_type(dtype, np.float32)


def _finite_real(value, name: str) -> float:
    """``value`` as a Python float, or a ValueError if it is not a finite real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    return float(value)
