"""Reference implementation of scaled dot-product attention, in NumPy.

This is the implementation the course's grader trusts. Learners write functions with the same
names and signatures in the notebooks; the checks in :mod:`attention_course.checks` compare
their answers with these.

Shape legend (used in every docstring and shape comment):

- ``...``  any number of leading batch dimensions (possibly none), broadcast like NumPy.
- ``n_q``  number of queries.
- ``n_k``  number of keys (and of values).
- ``d_k``  width of a query and of a key.
- ``d_v``  width of a value.
- ``d_model`` / ``d_model_z``  width of the token vectors ``X`` / ``Z`` that queries / keys and
  values are projected from.

Conventions:

- A boolean ``mask`` is **True where a query may attend to a key**, as in PyTorch's
  ``scaled_dot_product_attention``. A query whose keys are all masked gets zero weights and a
  zero output row, never NaN.
- The floating dtype of the inputs (float16, float32 or float64) is preserved; integer inputs
  are computed in float64.
- Invalid input raises :class:`ValueError` with a sentence naming the dimensions that disagree.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "dot_product_scores",
    "scale_scores",
    "softmax",
    "weighted_sum",
    "scaled_dot_product_attention",
    "self_attention",
    "cross_attention",
    "causal_mask",
    "padding_mask",
]


# --------------------------------------------------------------------------------------------
# Input validation: every public function funnels its arguments through these helpers, so a
# learner sees a sentence about *their* dimensions instead of a NumPy broadcasting error.
# --------------------------------------------------------------------------------------------


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


def _common_dtype(*arrays: np.ndarray) -> np.dtype:
    return np.result_type(*arrays)


def _batch_shape(*named: tuple[str, np.ndarray]) -> tuple[int, ...]:
    """Broadcast the leading batch dimensions (all but the last two) of several arrays."""
    try:
        return np.broadcast_shapes(*(arr.shape[:-2] for _, arr in named))
    except ValueError:
        described = ", ".join(f"{name} has batch shape {arr.shape[:-2]}" for name, arr in named)
        raise ValueError(
            f"The leading batch dimensions do not broadcast: {described}."
        ) from None


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


# --------------------------------------------------------------------------------------------
# The building blocks, in the order the course teaches them.
# --------------------------------------------------------------------------------------------


def dot_product_scores(Q, K) -> np.ndarray:
    """Score every query against every key with a dot product.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
        Queries, one per row.
    K : (..., n_k, d_k) array_like
        Keys, one per row.

    Returns
    -------
    scores : (..., n_q, n_k) ndarray
        ``scores[..., i, j]`` is the dot product of query ``i`` with key ``j``.

    Raises
    ------
    ValueError
        If Q and K have different widths ``d_k``, fewer than two dimensions, or batch
        dimensions that do not broadcast.
    """
    Q = _as_float_array(Q, "Q")
    K = _as_float_array(K, "K")
    _require_ndim(Q, "Q", "(..., n_q, d_k)")
    _require_ndim(K, "K", "(..., n_k, d_k)")
    if Q.shape[-1] != K.shape[-1]:
        raise ValueError(
            f"Q's d_k ({Q.shape[-1]}) must equal K's d_k ({K.shape[-1]}): "
            f"got Q of shape {Q.shape} and K of shape {K.shape}."
        )
    _batch_shape(("Q", Q), ("K", K))
    return Q @ np.swapaxes(K, -1, -2)  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)


def scale_scores(scores, d_k) -> np.ndarray:
    """Divide attention scores by ``sqrt(d_k)``.

    Parameters
    ----------
    scores : (..., n_q, n_k) array_like
        Raw dot-product scores.
    d_k : int
        Width of the queries and keys the scores came from (a positive integer).

    Returns
    -------
    scaled : (..., n_q, n_k) ndarray
        ``scores / sqrt(d_k)``, same dtype as ``scores``.

    Raises
    ------
    ValueError
        If ``d_k`` is not a positive integer.
    """
    scores = _as_float_array(scores, "scores")
    if isinstance(d_k, bool) or not isinstance(d_k, (int, np.integer)) or d_k <= 0:
        raise ValueError(f"d_k must be a positive integer (the key width), got {d_k!r}.")
    return scores / scores.dtype.type(np.sqrt(d_k))


def softmax(x, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along one axis.

    The maximum of each slice is subtracted before exponentiating, so no entry overflows.
    A slice whose entries are all ``-inf`` (for example a fully masked row) gives zeros instead
    of NaN.

    Parameters
    ----------
    x : (...) array_like
        Scores; any shape.
    axis : int, optional
        Axis to normalise over (default: the last).

    Returns
    -------
    p : (...) ndarray
        Same shape and dtype as ``x``; non-negative, and each slice along ``axis`` sums to 1
        (or is all zeros if it was all ``-inf``).

    Raises
    ------
    ValueError
        If ``axis`` is out of range for ``x``.
    """
    x = _as_float_array(x, "x")
    if not -x.ndim <= axis < max(x.ndim, 1):
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}.")
    if x.ndim == 0:
        return np.ones_like(x)
    m = np.max(x, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0  # an all -inf slice: exp(-inf - 0) = 0 below, never NaN
    e = np.exp(x - m)  # every exponent <= 0: no overflow
    total = np.sum(e, axis=axis, keepdims=True)
    np.divide(e, total, out=e, where=total > 0)
    return e


def weighted_sum(weights, V) -> np.ndarray:
    """Mix the value rows with attention weights.

    Parameters
    ----------
    weights : (..., n_q, n_k) array_like
        Attention weights; row ``i`` says how much query ``i`` takes from each value.
    V : (..., n_k, d_v) array_like
        Values, one per row.

    Returns
    -------
    out : (..., n_q, d_v) ndarray
        ``out[..., i, :] = sum_j weights[..., i, j] * V[..., j, :]``.

    Raises
    ------
    ValueError
        If the weights' n_k differs from V's n_k, or the batch dimensions do not broadcast.
    """
    weights = _as_float_array(weights, "weights")
    V = _as_float_array(V, "V")
    _require_ndim(weights, "weights", "(..., n_q, n_k)")
    _require_ndim(V, "V", "(..., n_k, d_v)")
    if weights.shape[-1] != V.shape[-2]:
        raise ValueError(
            f"The weights' n_k ({weights.shape[-1]}) must equal V's n_k ({V.shape[-2]}): "
            f"got weights of shape {weights.shape} and V of shape {V.shape}."
        )
    _batch_shape(("weights", weights), ("V", V))
    return weights @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)


