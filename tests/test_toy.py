"""Tests of :mod:`attention_course.toy`, the toy translation pair the demos of 04 and 05 use.

The notebooks claim two things about this data, and these tests hold them to it:

- every size is different (``n_q``, ``n_k``, ``d_model``, ``d_model_z``, ``d_k``, ``d_v``), so
  a swapped axis in a demo would fail loudly;
- in the cross-attention map, each French word puts most of its weight (the largest share,
  and more than half) on the English word it translates: le → the, chat → cat, noir → black,
  s'est → sat, assis → sat (:data:`toy.ALIGNMENT`), while the encoder's self-attention
  projections are plain random matrices with no alignment built in.

Shape legend: ``n_q`` French tokens (queries), ``n_k`` English tokens (keys and values),
``d_model`` / ``d_model_z`` widths of the French / English embeddings, ``d_k`` query/key width,
``d_v`` value width.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial import ConvexHull

from attention_course import reference as ref
from attention_course import toy


def test_shapes_match_the_documented_sizes_and_are_all_different():
    en, Z = toy.english()
    fr, X = toy.french()
    W_q, W_k, W_v = toy.cross_projections()
    S_q, S_k, S_v = toy.self_projections()
    assert (len(fr), len(en)) == (toy.N_Q, toy.N_K) == (5, 4)
    assert X.shape == (toy.N_Q, toy.D_MODEL) == (5, 7)
    assert Z.shape == (toy.N_K, toy.D_MODEL_Z) == (4, 6)
    assert W_q.shape == (toy.D_MODEL, toy.D_K)
    assert W_k.shape == (toy.D_MODEL_Z, toy.D_K)
    assert W_v.shape == (toy.D_MODEL_Z, toy.D_V)
    assert S_q.shape == S_k.shape == (toy.D_MODEL_Z, toy.D_K)
    assert S_v.shape == (toy.D_MODEL_Z, toy.D_V)
    sizes = [toy.N_Q, toy.N_K, toy.D_MODEL, toy.D_MODEL_Z, toy.D_K, toy.D_V]
    assert len(set(sizes)) == len(sizes), f"sizes must all differ, got {sizes}"


def test_tokens_are_the_sentence_and_its_translation():
    assert " ".join(toy.english()[0]) == "the black cat sat"
    assert " ".join(toy.french()[0]) == "le chat noir s'est assis"
    assert set(toy.ALIGNMENT) == set(toy.FRENCH)
    assert set(toy.ALIGNMENT.values()) <= set(toy.ENGLISH)


def test_cross_attention_aligns_each_french_word_with_its_translation():
    en, Z = toy.english()
    fr, X = toy.french()
    _, weights = ref.cross_attention(X, Z, *toy.cross_projections())  # (n_q, n_k)
    for i, word in enumerate(fr):
        j = en.index(toy.ALIGNMENT[word])
        assert np.argmax(weights[i]) == j, (word, weights[i])
        assert weights[i, j] > 0.5, (word, weights[i])
        # "most of its weight, not all of it": the output is a mix, not a copy
        assert weights[i, j] < 0.95, (word, weights[i])


def test_word_order_differs_so_the_cross_map_is_not_diagonal():
    """chat/noir swap the order of black/cat: the alignment crosses, which the notebook shows."""
    en, fr = toy.ENGLISH, toy.FRENCH
    positions = [en.index(toy.ALIGNMENT[w]) for w in fr]
    assert positions != sorted(positions)


def test_translation_qkv_is_the_projection_of_the_embeddings():
    _, Z = toy.english()
    _, X = toy.french()
    W_q, W_k, W_v = toy.cross_projections()
    Q, K, V = toy.translation_qkv()
    assert_allclose(Q, X @ W_q)
    assert_allclose(K, Z @ W_k)
    assert_allclose(V, Z @ W_v)
    # the same attention as cross_attention from the embeddings
    out_qkv, w_qkv = ref.scaled_dot_product_attention(Q, K, V)
    out_xz, w_xz = ref.cross_attention(X, Z, W_q, W_k, W_v)
    assert_allclose(out_qkv, out_xz, atol=1e-12)
    assert_allclose(w_qkv, w_xz, atol=1e-12)


def test_values_are_distinct_points_in_convex_position():
    """The 04 figure draws the values as the corners of a hull: no value may hide inside it."""
    _, _, V = toy.translation_qkv()
    assert V.shape == (toy.N_K, 2)
    assert len(ConvexHull(V).vertices) == toy.N_K


def test_self_attention_projections_have_no_alignment_built_in():
    """The notebook calls the self-attention map arbitrary: its projections are not the
    cross-attention ones, and queries and keys are projected differently."""
    S_q, S_k, S_v = toy.self_projections()
    W_q, W_k, W_v = toy.cross_projections()
    assert not np.allclose(S_k, W_k)
    assert not np.allclose(S_v, W_v)
    assert not np.allclose(S_q, S_k)


@pytest.mark.parametrize(
    "getter",
    [toy.english, toy.french, toy.cross_projections, toy.self_projections, toy.translation_qkv],
)
def test_deterministic_and_returns_fresh_arrays(getter):
    first = [np.array(a) for a in getter() if isinstance(a, np.ndarray)]
    for a in getter():
        if isinstance(a, np.ndarray):
            a[...] = 0.0  # a demo that scribbles on its copy ...
    second = [a for a in getter() if isinstance(a, np.ndarray)]
    for a, b in zip(first, second, strict=True):  # ... does not change the next call
        assert_array_equal(a, b)
        assert np.abs(b).sum() > 0
