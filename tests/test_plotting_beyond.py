"""Tests of the figures of notebooks 06–08 in :mod:`attention_course.plotting`.

Each test reads back what was drawn (image arrays, colours, line data, tick labels, titles)
and compares it with the data. Rendering uses the Agg backend, so no screen is needed.

Shape legend: ``n_q`` queries, ``n_k`` keys, ``n_heads`` heads.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attention_course import plotting
from attention_course import reference as ref


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _image(ax):
    (image,) = ax.get_images()
    return image


# ---- mask_panels ------------------------------------------------------------------------------


def _masks():
    return [
        ref.causal_mask(5),  # (5, 5)
        ref.causal_mask(3, 7),  # (3, 7), top-left
        np.tril(np.ones((3, 7), dtype=bool), k=4),  # (3, 7), bottom-right
    ]


def test_mask_panels_draws_each_mask_with_may_attend_in_blue():
    masks = _masks()
    titles = ["square", "top-left", "bottom-right"]
    axes = plotting.mask_panels(masks, titles)
    assert len(axes) == 3
    for ax, mask, title in zip(axes, masks, titles, strict=True):
        image = _image(ax)
        assert_array_equal(image.get_array(), mask.astype(float))
        # the colour each cell is painted with: blue where True, grey where False
        rgba = image.cmap(image.norm(image.get_array()))
        grey, blue = (mcolors.to_rgba(c) for c in plotting.MASK_COLOURS)
        assert_allclose(rgba[mask], np.broadcast_to(blue, (mask.sum(), 4)))
        assert_allclose(rgba[~mask], np.broadcast_to(grey, ((~mask).sum(), 4)))
        assert ax.get_title() == title
        assert ax.get_xlabel() == "key"
        assert len(ax.get_xticks()) == mask.shape[1] and len(ax.get_yticks()) == mask.shape[0]
    assert axes[0].get_ylabel() == "query"
    legend = axes[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["True: may attend", "False: blocked"]


def test_mask_panels_uses_labels_only_where_they_fit():
    words = ["a", "b", "c", "d", "e"]
    axes = plotting.mask_panels([ref.causal_mask(5), ref.causal_mask(3, 7)],
                                query_labels=words, key_labels=words)  # fmt: skip
    axes[0].figure.canvas.draw()
    assert [t.get_text() for t in axes[0].get_xticklabels()] == words
    assert [t.get_text() for t in axes[0].get_yticklabels()] == words
    assert [t.get_text() for t in axes[1].get_xticklabels()] == [str(j) for j in range(7)]


def test_mask_panels_draws_on_given_axes():
    _, given = plt.subplots(1, 2)
    axes = plotting.mask_panels(_masks()[:2], axes=given)
    assert list(axes) == list(given)
    assert_array_equal(_image(given[1]).get_array(), ref.causal_mask(3, 7).astype(float))


@pytest.mark.parametrize(
    ("masks", "kwargs", "message"),
    [
        ([np.ones(4, dtype=bool)], {}, "2-D masks"),
        ([np.ones((2, 2), dtype=bool)], {"titles": ["a", "b"]}, "2 titles for 1 masks"),
    ],
)
def test_mask_panels_rejects_bad_input(masks, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plotting.mask_panels(masks, **kwargs)


# ---- head_heatmaps ----------------------------------------------------------------------------


def _head_weights(n_heads=3, n_q=4, n_k=6):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_q, 5))
    Z = rng.standard_normal((n_k, 7))
    W_q, W_k = rng.standard_normal((5, 2 * n_heads)), rng.standard_normal((7, 2 * n_heads))
    W_v, W_o = rng.standard_normal((7, 3 * n_heads)), rng.standard_normal((3 * n_heads, 2))
    _, weights = ref.multi_head_attention(X, Z, W_q, W_k, W_v, W_o, n_heads)
    return weights  # (n_heads, n_q, n_k)


def test_head_heatmaps_draws_every_head_on_one_colour_scale():
    weights = _head_weights()
    queries, keys = ["q0", "q1", "q2", "q3"], [f"k{j}" for j in range(6)]
    axes = plotting.head_heatmaps(weights, queries, keys)
    assert len(axes) == 3
    for h, ax in enumerate(axes):
        image = _image(ax)
        assert_allclose(image.get_array(), weights[h])
        assert image.get_clim() == (0.0, 1.0)
        assert image.get_cmap().name == plotting.HEATMAP_CMAP
        assert ax.get_title() == f"head {h}"
        assert [t.get_text() for t in ax.get_xticklabels()] == keys
        assert [t.get_text() for t in ax.get_yticklabels()] == queries
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("key", "query")
    figure = axes[0].figure
    colorbars = [ax for ax in figure.axes if ax not in list(axes)]
    assert len(colorbars) == 1 and colorbars[0].get_ylabel() == "attention weight"


def test_head_heatmaps_grid_hides_spare_axes_and_keeps_titles():
    weights = _head_weights(n_heads=5)
    axes = plotting.head_heatmaps(weights, titles=list("abcde"), ncols=3)
    assert [ax.get_title() for ax in axes] == list("abcde")
    figure = axes[0].figure
    spare = [ax for ax in figure.axes if ax not in list(axes) and not ax.get_ylabel()]
    assert len(spare) == 1 and not spare[0].get_visible()  # 2 x 3 grid, one cell unused


@pytest.mark.parametrize(
    ("weights", "kwargs", "message"),
    [
        (np.ones((4, 6)), {}, r"\(n_heads, n_q, n_k\)"),
        (np.ones((2, 4, 6)), {"query_labels": ["a"]}, "1 query labels for 4 queries"),
        (np.ones((2, 4, 6)), {"titles": ["a"]}, "1 titles for 2 heads"),
    ],
)
def test_head_heatmaps_rejects_bad_input(weights, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plotting.head_heatmaps(weights, **kwargs)


# ---- memory_time_curves -----------------------------------------------------------------------


def test_memory_time_curves_plots_megabytes_and_milliseconds():
    ns = [128, 256, 512]
    peak = {"naive": [1e5, 4e5, 1.6e6], "tiled": [5e4, 1e5, 2e5]}
    seconds = {"naive": [0.001, 0.004, 0.016], "tiled": [0.002, 0.006, 0.02]}
    matrix = [n * n * 4 for n in ns]
    memory, timing = plotting.memory_time_curves(ns, peak, seconds, score_matrix_bytes=matrix)

    lines = {line.get_label(): line for line in memory.get_lines()}
    assert set(lines) == {"naive", "tiled", "one n × n score matrix"}
    for name in peak:
        assert_array_equal(lines[name].get_xdata(), ns)
        assert_allclose(lines[name].get_ydata(), np.array(peak[name]) / 1e6)
    assert_allclose(lines["one n × n score matrix"].get_ydata(), np.array(matrix) / 1e6)

    lines = {line.get_label(): line for line in timing.get_lines()}
    assert set(lines) == {"naive", "tiled"}
    for name in seconds:
        assert_allclose(lines[name].get_ydata(), np.array(seconds[name]) * 1e3)
    # the two implementations keep their colour from one panel to the other
    for name in peak:
        (left,) = [x for x in memory.get_lines() if x.get_label() == name]
        assert left.get_color() == lines[name].get_color()

    for panel in (memory, timing):
        assert panel.get_xscale() == "log" and panel.get_yscale() == "log"
        panel.figure.canvas.draw()
        assert [t.get_text() for t in panel.get_xticklabels()] == ["128", "256", "512"]
    assert "MB" in memory.get_ylabel() and "ms" in timing.get_ylabel()


def test_memory_time_curves_from_real_measurements_show_the_n_squared_gap():
    """A small real measurement, as notebook 08 makes: naive grows ~4x per doubling, tiled ~2x."""
    import tracemalloc

    ns = [128, 256, 512, 1024]
    peak = {"naive": [], "tiled": []}
    runs = {
        "naive": lambda Q, K, V: ref.scaled_dot_product_attention(Q, K, V),
        "tiled": lambda Q, K, V: ref.tiled_attention(Q, K, V, 32),
    }
    rng = np.random.default_rng(0)
    for n in ns:
        Q, K, V = rng.standard_normal((3, n, 16), dtype=np.float32)
        for name, run in runs.items():
            tracemalloc.start()
            run(Q, K, V)
            peak[name].append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    seconds = {name: [1e-3] * len(ns) for name in peak}
    memory, _ = plotting.memory_time_curves(ns, peak, seconds)
    naive, tiled = (
        np.asarray(line.get_ydata()) for line in memory.get_lines() if line.get_label() != ""
    )
    assert naive[-1] / naive[0] > 25  # the n x n score matrix: 64 x, plus O(n) arrays
    assert tiled[-1] / tiled[0] < 12  # O(n) arrays and (n, block) blocks: about 8 x
    assert naive[-1] > 3 * tiled[-1]


@pytest.mark.parametrize(
    ("peak", "seconds", "message"),
    [
        ({"a": [1, 2]}, {"b": [1, 2]}, "same implementations"),
        ({"a": [1]}, {"a": [1, 2]}, r"peak_bytes\['a'\] has 1 values for 2"),
    ],
)
def test_memory_time_curves_rejects_bad_input(peak, seconds, message):
    with pytest.raises(ValueError, match=message):
        plotting.memory_time_curves([1, 2], peak, seconds)