def scaled_dot_product_attention(Q, K, V, mask=None, scale=None):
    """Scaled dot-product attention: ``softmax(Q Kᵀ / sqrt(d_k)) V``.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
        Queries.
    K : (..., n_k, d_k) array_like
        Keys.
    V : (..., n_k, d_v) array_like
        Values.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key; broadcast against the weights. A query whose
        keys are all False gets zero weights and a zero output row.
    scale : float, optional
        Factor the scores are multiplied by; defaults to ``1 / sqrt(d_k)``.

    Returns
    -------
    output : (..., n_q, d_v) ndarray
        Attention output, one row per query.
    weights : (..., n_q, n_k) ndarray
        Attention weights; each row sums to 1 (or is all zero if fully masked).

    Raises
    ------
    ValueError
        If Q's d_k differs from K's, K's n_k from V's, the batch dimensions do not broadcast,
        or the mask is not boolean or does not broadcast to ``(..., n_q, n_k)``.
    """
    Q = _as_float_array(Q, "Q")
    K = _as_float_array(K, "K")
    V = _as_float_array(V, "V")
    _require_ndim(Q, "Q", "(..., n_q, d_k)")
    _require_ndim(K, "K", "(..., n_k, d_k)")
    _require_ndim(V, "V", "(..., n_k, d_v)")
    n_q, d_k = Q.shape[-2:]
    n_k = K.shape[-2]
    if K.shape[-1] != d_k:
        raise ValueError(
            f"Q's d_k ({d_k}) must equal K's d_k ({K.shape[-1]}): "
            f"got Q of shape {Q.shape} and K of shape {K.shape}."
        )
    if V.shape[-2] != n_k:
        raise ValueError(
            f"K and V must have the same number of rows n_k: K has {n_k} (shape {K.shape}), "
            f"V has {V.shape[-2]} (shape {V.shape})."
        )
    batch = _batch_shape(("Q", Q), ("K", K), ("V", V))
    dtype = _common_dtype(Q, K, V)
    if scale is None:
        scale = 1.0 / np.sqrt(d_k)
    elif not np.isscalar(scale) or not np.isfinite(scale):
        raise ValueError(f"scale must be a finite number, got {scale!r}.")
    scale = dtype.type(scale)

    # Scaling the n_q x d_k queries is cheaper than scaling the n_q x n_k scores.
    scores = (Q * scale).astype(dtype, copy=False) @ np.swapaxes(K, -1, -2).astype(
        dtype, copy=False
    )  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    if mask is not None:
        mask = _validate_mask(mask, (*batch, n_q, n_k))
        scores = np.where(mask, scores, dtype.type(-np.inf))
    weights = softmax(scores, axis=-1)
    V = V.astype(dtype, copy=False)
    output = weights @ V  # (..., n_q, n_k) @ (..., n_k, d_v) -> (..., n_q, d_v)
    return output, weights


def _check_projection(W, name: str, d_in: int, source: str, width: str) -> np.ndarray:
    W = _as_float_array(W, name)
    if W.ndim != 2:
        raise ValueError(f"{name} must be a matrix of shape ({source}'s width, {width}), "
                         f"got shape {W.shape}.")
    if W.shape[0] != d_in:
        raise ValueError(
            f"{name} has {W.shape[0]} rows but {source} has width {d_in}: {name} must have "
            f"shape ({d_in}, {width})."
        )
    return W


