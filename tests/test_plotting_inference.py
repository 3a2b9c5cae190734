"""Tests of notebook 10's figures in :mod:`attention_course.plotting.inference`.

Each test reads back what was drawn (line data, labels, axis scales) and compares it with what
it was given. Rendering uses the Agg backend, so no screen is needed.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attention_course import plotting


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


LENGTHS = [16, 32, 64, 128]
SECONDS = {"with the KV cache": [1e-4, 1.1e-4, 1.3e-4, 1.7e-4],
           "recomputing everything": [2e-4, 6e-4, 2e-3, 8e-3]}  # fmt: skip


def test_decode_time_curves_draws_each_series_in_ms_on_log_log_axes():
    ax = plotting.decode_time_curves(LENGTHS, SECONDS)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == list(SECONDS)
    for line, values in zip(lines, SECONDS.values(), strict=True):
        assert_array_equal(line.get_xdata(), LENGTHS)
        assert_allclose(line.get_ydata(), np.asarray(values) * 1e3)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "ms" in ax.get_ylabel() and "t" in ax.get_xlabel()
    assert lines[0].get_color() != lines[1].get_color()


def test_decode_time_curves_draws_on_the_given_axes():
    _, ax = plt.subplots()
    assert plotting.decode_time_curves(LENGTHS, SECONDS, ax=ax) is ax


@pytest.mark.parametrize(
    ("seconds", "match"),
    [({}, "empty"), ({"a": [1.0, 2.0]}, r"seconds\['a'\] has 2 values for 4 sequence lengths")],
)
def test_decode_time_curves_rejects_bad_series(seconds, match):
    with pytest.raises(ValueError, match=match):
        plotting.decode_time_curves(LENGTHS, seconds)


def test_cache_memory_curves_draws_lines_in_gib_and_caps_a_windowed_variant():
    lengths = np.array([0, 1024, 4096, 8192])
    per_token = {"MHA": 2**19, "GQA": 2**17, "GQA + window": 2**17}
    ax = plotting.cache_memory_curves(lengths, per_token, window={"GQA + window": 4096})
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == list(per_token)
    assert_allclose(lines["MHA"].get_ydata(), lengths * 2**19 / 2**30)  # 0 ... 4 GiB
    assert_allclose(lines["GQA"].get_ydata(), [0, 0.125, 0.5, 1.0])
    assert_allclose(lines["GQA + window"].get_ydata(), [0, 0.125, 0.5, 0.5])  # capped at 4096
    assert lines["GQA + window"].get_linestyle() == "--"
    assert lines["MHA"].get_linestyle() == "-"
    assert "GiB" in ax.get_ylabel()


@pytest.mark.parametrize(
    ("per_token", "window", "match"),
    [({}, None, "empty"), ({"MHA": 1.0}, {"MQA": 8}, r"without bytes_per_token: \['MQA'\]")],
)
def test_cache_memory_curves_rejects_bad_input(per_token, window, match):
    with pytest.raises(ValueError, match=match):
        plotting.cache_memory_curves([1, 2], per_token, window=window)
