"""Small, deterministic toy data for the demos: a sentence and its translation.

The encoder reads the English sentence "the black cat sat"; the decoder writes its French
translation "le chat noir s'est assis". Each token is a vector (an *embedding*), and seeded
projection matrices turn the embeddings into queries, keys and values.

**Nothing here is trained.** The projection matrices are random (fixed seeds). The embeddings
are random too, then nudged by hand so that the cross-attention map shows a sensible
alignment: each French word's *query* points the same way as its English translation's *key*
(le → the, chat → cat, noir → black, s'est → sat, assis → sat), and the English *values* are
hand-picked 2-D points that are easy to draw. A trained translation model learns embeddings and
projections from data; its maps are less tidy. The maps drawn from this module are
illustrations of the mechanism, not evidence about real models.

Shape legend (every size is different, so a wrong transpose cannot go unnoticed):

- ``n_q = 5``  French tokens: the decoder's queries.
- ``n_k = 4``  English tokens: the encoder's keys and values.
- ``d_model = 7``  width of a French embedding ``X``.
- ``d_model_z = 6``  width of an English embedding ``Z``.
- ``d_k = 3``  width of a query and of a key.
- ``d_v = 2``  width of a value (two, so values can be drawn as points in a plane).

Every function returns fresh arrays: changing them does not change the next call's result.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = [
    "ENGLISH",
    "FRENCH",
    "ALIGNMENT",
    "N_Q",
    "N_K",
    "D_MODEL",
    "D_MODEL_Z",
    "D_K",
    "D_V",
    "english",
    "french",
    "cross_projections",
    "self_projections",
    "translation_qkv",
]

#: The encoder's sentence (keys and values of cross-attention).
ENGLISH = ("the", "black", "cat", "sat")
#: The decoder's sentence (queries of cross-attention). The adjective moves after the noun.
FRENCH = ("le", "chat", "noir", "s'est", "assis")
#: Which English word each French word's query was built to point at.
ALIGNMENT = {"le": "the", "chat": "cat", "noir": "black", "s'est": "sat", "assis": "sat"}

N_Q = len(FRENCH)
N_K = len(ENGLISH)
D_MODEL = 7
D_MODEL_Z = 6
D_K = 3
D_V = 2

# One direction per meaning in the d_k = 3 query/key space: the corners of a regular
# tetrahedron, so every pair of different meanings has the same cosine, -1/3.
_MEANINGS = {
    "article": np.array([1.0, 1.0, 1.0]),
    "black": np.array([1.0, -1.0, -1.0]),
    "cat": np.array([-1.0, 1.0, -1.0]),
    "sit": np.array([-1.0, -1.0, 1.0]),
}
_ENGLISH_MEANING = {"the": "article", "black": "black", "cat": "cat", "sat": "sit"}
#: Length of every target key and query: sets how sharp the cross-attention weights are
#: (a matching pair scores 1.8² / √3 ≈ 1.9 after scaling, a mismatch ≈ -0.6).
_LENGTH = 1.8
#: Hand-picked 2-D values of the English words: the corners of a quadrilateral.
_VALUES = {
    "the": (-1.0, -0.7),
    "black": (1.2, -0.9),
    "cat": (0.9, 1.1),
    "sat": (-0.9, 0.8),
}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _hit(R: np.ndarray, W: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Smallest change to the rows of ``R`` such that ``R_new @ W == target``.

    ``R`` is (n, d_in), ``W`` is (d_in, d_out) with d_out <= d_in and full column rank, and
    ``target`` is (n, d_out). The part of each row that ``W`` ignores stays random.
    """
    return R + (target - R @ W) @ np.linalg.pinv(W)  # (n, d_out) @ (d_out, d_in) -> (n, d_in)


