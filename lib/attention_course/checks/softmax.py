"""Notebook 03: ``softmax(x, axis=-1)``, stable for scores in the thousands.

Shape legend: ``n_q`` rows (queries), ``n_k`` columns (keys), leading batch dimensions.
"""

from __future__ import annotations

import numpy as np

from .. import reference as ref
from .framework import Case, Exercise, Mistake, make_check, unchanged_inputs_case
from .inputs import adversarial, batch_and_sizes, normal, sizes
from .mistakes import global_max_softmax, naive_softmax, stable_softmax, whole_array_softmax


def _softmax_inputs(kind: str):
    def make(rng):
        (b1, b2), (n_q, n_k, n_c) = batch_and_sizes(rng, 3)
        if kind == "random":
            return [((normal(rng, (n_q, n_k), 3.0),), {})]
        if kind == "batch":
            return [((normal(rng, (b1, b2, n_q, n_k), 3.0),), {})]
        if kind == "float32":
            # Scores of a few hundred: fine in float64, but np.exp overflows float32 at ~88.
            return [((normal(rng, (n_q, n_k), 150.0, np.float32),), {})]
        if kind == "large":
            # Rows centred far apart: subtracting one global max underflows whole rows.
            for _ in range(50):
                offsets = rng.uniform(-9000, 9000, size=(n_q, 1))
                x = np.clip(offsets + normal(rng, (n_q, n_k), 1000.0), -1e4, 1e4)
                if adversarial(x):
                    break
            return [((x,), {}), ((x.astype(np.float32),), {})]
        if kind == "axis":
            x = normal(rng, (n_q, n_k, n_c), 2.0)
            return [((x,), {"axis": 0}), ((x,), {"axis": 1}), ((x,), {"axis": -2})]
        if kind == "inputs_unchanged":
            return [((normal(rng, (b1, n_q, n_k), 3.0),), {})]
        raise KeyError(kind)

    return make


def _square_scores_probe(rng):
    """A square (n, n) input: a softmax without keepdims broadcasts wrongly but still runs."""
    (n,) = sizes(rng, 1, 3)
    return (normal(rng, (n, n), 3.0),), {}


def _softmax_axis_ignored(x, axis=-1):
    return stable_softmax(x, axis=-1)


def _softmax_no_keepdims(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis))
    return e / np.sum(e, axis=axis)


def _softmax_no_keepdims_in_sum(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis)


def _softmax_no_keepdims_in_max(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis))
    return e / np.sum(e, axis=axis, keepdims=True)


def _softmax_shift_without_exp(x, axis=-1):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _softmax_shift(shift):
    def softmax(x, axis=-1):
        e = np.exp(x - shift(x, axis))
        return e / e.sum(axis=axis, keepdims=True)

    return softmax


