"""A deliberately naive, loop-based attention, written only to check the vectorised reference.

Nothing here imports :mod:`attention_course`: every number is computed with plain Python loops
and :mod:`math` on Python floats (float64), one batch index, one query and one key at a time.
It is slow and obviously correct, which is the point: ``tests/test_reference.py`` (and
``tests/test_backward.py``, for the gradients) compares :mod:`attention_course.reference`
with it.

Shape legend: ``...`` leading batch dimensions (broadcast like NumPy), ``n_q`` queries,
``n_k`` keys and values, ``d_k`` query/key width, ``d_v`` value width, ``d_model`` /
``d_model_z`` widths of the token vectors ``X`` / ``Z``.

Every function returns float64 (or bool for the masks), whatever the input dtype.
"""

from __future__ import annotations

import math

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
    "softmax_backward",
    "attention_backward",
]


def _batch_shape(*arrays: np.ndarray) -> tuple[int, ...]:
    """Broadcast the leading batch dimensions (all but the last two) of several arrays."""
    return np.broadcast_shapes(*(np.shape(a)[:-2] for a in arrays))


def _matrices(x, batch: tuple[int, ...]):
    """Yield ``(batch index, nested list)`` for every matrix of ``x`` broadcast to ``batch``."""
    x = np.asarray(x)
    x = np.broadcast_to(x, batch + x.shape[-2:])  # (..., r, c) -> (*batch, r, c)
    for index in np.ndindex(*batch):
        yield index, x[index].tolist()


def _dot(u: list[float], v: list[float]) -> float:
    """Dot product of two equally long lists, one product at a time."""
    total = 0.0
    for a, b in zip(u, v, strict=True):
        total += float(a) * float(b)
    return total


def _matmul(A: list[list[float]], B: list[list[float]]) -> list[list[float]]:
    """``A @ B`` for nested lists: (r, m) x (m, c) -> (r, c)."""
    n_cols = len(B[0]) if B else 0
    columns = [[row[c] for row in B] for c in range(n_cols)]
    return [[_dot(row, col) for col in columns] for row in A]


def _softmax_row(row: list[float]) -> list[float]:
    """Stable softmax of one list; an empty list stays empty, an all ``-inf`` list gives zeros."""
    if not row:
        return []
    m = max(row)
    if m == -math.inf:
        return [0.0] * len(row)
    exps = [math.exp(v - m) for v in row]  # every exponent <= 0
    total = sum(exps)
    return [e / total for e in exps]


def dot_product_scores(Q, K) -> np.ndarray:
    """``scores[..., i, j] = Q[..., i, :] · K[..., j, :]``, one dot product at a time.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
    K : (..., n_k, d_k) array_like

    Returns
    -------
    scores : (..., n_q, n_k) ndarray of float64
    """
    Q, K = np.asarray(Q), np.asarray(K)
    batch = _batch_shape(Q, K)
    out = np.zeros((*batch, Q.shape[-2], K.shape[-2]))
    keys = dict(_matrices(K, batch))
    for index, q_rows in _matrices(Q, batch):
        for i, q in enumerate(q_rows):
            for j, k in enumerate(keys[index]):
                out[index + (i, j)] = _dot(q, k)
    return out


def scale_scores(scores, d_k: int) -> np.ndarray:
    """Divide every score by ``sqrt(d_k)``, one entry at a time.

    Parameters
    ----------
    scores : (..., n_q, n_k) array_like
    d_k : int

    Returns
    -------
    scaled : (..., n_q, n_k) ndarray of float64
    """
    scores = np.asarray(scores)
    out = np.zeros(scores.shape)
    root = math.sqrt(d_k)
    for index in np.ndindex(*scores.shape):
        out[index] = float(scores[index]) / root
    return out


def softmax(x) -> np.ndarray:
    """Softmax over the last axis, one row at a time (all ``-inf`` row -> zeros).

    Parameters
    ----------
    x : (..., n) array_like
        At least one dimension.

    Returns
    -------
    p : (..., n) ndarray of float64
    """
    x = np.asarray(x)
    out = np.zeros(x.shape)
    for index in np.ndindex(*x.shape[:-1]):
        out[index] = _softmax_row([float(v) for v in x[index].tolist()])
    return out


def weighted_sum(weights, V) -> np.ndarray:
    """``out[..., i, c] = sum_j weights[..., i, j] * V[..., j, c]``, term by term.

    Parameters
    ----------
    weights : (..., n_q, n_k) array_like
    V : (..., n_k, d_v) array_like

    Returns
    -------
    out : (..., n_q, d_v) ndarray of float64
    """
    weights, V = np.asarray(weights), np.asarray(V)
    batch = _batch_shape(weights, V)
    out = np.zeros((*batch, weights.shape[-2], V.shape[-1]))
    values = dict(_matrices(V, batch))
    for index, w_rows in _matrices(weights, batch):
        out[index] = _matmul(w_rows, values[index])  # (n_q, n_k) x (n_k, d_v) -> (n_q, d_v)
    return out