def cross_attention(X, Z, W_q, W_k, W_v, mask=None):
    """Attention with queries from ``X`` and keys and values from ``Z``.

    Parameters
    ----------
    X : (..., n_q, d_model) array_like
        Tokens that ask (e.g. the decoder's sequence).
    Z : (..., n_k, d_model_z) array_like
        Tokens that are looked up (e.g. the encoder's output).
    W_q : (d_model, d_k) array_like
        Query projection: ``Q = X @ W_q``.
    W_k : (d_model_z, d_k) array_like
        Key projection: ``K = Z @ W_k``.
    W_v : (d_model_z, d_v) array_like
        Value projection: ``V = Z @ W_v``.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key.

    Returns
    -------
    output : (..., n_q, d_v) ndarray
    weights : (..., n_q, n_k) ndarray

    Raises
    ------
    ValueError
        If a projection's shape does not fit its input or the projections disagree on d_k.
    """
    X = _as_float_array(X, "X")
    Z = _as_float_array(Z, "Z")
    _require_ndim(X, "X", "(..., n_q, d_model)")
    _require_ndim(Z, "Z", "(..., n_k, d_model_z)")
    W_q = _check_projection(W_q, "W_q", X.shape[-1], "X", "d_k")
    W_k = _check_projection(W_k, "W_k", Z.shape[-1], "Z", "d_k")
    W_v = _check_projection(W_v, "W_v", Z.shape[-1], "Z", "d_v")
    if W_q.shape[1] != W_k.shape[1]:
        raise ValueError(
            f"W_q and W_k must project to the same d_k: W_q gives {W_q.shape[1]} columns, "
            f"W_k gives {W_k.shape[1]}."
        )
    Q = X @ W_q  # (..., n_q, d_model) @ (d_model, d_k) -> (..., n_q, d_k)
    K = Z @ W_k  # (..., n_k, d_model_z) @ (d_model_z, d_k) -> (..., n_k, d_k)
    V = Z @ W_v  # (..., n_k, d_model_z) @ (d_model_z, d_v) -> (..., n_k, d_v)
    return scaled_dot_product_attention(Q, K, V, mask=mask)


def self_attention(X, W_q, W_k, W_v, mask=None):
    """Attention of a sequence to itself: queries, keys and values all come from ``X``.

    Parameters
    ----------
    X : (..., n, d_model) array_like
        The sequence; ``n_q = n_k = n``.
    W_q : (d_model, d_k) array_like
        Query projection: ``Q = X @ W_q``.
    W_k : (d_model, d_k) array_like
        Key projection: ``K = X @ W_k``.
    W_v : (d_model, d_v) array_like
        Value projection: ``V = X @ W_v``.
    mask : (..., n, n) array_like of bool, optional
        True where a query may attend to a key (e.g. :func:`causal_mask`).

    Returns
    -------
    output : (..., n, d_v) ndarray
    weights : (..., n, n) ndarray

    Raises
    ------
    ValueError
        If a projection's shape does not fit ``X`` or the projections disagree on d_k.
    """
    return cross_attention(X, X, W_q, W_k, W_v, mask=mask)


# --------------------------------------------------------------------------------------------
# Masks (True = may attend).
# --------------------------------------------------------------------------------------------


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def causal_mask(n_q, n_k=None) -> np.ndarray:
    """Causal mask: query ``i`` may attend to keys ``0 … i``.

    Top-left aligned, equal to PyTorch's ``is_causal=True`` mask also when ``n_q != n_k``
    (``tril`` of a ``n_q x n_k`` block of ones). A KV cache, where the queries are the *last*
    ``n_q`` positions, wants the bottom-right aligned mask instead: ``np.tril(..., k=n_k - n_q)``.

    Parameters
    ----------
    n_q : int
        Number of queries.
    n_k : int, optional
        Number of keys; defaults to ``n_q``.

    Returns
    -------
    mask : (n_q, n_k) ndarray of bool
        True where the query may attend.
    """
    n_q = _positive_int(n_q, "n_q")
    n_k = n_q if n_k is None else _positive_int(n_k, "n_k")
    return np.tri(n_q, n_k, dtype=bool)


def padding_mask(lengths, n_k) -> np.ndarray:
    """Padding mask for a batch of sequences padded to ``n_k`` keys.

    Parameters
    ----------
    lengths : (batch,) array_like of int
        True length of each sequence, ``0 <= lengths[b] <= n_k``.
    n_k : int
        Padded length (number of keys).

    Returns
    -------
    mask : (batch, 1, n_k) ndarray of bool
        True where the key index is smaller than the sequence's length; the middle axis
        broadcasts over the queries.

    Raises
    ------
    ValueError
        If ``lengths`` is not a 1-D array of integers in ``[0, n_k]``.
    """
    n_k = _positive_int(n_k, "n_k")
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not (
        np.issubdtype(lengths.dtype, np.integer) or lengths.size == 0
    ):
        raise ValueError(
            f"lengths must be a 1-D array of integers (one per sequence), got shape "
            f"{lengths.shape} and dtype {lengths.dtype}."
        )
    if lengths.size and (lengths.min() < 0 or lengths.max() > n_k):
        raise ValueError(
            f"every length must lie between 0 and n_k = {n_k}, got lengths {lengths.tolist()}."
        )
    return (np.arange(n_k) < lengths[:, None])[:, None, :]  # (batch, n_k) -> (batch, 1, n_k)
