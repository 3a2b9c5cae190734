"""Tests of :mod:`attention_course.saturation`: the simulations behind notebooks 02 and 03.

Statistical claims are checked against their theory with tolerances derived from the sampling
error (not tuned to pass), the Jacobian against finite differences of the reference softmax,
and the saturation statistics against a plain-Python replay of the documented simulation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from attention_course import reference, saturation

D_KS = np.array([1, 4, 16, 64, 256])


# ---- score_variance -------------------------------------------------------------------------


def _relative_sd_of_sample_variance(d_k: int, n_samples: int) -> float:
    """Standard deviation of Var_hat / Var for q · k with q, k ~ N(0, I_{d_k}).

    The fourth moment of q · k is 3 d_k² + 6 d_k, so Var(Var_hat) ≈ (μ4 - σ⁴) / n with
    σ² = d_k, i.e. a relative standard deviation of sqrt((2 + 6 / d_k) / n).
    """
    return math.sqrt((2 + 6 / d_k) / n_samples)


def test_score_variance_grows_like_d_k():
    n_samples = 20_000
    measured = saturation.score_variance(D_KS, n_samples, np.random.default_rng(1))
    for d_k, v in zip(D_KS, measured, strict=True):
        tolerance = 5 * _relative_sd_of_sample_variance(int(d_k), n_samples)
        assert abs(v / d_k - 1) < tolerance, f"d_k={d_k}: measured variance {v}"


def test_score_variance_is_one_after_scaling():
    n_samples = 20_000
    measured = saturation.score_variance(D_KS, n_samples, np.random.default_rng(2), scaled=True)
    for d_k, v in zip(D_KS, measured, strict=True):
        tolerance = 5 * _relative_sd_of_sample_variance(int(d_k), n_samples)
        assert abs(v - 1) < tolerance, f"d_k={d_k}: measured scaled variance {v}"


def test_score_variance_matches_a_replay_of_its_draws():
    # The documented order: for each width, the queries, then the keys.
    d_ks, n = [3, 5], 50
    measured = saturation.score_variance(d_ks, n, np.random.default_rng(3), scaled=True)
    rng = np.random.default_rng(3)
    for d_k, v in zip(d_ks, measured, strict=True):
        Q = rng.standard_normal((n, 1, d_k))
        K = rng.standard_normal((n, 1, d_k))
        scores = [
            sum(Q[s, 0, m] * K[s, 0, m] for m in range(d_k)) / math.sqrt(d_k) for s in range(n)
        ]
        mean = sum(scores) / n
        expected = sum((x - mean) ** 2 for x in scores) / (n - 1)
        assert v == pytest.approx(expected, rel=1e-12)


def test_score_variance_is_deterministic_given_the_generator():
    a = saturation.score_variance(D_KS, 500, np.random.default_rng(4))
    b = saturation.score_variance(D_KS, 500, np.random.default_rng(4))
    c = saturation.score_variance(D_KS, 500, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("d_ks", [[0, 4], [-1], [], [[1, 2]], [1.5, 2.0]])
def test_score_variance_rejects_bad_widths(d_ks):
    with pytest.raises(ValueError, match="d_k"):
        saturation.score_variance(d_ks, 100, np.random.default_rng(0))


def test_score_variance_rejects_too_few_samples():
    with pytest.raises(ValueError, match="n_samples"):
        saturation.score_variance([4], 1, np.random.default_rng(0))


# ---- naive_softmax ---------------------------------------------------------------------------


def test_naive_softmax_agrees_with_the_reference_on_small_scores():
    x = np.random.default_rng(6).normal(size=(3, 4, 5))
    for axis in (0, 1, -1):
        np.testing.assert_allclose(
            saturation.naive_softmax(x, axis=axis), reference.softmax(x, axis=axis), rtol=1e-12
        )


@pytest.mark.parametrize(
    ("x", "dtype"), [([1000.0, 1001.0, 1002.0], np.float64), ([90.0, 91.0, 92.0], np.float32)]
)
def test_naive_softmax_overflows_to_nan_silently(x, dtype):
    x = np.array(x, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would fail the test
        p = saturation.naive_softmax(x)
    assert np.isnan(p).all()
    assert np.isfinite(reference.softmax(x)).all()  # the stable version copes


# ---- softmax_jacobian ------------------------------------------------------------------------


def test_softmax_jacobian_matches_finite_differences():
    rng = np.random.default_rng(7)
    x = rng.normal(scale=2.0, size=(3, 2, 5))  # (..., n) with batch shape (3, 2)
    J = saturation.softmax_jacobian(reference.softmax(x))
    assert J.shape == (3, 2, 5, 5)
    h = 1e-6
    for j in range(5):
        step = np.zeros(5)
        step[j] = h
        numeric = (reference.softmax(x + step) - reference.softmax(x - step)) / (2 * h)
        np.testing.assert_allclose(J[..., :, j], numeric, atol=1e-8)


def test_softmax_jacobian_vanishes_at_one_hot_and_not_at_uniform():
    np.testing.assert_array_equal(saturation.softmax_jacobian([0.0, 1.0, 0.0]), np.zeros((3, 3)))
    uniform = saturation.softmax_jacobian(np.full(4, 0.25))
    expected = np.eye(4) / 4 - np.full((4, 4), 1 / 16)
    np.testing.assert_allclose(uniform, expected, atol=1e-15)


# ---- softmax_entropy -------------------------------------------------------------------------


def test_softmax_entropy_matches_scipy():
    p = reference.softmax(np.random.default_rng(8).normal(size=(4, 6)))
    np.testing.assert_allclose(saturation.softmax_entropy(p), scipy_entropy(p, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(
        saturation.softmax_entropy(p.T, axis=0), scipy_entropy(p, axis=-1), rtol=1e-12
    )


def test_softmax_entropy_limits():
    assert saturation.softmax_entropy(np.full(16, 1 / 16)) == pytest.approx(math.log(16))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0 · log 0 must not warn
        assert saturation.softmax_entropy([0.0, 1.0, 0.0]) == 0.0


# ---- saturation_stats ------------------------------------------------------------------------


WIDE = 2 ** np.arange(11)  # 1 ... 1024


@pytest.fixture(scope="module")
def unscaled():
    return saturation.saturation_stats(WIDE, 16, np.random.default_rng(9), scaled=False)


@pytest.fixture(scope="module")
def scaled():
    return saturation.saturation_stats(WIDE, 16, np.random.default_rng(10), scaled=True)


def test_unscaled_softmax_saturates_as_d_k_grows(unscaled):
    np.testing.assert_array_equal(unscaled.d_k, WIDE)
    assert unscaled.max_weight[0] < 0.3  # d_k = 1: far from one-hot
    assert unscaled.max_weight[-1] > 0.99  # d_k = 1024: one-hot
    # The rise is steady: strongly correlated with log d_k, and never drops by more than noise.
    assert np.corrcoef(np.log(WIDE), unscaled.max_weight)[0, 1] > 0.9
    assert np.all(np.diff(unscaled.max_weight) > -0.05)
    assert unscaled.entropy[-1] < 0.05 < 2.0 < unscaled.entropy[0]


def test_unscaled_gradient_vanishes_as_d_k_grows(unscaled):
    assert unscaled.grad_norm[-1] < 1e-3 * unscaled.grad_norm[0]
    assert unscaled.jacobian_norm[-1] < 1e-3 * unscaled.jacobian_norm[0]
    assert np.corrcoef(np.log(WIDE), np.log(unscaled.grad_norm))[0, 1] < -0.8


def test_scaled_softmax_stays_in_a_band(scaled):
    # Scaled scores have unit variance at every width: the statistics must not drift with d_k.
    assert np.all((scaled.max_weight > 0.1) & (scaled.max_weight < 0.35))
    assert np.all((scaled.entropy > 2.2) & (scaled.entropy < math.log(16)))
    assert scaled.grad_norm.max() < 1.5 * scaled.grad_norm.min()
    assert scaled.jacobian_norm.max() < 1.5 * scaled.jacobian_norm.min()


def _replay(d_ks, n_keys, seed, scaled, n_trials, summary):
    """Plain-Python version of the documented simulation: for each width, draw the queries,
    the keys, then the upstream gradients; summarise each quantity over the trials."""
    rng = np.random.default_rng(seed)
    out = {"max_weight": [], "entropy": [], "jacobian_norm": [], "grad_norm": []}
    for d_k in d_ks:
        Q = rng.standard_normal((n_trials, 1, d_k))
        K = rng.standard_normal((n_trials, n_keys, d_k))
        G = rng.standard_normal((n_trials, n_keys, 1))
        rows = {key: [] for key in out}
        for t in range(n_trials):
            s = [sum(Q[t, 0, m] * K[t, j, m] for m in range(d_k)) for j in range(n_keys)]
            if scaled:
                s = [v / math.sqrt(d_k) for v in s]
            top = max(s)
            e = [math.exp(v - top) for v in s]
            p = [v / sum(e) for v in e]
            J = [[p[i] * ((i == j) - p[j]) for j in range(n_keys)] for i in range(n_keys)]
            grad = [sum(J[j][i] * G[t, j, 0] for j in range(n_keys)) for i in range(n_keys)]
            rows["max_weight"].append(max(p))
            rows["entropy"].append(-sum(v * math.log(v) for v in p if v > 0))
            rows["jacobian_norm"].append(math.sqrt(sum(v * v for row in J for v in row)))
            rows["grad_norm"].append(math.sqrt(sum(v * v for v in grad)))
        for key in out:
            out[key].append(summary(rows[key]))
    return out


@pytest.mark.parametrize("scaled_scores", [False, True])
@pytest.mark.parametrize(("statistic", "summary"), [("median", np.median), ("mean", np.mean)])
def test_saturation_stats_matches_a_plain_python_replay(scaled_scores, statistic, summary):
    d_ks, n_keys, n_trials = [2, 7, 30], 3, 5
    stats = saturation.saturation_stats(
        d_ks,
        n_keys,
        np.random.default_rng(11),
        scaled=scaled_scores,
        n_trials=n_trials,
        statistic=statistic,
    )
    expected = _replay(d_ks, n_keys, 11, scaled_scores, n_trials, summary)
    for field, values in expected.items():
        np.testing.assert_allclose(getattr(stats, field), values, rtol=1e-9, err_msg=field)


def test_saturation_stats_is_deterministic_given_the_generator():
    a = saturation.saturation_stats([4, 64], 8, np.random.default_rng(12), scaled=False)
    b = saturation.saturation_stats([4, 64], 8, np.random.default_rng(12), scaled=False)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_keys": 1}, "n_keys"), ({"n_trials": 0}, "n_trials"), ({"statistic": "max"}, "statistic")],
)
def test_saturation_stats_rejects_bad_arguments(kwargs, match):
    arguments = {"d_ks": [4], "n_keys": 8, "rng": np.random.default_rng(0), "scaled": True}
    with pytest.raises(ValueError, match=match):
        saturation.saturation_stats(**{**arguments, **kwargs})
