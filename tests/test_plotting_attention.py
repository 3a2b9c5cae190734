"""Tests of the figures of notebooks 04 and 05 in :mod:`attention_course.plotting`.

Each test reads back what was actually drawn (bar heights, scatter offsets, image arrays, tick
labels) and compares it with the data, rather than only checking that a figure exists.
Rendering uses the Agg backend, so no screen is needed.

Shape legend: ``n_q`` queries, ``n_k`` keys and values, ``d_v = 2`` value width (the plane).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.path import Path
from numpy.testing import assert_allclose, assert_array_equal

from attention_course import plotting, toy
from attention_course import reference as ref


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _by_gid(ax, gid):
    return [artist for artist in ax.get_children() if artist.get_gid() == gid]


def _translation():
    Q, K, V = toy.translation_qkv()
    _, weights = ref.scaled_dot_product_attention(Q, K, V)  # (n_q, n_k)
    return weights, V


# ---- convex_combination ----------------------------------------------------------------------


@pytest.mark.parametrize("row", range(toy.N_Q))
def test_convex_combination_draws_the_weights_the_values_and_their_average(row):
    weights, V = _translation()
    bars_ax, plane = plotting.convex_combination(
        weights[row], V, toy.ENGLISH, query_label=toy.FRENCH[row]
    )
    bars = _by_gid(bars_ax, "weight")
    assert_allclose([b.get_height() for b in bars], weights[row])
    assert [t.get_text() for t in bars_ax.get_xticklabels()] == list(toy.ENGLISH)

    (values,) = _by_gid(plane, "values")
    assert_allclose(values.get_offsets(), V)
    (star,) = _by_gid(plane, "output")
    expected = ref.weighted_sum(weights[row][None, :], V)[0]  # (1, n_k) @ (n_k, 2) -> (2,)
    assert_allclose(np.asarray(star.get_offsets())[0], expected)

    # the output lies inside the hull that is drawn, and the hull's corners are value rows
    (hull,) = _by_gid(plane, "hull")
    corners = hull.get_xy()[:-1]  # the polygon repeats its first corner to close itself
    for corner in corners:
        assert np.any(np.all(np.isclose(corner, V), axis=1))
    assert Path(hull.get_xy()).contains_point(expected)

    # the same key has the same colour in both panels
    for bar, colour in zip(bars, values.get_facecolors(), strict=True):
        assert_allclose(mcolors.to_rgba(bar.get_facecolor()), colour)

    for ax in (bars_ax, plane):
        assert ax.get_xlabel() and ax.get_ylabel()
    assert toy.FRENCH[row] in plane.get_title()


def test_convex_combination_lines_get_thicker_with_the_weight():
    weights, V = _translation()
    _, plane = plotting.convex_combination(weights[0], V, toy.ENGLISH)
    widths = [line.get_linewidth() for line in plane.get_lines()]
    assert len(widths) == toy.N_K
    assert_array_equal(np.argsort(widths), np.argsort(weights[0]))


def test_convex_combination_uniform_weights_put_the_output_at_the_centroid():
    _, V = _translation()
    uniform = np.full(toy.N_K, 1 / toy.N_K)
    bars_ax, plane = plotting.convex_combination(uniform, V)
    (star,) = _by_gid(plane, "output")
    assert_allclose(np.asarray(star.get_offsets())[0], V.mean(axis=0))
    # without key labels the keys are numbered
    assert [t.get_text() for t in bars_ax.get_xticklabels()] == ["0", "1", "2", "3"]


def test_convex_combination_draws_on_the_axes_it_is_given():
    weights, V = _translation()
    fig, given = plt.subplots(1, 2)
    returned = plotting.convex_combination(weights[1], V, toy.ENGLISH, axes=given)
    assert returned[0] is given[0] and returned[1] is given[1]
    assert len(fig.axes) == 2


@pytest.mark.parametrize(
    ("weights", "V", "message"),
    [
        (np.array([0.5, 0.5]), np.zeros((3, 2)), "shape"),
        (np.array([0.5, 0.5]), np.zeros((2, 3)), "shape"),
        (np.array([[0.5, 0.5]]), np.zeros((2, 2)), "shape"),
        (np.array([0.7, 0.7]), np.zeros((2, 2)), "sum to 1"),
        (np.array([1.5, -0.5]), np.zeros((2, 2)), "non-negative"),
    ],
)
def test_convex_combination_rejects_what_is_not_a_convex_combination(weights, V, message):
    with pytest.raises(ValueError, match=message):
        plotting.convex_combination(weights, V)


def test_convex_hull_helper_keeps_only_the_corners():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.5, 0.0]])
    hull = plotting.attention._convex_hull(square)
    assert {tuple(p) for p in hull} == {(0, 0), (1, 0), (1, 1), (0, 1)}


# ---- self_vs_cross_attention ----------------------------------------------------------------


def _maps():
    en, Z = toy.english()
    fr, X = toy.french()
    _, self_w = ref.self_attention(Z, *toy.self_projections())  # (n_k, n_k)
    _, cross_w = ref.cross_attention(X, Z, *toy.cross_projections())  # (n_q, n_k)
    return en, fr, self_w, cross_w


def test_self_vs_cross_draws_both_weight_matrices_with_their_tokens():
    en, fr, self_w, cross_w = _maps()
    left, right = plotting.self_vs_cross_attention(
        self_w, cross_w, en, fr, source_name="English", target_name="French"
    )
    (left_image,) = left.get_images()
    (right_image,) = right.get_images()
    assert_array_equal(left_image.get_array(), self_w)
    assert_array_equal(right_image.get_array(), cross_w)
    assert left_image.get_array().shape == (4, 4)
    assert right_image.get_array().shape == (5, 4)
    assert [t.get_text() for t in left.get_xticklabels()] == list(en)
    assert [t.get_text() for t in left.get_yticklabels()] == list(en)
    assert [t.get_text() for t in right.get_xticklabels()] == list(en)
    assert [t.get_text() for t in right.get_yticklabels()] == list(fr)
    assert "English" in right.get_xlabel() and "French" in right.get_ylabel()
    assert "English" in left.get_xlabel() and "English" in left.get_ylabel()
    assert "5 × 4" in right.get_title() and "4 × 4" in left.get_title()
    # one colour scale for both maps, so their colours can be compared
    assert left_image.get_clim() == right_image.get_clim() == (0, 1)
    assert left_image.get_cmap().name == right_image.get_cmap().name == plotting.HEATMAP_CMAP


def test_self_vs_cross_draws_on_the_axes_it_is_given():
    en, fr, self_w, cross_w = _maps()
    _, given = plt.subplots(1, 2)
    returned = plotting.self_vs_cross_attention(self_w, cross_w, en, fr, axes=given)
    assert returned[0] is given[0] and returned[1] is given[1]


def test_self_vs_cross_rejects_maps_that_do_not_fit_the_tokens():
    en, fr, self_w, cross_w = _maps()
    with pytest.raises(ValueError, match="expected self-attention weights of shape"):
        plotting.self_vs_cross_attention(self_w, cross_w.T, en, fr)
    with pytest.raises(ValueError, match="expected self-attention weights of shape"):
        plotting.self_vs_cross_attention(cross_w, cross_w, en, fr)
