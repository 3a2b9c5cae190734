"""The backward pass (notebook 09): gradients through softmax and through attention, and a
numerical gradient to check them with.

Shape legend and conventions as in :mod:`attention_course.reference`, which re-exports every
public name here.
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    _as_float_array,
    _check_qkv,
    _common_dtype,
    _finite_real,
    _scale_or_default,
    _validate_mask,
    _working_dtype,
)
from .forward import _masked_weights, scaled_dot_product_attention


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
    work = _working_dtype(dtype)
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
    scale = _scale_or_default(scale, d_k)
    if mask is not None:
        mask = _validate_mask(mask, (*batch, n_q, n_k))
    dtype = np.result_type(dtype, dO.dtype)
    work = _working_dtype(dtype)
    Q_w, K_w, V_w, dO = (a.astype(work, copy=False) for a in (Q, K, V, dO))

    # Forward again, keeping the weights: the same function as scaled_dot_product_attention.
    P = _masked_weights(Q_w, K_w, scale, mask)  # (..., n_q, n_k); fully masked rows are zeros

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