_SOFTMAX = Exercise(
    name="softmax",
    arg_names=("x",),
    reference=ref.softmax,
    n_outputs=1,
    output_names=("softmax",),
    signature="softmax(x, axis=-1)",
    exp_magnitude=lambda x, axis=-1: float(np.max(np.abs(x))),
    arg_layouts=("",),
    output_layouts=("",),
    cases={
        "random": Case("matches the reference on random input", _softmax_inputs("random")),
        "large": Case(
            "is stable for large scores (|x| up to 1e4, float64 and float32)",
            _softmax_inputs("large"),
        ),
        "axis": Case("respects the `axis` argument", _softmax_inputs("axis")),
        "batch": Case("works with leading batch dimensions", _softmax_inputs("batch")),
        "float32": Case("works in float32 with scores in the hundreds", _softmax_inputs("float32")),
        "inputs_unchanged": unchanged_inputs_case(
            _softmax_inputs("inputs_unchanged"), "does not modify its input"
        ),
    },
    mistakes=(
        Mistake(
            "the `axis` argument is ignored: your softmax always normalises the last axis",
            "pass axis=axis to both the max and the sum (with keepdims=True)",
            _softmax_axis_ignored,
        ),
        Mistake(
            "softmax over the wrong axis: you normalised over the query axis (axis 0) instead "
            "of the axis asked for (by default the last one, the key axis)",
            "use the `axis` argument, whose default -1 makes each row (one query's "
            "scores) sum to 1",
            lambda x, axis=-1: stable_softmax(x, axis=0),
        ),
        Mistake(
            "normalised over the whole array instead of along the axis",
            "sum along the axis with keepdims=True: e / e.sum(axis=axis, keepdims=True)",
            whole_array_softmax,
        ),
        Mistake(
            "no max subtraction: np.exp overflowed to inf and the division gave NaN",
            "subtract x.max(axis=axis, keepdims=True) before np.exp; softmax is "
            "unchanged by that shift and every exponent becomes ≤ 0",
            naive_softmax,
        ),
        Mistake(
            "subtracted the maximum of the whole array instead of each slice's maximum: "
            "rows far below it underflow to 0/0 = NaN",
            "use x.max(axis=axis, keepdims=True) so that every row keeps an entry equal "
            "to exp(0) = 1",
            global_max_softmax,
        ),
        Mistake(
            "subtracted the mean instead of the maximum: entries far above the mean still "
            "overflow np.exp",
            "subtract x.max(axis=axis, keepdims=True): then every exponent is ≤ 0",
            _softmax_shift(lambda x, axis: x.mean(axis=axis, keepdims=True)),
        ),
        Mistake(
            "subtracted the minimum instead of the maximum: every exponent is ≥ 0, so "
            "np.exp overflows",
            "subtract x.max(axis=axis, keepdims=True): then every exponent is ≤ 0",
            _softmax_shift(lambda x, axis: x.min(axis=axis, keepdims=True)),
        ),
        Mistake(
            "forgot the exponential: divided the scores by their sum",
            "exponentiate first: e = np.exp(x - max); then e / e.sum(...)",
            lambda x, axis=-1: x / x.sum(axis=axis, keepdims=True),
        ),
        Mistake(
            "forgot the exponential: divided the shifted scores x - max by their sum",
            "exponentiate the shifted scores: e = np.exp(x - max); then e / e.sum(...)",
            _softmax_shift_without_exp,
        ),
        Mistake(
            "returned the log-softmax x - logsumexp(x), not the probabilities",
            "exponentiate it: np.exp(x - logsumexp(x, axis=axis, keepdims=True))",
            lambda x, axis=-1: np.log(stable_softmax(x, axis=axis)),
        ),
        Mistake(
            "divided by the maximum of the exponentials instead of their sum",
            "normalise with the sum: e / e.sum(axis=axis, keepdims=True)",
            lambda x, axis=-1: np.exp(x - x.max(axis=axis, keepdims=True)),
        ),
        Mistake(
            "keepdims missing: x.max(axis) / e.sum(axis) broadcast against the wrong axis",
            "use keepdims=True in both the max and the sum",
            _softmax_no_keepdims,
            probe=_square_scores_probe,
        ),
        Mistake(
            "keepdims missing in the sum: e.sum(axis) lost its axis, so each entry is "
            "divided by another row's sum",
            "e / e.sum(axis=axis, keepdims=True): keepdims keeps the summed axis (size 1) "
            "so that it broadcasts along the right axis",
            _softmax_no_keepdims_in_sum,
            probe=_square_scores_probe,
        ),
        Mistake(
            "keepdims missing in the max: x.max(axis) lost its axis, so each entry is "
            "shifted by another row's maximum",
            "x - x.max(axis=axis, keepdims=True): keepdims keeps the reduced axis (size 1) "
            "so that it broadcasts along the right axis",
            _softmax_no_keepdims_in_max,
            probe=_square_scores_probe,
        ),
    ),
    forbidden=frozenset(
        {"softmax", "scaled_dot_product_attention", "self_attention", "cross_attention"}
    ),
)


check_softmax = make_check(_SOFTMAX)
