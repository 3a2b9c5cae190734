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
- ``n_heads``, ``d_out``  number of heads of :func:`multi_head_attention`, and the width of its
  output (``d_k`` and ``d_v`` are then the widths of one head).

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
    "multi_head_attention",
    "online_softmax",
    "tiled_attention",
    "softmax_backward",
    "attention_backward",
    "numerical_gradient",
    "numerical_attention_gradients",
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
    return _softmax_inplace(x.copy(), axis)


def _softmax_inplace(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax of ``x`` along ``axis``, overwriting ``x`` (which must be a float array).

    Working in place saves two temporaries of the size of ``x``: for attention, whose score
    matrix is the largest array by far, that is most of the cost beyond the two matmuls. The
    reference is the answer key, so it stays single-threaded and plain (no thread pool: safe
    under every multiprocessing start method, fork included).
    """
    if x.size == 0:  # e.g. no keys at all: nothing to normalise
        return x
    m = np.max(x, axis=axis, keepdims=True)
    m[~np.isfinite(m)] = 0  # an all -inf slice: exp(-inf - 0) = 0 below, never NaN
    np.subtract(x, m, out=x)
    np.exp(x, out=x)  # every exponent <= 0: no overflow
    total = np.sum(x, axis=axis, keepdims=True)
    empty = total == 0  # only for all -inf slices: keep their zeros
    total[empty] = 1
    np.multiply(x, np.reciprocal(total), out=x)  # one reciprocal per row, then a multiply
    return x


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
    Q, K, V, batch, dtype = _check_qkv(Q, K, V)
    n_q, d_k = Q.shape[-2:]
    n_k = K.shape[-2]
    scale = 1.0 / np.sqrt(d_k) if scale is None else _finite_real(scale, "scale")
    if mask is not None:
        mask = _validate_mask(mask, (*batch, n_q, n_k))

    # float16 is computed in float32 (NumPy has no float16 matmul kernels, and a large scale
    # would overflow float16) and rounded back at the end.
    work = np.result_type(dtype, np.float32)
    # Scale the n_q x d_k queries rather than the n_q x n_k scores: fewer multiplications.
    Q_scaled = Q.astype(work, copy=False) * work.type(scale)  # (..., n_q, d_k)
    K_t = np.swapaxes(K, -1, -2).astype(work, copy=False)  # (..., n_k, d_k) -> (..., d_k, n_k)
    scores = Q_scaled @ K_t  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    if mask is not None:
        full = np.broadcast_shapes(mask.shape, scores.shape)
        if full != scores.shape:  # the mask carries batch axes that Q and K do not
            scores = np.broadcast_to(scores, full).copy()
        np.copyto(scores, work.type(-np.inf), where=~mask)  # masked keys get no weight
    # scores is a fresh array owned here: normalise it in place.
    weights = _softmax_inplace(scores, axis=-1)
    output = weights @ V.astype(work, copy=False)  # (..., n_q, n_k) @ (..., n_k, d_v)
    output, weights = output.astype(dtype, copy=False), weights.astype(dtype, copy=False)
    return output, weights  # output: (..., n_q, d_v), weights: (..., n_q, n_k)


def _check_projection(W, name: str, d_in: int, source: str, width: str) -> np.ndarray:
    W = _as_float_array(W, name)
    if W.ndim != 2:
        raise ValueError(
            f"{name} must be a matrix of shape ({source}'s width, {width}), got shape {W.shape}."
        )
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
    return _project_and_attend(X, Z, W_q, W_k, W_v, mask, source="Z")


def _project_and_attend(X, Z, W_q, W_k, W_v, mask, source: str):
    """Project queries from X and keys/values from Z, then attend; errors name ``source``."""
    X = _as_float_array(X, "X")
    Z = _as_float_array(Z, source)
    _require_ndim(X, "X", "(..., n_q, d_model)")
    _require_ndim(Z, source, "(..., n_k, d_model_z)")
    W_q = _check_projection(W_q, "W_q", X.shape[-1], "X", "d_k")
    W_k = _check_projection(W_k, "W_k", Z.shape[-1], source, "d_k")
    W_v = _check_projection(W_v, "W_v", Z.shape[-1], source, "d_v")
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
    return _project_and_attend(X, X, W_q, W_k, W_v, mask, source="X")


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
    if lengths.ndim != 1 or not (np.issubdtype(lengths.dtype, np.integer) or lengths.size == 0):
        raise ValueError(
            f"lengths must be a 1-D array of integers (one per sequence), got shape "
            f"{lengths.shape} and dtype {lengths.dtype}."
        )
    if lengths.size and (lengths.min() < 0 or lengths.max() > n_k):
        raise ValueError(
            f"every length must lie between 0 and n_k = {n_k}, got lengths {lengths.tolist()}."
        )
    return (np.arange(n_k) < lengths[:, None])[:, None, :]  # (batch, n_k) -> (batch, 1, n_k)


# --------------------------------------------------------------------------------------------
# Beyond the core: several heads, and attention that never holds the whole score matrix.
# --------------------------------------------------------------------------------------------


def _as_mask_matrix(mask: np.ndarray) -> np.ndarray:
    """Give a validated mask at least the two axes (n_q, n_k), adding leading 1s if needed."""
    return mask.reshape((1,) * max(0, 2 - mask.ndim) + mask.shape)


def multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=None):
    """Multi-head attention: ``n_heads`` attentions side by side, concatenated, then ``@ W_o``.

    Head ``h`` takes the contiguous columns ``h·d_k:(h+1)·d_k`` of ``W_q`` and ``W_k`` and the
    columns ``h·d_v:(h+1)·d_v`` of ``W_v``, and scales its scores by ``1 / sqrt(d_k)`` with the
    width ``d_k`` *of one head* (not the total width ``n_heads·d_k``). The heads' outputs are
    concatenated in head order, ``(..., n_q, n_heads·d_v)``, and projected by ``W_o``. This is
    the layout of "Attention Is All You Need" and of PyTorch's ``nn.MultiheadAttention``
    (``W_q`` is its ``q_proj_weight.T``, ``W_o`` its ``out_proj.weight.T``; beware that its
    boolean ``attn_mask`` is True where a query may *not* attend, the opposite of ours).

    Parameters
    ----------
    X : (..., n_q, d_model) array_like
        Tokens the queries are projected from.
    Z : (..., n_k, d_model_z) array_like
        Tokens the keys and values are projected from (pass ``X`` again for self-attention).
    W_q : (d_model, n_heads·d_k) array_like
        Query projections of all heads, side by side.
    W_k : (d_model_z, n_heads·d_k) array_like
        Key projections of all heads, side by side.
    W_v : (d_model_z, n_heads·d_v) array_like
        Value projections of all heads, side by side.
    W_o : (n_heads·d_v, d_out) array_like
        Output projection applied to the concatenated heads.
    n_heads : int
        Number of heads; must divide the widths of ``W_q``, ``W_k`` and ``W_v``.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key, **the same for every head**: give it exactly
        the shape you would give :func:`cross_attention` (it must broadcast to
        ``(..., n_q, n_k)`` with the batch dims of ``X`` and ``Z``), and a head axis is inserted
        before ``n_q``, i.e. it is applied as ``mask[..., None, :, :]`` to the weights of shape
        ``(..., n_heads, n_q, n_k)``. So :func:`causal_mask` ``(n_q, n_k)`` and
        :func:`padding_mask` ``(batch, 1, n_k)`` work unchanged with ``X`` of shape
        ``(batch, n_q, d_model)``. The mask's axes before ``n_q`` are always batch axes, never
        a head axis, so a padding mask's batch axis cannot be silently read as the head axis,
        and a mask shaped like the weights, ``(..., n_heads, n_q, n_k)``, raises a ValueError.
        To mask heads differently, split the heads yourself and call
        :func:`scaled_dot_product_attention`.

    Returns
    -------
    output : (..., n_q, d_out) ndarray
        ``concat(head_0, …, head_{n_heads-1}) @ W_o``.
    weights : (..., n_heads, n_q, n_k) ndarray
        Attention weights of every head; each row sums to 1 (or is all zero if fully masked).

    Raises
    ------
    ValueError
        If ``n_heads`` is not a positive integer; a projection's rows do not match the width of
        its input; ``W_q`` and ``W_k`` have different widths; a width is not a positive multiple
        of ``n_heads``; ``W_o``'s rows differ from ``n_heads·d_v``; the batch dims of ``X`` and
        ``Z`` do not broadcast; or the mask is not boolean or does not broadcast to
        ``(..., n_q, n_k)``.
    """
    X = _as_float_array(X, "X")
    Z = _as_float_array(Z, "Z")
    _require_ndim(X, "X", "(..., n_q, d_model)")
    _require_ndim(Z, "Z", "(..., n_k, d_model_z)")
    n_heads = _positive_int(n_heads, "n_heads")
    W_q = _check_projection(W_q, "W_q", X.shape[-1], "X", "n_heads·d_k")
    W_k = _check_projection(W_k, "W_k", Z.shape[-1], "Z", "n_heads·d_k")
    W_v = _check_projection(W_v, "W_v", Z.shape[-1], "Z", "n_heads·d_v")
    if W_q.shape[1] != W_k.shape[1]:
        raise ValueError(
            f"W_q and W_k must project to the same width n_heads·d_k: W_q gives {W_q.shape[1]} "
            f"columns, W_k gives {W_k.shape[1]}."
        )
    for name, W, width in (("W_q", W_q, "d_k"), ("W_v", W_v, "d_v")):
        if W.shape[1] == 0 or W.shape[1] % n_heads:
            raise ValueError(
                f"{name} has {W.shape[1]} columns, which n_heads = {n_heads} heads cannot "
                f"share: its width must be n_heads·{width}, a positive multiple of {n_heads}."
            )
    d_k = W_q.shape[1] // n_heads
    d_v = W_v.shape[1] // n_heads
    W_o = _as_float_array(W_o, "W_o")
    if W_o.ndim != 2:
        raise ValueError(
            f"W_o must be a matrix of shape (n_heads·d_v, d_out) = ({n_heads * d_v}, d_out), "
            f"got shape {W_o.shape}."
        )
    if W_o.shape[0] != n_heads * d_v:
        raise ValueError(
            f"W_o has {W_o.shape[0]} rows but the concatenated heads have width "
            f"n_heads·d_v = {n_heads}·{d_v} = {n_heads * d_v}: W_o must have shape "
            f"({n_heads * d_v}, d_out)."
        )
    batch = _batch_shape(("X", X), ("Z", Z))
    n_q, n_k = X.shape[-2], Z.shape[-2]
    if mask is not None:
        try:
            mask = _validate_mask(mask, (*batch, n_q, n_k))
        except ValueError as error:
            raise ValueError(
                f"{error} multi_head_attention applies one mask to every head, so give it the "
                f"shape you would give cross_attention, (..., n_q, n_k), not the weights' shape "
                f"(..., n_heads, n_q, n_k) = {(*batch, n_heads, n_q, n_k)}."
            ) from None
        mask = _as_mask_matrix(mask)[..., None, :, :]  # (..., n_q, n_k) -> (..., 1, n_q, n_k)

    Q = X @ W_q  # (..., n_q, d_model) @ (d_model, n_heads·d_k) -> (..., n_q, n_heads·d_k)
    K = Z @ W_k  # (..., n_k, d_model_z) @ (d_model_z, n_heads·d_k) -> (..., n_k, n_heads·d_k)
    V = Z @ W_v  # (..., n_k, d_model_z) @ (d_model_z, n_heads·d_v) -> (..., n_k, n_heads·d_v)
    # Split the columns into heads (head h owns columns h·d:(h+1)·d), head axis before the rows.
    # (..., n, n_heads·d) -> (..., n, n_heads, d)
    Q = Q.reshape(*Q.shape[:-1], n_heads, d_k)  # -> (..., n_q, n_heads, d_k)
    K = K.reshape(*K.shape[:-1], n_heads, d_k)  # -> (..., n_k, n_heads, d_k)
    V = V.reshape(*V.shape[:-1], n_heads, d_v)  # -> (..., n_k, n_heads, d_v)
    Q = np.swapaxes(Q, -2, -3)  # (..., n_q, n_heads, d_k) -> (..., n_heads, n_q, d_k)
    K = np.swapaxes(K, -2, -3)  # (..., n_k, n_heads, d_k) -> (..., n_heads, n_k, d_k)
    V = np.swapaxes(V, -2, -3)  # (..., n_k, n_heads, d_v) -> (..., n_heads, n_k, d_v)

    # The head axis is just one more batch axis; d_k here is one head's width.
    heads, weights = scaled_dot_product_attention(Q, K, V, mask=mask)
    # heads: (..., n_heads, n_q, d_v), weights: (..., n_heads, n_q, n_k)
    heads = np.swapaxes(heads, -2, -3)  # (..., n_heads, n_q, d_v) -> (..., n_q, n_heads, d_v)
    concat = heads.reshape(*heads.shape[:-2], n_heads * d_v)  # -> (..., n_q, n_heads·d_v)
    output = concat @ W_o  # (..., n_q, n_heads·d_v) @ (n_heads·d_v, d_out) -> (..., n_q, d_out)
    return output, weights


def _finite_or_zero(m: np.ndarray) -> np.ndarray:
    """The shift a running maximum gives to ``exp``: ``m`` itself, or 0 where ``m`` is ±inf.

    A row whose entries seen so far are all ``-inf`` has running maximum ``-inf``; shifting by
    it would compute ``-inf - (-inf) = NaN``. Shifting by 0 instead gives ``exp(-inf) = 0``.
    """
    return np.where(np.isfinite(m), m, m.dtype.type(0))  # same shape and dtype as m


def online_softmax(x, block_size):
    """Softmax over the last axis, reading the columns one block at a time.

    This is the recurrence at the heart of FlashAttention. The first pass streams over the
    blocks of ``block_size`` columns keeping, for every row, a running maximum ``m`` and a
    running sum ``denom = sum exp(x - m)`` of the columns seen so far. When a block raises the
    maximum from ``m_old`` to ``m_new``, the sum so far was computed relative to the old
    maximum and is rescaled by ``exp(m_old - m_new)`` before the block's own terms are added::

        m_new = max(m_old, max(block))
        denom_new = denom_old * exp(m_old - m_new) + sum(exp(block - m_new))

    A second pass over the blocks then writes ``exp(x - m) / denom`` with the final ``m``
    and ``denom``. (:func:`tiled_attention` needs no second pass: it rescales its running output
    instead.) No exponent is ever positive, so nothing overflows, and a row that is all
    ``-inf`` gives zeros, as in :func:`softmax`.

    Parameters
    ----------
    x : (..., n) array_like
        Scores, at least one dimension; the softmax runs over the last axis.
    block_size : int
        Number of columns read at a time (any positive integer; it need not divide ``n``,
        and may exceed it).

    Returns
    -------
    p : (..., n) ndarray
        Same shape and dtype as ``x``, equal to ``softmax(x, axis=-1)`` up to rounding.

    Raises
    ------
    ValueError
        If ``x`` has no axis or ``block_size`` is not a positive integer.
    """
    x = _as_float_array(x, "x")
    if x.ndim < 1:
        raise ValueError(f"x must have at least one axis (..., n), got shape {x.shape}.")
    block_size = _positive_int(block_size, "block_size")
    n = x.shape[-1]
    starts = range(0, n, block_size)

    m = np.full((*x.shape[:-1], 1), -np.inf, dtype=x.dtype)  # (..., 1) running maximum
    denom = np.zeros((*x.shape[:-1], 1), dtype=x.dtype)  # (..., 1) running sum of exp(x - m)
    for start in starts:
        block = x[..., start : start + block_size]  # (..., n) -> (..., b), b <= block_size
        m_new = np.maximum(m, block.max(axis=-1, keepdims=True))  # (..., 1)
        shift = _finite_or_zero(m_new)  # (..., 1)
        denom *= np.exp(m - shift)  # rescale the old sum to the new maximum (exp(-inf) = 0)
        denom += np.exp(block - shift).sum(axis=-1, keepdims=True)  # (..., b) -> (..., 1)
        m = m_new

    shift = _finite_or_zero(m)  # (..., 1)
    p = np.zeros_like(x)  # (..., n); an all -inf row (denom = 0) stays zero
    for start in starts:
        block = x[..., start : start + block_size]  # (..., b)
        e = np.exp(block - shift)  # (..., b)
        np.divide(e, denom, out=p[..., start : start + block_size], where=denom > 0)
    return p


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
    if K.shape[-1] != Q.shape[-1]:
        raise ValueError(
            f"Q's d_k ({Q.shape[-1]}) must equal K's d_k ({K.shape[-1]}): "
            f"got Q of shape {Q.shape} and K of shape {K.shape}."
        )
    if V.shape[-2] != K.shape[-2]:
        raise ValueError(
            f"K and V must have the same number of rows n_k: K has {K.shape[-2]} "
            f"(shape {K.shape}), V has {V.shape[-2]} (shape {V.shape})."
        )
    batch = _batch_shape(("Q", Q), ("K", K), ("V", V))
    return Q, K, V, batch, _common_dtype(Q, K, V)


def _finite_real(value, name: str) -> float:
    """``value`` as a Python float, or a ValueError if it is not a finite real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}.")
    return float(value)


