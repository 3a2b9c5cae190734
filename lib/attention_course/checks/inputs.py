"""Input builders shared by the catalogues: sizes that are all different, random arrays, masks.

Every dimension of one call differs from every other (``n_q != n_k != d_k != d_v`` and the
batch sizes), so that a wrong transpose cannot pass by accident; only the *probes* that diagnose
a mistake make some sizes equal on purpose, so that the mistaken code runs at all.

Shape legend: ``...`` leading batch dimensions, ``n_q`` queries, ``n_k`` keys (and values),
``d_k`` query/key width, ``d_v`` value width.
"""

from __future__ import annotations

import math

import numpy as np

_BATCH_SIZES = np.arange(2, 6)  # small batches keep a learner's Python loops fast
_MATRIX_SIZES = np.arange(2, 14)


def sizes(rng: np.random.Generator, count: int, low: int = 2, high: int = 14, exclude=()):
    """``count`` different integers from ``[low, high)``, none of them in ``exclude``."""
    pool = np.setdiff1d(np.arange(low, high), np.asarray(exclude, dtype=int))
    return [int(v) for v in rng.choice(pool, size=count, replace=False)]


def batch_sizes(rng, count: int, low: int = 2, high: int = 14):
    """Two batch sizes (2–5) and ``count`` other sizes, all different."""
    b1, b2 = sizes(rng, 2, 2, 6)
    return (b1, b2), sizes(rng, count, low, high, exclude=(b1, b2))


def normal(rng, shape, scale=1.0, dtype=np.float64):
    """Standard normal numbers times ``scale``, in ``dtype``."""
    return (rng.standard_normal(shape) * scale).astype(dtype)


def is_square(n: int) -> bool:
    return math.isqrt(n) ** 2 == n


def batch_and_sizes(rng, n_sizes: int, d_k_at: int | None = None):
    """Two batch sizes and ``n_sizes`` matrix sizes, all different from each other.

    ``sizes[d_k_at]`` is never a perfect square, so that int(np.sqrt(d_k)) is always wrong.
    """
    b1, b2 = (int(v) for v in rng.choice(_BATCH_SIZES, size=2, replace=False))
    free = np.setdiff1d(_MATRIX_SIZES, (b1, b2))
    drawn = [int(v) for v in rng.choice(free, size=n_sizes, replace=False)]
    if d_k_at is not None and is_square(drawn[d_k_at]):
        other = next(i for i, v in enumerate(drawn) if not is_square(v))
        drawn[d_k_at], drawn[other] = drawn[other], drawn[d_k_at]
    return (b1, b2), drawn


def row_scales(rng, n: int) -> np.ndarray:
    """(n, 1) factors from 0.1 to 1.5 in random order: rows of very different magnitudes."""
    return rng.permutation(np.geomspace(0.1, 1.5, n))[:, None]


def adversarial(scores) -> bool:
    """Scores that break an unstable softmax: some above 800 (np.exp overflows float64 at
    ~709), and a row whose maximum lies more than 800 below the largest score (subtracting one
    global maximum underflows that whole row to 0 / 0)."""
    s = np.asarray(scores, dtype=np.float64)
    top = float(s.max())
    return top > 800 and top - float(s.max(axis=-1).min()) > 800


def redraw_until_adversarial(make, scores_of):
    """Draw ``make``'s inputs again (from the same generator, so still deterministic) until
    their scores are adversarial; give up after 50 draws."""

    def make_adversarial(rng):
        for _ in range(50):
            calls = make(rng)
            if all(adversarial(scores_of(*args)) for args, _ in calls):
                break
        return calls

    return make_adversarial


def non_divisor(rng, n: int, exclude=()) -> int:
    """A block size from 2 to n // 2 that does not divide ``n``: at least three blocks, the last
    one shorter than the others."""
    choices = [b for b in range(2, n // 2 + 1) if n % b and b not in exclude]
    choices = choices or [b for b in range(2, n // 2 + 1) if n % b] or [max(n - 1, 1)]
    return int(rng.choice(choices))


def two_sided_mask(rng, shape) -> np.ndarray:
    """A random boolean mask (..., n_q, n_k) with at least one True and one False in every row."""
    for _ in range(100):
        mask = rng.random(shape) < 0.55
        if mask.any(axis=-1).all() and (~mask).any(axis=-1).all():
            return mask
    mask[..., 0], mask[..., -1] = True, False  # practically never reached
    return mask


def lengths_mask(lengths, n_k: int) -> np.ndarray:
    """A padding mask (batch, 1, n_k): True where the key index is below the sequence's length."""
    return (np.arange(n_k) < np.asarray(lengths)[:, None])[:, None, :]


def qkv(rng, lead, n_q, n_k, d_k, d_v, scale=1.0, dtype=np.float64):
    """Q (*lead, n_q, d_k), K (*lead, n_k, d_k) and V (*lead, n_k, d_v)."""
    Q = normal(rng, (*lead, n_q, d_k), scale, dtype)
    K = normal(rng, (*lead, n_k, d_k), scale, dtype)
    V = normal(rng, (*lead, n_k, d_v), 1.0, dtype)
    return Q, K, V


def scaled_scores(Q, K) -> np.ndarray:
    """Q Kᵀ / √d_k in float64, (..., n_q, n_k)."""
    Q64, K64 = np.asarray(Q, np.float64), np.asarray(K, np.float64)
    return Q64 @ np.swapaxes(K64, -1, -2) / math.sqrt(Q.shape[-1])  # (..., n_q, n_k)
