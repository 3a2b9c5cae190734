"""What the explorers show, as plain functions of arrays, tested without widgets.

The numbers come from :mod:`attention_course.reference` (scores, scaling, softmax) and
:mod:`attention_course.saturation` (softmax Jacobian and entropy), so the explorers show what
the course's reference attention does.

Shape legend: ``n_q`` queries, ``n_k`` keys, ``d_k`` the width of a query and of a key
(``max_d_k`` the largest an explorer offers), ``n_pairs`` random (query, key) pairs.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import reference as ref
from .. import saturation


class Readout(NamedTuple):
    """How peaked one row of softmax weights is, and how much gradient it passes back."""

    #: Largest weight (1 = one-hot, 1 / n_k = uniform).
    max_weight: float
    #: Entropy of the weights in nats (0 = one-hot, log n_k = uniform).
    entropy: float
    #: Frobenius norm of the softmax Jacobian ``diag(p) - p pᵀ`` (0 = no gradient at all).
    grad_norm: float


def softmax_readout(scores) -> Readout:
    """Summarise ``softmax(scores)`` for one query.

    Parameters
    ----------
    scores : (n_k,) array_like
        One query's scores against ``n_k`` keys.

    Returns
    -------
    readout : Readout
        Largest weight, entropy (nats) and the Frobenius norm of the softmax Jacobian, computed
        with :func:`attention_course.reference.softmax`,
        :func:`attention_course.saturation.softmax_entropy` and
        :func:`attention_course.saturation.softmax_jacobian`.
    """
    return weights_readout(ref.softmax(np.asarray(scores, dtype=np.float64)))  # (n_k,)


def weights_readout(p) -> Readout:
    """Summarise one row of attention weights.

    Parameters
    ----------
    p : (n_k,) array_like
        Non-negative weights summing to 1.

    Returns
    -------
    readout : Readout
        See :func:`softmax_readout`.
    """
    p = np.asarray(p, dtype=np.float64)
    J = saturation.softmax_jacobian(p)  # (n_k,) -> (n_k, n_k)
    return Readout(
        max_weight=float(np.max(p)),
        entropy=float(saturation.softmax_entropy(p)),
        grad_norm=float(np.linalg.norm(J)),  # Frobenius norm
    )


def saturation_scores(q, K, d_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of one query against a few keys, using only their first ``d_k`` entries.

    Parameters
    ----------
    q : (max_d_k,) array_like
        The query.
    K : (n_k, max_d_k) array_like
        The keys, one per row.
    d_k : int
        How many leading entries of ``q`` and of each key to use, ``1 <= d_k <= max_d_k``.

    Returns
    -------
    unscaled : (n_k,) ndarray
        ``q[:d_k] · K[j, :d_k]`` for every key ``j``.
    scaled : (n_k,) ndarray
        The same divided by ``sqrt(d_k)``.
    """
    q = np.asarray(q)
    K = np.asarray(K)
    if not 1 <= d_k <= q.shape[-1]:
        raise ValueError(f"d_k must lie between 1 and {q.shape[-1]}, got {d_k}.")
    unscaled = ref.dot_product_scores(q[None, :d_k], K[:, :d_k])[0]  # (1, d_k) x (n_k, d_k)
    #                                                                    -> (1, n_k) -> (n_k,)
    return unscaled, ref.scale_scores(unscaled, int(d_k))


def score_samples(Q, K, d_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores of many independent (query, key) pairs, using their first ``d_k`` entries.

    Parameters
    ----------
    Q : (n_pairs, max_d_k) array_like
        One query per row.
    K : (n_pairs, max_d_k) array_like
        One key per row; row ``i`` is paired with query ``i``.
    d_k : int
        How many leading entries to use, ``1 <= d_k <= max_d_k``.

    Returns
    -------
    unscaled : (n_pairs,) ndarray
        ``Q[i, :d_k] · K[i, :d_k]``: variance ``d_k`` for unit-variance entries.
    scaled : (n_pairs,) ndarray
        The same divided by ``sqrt(d_k)``: variance 1.
    """
    Q = np.asarray(Q)
    K = np.asarray(K)
    if not 1 <= d_k <= Q.shape[-1]:
        raise ValueError(f"d_k must lie between 1 and {Q.shape[-1]}, got {d_k}.")
    scores = ref.dot_product_scores(Q[:, None, :d_k], K[:, None, :d_k])  # (n_pairs, 1, d_k) x
    #                                               (n_pairs, 1, d_k) -> (n_pairs, 1, 1)
    unscaled = scores[:, 0, 0]  # (n_pairs,)
    return unscaled, ref.scale_scores(unscaled, int(d_k))


def attention_weights(Q, K, temperature: float = 1.0) -> np.ndarray:
    """Attention weights ``softmax(Q Kᵀ / (temperature · sqrt(d_k)))``.

    Parameters
    ----------
    Q : (n_q, d_k) array_like
        Queries.
    K : (n_k, d_k) array_like
        Keys.
    temperature : float, optional
        Positive; 1 is scaled dot-product attention, larger flattens the weights, smaller
        sharpens them.

    Returns
    -------
    weights : (n_q, n_k) ndarray
        Each row sums to 1.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}.")
    Q = np.asarray(Q, dtype=np.float64)
    d_k = Q.shape[-1]
    scores = ref.dot_product_scores(Q, K)  # (n_q, d_k) x (n_k, d_k) -> (n_q, n_k)
    return ref.softmax(scores / (temperature * np.sqrt(d_k)), axis=-1)  # (n_q, n_k)
