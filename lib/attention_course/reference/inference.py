"""Attention at inference (notebook 10): the KV cache, grouped-query attention, sliding windows.

A language model generates one token at a time. :func:`decode_step` attends with the one new
token's query to the keys and values of every earlier token, kept in a cache, instead of
recomputing causal attention over the whole sequence; :func:`grouped_query_attention` lets
several query heads share one key/value head (fewer heads to cache); :func:`sliding_window_mask`
limits each query to the last ``window`` positions (a cache that never grows past ``window``).

Shape legend and conventions as in :mod:`attention_course.reference`, plus ``n_kv_heads`` (the
number of key/value heads, which divides ``n_heads``) and ``t`` (the number of cached tokens).
"""

from __future__ import annotations

import numpy as np

from ._validation import _as_float_array, _positive_int, _require_ndim
from .forward import multi_head_attention, scaled_dot_product_attention


def _kv_grouping(n_heads, n_kv_heads) -> tuple[int, int, int]:
    """``(n_heads, n_kv_heads, group)`` checked: ``group = n_heads // n_kv_heads`` query heads
    share each key/value head."""
    n_heads = _positive_int(n_heads, "n_heads")
    n_kv_heads = n_heads if n_kv_heads is None else _positive_int(n_kv_heads, "n_kv_heads")
    if n_heads % n_kv_heads:
        raise ValueError(
            f"n_kv_heads = {n_kv_heads} must divide n_heads = {n_heads}: every key/value head "
            f"is shared by the same number of query heads (n_heads // n_kv_heads)."
        )
    return n_heads, n_kv_heads, n_heads // n_kv_heads


def _kv_width(W, name: str, n_kv_heads: int, width: str) -> int:
    """One kv head's width (``d_k`` or ``d_v``) from the columns of ``W_k`` or ``W_v``."""
    W = np.asarray(W)
    if W.ndim != 2 or W.shape[1] == 0 or W.shape[1] % n_kv_heads:
        raise ValueError(
            f"{name} must have shape (d_model, n_kv_heads·{width}) with n_kv_heads = "
            f"{n_kv_heads}, got shape {W.shape}."
        )
    return W.shape[1] // n_kv_heads


def _repeat_heads(W, name: str, n_kv_heads: int, group: int) -> np.ndarray:
    """The columns of each kv head repeated for the ``group`` query heads that share it.

    ``W`` (d_model, n_kv_heads·d) -> (d_model, n_heads·d), with query head ``h`` reading kv
    head ``h // group`` (Llama's ``repeat_kv``, PyTorch's ``enable_gqa``): kv heads
    ``[a, b]`` become ``[a, a, b, b]``, never ``[a, b, a, b]``.
    """
    W = _as_float_array(W, name)
    d = W.shape[1] // n_kv_heads
    heads = W.reshape(W.shape[0], n_kv_heads, d)  # (d_model, n_kv_heads·d) -> (.., n_kv_heads, d)
    heads = np.repeat(heads, group, axis=1)  # -> (d_model, n_heads, d)
    return heads.reshape(W.shape[0], n_kv_heads * group * d)  # -> (d_model, n_heads·d)


