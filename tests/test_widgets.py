"""Kernel side of the explorers: set the controls from code, read the figure's data.

No browser and no Jupyter front end: a control's ``value`` is set as the front end would set
it, the explorer's callback runs, and the tests read what was drawn (bar heights, histogram
values, image data) and compare it with numbers computed here from the reference.
``tests/test_browser.py`` checks the same explorers end to end in Chromium.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from attention_course import reference as ref
from attention_course import toy, widgets

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "widgets" / "widgets_demo.ipynb"
D_KS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _heights(bars) -> np.ndarray:
    return np.array([bar.get_height() for bar in bars])


def _entropy(p: np.ndarray) -> float:
    """Entropy in nats, written out here independently of the library."""
    p = p[p > 0]
    return float(-np.sum(p * np.log(p)))


def _jacobian_norm(p: np.ndarray) -> float:
    """Frobenius norm of dp/ds = diag(p) - p pᵀ, by a loop over the entries."""
    n = p.size
    total = 0.0
    for i in range(n):
        for j in range(n):
            total += (p[i] * ((i == j) - p[j])) ** 2
    return float(np.sqrt(total))


@pytest.fixture(scope="module")
def _saturation_explorer():
    explorer = widgets.saturation_explorer(seed=0)  # created once: a first draw takes ~0.5 s
    yield explorer
    explorer.close()


@pytest.fixture
def saturation(_saturation_explorer):
    """The seed-0 saturation explorer at d_k = 16, as ``saturation_explorer(seed=0)`` shows it."""
    explorer = _saturation_explorer
    explorer.rng = np.random.default_rng(0)
    explorer.d_k_slider.value = 16
    explorer.resample()
    return explorer


# --------------------------------------------------------------------------------------------
# Saturation explorer (notebook 03)
# --------------------------------------------------------------------------------------------


def test_saturation_bars_and_readouts_follow_the_slider(saturation):
    """At every d_k the bars are the reference softmax of q[:d_k] · K[:, :d_k] (/ √d_k)."""
    for d_k in D_KS:
        saturation.d_k_slider.value = d_k
        assert saturation.d_k == d_k
        scores = saturation.K[:, :d_k] @ saturation.q[:d_k]  # (n_k, d_k) @ (d_k,) -> (n_k,)
        for side, s in (("unscaled", scores), ("scaled", scores / np.sqrt(d_k))):
            expected = ref.softmax(s)
            np.testing.assert_allclose(_heights(saturation.bars[side]), expected, atol=1e-12,
                                       err_msg=f"{side} bars at d_k={d_k}")  # fmt: skip
            readout = saturation.readouts[side]
            assert readout.max_weight == pytest.approx(expected.max(), abs=1e-12)
            assert readout.entropy == pytest.approx(_entropy(expected), abs=1e-9)
            assert readout.grad_norm == pytest.approx(_jacobian_norm(expected), abs=1e-12)
            assert widgets.base._fmt(readout.max_weight) in saturation.readout.value
        assert f"d_k = {d_k}<" in saturation.readout.value


def test_unscaled_side_saturates_and_scaled_side_stays_put(saturation):
    """d_k 1 → 1024: unscaled largest weight → 1, gradient → 0; scaled ones stay in a band."""
    curves = {side: {"max": [], "grad": []} for side in ("unscaled", "scaled")}
    for d_k in D_KS:
        saturation.d_k_slider.value = d_k
        for side, readout in saturation.readouts.items():
            curves[side]["max"].append(readout.max_weight)
            curves[side]["grad"].append(readout.grad_norm)
    unscaled, scaled = curves["unscaled"], curves["scaled"]
    n_k = saturation.n_keys
    assert unscaled["max"][0] < 0.5 and unscaled["max"][-1] > 0.999, unscaled["max"]
    assert unscaled["grad"][0] > 0.2 and unscaled["grad"][-1] < 1e-6, unscaled["grad"]
    # Rises towards 1 and falls towards 0 along the sweep (allowing small wiggles of one draw).
    assert np.all(np.diff(np.maximum.accumulate(unscaled["max"])) >= 0)
    assert max(unscaled["max"][-3:]) > 0.999 and max(unscaled["grad"][-3:]) < 1e-3
    assert all(1 / n_k <= m < 0.7 for m in scaled["max"]), scaled["max"]
    assert all(0.25 < g < 0.45 for g in scaled["grad"]), scaled["grad"]


def test_saturation_typical_draw_over_resamples(saturation):
    """Over several resamples (the button), the median query saturates only when unscaled."""
    table = {(side, d_k): [] for side in ("unscaled", "scaled") for d_k in (1, 32, 1024)}
    for _ in range(8):
        saturation.resample_button.click()
        for d_k in (1, 32, 1024):
            saturation.d_k_slider.value = d_k
            for side, readout in saturation.readouts.items():
                table[side, d_k].append(readout)
    med = {key: np.median(np.array(rows), axis=0) for key, rows in table.items()}
    # Readout fields: max_weight, entropy, grad_norm.
    assert med["unscaled", 1][0] < 0.5 < med["unscaled", 32][0] < med["unscaled", 1024][0]
    assert med["unscaled", 1024][0] > 0.99 and med["unscaled", 1024][2] < 1e-2
    for d_k in (1, 32, 1024):
        assert 0.15 < med["scaled", d_k][0] < 0.6, (d_k, med["scaled", d_k])
        assert 0.3 < med["scaled", d_k][2] < 0.42, (d_k, med["scaled", d_k])


def test_one_figure_is_reused_and_each_move_redraws_it(saturation):
    """No new figure per move: the same Figure and artists, a new PNG in the same Image."""
    figure, bars, image = saturation.figure, saturation.bars["unscaled"], saturation.image
    n_artists = len(figure.axes[0].get_children())
    pyplot_figures = plt.get_fignums()
    pngs = []
    for d_k in (4, 64, 1024):
        saturation.d_k_slider.value = d_k
        png = bytes(saturation.image.value)
        assert png.startswith(PNG_MAGIC)
        pngs.append(png)
    assert len(set(pngs)) == 3, "the image did not change when d_k changed"
    assert saturation.figure is figure and saturation.bars["unscaled"] is bars
    assert saturation.image is image and len(figure.axes[0].get_children()) == n_artists
    assert plt.get_fignums() == pyplot_figures, "an explorer must not create pyplot figures"
    before = bytes(saturation.image.value)
    saturation.resample_button.click()
    assert bytes(saturation.image.value) != before, "Resample did not redraw"


def test_blitted_frame_equals_a_full_redraw(saturation):
    """The fast path (cached background + changed artists) draws what a full draw draws."""
    saturation.d_k_slider.value = 256
    fast = np.asarray(saturation._canvas.buffer_rgba()).copy()
    for artist in saturation._animated:
        artist.set_animated(False)
    saturation._canvas.draw()
    full = np.asarray(saturation._canvas.buffer_rgba())
    assert np.abs(fast.astype(int) - full.astype(int)).max() <= 2


def test_saturation_slider_is_logarithmic_from_1_to_1024(saturation):
    slider = saturation.d_k_slider
    assert isinstance(slider, type(widgets.base._log2_slider(16, 1024)))
    assert (slider.base, slider.min, slider.max, slider.step) == (2, 0, 10, 1)
    slider.value = 100  # a value typed into the readout: rounded, not snapped to 2**k
    assert saturation.d_k == 100


# --------------------------------------------------------------------------------------------
# Variance explorer (notebook 02)
# --------------------------------------------------------------------------------------------


def test_variance_histograms_and_theory_follow_the_slider():
    explorer = widgets.variance_explorer(seed=1, n_pairs=1500)
    try:
        for d_k in (1, 16, 256, 1024):
            explorer.d_k_slider.value = d_k
            unscaled = np.sum(explorer.Q[:, :d_k] * explorer.K[:, :d_k], axis=1)  # (n_pairs,)
            for side, x, var in (
                ("unscaled", unscaled, d_k),
                ("scaled", unscaled / np.sqrt(d_k), 1.0),
            ):
                values, edges, _ = explorer.hists[side].get_data()
                expected, _ = np.histogram(x, bins=edges, density=True)
                np.testing.assert_allclose(values, expected, atol=1e-12)
                grid, pdf = explorer.theory[side].get_data()
                np.testing.assert_allclose(
                    pdf, np.exp(-(grid**2) / (2 * var)) / np.sqrt(2 * np.pi * var), rtol=1e-12
                )
                lines = sorted(line.get_xdata()[0] for line in explorer.sigma_lines[side])
                np.testing.assert_allclose(lines, [-np.sqrt(var), np.sqrt(var)])
                assert explorer.measured_var[side] == pytest.approx(np.var(x, ddof=1))
                # Theory: Var(q · k) = d_k, and 1 after scaling (15 % allows sampling noise).
                assert explorer.measured_var[side] == pytest.approx(var, rel=0.15)
            assert f"{explorer.measured_var['unscaled']:.3g}" in explorer.readout.value
            assert bytes(explorer.image.value).startswith(PNG_MAGIC)
    finally:
        explorer.close()


# --------------------------------------------------------------------------------------------
# Attention explorer (notebooks 04 and 05)
# --------------------------------------------------------------------------------------------


def test_attention_explorer_follows_query_and_temperature():
    explorer = widgets.attention_explorer()
    Q, K, V = toy.translation_qkv()
    d_k = Q.shape[-1]
    try:
        assert explorer.query_labels == list(toy.FRENCH)
        assert explorer.key_labels == list(toy.ENGLISH)
        _, expected = ref.scaled_dot_product_attention(Q, K, V)  # T = 1: the standard scaling
        np.testing.assert_allclose(explorer.heatmap.get_array(), expected, atol=1e-12)
        entropies = []
        for T in (0.1, 1.0, 10.0):
            explorer.temperature_slider.value = T
            _, expected = ref.scaled_dot_product_attention(Q, K, V, scale=1 / (T * np.sqrt(d_k)))
            for i, word in enumerate(toy.FRENCH):
                explorer.query_picker.value = i
                np.testing.assert_allclose(explorer.heatmap.get_array(), expected, atol=1e-12)
                np.testing.assert_allclose(_heights(explorer.bars), expected[i], atol=1e-12)
                assert explorer.frame.get_y() == i - 0.5  # the frame sits on row i
                assert f"<b>{html.escape(word)}</b>" in explorer.readout.value
            entropies.append(_entropy(expected[1]))
        assert entropies[0] < entropies[1] < entropies[2], "a higher temperature must flatten"
        # The toy was built so that "chat" attends most to "cat".
        explorer.temperature_slider.value = 1.0
        explorer.query_picker.value = toy.FRENCH.index("chat")
        assert toy.ENGLISH[int(np.argmax(_heights(explorer.bars)))] == "cat"
        assert "<b>cat</b>" in explorer.readout.value
    finally:
        explorer.close()


def test_attention_explorer_takes_any_q_and_k():
    rng = np.random.default_rng(3)
    Q, K = rng.standard_normal((3, 7)), rng.standard_normal((5, 7))  # n_q=3, n_k=5, d_k=7
    explorer = widgets.attention_explorer(Q, K, query=2, temperature=2.0)
    try:
        assert explorer.key_labels == ["k0", "k1", "k2", "k3", "k4"]
        expected = ref.softmax(Q @ K.T / (2.0 * np.sqrt(7)))  # (3, 7) @ (7, 5) -> (3, 5)
        np.testing.assert_allclose(_heights(explorer.bars), expected[2], atol=1e-12)
    finally:
        explorer.close()
    self_explorer = widgets.attention_explorer(toy="self")
    assert self_explorer.query_labels == self_explorer.key_labels == list(toy.ENGLISH)
    self_explorer.close()
    with pytest.raises(ValueError, match="both Q and K"):
        widgets.attention_explorer(Q)
    with pytest.raises(ValueError, match="labels"):
        widgets.attention_explorer(Q, K, key_labels=["a", "b"])


# --------------------------------------------------------------------------------------------
# In a notebook: one line per explorer, headless, quiet, and no widget state in git.
# --------------------------------------------------------------------------------------------


def test_explorer_cells_run_headless_without_stderr():
    """nbclient runs the fixture (as nbval and nbgrader would): widgets, no error, no stderr."""
    nb = nbformat.read(FIXTURE, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False).execute()
    shown = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "stream" or out.name != "stderr", (
                f"cell {cell.id} wrote to stderr: {out.text}"
            )
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                shown.append(out.data["text/plain"])
    assert len(shown) == 3 and all("interactive widget" in text for text in shown), shown


def test_no_widget_state_or_outputs_committed():
    """Notebooks with explorers carry no outputs and no saved widget state."""
    notebooks = [FIXTURE, *sorted(ROOT.glob("solutions/*/*.ipynb")),
                 *sorted(ROOT.glob("course/*/*.ipynb"))]  # fmt: skip
    for path in notebooks:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if "widgets." not in path.read_text(encoding="utf-8"):
            continue
        where = path.relative_to(ROOT)
        assert "widgets" not in nb.get("metadata", {}), f"{where} carries widget state"
        for cell in nb["cells"]:
            assert not cell.get("outputs"), f"{where}: cell {cell.get('id')} has outputs"