def scaled_dot_product_attention(Q, K, V, mask=None, scale=None):
    """``softmax(scale * Q Kᵀ, masked) V`` with explicit loops over batch, queries and keys.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
    K : (..., n_k, d_k) array_like
    V : (..., n_k, d_v) array_like
    mask : (..., n_q, n_k) array_like of bool, optional
        True where a query may attend to a key; a masked key gets score ``-inf``.
    scale : float, optional
        Defaults to ``1 / sqrt(d_k)``.

    Returns
    -------
    output : (..., n_q, d_v) ndarray of float64
        ``...`` is the broadcast of the batch dims of Q, K, V and the mask.
    weights : (..., n_q, n_k) ndarray of float64
        ``...`` is the broadcast of the batch dims of Q, K and the mask (not V).
    """
    Q, K, V = np.asarray(Q), np.asarray(K), np.asarray(V)
    n_q, d_k = Q.shape[-2:]
    n_k = K.shape[-2]
    scale = 1.0 / math.sqrt(d_k) if scale is None else float(scale)
    # The weights depend on Q, K and the mask only: V's batch dims widen the output alone.
    if mask is None:
        mask = np.ones((n_q, n_k), dtype=bool)
    mask = np.asarray(mask)
    batch = _batch_shape(Q, K, mask)
    mask = np.broadcast_to(mask, (*batch, n_q, n_k))

    weights = np.zeros((*batch, n_q, n_k))
    keys, masks = dict(_matrices(K, batch)), dict(_matrices(mask, batch))
    for index, q_rows in _matrices(Q, batch):
        for i, q in enumerate(q_rows):
            row = []
            for j, k in enumerate(keys[index]):
                row.append(scale * _dot(q, k) if masks[index][i][j] else -math.inf)
            weights[index + (i,)] = _softmax_row(row)
    return weighted_sum(weights, V), weights


def _project(X, W) -> np.ndarray:
    """``X @ W`` for batched ``X`` (..., n, d_in) and a matrix ``W`` (d_in, d_out)."""
    X, W = np.asarray(X), np.asarray(W)
    batch = X.shape[:-2]
    out = np.zeros((*batch, X.shape[-2], W.shape[-1]))
    w_rows = W.tolist()
    for index, x_rows in _matrices(X, batch):
        out[index] = _matmul(x_rows, w_rows)  # (n, d_in) x (d_in, d_out) -> (n, d_out)
    return out


def cross_attention(X, Z, W_q, W_k, W_v, mask=None):
    """Queries from ``X``, keys and values from ``Z``, then :func:`scaled_dot_product_attention`.

    Parameters
    ----------
    X : (..., n_q, d_model) array_like
    Z : (..., n_k, d_model_z) array_like
    W_q : (d_model, d_k) array_like
    W_k : (d_model_z, d_k) array_like
    W_v : (d_model_z, d_v) array_like
    mask : (..., n_q, n_k) array_like of bool, optional

    Returns
    -------
    output : (..., n_q, d_v) ndarray of float64
    weights : (..., n_q, n_k) ndarray of float64
    """
    Q = _project(X, W_q)  # (..., n_q, d_model) x (d_model, d_k) -> (..., n_q, d_k)
    K = _project(Z, W_k)  # (..., n_k, d_model_z) x (d_model_z, d_k) -> (..., n_k, d_k)
    V = _project(Z, W_v)  # (..., n_k, d_model_z) x (d_model_z, d_v) -> (..., n_k, d_v)
    return scaled_dot_product_attention(Q, K, V, mask=mask)


def self_attention(X, W_q, W_k, W_v, mask=None):
    """Queries, keys and values all projected from ``X``.

    Parameters
    ----------
    X : (..., n, d_model) array_like
    W_q, W_k : (d_model, d_k) array_like
    W_v : (d_model, d_v) array_like
    mask : (..., n, n) array_like of bool, optional

    Returns
    -------
    output : (..., n, d_v) ndarray of float64
    weights : (..., n, n) ndarray of float64
    """
    return cross_attention(X, X, W_q, W_k, W_v, mask=mask)


def causal_mask(n_q: int, n_k: int | None = None) -> np.ndarray:
    """``mask[i, j] = (j <= i)``: query ``i`` sees keys ``0 … i`` (top-left aligned).

    Returns
    -------
    mask : (n_q, n_k) ndarray of bool
    """
    n_k = n_q if n_k is None else n_k
    return np.array([[j <= i for j in range(n_k)] for i in range(n_q)], dtype=bool).reshape(
        n_q, n_k
    )


def padding_mask(lengths, n_k: int) -> np.ndarray:
    """``mask[b, 0, j] = (j < lengths[b])``.

    Returns
    -------
    mask : (batch, 1, n_k) ndarray of bool
    """
    lengths = [int(n) for n in np.asarray(lengths).tolist()]
    rows = [[[j < n for j in range(n_k)]] for n in lengths]
    return np.array(rows, dtype=bool).reshape(len(lengths), 1, n_k)