def grouped_query_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv_heads, mask=None):
    """Multi-head attention in which groups of query heads share one key/value head.

    Query head ``h`` uses key/value head ``h // (n_heads // n_kv_heads)``, the grouping of
    PyTorch's ``scaled_dot_product_attention(..., enable_gqa=True)`` and of Llama's
    ``repeat_kv``. ``n_kv_heads = n_heads`` is :func:`multi_head_attention` (identical output);
    ``n_kv_heads = 1`` is multi-query attention. Scores are scaled by ``1 / sqrt(d_k)`` with
    ``d_k`` the width of one head.

    Parameters
    ----------
    X : (..., n_q, d_model) array_like
        Tokens the queries are projected from.
    Z : (..., n_k, d_model_z) array_like
        Tokens the keys and values are projected from (``X`` again for self-attention).
    W_q : (d_model, n_heads·d_k) array_like
        Query projections of all query heads, side by side.
    W_k : (d_model_z, n_kv_heads·d_k) array_like
        Key projections of the key/value heads, side by side.
    W_v : (d_model_z, n_kv_heads·d_v) array_like
        Value projections of the key/value heads, side by side.
    W_o : (n_heads·d_v, d_out) array_like
        Output projection applied to the concatenated query heads.
    n_heads : int
        Number of query heads.
    n_kv_heads : int
        Number of key/value heads; must divide ``n_heads``.
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key, the same for every head (as in
        :func:`multi_head_attention`).

    Returns
    -------
    output : (..., n_q, d_out) ndarray
    weights : (..., n_heads, n_q, n_k) ndarray
        Attention weights of every query head.

    Raises
    ------
    ValueError
        If ``n_kv_heads`` does not divide ``n_heads``, a width is not a multiple of its number
        of heads, the query and key heads disagree on ``d_k``, or anything
        :func:`multi_head_attention` rejects.
    """
    n_heads, n_kv_heads, group = _kv_grouping(n_heads, n_kv_heads)
    W_q_arr = np.asarray(W_q)
    if W_q_arr.ndim != 2 or W_q_arr.shape[1] == 0 or W_q_arr.shape[1] % n_heads:
        raise ValueError(
            f"W_q must have shape (d_model, n_heads·d_k) with n_heads = {n_heads}, "
            f"got shape {W_q_arr.shape}."
        )
    d_k = _kv_width(W_k, "W_k", n_kv_heads, "d_k")
    _kv_width(W_v, "W_v", n_kv_heads, "d_v")
    if W_q_arr.shape[1] // n_heads != d_k:
        raise ValueError(
            f"A query head and a key head must have the same width d_k: W_q gives "
            f"{W_q_arr.shape[1]} / {n_heads} = {W_q_arr.shape[1] // n_heads} per query head, "
            f"W_k gives {d_k} per key/value head."
        )
    W_k = _repeat_heads(W_k, "W_k", n_kv_heads, group)  # -> (d_model_z, n_heads·d_k)
    W_v = _repeat_heads(W_v, "W_v", n_kv_heads, group)  # -> (d_model_z, n_heads·d_v)
    return multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads, mask=mask)