@lru_cache(maxsize=1)
def _build() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(8)
    # Cross-attention projections: queries from French (d_model), keys/values from English.
    W_q = rng.standard_normal((D_MODEL, D_K)) / np.sqrt(D_MODEL)
    W_k = rng.standard_normal((D_MODEL_Z, D_K)) / np.sqrt(D_MODEL_Z)
    W_v = rng.standard_normal((D_MODEL_Z, D_V)) / np.sqrt(D_MODEL_Z)
    # Encoder self-attention projections: everything from English (d_model_z).
    S_q = rng.standard_normal((D_MODEL_Z, D_K)) / np.sqrt(D_MODEL_Z)
    S_k = rng.standard_normal((D_MODEL_Z, D_K)) / np.sqrt(D_MODEL_Z)
    S_v = rng.standard_normal((D_MODEL_Z, D_V)) / np.sqrt(D_MODEL_Z)

    key_targets = np.stack([_LENGTH * _unit(_MEANINGS[_ENGLISH_MEANING[w]]) for w in ENGLISH])
    value_targets = np.array([_VALUES[w] for w in ENGLISH])
    query_targets = np.stack(
        [_LENGTH * _unit(_MEANINGS[_ENGLISH_MEANING[ALIGNMENT[w]]]) for w in FRENCH]
    )
    query_targets = query_targets + 0.3 * rng.standard_normal(query_targets.shape)

    # English: random embeddings, adjusted so that Z @ W_k and Z @ W_v hit their targets.
    Z = _hit(
        rng.standard_normal((N_K, D_MODEL_Z)),
        np.hstack([W_k, W_v]),
        np.hstack([key_targets, value_targets]),
    )  # (n_k, d_model_z)
    # French: random embeddings, adjusted so that X @ W_q hits the query targets.
    X = _hit(rng.standard_normal((N_Q, D_MODEL)), W_q, query_targets)  # (n_q, d_model)
    return {"X": X, "Z": Z, "W_q": W_q, "W_k": W_k, "W_v": W_v, "S_q": S_q, "S_k": S_k, "S_v": S_v}


def _get(*names: str) -> tuple[np.ndarray, ...]:
    data = _build()
    return tuple(data[name].copy() for name in names)


def english() -> tuple[tuple[str, ...], np.ndarray]:
    """The encoder's sentence, "the black cat sat".

    Returns
    -------
    tokens : tuple of str
        The ``n_k = 4`` English words.
    Z : (n_k, d_model_z) ndarray
        Their embeddings, shape (4, 6).
    """
    (Z,) = _get("Z")
    return ENGLISH, Z


def french() -> tuple[tuple[str, ...], np.ndarray]:
    """The decoder's sentence, "le chat noir s'est assis".

    Returns
    -------
    tokens : tuple of str
        The ``n_q = 5`` French words.
    X : (n_q, d_model) ndarray
        Their embeddings, shape (5, 7).
    """
    (X,) = _get("X")
    return FRENCH, X


def cross_projections() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded projections for cross-attention from French (queries) to English.

    Returns
    -------
    W_q : (d_model, d_k) ndarray
        Shape (7, 3): ``Q = X @ W_q`` for the French embeddings ``X``.
    W_k : (d_model_z, d_k) ndarray
        Shape (6, 3): ``K = Z @ W_k`` for the English embeddings ``Z``.
    W_v : (d_model_z, d_v) ndarray
        Shape (6, 2): ``V = Z @ W_v``.
    """
    return _get("W_q", "W_k", "W_v")


def self_projections() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded projections for the encoder's self-attention over the English sentence.

    Random, with no alignment built in: the self-attention map they give is arbitrary.

    Returns
    -------
    W_q : (d_model_z, d_k) ndarray
        Shape (6, 3).
    W_k : (d_model_z, d_k) ndarray
        Shape (6, 3).
    W_v : (d_model_z, d_v) ndarray
        Shape (6, 2).
    """
    return _get("S_q", "S_k", "S_v")


def translation_qkv() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queries of the French words, keys and values of the English words.

    The same arrays that :func:`attention_course.reference.cross_attention` computes from
    :func:`french`, :func:`english` and :func:`cross_projections`, ready for notebooks that
    start from ``Q``, ``K`` and ``V``.

    Returns
    -------
    Q : (n_q, d_k) ndarray
        Shape (5, 3): ``X @ W_q``.
    K : (n_k, d_k) ndarray
        Shape (4, 3): ``Z @ W_k``.
    V : (n_k, d_v) ndarray
        Shape (4, 2): ``Z @ W_v``.
    """
    X, Z, W_q, W_k, W_v = _get("X", "Z", "W_q", "W_k", "W_v")
    Q = X @ W_q  # (n_q, d_model) @ (d_model, d_k) -> (n_q, d_k)
    K = Z @ W_k  # (n_k, d_model_z) @ (d_model_z, d_k) -> (n_k, d_k)
    V = Z @ W_v  # (n_k, d_model_z) @ (d_model_z, d_v) -> (n_k, d_v)
    return Q, K, V
