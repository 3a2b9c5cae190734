"""The checks of notebook 09's backward exercises (:mod:`attention_course.checks.backward`).

``tests/test_grader_catalogue.py`` runs the learner-style catalogue
(``catalogue/wrong_backward.py``, ``catalogue/right_backward.py``) through these checks like
every other exercise's. This module adds what is particular to the backward pass:

- on inputs every case builds (from a few generators), the reference the checks compare with
  agrees with central differences, so "expected" in a failure message is the true gradient;
- every mistake of the grader's own catalogue, run as the learner's function, is named wherever
  a case fails it, and some case fails it;
- the sizes of one call are all different (probes apart, which make two equal on purpose).

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from attention_course import checks
from attention_course import reference as ref
from attention_course.checks import EXERCISES, CheckFailed

NAMES = ("softmax_backward", "attention_backward")
SEEDS = (0, 1)  # generators for the case builders (central differences are slow)
# The tolerance numerical_gradient's docstring gives: rtol, and atol times the largest entry.
# Below FLOOR central differences see nothing but rounding: the saturated rows of the "large"
# case have gradients near 1e-69, which they give as 0.
RTOL, ATOL, FLOOR = 1e-5, 1e-6, 1e-10


def _case_calls(name: str, case: str, seed: int):
    """The (args, kwargs) calls ``case`` builds from the generator of ``seed``."""
    return EXERCISES[name].cases[case].make(np.random.default_rng(seed))


def _assert_numerically_close(actual, numerical, what: str) -> None:
    atol = max(ATOL * float(np.max(np.abs(numerical), initial=0.0)), FLOOR)
    assert np.allclose(actual, numerical, rtol=RTOL, atol=atol), (
        f"{what}: the reference differs from central differences by "
        f"{np.max(np.abs(actual - numerical))}"
    )


@pytest.mark.parametrize("case", list(EXERCISES["attention_backward"].cases))
def test_attention_reference_agrees_with_central_differences_on_every_case(case):
    for seed in SEEDS:
        for args, kwargs in _case_calls("attention_backward", case, seed):
            args64 = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                      else a for a in args]  # fmt: skip
            expected = ref.attention_backward(*args64, **kwargs)
            numerical = ref.numerical_attention_gradients(*args64, **kwargs)
            for label, e, n in zip(
                ("grad_Q", "grad_K", "grad_V"), expected, numerical, strict=True
            ):
                _assert_numerically_close(e, n, f"{case}, seed={seed}, {label}")


@pytest.mark.parametrize("case", list(EXERCISES["softmax_backward"].cases))
def test_softmax_reference_agrees_with_central_differences_on_every_case(case):
    for seed in SEEDS:
        for (weights, grad_weights), kwargs in _case_calls("softmax_backward", case, seed):
            axis = kwargs.get("axis", -1)
            p, g = weights.astype(np.float64), grad_weights.astype(np.float64)
            with np.errstate(divide="ignore"):
                scores = np.log(p)  # softmax(log p) = p; a zero weight is a score of -inf

            def loss(s, g=g, axis=axis):
                return float(np.sum(ref.softmax(s, axis=axis) * g))

            numerical = ref.numerical_gradient(loss, scores)
            _assert_numerically_close(ref.softmax_backward(p, g, axis=axis), numerical, case)


@pytest.mark.parametrize("name", NAMES)
def test_every_catalogued_mistake_committed_by_a_learner_is_named(name, capfd):
    exercise = EXERCISES[name]
    check = getattr(checks, f"check_{name}")
    for mistake in exercise.mistakes:
        failed = 0
        for case in exercise.cases:
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    check(mistake.fn, case)
            except CheckFailed as error:
                failed += 1
                assert f"mistake: {mistake.name}." in error.message, (case, error.message)
        assert failed, f"no case tells {mistake.name!r} from the reference"
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("seed", range(10))
def test_case_inputs_have_all_dimensions_different(seed):
    for case in EXERCISES["attention_backward"].cases:
        for args, _ in _case_calls("attention_backward", case, seed):
            Q, K, V, dO = args[:4]
            sizes = [*Q.shape, K.shape[-2], V.shape[-1]]
            assert len(set(sizes)) == len(sizes), (case, sizes)
            assert dO.shape == (*Q.shape[:-1], V.shape[-1]), case
    for case in EXERCISES["softmax_backward"].cases:
        for (weights, grad_weights), _ in _case_calls("softmax_backward", case, seed):
            assert len(set(weights.shape)) == weights.ndim, (case, weights.shape)
            assert grad_weights.shape == weights.shape, case


def test_the_scale_case_calls_with_scale_one_and_another():
    calls = _case_calls("attention_backward", "scale", 0)
    assert [args[5] for args, _ in calls] == [1.0, 0.37]


def test_the_fully_masked_case_has_fully_masked_queries():
    for args, _ in _case_calls("attention_backward", "fully_masked", 0):
        Q, K, mask = args[0], args[1], args[4]
        full = np.broadcast_to(mask, (*Q.shape[:-2], Q.shape[-2], K.shape[-2]))
        assert (~full.any(axis=-1)).any()