def _split_heads(Y: np.ndarray, n_heads: int) -> np.ndarray:
    """(..., n, n_heads·d) -> (..., n_heads, n, d): head ``h`` owns columns ``h·d:(h+1)·d``."""
    Y = Y.reshape(*Y.shape[:-1], n_heads, Y.shape[-1] // n_heads)  # -> (..., n, n_heads, d)
    return np.swapaxes(Y, -2, -3)  # -> (..., n_heads, n, d)


def _check_cache(cache, n_kv_heads: int, d_k: int, d_v: int):
    """The pair (K_cache, V_cache) as arrays, or None; a ValueError naming what disagrees."""
    if cache is None:
        return None
    if not isinstance(cache, (tuple, list)) or len(cache) != 2:
        raise ValueError(
            "cache must be None (before the first token) or the pair (K_cache, V_cache) that "
            f"the previous decode_step returned, got {type(cache).__name__}."
        )
    K_cache = _as_float_array(cache[0], "K_cache")
    V_cache = _as_float_array(cache[1], "V_cache")
    for name, arr, width, d in (("K_cache", K_cache, "d_k", d_k), ("V_cache", V_cache, "d_v", d_v)):
        if arr.ndim < 3 or arr.shape[-3] != n_kv_heads or arr.shape[-1] != d:
            raise ValueError(
                f"{name} must have shape (..., n_kv_heads, t, {width}) = (..., {n_kv_heads}, t, "
                f"{d}), got shape {arr.shape}."
            )
    if K_cache.shape[-2] != V_cache.shape[-2]:
        raise ValueError(
            f"K_cache and V_cache must hold the same number of tokens t: K_cache has "
            f"{K_cache.shape[-2]} (shape {K_cache.shape}), V_cache has {V_cache.shape[-2]} "
            f"(shape {V_cache.shape})."
        )
    return K_cache, V_cache


def _append(cache_part, new: np.ndarray) -> np.ndarray:
    """A new array: the cached (..., n_kv_heads, t, d) with ``new`` (..., n_kv_heads, 1, d)
    after it along the token axis, -> (..., n_kv_heads, t + 1, d). The cache is not modified."""
    if cache_part is None:
        return new.copy()
    try:
        batch = np.broadcast_shapes(cache_part.shape[:-3], new.shape[:-3])
    except ValueError:
        raise ValueError(
            f"The cache's batch shape {cache_part.shape[:-3]} does not broadcast with x_t's "
            f"batch shape {new.shape[:-3]}."
        ) from None
    cache_part = np.broadcast_to(cache_part, (*batch, *cache_part.shape[-3:]))
    new = np.broadcast_to(new, (*batch, *new.shape[-3:]))
    return np.concatenate([cache_part, new], axis=-2)  # token axis: t -> t + 1


def decode_step(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    """Generate with a KV cache: one new token attends to every cached token and to itself.

    The new token's key and value are appended to the cache *before* attending, so the token
    sees itself; no mask is needed, since a cache only ever holds earlier tokens. Running it
    for tokens ``0 … n-1`` gives exactly the rows of causal :func:`grouped_query_attention`
    (or :func:`multi_head_attention` when ``n_kv_heads = n_heads``) of the whole sequence.

    Parameters
    ----------
    x_t : (..., 1, d_model) array_like
        The new token.
    cache : None or tuple of ((..., n_kv_heads, t, d_k), (..., n_kv_heads, t, d_v)) arrays
        ``None`` before the first token, then the ``(K_cache, V_cache)`` pair returned by the
        previous step: the keys and values of the ``t`` earlier tokens, head by head.
    W_q : (d_model, n_heads·d_k) array_like
    W_k : (d_model, n_kv_heads·d_k) array_like
    W_v : (d_model, n_kv_heads·d_v) array_like
    W_o : (n_heads·d_v, d_out) array_like
        Projections, laid out as in :func:`grouped_query_attention`.
    n_heads : int
        Number of query heads.
    n_kv_heads : int, optional
        Number of key/value heads (divides ``n_heads``); ``None`` means ``n_heads``.

    Returns
    -------
    output_t : (..., 1, d_out) ndarray
        The new token's attention output.
    cache : tuple of ((..., n_kv_heads, t + 1, d_k), (..., n_kv_heads, t + 1, d_v)) ndarray
        New arrays with one more position; the input pair is not modified.

    Raises
    ------
    ValueError
        If ``x_t`` is not one token, the cache's shapes do not fit the heads and widths, or
        anything :func:`grouped_query_attention` rejects.
    """
    n_heads, n_kv_heads, group = _kv_grouping(n_heads, n_kv_heads)
    x_t = _as_float_array(x_t, "x_t")
    _require_ndim(x_t, "x_t", "(..., 1, d_model)")
    if x_t.shape[-2] != 1:
        raise ValueError(
            f"x_t must be one new token, shape (..., 1, d_model), got shape {x_t.shape}: "
            "decode_step appends one position to the cache per call."
        )
    d_k = _kv_width(W_k, "W_k", n_kv_heads, "d_k")
    d_v = _kv_width(W_v, "W_v", n_kv_heads, "d_v")
    cache = _check_cache(cache, n_kv_heads, d_k, d_v)
    # One token's projections through the same validation as the whole sequence's (mask-free).
    W_q, W_k, W_v, W_o = (_as_float_array(W, name) for W, name in
                          ((W_q, "W_q"), (W_k, "W_k"), (W_v, "W_v"), (W_o, "W_o")))  # fmt: skip
    if W_q.ndim != 2 or W_q.shape[0] != x_t.shape[-1] or W_q.shape[1] != n_heads * d_k:
        raise ValueError(
            f"W_q must have shape (d_model, n_heads·d_k) = ({x_t.shape[-1]}, {n_heads * d_k}), "
            f"got shape {W_q.shape}."
        )
    for name, W in (("W_k", W_k), ("W_v", W_v)):
        if W.shape[0] != x_t.shape[-1]:
            raise ValueError(
                f"{name} has {W.shape[0]} rows but x_t has width {x_t.shape[-1]}: {name} must "
                f"have shape ({x_t.shape[-1]}, n_kv_heads·width)."
            )
    if W_o.ndim != 2 or W_o.shape[0] != n_heads * d_v:
        raise ValueError(
            f"W_o must have shape (n_heads·d_v, d_out) = ({n_heads * d_v}, d_out), "
            f"got shape {W_o.shape}."
        )
    q = _split_heads(x_t @ W_q, n_heads)  # (..., 1, n_heads·d_k) -> (..., n_heads, 1, d_k)
    k = _split_heads(x_t @ W_k, n_kv_heads)  # (..., 1, n_kv·d_k) -> (..., n_kv_heads, 1, d_k)
    v = _split_heads(x_t @ W_v, n_kv_heads)  # (..., 1, n_kv·d_v) -> (..., n_kv_heads, 1, d_v)
    dtype = np.result_type(q, k, v, *(() if cache is None else cache))
    k, v = k.astype(dtype, copy=False), v.astype(dtype, copy=False)
    K_all = _append(None if cache is None else cache[0], k)  # (..., n_kv_heads, t + 1, d_k)
    V_all = _append(None if cache is None else cache[1], v)  # (..., n_kv_heads, t + 1, d_v)
    # Query head h reads kv head h // group: repeat each kv head for its group.
    K_heads = np.repeat(K_all, group, axis=-3)  # -> (..., n_heads, t + 1, d_k)
    V_heads = np.repeat(V_all, group, axis=-3)  # -> (..., n_heads, t + 1, d_v)
    heads, _ = scaled_dot_product_attention(q, K_heads, V_heads)  # (..., n_heads, 1, d_v)
    heads = np.swapaxes(heads, -2, -3)  # (..., n_heads, 1, d_v) -> (..., 1, n_heads, d_v)
    concat = heads.reshape(*heads.shape[:-2], n_heads * d_v)  # -> (..., 1, n_heads·d_v)
    output = concat @ W_o  # (..., 1, n_heads·d_v) @ (n_heads·d_v, d_out) -> (..., 1, d_out)
    return output, (K_all, V_all)


def sliding_window_mask(n_q, n_k, window) -> np.ndarray:
    """Causal mask limited to the last ``window`` positions: query ``i`` sees keys
    ``i - window + 1 … i``.

    Same top-left corner convention as :func:`causal_mask` (query ``i`` is position ``i``);
    ``window >= n_q`` gives exactly :func:`causal_mask`. With such a mask a KV cache only ever
    needs the last ``window`` keys and values.

    Parameters
    ----------
    n_q : int
        Number of queries.
    n_k : int
        Number of keys.
    window : int
        How many positions each query sees, itself included (a positive integer).

    Returns
    -------
    mask : (n_q, n_k) ndarray of bool
        True where ``i - window < j <= i``.

    Raises
    ------
    ValueError
        If ``n_q``, ``n_k`` or ``window`` is not a positive integer.
    """
    n_q = _positive_int(n_q, "n_q")
    n_k = _positive_int(n_k, "n_k")
    window = _positive_int(window, "window")
    i = np.arange(n_q)[:, None]  # (n_q, 1)
    j = np.arange(n_k)[None, :]  # (1, n_k)
    return (j <= i) & (j > i - window)  # (n_q, n_k)