def tiled_attention(Q, K, V, block_size, mask=None, scale=None, *, q_block_size=None):
    """Scaled dot-product attention computed block by block, FlashAttention style.

    Gives the same output as :func:`scaled_dot_product_attention` but never holds the
    ``(n_q, n_k)`` score matrix: it walks over the keys and values in blocks of ``block_size``
    rows, and (optionally) over the queries in blocks of ``q_block_size`` rows, so the largest
    temporary is one ``(..., q_block_size, block_size)`` block of scores. For every query it
    keeps

    - ``m``     (..., n_q, 1)    the largest score seen so far,
    - ``denom`` (..., n_q, 1)    the running softmax denominator ``sum exp(score - m)``,
    - ``acc``   (..., n_q, d_v)  the running *un-normalised* output ``sum exp(score - m) v``,

    and when a block raises the maximum from ``m_old`` to ``m_new`` it multiplies ``denom`` and
    ``acc`` by ``exp(m_old - m_new)`` before adding the block's terms (see
    :func:`online_softmax`). At the end ``output = acc / denom``. A query whose keys
    are all masked keeps ``denom = 0`` and gets a zero output row, without NaN or warnings.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
        Queries.
    K : (..., n_k, d_k) array_like
        Keys.
    V : (..., n_k, d_v) array_like
        Values.
    block_size : int
        Number of keys (and values) per block.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key, broadcast as in
        :func:`scaled_dot_product_attention`; only one block of it is expanded at a time.
    scale : float, optional
        Factor the scores are multiplied by; defaults to ``1 / sqrt(d_k)``.
    q_block_size : int, optional
        Number of queries per block; the default ``None`` takes all queries at once, so the
        score block is ``(..., n_q, block_size)``. Set it to bound the memory at
        ``q_block_size × block_size`` scores whatever ``n_q``.

    Returns
    -------
    output : (..., n_q, d_v) ndarray
        Attention output, in the inputs' dtype (float16 is computed in float32, as in
        :func:`scaled_dot_product_attention`); no weights are returned, since they are never
        all in memory.

    Raises
    ------
    ValueError
        As :func:`scaled_dot_product_attention`, and if ``block_size`` or ``q_block_size`` is
        not a positive integer.
    """
    Q, K, V, batch, dtype = _check_qkv(Q, K, V)
    block_size = _positive_int(block_size, "block_size")
    n_q, d_k = Q.shape[-2:]
    n_k, d_v = V.shape[-2:]
    q_block_size = n_q if q_block_size is None else _positive_int(q_block_size, "q_block_size")
    scale = 1.0 / np.sqrt(d_k) if scale is None else _finite_real(scale, "scale")
    if mask is not None:
        mask = _as_mask_matrix(_validate_mask(mask, (*batch, n_q, n_k)))
        # A broadcast view, not a copy, so that blocks can be sliced from it.
        mask = np.broadcast_to(mask, (*mask.shape[:-2], n_q, n_k))  # (..., n_q, n_k) view

    # As in scaled_dot_product_attention, float16 is computed in float32 (NumPy has no float16
    # matmul kernels, and a large scale would overflow float16) and rounded back at the end.
    work = np.result_type(dtype, np.float32)
    # Scale the (..., n_q, d_k) queries once, not every block of scores.
    Q = np.multiply(Q, scale, dtype=work)  # (..., n_q, d_k), a new array
    # A view with all the batch dims (say V has some that Q and K lack), so every score block
    # has the shape (*batch, b_q, b_k) of the running statistics.
    Q = np.broadcast_to(Q, (*batch, n_q, d_k))  # (..., n_q, d_k) view, nothing copied
    K_T = np.swapaxes(K.astype(work, copy=False), -1, -2)  # (..., n_k, d_k) -> (..., d_k, n_k)
    V = V.astype(work, copy=False)
    output = np.zeros((*batch, n_q, d_v), dtype=work)  # fully masked queries stay zero
    neg_inf = work.type(-np.inf)
    # One score buffer for every full block, allocated once: (..., b_q, b_k).
    b_q, b_k = min(q_block_size, n_q), min(block_size, n_k)
    scores = np.empty((*batch, b_q, b_k), dtype=work)

    for q0 in range(0, n_q, q_block_size):
        q1 = min(q0 + q_block_size, n_q)
        Q_blk = Q[..., q0:q1, :]  # (..., n_q, d_k) -> (..., b_q, d_k)
        m = np.full((*batch, q1 - q0, 1), neg_inf, dtype=work)  # (..., b_q, 1)
        denom = np.zeros((*batch, q1 - q0, 1), dtype=work)  # (..., b_q, 1)
        acc = np.zeros((*batch, q1 - q0, d_v), dtype=work)  # (..., b_q, d_v)
        for k0 in range(0, n_k, block_size):
            k1 = min(k0 + block_size, n_k)
            # A view of the buffer; the last block of keys may be narrower: a fresh array then.
            S = scores[..., : q1 - q0, :] if k1 - k0 == b_k else None
            # (..., b_q, d_k) @ (..., d_k, b_k) -> (..., b_q, b_k)
            S = np.matmul(Q_blk, K_T[..., k0:k1], out=S)
            if mask is not None:
                np.copyto(S, neg_inf, where=~mask[..., q0:q1, k0:k1])  # (..., b_q, b_k)
            m_new = np.maximum(m, S.max(axis=-1, keepdims=True))  # (..., b_q, 1)
            shift = _finite_or_zero(m_new)  # (..., b_q, 1); 0 for rows still all -inf
            S -= shift
            np.exp(S, out=S)  # (..., b_q, b_k) un-normalised weights, every exponent <= 0
            alpha = np.exp(m - shift)  # (..., b_q, 1) rescale factor; exp(-inf) = 0
            denom *= alpha
            denom += S.sum(axis=-1, keepdims=True)  # (..., b_q, b_k) -> (..., b_q, 1)
            acc *= alpha
            acc += S @ V[..., k0:k1, :]  # (..., b_q, b_k) @ (..., b_k, d_v) -> (..., b_q, d_v)
            m = m_new
        np.divide(acc, denom, out=output[..., q0:q1, :], where=denom > 0)  # (..., b_q, d_v)
    return output.astype(dtype, copy=False)  # (..., n_q, d_v)


