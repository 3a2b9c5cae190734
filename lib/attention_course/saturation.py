"""Why attention scores are scaled: simulations and softmax calculus for notebooks 02 and 03.

Every function here is deterministic given the :class:`numpy.random.Generator` it is passed,
and builds its scores with :mod:`attention_course.reference`, so the figures of the course show
what the reference attention actually does.

Shape legend (as in :mod:`attention_course.reference`):

- ``...``  any number of leading batch dimensions.
- ``n_q``  number of queries (here: independent trials, one query each).
- ``n_k``  number of keys.
- ``d_k``  width of a query and of a key.
- ``n``    length of the axis a softmax normalises (``n_k`` for attention weights).
- ``n_d``  number of widths ``d_k`` in a sweep.

Random queries and keys have independent standard-normal entries (mean 0, variance 1): the
setting of footnote 4 of *Attention Is All You Need*, where ``Var(q · k) = d_k``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import reference as ref

__all__ = [
    "naive_softmax",
    "score_variance",
    "softmax_jacobian",
    "softmax_entropy",
    "SaturationStats",
    "saturation_stats",
]


def _widths(d_ks: Sequence[int] | np.ndarray) -> np.ndarray:
    """Return ``d_ks`` as a 1-D int array of positive widths, or raise ValueError."""
    d_ks = np.asarray(d_ks)
    if d_ks.ndim != 1 or d_ks.size == 0 or not np.issubdtype(d_ks.dtype, np.integer):
        raise ValueError(f"d_ks must be a non-empty 1-D sequence of integers, got {d_ks!r}.")
    if np.any(d_ks <= 0):
        raise ValueError(f"every d_k must be a positive integer, got {d_ks.tolist()}.")
    return d_ks.astype(np.int64)


def naive_softmax(x, axis: int = -1) -> np.ndarray:
    """Softmax *without* subtracting the maximum: the textbook formula, and its failure.

    ``exp(x)`` overflows to ``inf`` once ``x`` exceeds about 709 in float64 (about 88 in
    float32), and ``inf / inf`` is NaN. NumPy's overflow and invalid-value warnings are
    silenced here, so a notebook shows the NaN itself rather than a warning on stderr.

    Parameters
    ----------
    x : (...) array_like
        Scores; any shape.
    axis : int, optional
        Axis to normalise over (default: the last).

    Returns
    -------
    p : (...) ndarray
        Same shape as ``x``; NaN wherever the exponentials overflowed.
    """
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)  # (...) may contain inf
        return e / np.sum(e, axis=axis, keepdims=True)  # inf / inf -> NaN


def score_variance(
    d_ks: Sequence[int] | np.ndarray,
    n_samples: int,
    rng: np.random.Generator,
    scaled: bool = False,
) -> np.ndarray:
    """Measure the variance of the score ``q · k`` of random unit-variance vectors.

    For every width ``d_k``, draws ``n_samples`` independent pairs ``(q, k)`` with standard-
    normal entries, scores each pair with :func:`attention_course.reference.dot_product_scores`
    (divided by ``sqrt(d_k)`` with :func:`attention_course.reference.scale_scores` if
    ``scaled``), and returns the sample variance of the scores.

    Parameters
    ----------
    d_ks : (n_d,) sequence of int
        Widths of the queries and keys.
    n_samples : int
        Number of independent (query, key) pairs per width.
    rng : numpy.random.Generator
        Source of randomness; the widths are simulated in order, each drawing its queries
        first, then its keys.
    scaled : bool, optional
        Measure ``q · k / sqrt(d_k)`` instead of ``q · k``.

    Returns
    -------
    variance : (n_d,) ndarray of float64
        Sample variance of the (scaled) scores for each width. Expected value ``d_k``
        unscaled, 1 scaled.
    """
    d_ks = _widths(d_ks)
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2 to measure a variance, got {n_samples}.")
    variance = np.empty(d_ks.shape, dtype=np.float64)
    for i, d_k in enumerate(d_ks):  # one width at a time: each has its own vector length
        Q = rng.standard_normal((n_samples, 1, d_k))  # (n_samples, n_q=1, d_k)
        K = rng.standard_normal((n_samples, 1, d_k))  # (n_samples, n_k=1, d_k)
        scores = ref.dot_product_scores(Q, K)  # (n_samples, 1, d_k) x (n_samples, d_k, 1)
        #                                        -> (n_samples, 1, 1): one score per pair
        if scaled:
            scores = ref.scale_scores(scores, int(d_k))  # (n_samples, 1, 1)
        variance[i] = np.var(scores, ddof=1)
    return variance


def softmax_jacobian(p) -> np.ndarray:
    """Jacobian of the softmax, written in terms of its output ``p``.

    If ``p = softmax(x)`` along the last axis, then ``dp_i / dx_j = p_i (δ_ij - p_j)``, that is
    ``J = diag(p) - p pᵀ``. It is symmetric, its rows sum to 0, and it is exactly zero when
    ``p`` is one-hot: a saturated softmax passes no gradient back to its scores.

    Parameters
    ----------
    p : (..., n) array_like
        Softmax outputs (probabilities along the last axis).

    Returns
    -------
    J : (..., n, n) ndarray
        ``J[..., i, j] = dp_i / dx_j``.
    """
    p = np.asarray(p, dtype=np.result_type(np.asarray(p).dtype, np.float32))
    if p.ndim < 1:
        raise ValueError(f"p must have at least one axis (..., n), got shape {p.shape}.")
    n = p.shape[-1]
    column = p[..., :, None]  # (..., n) -> (..., n, 1)
    row = p[..., None, :]  # (..., n) -> (..., 1, n)
    return column * np.eye(n, dtype=p.dtype) - column * row  # (..., n, n)


def softmax_entropy(p, axis: int = -1) -> np.ndarray:
    """Shannon entropy (in nats) of probability vectors along ``axis``, with 0 · log 0 = 0.

    ``log(n)`` for uniform weights over ``n`` keys, 0 for one-hot weights.

    Parameters
    ----------
    p : (...) array_like
        Probabilities; each slice along ``axis`` sums to 1.
    axis : int, optional
        The probability axis (default: the last).

    Returns
    -------
    H : (...) ndarray
        ``p``'s shape without ``axis``.
    """
    p = np.asarray(p)
    safe = np.where(p > 0, p, 1.0)  # log(1) = 0 where p = 0, so 0 · log 0 counts as 0
    return -np.sum(p * np.log(safe), axis=axis)


class SaturationStats(NamedTuple):
    """How saturated the softmax of random attention scores is, for each width ``d_k``.

    Every field is an ``(n_d,)`` array; all but ``d_k`` summarise the trials of one width
    with one statistic (the median by default: the typical query).
    """

    #: Widths of the queries and keys.
    d_k: np.ndarray
    #: Largest attention weight of a query (1 = one-hot, 1 / n_k = uniform).
    max_weight: np.ndarray
    #: Entropy of a query's weights in nats (0 = one-hot, log n_k = uniform).
    entropy: np.ndarray
    #: Frobenius norm of the softmax Jacobian ``diag(p) - p pᵀ`` (0 = no gradient at all).
    jacobian_norm: np.ndarray
    #: Norm of the gradient reaching the scores, ``Jᵀ g``, for a standard-normal upstream
    #: gradient ``g`` on the weights.
    grad_norm: np.ndarray


def saturation_stats(
    d_ks: Sequence[int] | np.ndarray,
    n_keys: int,
    rng: np.random.Generator,
    scaled: bool,
    n_trials: int = 400,
    statistic: str = "median",
) -> SaturationStats:
    """Simulate one query attending over ``n_keys`` random keys, for several widths ``d_k``.

    For every width, ``n_trials`` independent queries, each with its own ``n_keys`` keys, all
    with standard-normal entries, are scored with
    :func:`attention_course.reference.dot_product_scores` (and divided by ``sqrt(d_k)`` with
    :func:`attention_course.reference.scale_scores` if ``scaled``), turned into weights with
    :func:`attention_course.reference.softmax`, and summarised: largest weight, entropy, and
    the size of the softmax's Jacobian and of the gradient it passes back to the scores.

    Parameters
    ----------
    d_ks : (n_d,) sequence of int
        Widths of the queries and keys.
    n_keys : int
        Number of keys each query attends over (``n_k``), at least 2.
    rng : numpy.random.Generator
        Source of randomness; widths are simulated in order (queries, keys, then upstream
        gradients), so the same generator state gives the same statistics.
    scaled : bool
        Divide the scores by ``sqrt(d_k)`` (scaled dot-product attention) or not.
    n_trials : int, optional
        Number of independent queries per width.
    statistic : {"median", "mean"}, optional
        How the trials of one width are summarised. The median describes the typical query.
        The mean of the gradient norms falls more slowly than the median as ``d_k`` grows:
        the rare queries whose two best keys almost tie keep a sizeable gradient.

    Returns
    -------
    stats : SaturationStats
        Per-width summaries of the trials; see :class:`SaturationStats`.
    """
    d_ks = _widths(d_ks)
    if n_keys < 2:
        raise ValueError(f"n_keys must be at least 2 for a softmax to choose, got {n_keys}.")
    if n_trials < 1:
        raise ValueError(f"n_trials must be positive, got {n_trials}.")
    summaries = {"median": np.median, "mean": np.mean}
    if statistic not in summaries:
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}.")
    summarise = summaries[statistic]
    max_weight, entropy, jacobian_norm, grad_norm = (
        np.empty(d_ks.shape, dtype=np.float64) for _ in range(4)
    )
    for i, d_k in enumerate(d_ks):  # one width at a time: each has its own vector length
        Q = rng.standard_normal((n_trials, 1, d_k))  # (n_trials, n_q=1, d_k)
        K = rng.standard_normal((n_trials, n_keys, d_k))  # (n_trials, n_k, d_k)
        scores = ref.dot_product_scores(Q, K)  # (n_trials, 1, d_k) x (n_trials, d_k, n_k)
        #                                        -> (n_trials, 1, n_k)
        if scaled:
            scores = ref.scale_scores(scores, int(d_k))  # (n_trials, 1, n_k)
        p = ref.softmax(scores, axis=-1)[:, 0, :]  # (n_trials, 1, n_k) -> (n_trials, n_k)
        J = softmax_jacobian(p)  # (n_trials, n_k) -> (n_trials, n_k, n_k)
        g = rng.standard_normal((n_trials, n_keys, 1))  # upstream dL/dp: (n_trials, n_k, 1)
        grad = np.swapaxes(J, -1, -2) @ g  # (n_trials, n_k, n_k) @ (n_trials, n_k, 1)
        #                                    -> (n_trials, n_k, 1): dL/dscores
        max_weight[i] = summarise(np.max(p, axis=-1))  # (n_trials,) -> scalar
        entropy[i] = summarise(softmax_entropy(p))
        jacobian_norm[i] = summarise(np.linalg.norm(J, axis=(-2, -1)))  # Frobenius per trial
        grad_norm[i] = summarise(np.linalg.norm(grad[..., 0], axis=-1))
    return SaturationStats(d_ks, max_weight, entropy, jacobian_norm, grad_norm)
