"""The forward pass of attention, in the order the course teaches it (notebooks 01-07).

Scores, scaling, softmax, the weighted sum, scaled dot-product attention, self- and
cross-attention, masks and multi-head attention. Shape legend and conventions as in
:mod:`attention_course.reference`, which re-exports every public name here.
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    _as_float_array,
    _as_mask_matrix,
    _batch_shape,
    _check_qkv,
    _positive_int,
    _require_ndim,
    _require_same_d_k,
    _scale_or_default,
    _validate_mask,
    _working_dtype,
)

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
    _require_same_d_k(Q, K)
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
    scale = _scale_or_default(scale, d_k)
    if mask is not None:
        mask = _validate_mask(mask, (*batch, n_q, n_k))
    work = _working_dtype(dtype)
    weights = _masked_weights(Q.astype(work, copy=False), K.astype(work, copy=False), scale, mask)
    output = weights @ V.astype(work, copy=False)  # (..., n_q, n_k) @ (..., n_k, d_v)
    output, weights = output.astype(dtype, copy=False), weights.astype(dtype, copy=False)
    return output, weights  # output: (..., n_q, d_v), weights: (..., n_q, n_k)


def _masked_weights(Q, K, scale: float, mask) -> np.ndarray:
    """``softmax(scale · Q Kᵀ)`` with masked keys at ``-inf``: the attention weights.

    ``Q`` (..., n_q, d_k) and ``K`` (..., n_k, d_k) are validated arrays of the working dtype
    (:func:`._validation._working_dtype`), ``mask`` a validated boolean mask or None. Returns
    the (..., n_q, n_k) weights in that dtype, with zero rows for fully masked queries; used
    by :func:`scaled_dot_product_attention` and again by the backward pass.
    """
    work = Q.dtype
    K_t = np.swapaxes(K, -1, -2)  # (..., n_k, d_k) -> (..., d_k, n_k)
    # Scale the n_q x d_k queries rather than the n_q x n_k scores: fewer multiplications.
    scores = (Q * work.type(scale)) @ K_t  # (..., n_q, d_k) @ (..., d_k, n_k) -> (..., n_q, n_k)
    if mask is not None:
        full = np.broadcast_shapes(mask.shape, scores.shape)
        if full != scores.shape:  # the mask carries batch axes that Q and K do not
            scores = np.broadcast_to(scores, full).copy()
        np.copyto(scores, work.type(-np.inf), where=~mask)  # masked keys get no weight
    # scores is a fresh array owned here: normalise it in place.
    return _softmax_inplace(scores, axis=-1)


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
# Beyond the core: several heads (notebook 07).
# --------------------------------------------------------------------------------------------


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