# --------------------------------------------------------------------------------------------
# The backward pass (notebook 09): gradients through softmax and through attention, and a
# numerical gradient to check them with.
# --------------------------------------------------------------------------------------------


def _softmax_backward(p: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    """``p * (g - sum(p * g, axis))`` without validation; a row of zero weights gives zeros."""
    dot = np.sum(p * g, axis=axis, keepdims=True)  # (..., n) -> (..., 1): pᵀg per slice
    return p * (g - dot)  # (..., n): diag(p) g - p pᵀ g, the Jacobian never formed


def softmax_backward(weights, grad_weights, axis: int = -1) -> np.ndarray:
    """Gradient with respect to the scores, given the softmax weights and their gradient.

    For one slice ``p = softmax(s)`` along ``axis`` the Jacobian is ``diag(p) - p pᵀ``, so
    the gradient that reaches the scores is ``(diag(p) - p pᵀ) g = p * (g - pᵀg)`` -- computed
    here without forming the Jacobian. A slice of all-zero weights (a fully masked row) gives
    zeros.

    Parameters
    ----------
    weights : (...) array_like
        Softmax output ``p`` along ``axis``, e.g. attention weights ``(..., n_q, n_k)``.
    grad_weights : (...) array_like
        Gradient of the loss with respect to the weights, same shape as ``weights``.
    axis : int, optional
        Axis the softmax normalised (default: the last).

    Returns
    -------
    grad_scores : (...) ndarray
        Same shape as ``weights``; dtype of ``weights`` and ``grad_weights`` promoted (float16
        is computed in float32 and rounded back; integers become float64).

    Raises
    ------
    ValueError
        If the two arrays' shapes differ or ``axis`` is out of range.
    """
    p = _as_float_array(weights, "weights")
    g = _as_float_array(grad_weights, "grad_weights")
    if p.shape != g.shape:
        raise ValueError(
            f"grad_weights must have the weights' shape: got weights of shape {p.shape} and "
            f"grad_weights of shape {g.shape}."
        )
    if not -p.ndim <= axis < max(p.ndim, 1) or p.ndim == 0:
        raise ValueError(f"axis {axis} is out of range for an array of shape {p.shape}.")
    dtype = _common_dtype(p, g)
    work = np.result_type(dtype, np.float32)
    result = _softmax_backward(p.astype(work, copy=False), g.astype(work, copy=False), axis)
    return result.astype(dtype, copy=False)


def _sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added to an input of ``shape``.

    An input that was broadcast across a batch axis (say one ``K`` shared by every batch
    element) was used once per element there, so its gradient is the sum over that axis.
    """
    extra = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(extra))) if extra else grad  # drop the added leading axes
    ones = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(axis=ones, keepdims=True) if ones else grad  # sizes 1 that were stretched


def attention_backward(Q, K, V, grad_output, mask=None, scale=None):
    """Gradients of scaled dot-product attention with respect to ``Q``, ``K`` and ``V``.

    For ``output = scaled_dot_product_attention(Q, K, V, mask, scale)[0]`` and the gradient
    ``dO`` of a loss with respect to it, the chain rule through ``S = scale · Q Kᵀ``,
    ``P = softmax(S)`` (masked entries ``-inf``) and ``output = P V`` gives::

        dV = Pᵀ dO                       (..., n_k, n_q) @ (..., n_q, d_v) -> (..., n_k, d_v)
        dP = dO Vᵀ                       (..., n_q, d_v) @ (..., d_v, n_k) -> (..., n_q, n_k)
        dS = P * (dP - rowsum(P * dP))   softmax_backward, row by row
        dQ = scale · dS K                (..., n_q, n_k) @ (..., n_k, d_k) -> (..., n_q, d_k)
        dK = scale · dSᵀ Q               (..., n_k, n_q) @ (..., n_q, d_k) -> (..., n_k, d_k)

    A masked key has weight 0, so it receives no gradient from that query; a query whose keys
    are all masked has a zero output row and gets zero gradients, never NaN. An input that was
    broadcast over a batch axis gets the sum of its gradients over that axis, so every gradient
    has its input's shape.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
        Queries.
    K : (..., n_k, d_k) array_like
        Keys.
    V : (..., n_k, d_v) array_like
        Values.
    grad_output : (..., n_q, d_v) array_like
        Gradient of the loss with respect to the attention output; its shape is the output's,
        batch dimensions of ``Q``, ``K`` and ``V`` broadcast.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key, as in :func:`scaled_dot_product_attention`.
    scale : float, optional
        Factor the scores are multiplied by; defaults to ``1 / sqrt(d_k)``.

    Returns
    -------
    grad_Q : (..., n_q, d_k) ndarray
        Same shape as ``Q``.
    grad_K : (..., n_k, d_k) ndarray
        Same shape as ``K``.
    grad_V : (..., n_k, d_v) ndarray
        Same shape as ``V``. All three have the promoted dtype of ``Q``, ``K``, ``V`` and
        ``grad_output`` (float16 is computed in float32, integers in float64).

    Raises
    ------
    ValueError
        As :func:`scaled_dot_product_attention`, and if ``grad_output`` does not have the
        output's shape ``(..., n_q, d_v)``.
    """
    Q, K, V, batch, dtype = _check_qkv(Q, K, V)
    n_q, d_k = Q.shape[-2:]
    n_k, d_v = V.shape[-2:]
    dO = _as_float_array(grad_output, "grad_output")
    if dO.shape != (*batch, n_q, d_v):
        raise ValueError(
            f"grad_output must have the attention output's shape (..., n_q, d_v) = "
            f"{(*batch, n_q, d_v)}, got shape {dO.shape}."
        )
    scale = 1.0 / np.sqrt(d_k) if scale is None else _finite_real(scale, "scale")
    if mask is not None:
        mask = _validate_mask(mask, (*batch, n_q, n_k))
    dtype = np.result_type(dtype, dO.dtype)
    work = np.result_type(dtype, np.float32)  # float16 in float32, as the forward pass
    Q_w, K_w, V_w, dO = (a.astype(work, copy=False) for a in (Q, K, V, dO))

    # Forward again, keeping the weights: the same steps as scaled_dot_product_attention.
    K_t = np.swapaxes(K_w, -1, -2)  # (..., n_k, d_k) -> (..., d_k, n_k)
    scores = (Q_w * work.type(scale)) @ K_t  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    if mask is not None:
        full = np.broadcast_shapes(mask.shape, scores.shape)
        if full != scores.shape:  # the mask carries batch axes that Q and K do not
            scores = np.broadcast_to(scores, full).copy()
        np.copyto(scores, work.type(-np.inf), where=~mask)  # masked keys: weight 0
    P = _softmax_inplace(scores, axis=-1)  # (..., n_q, n_k); fully masked rows are zeros

    P_t = np.swapaxes(P, -1, -2)  # (..., n_q, n_k) -> (..., n_k, n_q)
    grad_V = P_t @ dO  # (..., n_k, n_q) @ (..., n_q, d_v) -> (..., n_k, d_v)
    grad_P = dO @ np.swapaxes(V_w, -1, -2)  # (..., n_q, d_v) @ (..., d_v, n_k) -> (..., n_q, n_k)
    grad_S = _softmax_backward(P, grad_P, axis=-1)  # (..., n_q, n_k); 0 where P is 0
    grad_S *= work.type(scale)  # through S = scale · Q Kᵀ
    grad_Q = grad_S @ K_w  # (..., n_q, n_k) @ (..., n_k, d_k) -> (..., n_q, d_k)
    grad_S_t = np.swapaxes(grad_S, -1, -2)  # (..., n_q, n_k) -> (..., n_k, n_q)
    grad_K = grad_S_t @ Q_w  # (..., n_k, n_q) @ (..., n_q, d_k) -> (..., n_k, d_k)

    grads = (_sum_to_shape(g, a.shape) for g, a in ((grad_Q, Q), (grad_K, K), (grad_V, V)))
    return tuple(g.astype(dtype, copy=False) for g in grads)  # fresh arrays, not views


def numerical_gradient(f, x, eps: float = 1e-6) -> np.ndarray:
    """Gradient of a scalar function by central differences, one entry of ``x`` at a time.

    ``grad[i] ≈ (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps)``. Everything is computed in
    float64. The error has two parts: truncation, about ``eps² · |f'''| / 6`` (≈ 1e-13 for
    ``eps = 1e-6`` and third derivatives of order one), and rounding, about
    ``1e-16 · F / eps`` where ``F`` is the size of the terms ``f`` adds up (≈ 1e-10 · F).
    ``eps = 1e-6`` keeps both small: for attention on a few rows of standard-normal entries
    the numerical and the exact gradient differ by about 1e-9 (gradients of order one). A
    real mistake (a missing term, a wrong scale, a transpose) is off by 1e-2 or more. So
    compare with ``rtol = 1e-5`` and ``atol = 1e-6`` times the gradient's largest entry: a
    thousand times the rounding, far below any mistake. In float32 the rounding alone would
    be ``1e-7 · F / eps``: do not check float32 functions this way.

    It costs two evaluations of ``f`` per entry of ``x``: use small arrays.

    Parameters
    ----------
    f : callable
        ``f(x) -> float``, a scalar function of an array shaped like ``x``. It receives a
        perturbed float64 copy of ``x`` (never ``x`` itself) and must not keep it.
    x : (...) array_like
        Point at which to differentiate; not modified.
    eps : float, optional
        Step of the central difference (default ``1e-6``).

    Returns
    -------
    grad : (...) ndarray of float64
        Same shape as ``x``.

    Raises
    ------
    ValueError
        If ``eps`` is not a positive finite number, or ``f`` does not return a scalar.
    """
    eps = _finite_real(eps, "eps")
    if eps <= 0:
        raise ValueError(f"eps must be a positive finite number, got {eps!r}.")
    point = _as_float_array(x, "x").astype(np.float64, copy=True)  # perturbed in place below
    grad = np.zeros(point.shape)
    flat = point.reshape(-1)  # a view: writing flat[i] perturbs point
    for i in range(flat.size):
        original = flat[i]
        values = []
        for step in (eps, -eps):
            flat[i] = original + step
            value = np.asarray(f(point))
            if value.ndim != 0:
                raise ValueError(
                    f"f must return a scalar (the loss), got an array of shape {value.shape}."
                )
            values.append(float(value))
        flat[i] = original
        grad.flat[i] = (values[0] - values[1]) / (2 * eps)
    return grad


def numerical_attention_gradients(Q, K, V, grad_output, mask=None, scale=None, eps=1e-6):
    """Gradients of attention with respect to ``Q``, ``K``, ``V`` by central differences.

    The loss ``L = sum(output * grad_output)`` has ``dL/d output = grad_output``, so its
    gradients are exactly what :func:`attention_backward` returns. This differentiates ``L``
    with :func:`numerical_gradient` (see there for the step and the tolerance), in float64,
    with the reference :func:`scaled_dot_product_attention` as the forward pass. It costs two
    forward passes per entry of ``Q``, ``K`` and ``V``: use a few rows and columns.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
    K : (..., n_k, d_k) array_like
    V : (..., n_k, d_v) array_like
    grad_output : (..., n_q, d_v) array_like
        Gradient of the loss with respect to the attention output.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key.
    scale : float, optional
        Defaults to ``1 / sqrt(d_k)``.
    eps : float, optional
        Step of the central differences.

    Returns
    -------
    grad_Q : (..., n_q, d_k) ndarray of float64
    grad_K : (..., n_k, d_k) ndarray of float64
    grad_V : (..., n_k, d_v) ndarray of float64

    Raises
    ------
    ValueError
        As :func:`attention_backward`.
    """
    Q, K, V, batch, _ = _check_qkv(Q, K, V)
    Q, K, V = (a.astype(np.float64) for a in (Q, K, V))  # fresh float64 copies
    dO = _as_float_array(grad_output, "grad_output").astype(np.float64)
    if dO.shape != (*batch, Q.shape[-2], V.shape[-1]):
        raise ValueError(
            f"grad_output must have the attention output's shape (..., n_q, d_v) = "
            f"{(*batch, Q.shape[-2], V.shape[-1])}, got shape {dO.shape}."
        )

    def loss(q, k, v) -> float:
        output, _ = scaled_dot_product_attention(q, k, v, mask=mask, scale=scale)
        return float(np.sum(output * dO))  # (..., n_q, d_v) -> scalar

    grad_Q = numerical_gradient(lambda q: loss(q, K, V), Q, eps)
    grad_K = numerical_gradient(lambda k: loss(Q, k, V), K, eps)
    grad_V = numerical_gradient(lambda v: loss(Q, K, v), V, eps)
    return grad_Q, grad_K, grad_V