# --------------------------------------------------------------------------------------------
# The backward pass: an explicit Jacobian per row, and the chain rule one entry at a time.
# --------------------------------------------------------------------------------------------


def _softmax_jacobian_row(p: list[float]) -> list[list[float]]:
    """``J[a][b] = d p_a / d s_b = p_a (δ_ab - p_b)``, written out as an n x n nested list."""
    return [
        [p[a] * ((1.0 if a == b else 0.0) - p[b]) for b in range(len(p))] for a in range(len(p))
    ]


def _jacobian_times(p: list[float], g: list[float]) -> list[float]:
    """``Jᵀ g`` for one softmax row (J is symmetric): ``sum_a g_a d p_a / d s_b`` per ``b``."""
    J = _softmax_jacobian_row(p)
    return [sum(J[a][b] * float(g[a]) for a in range(len(p))) for b in range(len(p))]


def softmax_backward(weights, grad_weights) -> np.ndarray:
    """Gradient to the scores, ``Jᵀ g`` with the explicit Jacobian of every last-axis row.

    Parameters
    ----------
    weights : (..., n) array_like
        Softmax output along the last axis.
    grad_weights : (..., n) array_like
        Gradient with respect to the weights.

    Returns
    -------
    grad_scores : (..., n) ndarray of float64
    """
    weights, grad_weights = np.asarray(weights), np.asarray(grad_weights)
    out = np.zeros(weights.shape)
    for index in np.ndindex(*weights.shape[:-1]):
        p = [float(v) for v in weights[index].tolist()]
        out[index] = _jacobian_times(p, grad_weights[index].tolist())
    return out


def _source_index(index: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The entry of an input of batch ``shape`` that NumPy broadcast to batch ``index``."""
    tail = index[len(index) - len(shape) :] if shape else ()
    return tuple(0 if size == 1 else i for i, size in zip(tail, shape, strict=True))


def attention_backward(Q, K, V, grad_output, mask=None, scale=None):
    """Gradients of attention by the chain rule, one batch index, query, key and entry at a time.

    For every query ``i`` (weights row ``p`` from :func:`scaled_dot_product_attention`)::

        dV[j, c] += p[j] * dO[i, c]
        dP[j]     = sum_c dO[i, c] * V[j, c]
        dS        = Jᵀ dP              with the explicit Jacobian J of the softmax row
        dQ[i, t] += scale * dS[j] * K[j, t]
        dK[j, t] += scale * dS[j] * Q[i, t]

    An input broadcast over a batch axis accumulates its gradient from every batch element it
    was used in, so each gradient has its input's shape.

    Parameters
    ----------
    Q : (..., n_q, d_k) array_like
    K : (..., n_k, d_k) array_like
    V : (..., n_k, d_v) array_like
    grad_output : (..., n_q, d_v) array_like
    mask : (..., n_q, n_k) array_like of bool, optional
    scale : float, optional
        Defaults to ``1 / sqrt(d_k)``.

    Returns
    -------
    grad_Q : (..., n_q, d_k) ndarray of float64
    grad_K : (..., n_k, d_k) ndarray of float64
    grad_V : (..., n_k, d_v) ndarray of float64
    """
    Q, K, V = np.asarray(Q), np.asarray(K), np.asarray(V)
    dO = np.asarray(grad_output)
    n_q, d_k = Q.shape[-2:]
    n_k, d_v = V.shape[-2:]
    scale = 1.0 / math.sqrt(d_k) if scale is None else float(scale)
    _, weights = scaled_dot_product_attention(Q, K, V, mask=mask, scale=scale)
    batch = _batch_shape(Q, K, V, dO, weights)
    weights = np.broadcast_to(weights, (*batch, n_q, n_k))
    dO = np.broadcast_to(dO, (*batch, n_q, d_v))

    grad_Q, grad_K, grad_V = np.zeros(Q.shape), np.zeros(K.shape), np.zeros(V.shape)
    for index in np.ndindex(*batch):
        q_at, k_at = _source_index(index, Q.shape[:-2]), _source_index(index, K.shape[:-2])
        v_at = _source_index(index, V.shape[:-2])
        q_rows, k_rows, v_rows = Q[q_at].tolist(), K[k_at].tolist(), V[v_at].tolist()
        for i in range(n_q):
            p = [float(w) for w in weights[index + (i,)].tolist()]
            g = [float(x) for x in dO[index + (i,)].tolist()]
            for j in range(n_k):
                for c in range(d_v):
                    grad_V[v_at + (j, c)] += p[j] * g[c]
            grad_p = [_dot(g, v_rows[j]) for j in range(n_k)]  # dO[i] · V[j]
            grad_s = _jacobian_times(p, grad_p)
            for j in range(n_k):
                for t in range(d_k):
                    grad_Q[q_at + (i, t)] += scale * grad_s[j] * float(k_rows[j][t])
                    grad_K[k_at + (j, t)] += scale * grad_s[j] * float(q_rows[i][t])
    return grad_Q, grad_K, grad_V
