"""The checks of notebook 10's exercises (:mod:`attention_course.checks.inference`).

``tests/test_grader_catalogue.py`` runs the learner-style catalogue
(``catalogue/wrong_inference.py``, ``catalogue/right_inference.py``) through these checks like
every other exercise's. This module adds what is particular to generation with a cache:

- the ``"steps"`` case's calls, answered by the reference, are the rows of causal multi-head
  attention over the whole sequence, and each call's cache holds exactly the tokens before it;
- every mistake of the grader's own catalogue, run as the learner's function, is named wherever
  a case fails it, and some case fails it;
- the cache must come back as one pair, a learner who writes into the cache it was given is
  caught, and a failure message describes the cache by its shapes, not by its numbers;
- the sizes of one call are all different;
- notebook 10's graded cells grade every case exactly once, visibly and hidden.

Shape legend: ``...`` batch dimensions, ``t`` cached tokens, ``n`` tokens of a sequence,
``d_model`` token width, ``d_k`` / ``d_v`` widths of one head, ``n_heads`` / ``n_kv_heads``
query / key-value heads, ``d_out`` output width.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from attention_course import checks
from attention_course import reference as ref
from attention_course.checks import EXERCISES, CheckFailed

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("decode_step", "grouped_query_attention", "sliding_window_mask")


def _calls(name: str, case: str, seed: int):
    return EXERCISES[name].cases[case].make(np.random.default_rng(seed))


def _message(check, fn, case: str, seed=None) -> str | None:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            check(fn, case, seed=seed)
        except CheckFailed as error:
            return error.message
    return None


@pytest.mark.parametrize("seed", range(5))
def test_the_steps_case_is_causal_multi_head_attention_row_by_row(seed):
    calls = _calls("decode_step", "steps", seed)
    x_rows, outputs = [], []
    for t, (args, _) in enumerate(calls):
        x_t, cache, W_q, W_k, W_v, W_o, n_heads = args
        assert (cache is None) == (t == 0)
        if cache is not None:
            assert cache[0].shape[-2] == cache[1].shape[-2] == t
        x_rows.append(x_t)
        outputs.append(ref.decode_step(*args)[0])
    X = np.concatenate(x_rows, axis=-2)  # (n, d_model)
    n = X.shape[-2]
    expected, _ = ref.multi_head_attention(X, X, W_q, W_k, W_v, W_o, n_heads, ref.causal_mask(n))
    assert_allclose(np.concatenate(outputs, axis=-2), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_every_catalogued_mistake_committed_by_a_learner_is_named(name, capfd):
    exercise = EXERCISES[name]
    check = getattr(checks, f"check_{name}")
    for mistake in exercise.mistakes:
        failed = 0
        for case in exercise.cases:
            message = _message(check, mistake.fn, case)
            if message is None:
                continue  # this mistake agrees with the reference on this case
            failed += 1
            assert f"mistake: {mistake.name}." in message, (case, message)
        assert failed, f"no case tells {mistake.name!r} from the reference"
    assert capfd.readouterr().err == ""


def _learner_decode(x_t, cache, W_q, W_k, W_v, W_o, n_heads, n_kv_heads=None):
    """A correct decode_step written without the reference, for any n_kv_heads."""
    n_kv = n_kv_heads or n_heads
    d_k = W_q.shape[1] // n_heads

    def split(Y, n):  # (..., m, n·d) -> (..., n, m, d)
        return np.swapaxes(Y.reshape(*Y.shape[:-1], n, -1), -2, -3)

    q, k, v = split(x_t @ W_q, n_heads), split(x_t @ W_k, n_kv), split(x_t @ W_v, n_kv)
    if cache is not None:
        k = np.concatenate([cache[0], k], axis=-2)
        v = np.concatenate([cache[1], v], axis=-2)
    g = n_heads // n_kv
    K, V = np.repeat(k, g, axis=-3), np.repeat(v, g, axis=-3)
    S = q @ np.swapaxes(K, -1, -2) / d_k**0.5  # (..., n_heads, 1, t + 1)
    P = np.exp(S - S.max(axis=-1, keepdims=True))
    P = P / P.sum(axis=-1, keepdims=True)
    heads = np.swapaxes(P @ V, -2, -3)  # (..., 1, n_heads, d_v)
    return heads.reshape(*heads.shape[:-2], -1) @ W_o, (k, v)


def test_the_learner_model_used_below_passes_every_case():
    for case in EXERCISES["decode_step"].cases:
        assert _message(checks.check_decode_step, _learner_decode, case) is None, case


def test_a_cache_returned_as_a_list_fails_every_case_with_the_pair_to_return():
    def as_list(*args):
        out, (K, V) = _learner_decode(*args)
        return out, [K, V]

    for case in EXERCISES["decode_step"].cases:
        message = _message(checks.check_decode_step, as_list, case)
        assert message is not None and "`return output_t, (K_cache, V_cache)`" in message, case


def test_writing_into_the_given_cache_is_caught():
    def writes_into_cache(x_t, cache, *rest):
        out, new = _learner_decode(x_t, cache, *rest)
        if cache is not None:
            cache[0][...] = 0.0  # "clear" the old cache in place
        return out, new

    message = _message(checks.check_decode_step, writes_into_cache, "inputs_unchanged")
    assert message is not None and "modified its input in place (cache)" in message


def test_a_failure_describes_the_cache_by_its_shapes():
    message = _message(checks.check_decode_step, lambda *args: None, "batch")
    assert message is not None
    assert "cache = a pair of arrays of shapes (" in message
    assert "array(" not in message and "[[" not in message


@pytest.mark.parametrize("seed", range(10))
def test_case_inputs_have_all_dimensions_different(seed):
    for case in ("batch", "gqa", "float32", "inputs_unchanged", "first_token"):
        for args, _ in _calls("decode_step", case, seed):
            x_t, cache, W_q, W_k, W_v, W_o, n_heads = args[:7]
            n_kv = args[7] if len(args) > 7 else n_heads
            t = 0 if cache is None else cache[0].shape[-2]
            d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_kv
            sizes = [*x_t.shape[:-2], x_t.shape[-1], d_k, d_v, W_o.shape[1], n_heads]
            sizes += [t] * (t > 1) + [n_kv] * (1 < n_kv < n_heads)
            assert len(set(sizes)) == len(sizes), (case, sizes)
    for case in EXERCISES["grouped_query_attention"].cases:
        for args, _ in _calls("grouped_query_attention", case, seed):
            X, Z, W_q, W_k, W_v, W_o, n_heads, n_kv = args[:8]
            d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_kv
            sizes = [*X.shape, *Z.shape[-2:], d_k, d_v, W_o.shape[1], n_heads]
            sizes += [n_kv] * (1 < n_kv < n_heads)
            assert len(set(sizes)) == len(sizes), (case, sizes)


def test_the_gqa_cases_share_kv_heads_in_groups_where_grouping_can_be_seen():
    for seed in range(5):
        (gqa, _), (mqa, _) = _calls("decode_step", "gqa", seed)
        assert gqa[6] // gqa[7] >= 2 and gqa[7] >= 2  # interleaved != grouped here
        assert mqa[7] == 1
        (args, _), *_ = _calls("grouped_query_attention", "mha", seed)
        assert args[6] == args[7]


def test_notebook_10_grades_every_case_once_visibly_and_hidden():
    """Each graded code cell of solutions/10_inference makes one check call visibly and the
    same with ``seed=1`` in its hidden block, worth 1 to 3 points; every case of the three
    exercises is graded by exactly one cell; the written answer carries a mark scheme."""
    notebook = ROOT / "solutions" / "10_inference" / "10_inference.ipynb"
    if not notebook.exists():
        pytest.skip("notebook 10 is not in solutions/ yet")
    graded = [c for c in json.loads(notebook.read_text())["cells"]
              if c["metadata"].get("nbgrader", {}).get("grade")]  # fmt: skip
    found, answers = [], 0
    for cell in graded:
        meta, source = cell["metadata"]["nbgrader"], "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            answers += 1
            assert "=== BEGIN MARK SCHEME ===" in source and meta["solution"], meta["grade_id"]
            continue
        visible, hidden = source.split("### BEGIN HIDDEN TESTS")
        calls = re.findall(r'checks\.check_(\w+)\((\w+), "(\w+)"\)', visible)
        hidden_calls = re.findall(r'checks\.check_(\w+)\((\w+), "(\w+)", seed=1\)', hidden)
        assert len(calls) == 1 and calls == hidden_calls, meta["grade_id"]
        ((name, fn, case),) = calls
        assert name == fn and name in NAMES and case in EXERCISES[name].cases, meta["grade_id"]
        assert meta["points"] in (1, 2, 3), meta["grade_id"]
        found.append((name, case))
    assert answers == 1
    assert Counter(found) == Counter(
        (name, case) for name in NAMES for case in EXERCISES[name].cases
    )
