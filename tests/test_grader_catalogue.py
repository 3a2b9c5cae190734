"""The grader against a catalogue of learner implementations, wrong and right, notebooks 01-10.

The catalogue lives in ``tests/catalogue/``: ``wrong.py`` / ``right.py`` for notebooks 01-05,
``wrong_beyond.py`` / ``right_beyond.py`` for 06-08 (masks, multi-head, tiled attention),
``wrong_backward.py`` / ``right_backward.py`` for 09 (the backward pass),
``wrong_inference.py`` / ``right_inference.py`` for 10 (KV cache, GQA, sliding windows).

- Every wrong implementation loses points: the check case a grader author would expect fails
  (with the visible seed and with hidden-test seeds), and the message names the mistake (or,
  for an unnamed one, says what was expected and what came back). Its lines fit nbgrader's
  feedback box.
- Every correct alternative gets full marks on every case, with the visible seed and with the
  hidden-test seeds; a hidden test's ✓ line says that it was the hidden test.
- A stub that still raises ``NotImplementedError`` fails every case with "not implemented".
- Nothing ever reaches stderr (nbgrader scores a test cell with stderr output as zero).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import tracemalloc
from collections import Counter
from pathlib import Path

import catalogue.right  # noqa: F401 - registers the correct alternatives
import catalogue.right_backward  # noqa: F401
import catalogue.right_beyond  # noqa: F401
import catalogue.right_inference  # noqa: F401
import catalogue.wrong  # noqa: F401 - registers the wrong implementations
import catalogue.wrong_backward  # noqa: F401
import catalogue.wrong_beyond  # noqa: F401
import catalogue.wrong_inference  # noqa: F401
import numpy as np
import pytest
from catalogue import (
    BACKWARD_EXERCISES,
    BEYOND_EXERCISES,
    CORE_EXERCISES,
    INFERENCE_EXERCISES,
    RIGHT,
    WRONG,
)
from catalogue.right_beyond import tiled_textbook
from catalogue.wrong import ENDLESS_LOOP
from catalogue.wrong_beyond import causal_float_ones, causal_upper_triangle, tiled_scores_first

from attention_course import checks
from attention_course.checks import EXERCISES, CheckFailed, framework, messages, runner, tiled
from attention_course.checks.framework import FLOAT32_KEPT, Trial
from attention_course.checks.runner import Outcome

ROOT = Path(__file__).resolve().parents[1]
CHECKS = {name: getattr(checks, f"check_{name}") for name in EXERCISES}
# Five hidden seeds for the fast exercises of 01-05, three for 06-08 (the tiled memory case
# allocates a few MB per call).
HIDDEN_SEEDS = {
    **dict.fromkeys(CORE_EXERCISES, (1, 2, 3, 4, 5)),
    **dict.fromkeys(BEYOND_EXERCISES, (1, 2, 3)),
    **dict.fromkeys(BACKWARD_EXERCISES, (1, 2, 3)),
    **dict.fromkeys(INFERENCE_EXERCISES, (1, 2, 3)),
}


def failure(exercise: str, fn, case: str, seed: int | None = None):
    """Run one check: (the CheckFailed or None if it passed, what it printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            CHECKS[exercise](fn, case, seed=seed)
        except CheckFailed as failed:
            return failed, printed.getvalue()
    return None, printed.getvalue()


def outcome(exercise: str, fn, case: str, seed: int | None = None) -> tuple[str | None, str]:
    """Run one check: (failure message, unwrapped, or None if it passed, what it printed)."""
    failed, printed = failure(exercise, fn, case, seed)
    return (None if failed is None else failed.message), printed


@pytest.fixture
def short_time_limit(monkeypatch):
    """The catalogue's endless loops are stopped after 2 s instead of the grader's limit (every
    wrong implementation returns in milliseconds)."""
    monkeypatch.setattr(runner, "TIME_LIMIT_SECONDS", 2.0)


# ---- the catalogue is as large as promised ---------------------------------------------------


def test_catalogue_covers_every_exercise():
    wrong_per_exercise = Counter(entry.exercise for entry in WRONG)
    right_per_exercise = Counter(entry.exercise for entry in RIGHT)
    every = (*CORE_EXERCISES, *BEYOND_EXERCISES, *BACKWARD_EXERCISES, *INFERENCE_EXERCISES)
    assert set(every) == set(EXERCISES)
    assert sum(wrong_per_exercise[name] for name in CORE_EXERCISES) >= 35
    assert sum(right_per_exercise[name] for name in CORE_EXERCISES) >= 12
    assert sum(wrong_per_exercise[name] for name in BEYOND_EXERCISES) >= 20
    assert sum(right_per_exercise[name] for name in BEYOND_EXERCISES) >= 8
    for name in CORE_EXERCISES:
        assert wrong_per_exercise[name] >= 3, name
        assert right_per_exercise[name] >= 3, name
    for name in BEYOND_EXERCISES:
        assert wrong_per_exercise[name] >= 3, name
        assert right_per_exercise[name] >= 2, name
    # Issue 12: at least 15 wrong backward passes and 5 correct alternatives.
    assert sum(wrong_per_exercise[name] for name in BACKWARD_EXERCISES) >= 15
    assert sum(right_per_exercise[name] for name in BACKWARD_EXERCISES) >= 5
    for name in BACKWARD_EXERCISES:
        assert wrong_per_exercise[name] >= 5 and right_per_exercise[name] >= 3, name
    # Issue 13: at least 12 wrong inference-time implementations and 4 correct alternatives.
    assert sum(wrong_per_exercise[name] for name in INFERENCE_EXERCISES) >= 12
    assert sum(right_per_exercise[name] for name in INFERENCE_EXERCISES) >= 4
    for name in INFERENCE_EXERCISES:
        assert wrong_per_exercise[name] >= 5 and right_per_exercise[name] >= 2, name
    ids = [entry.id for entry in WRONG + RIGHT]
    assert len(set(ids)) == len(ids), "ids must be unique"
    for entry in WRONG:
        assert entry.fails in EXERCISES[entry.exercise].cases, entry.id
        assert entry.says, entry.id
    assert sum(ENDLESS_LOOP in entry.says for entry in WRONG) >= 2


# ---- wrong implementations lose points, and the message says why -----------------------------


@pytest.mark.parametrize("entry", WRONG, ids=[entry.id for entry in WRONG])
def test_wrong_implementation_fails_with_a_message_naming_the_mistake(
    entry, capfd, short_time_limit
):
    message, _ = outcome(entry.exercise, entry.fn, entry.fails)
    assert message is not None, f"{entry.id} passes {entry.fails!r}"
    for phrase in entry.says:
        assert phrase in message, f"{phrase!r} missing from:\n{message}"
    assert message.startswith(f"{entry.exercise} — ")
    assert "Traceback" not in message and "check_" not in message and "seed" not in message

    # Hidden tests (other seeds, other shapes) reach the same verdict.
    for seed in HIDDEN_SEEDS[entry.exercise]:
        hidden, _ = outcome(entry.exercise, entry.fn, entry.fails, seed=seed)
        assert hidden is not None, f"{entry.id} passes {entry.fails!r} with seed={seed}"
        for phrase in entry.says:
            assert phrase in hidden, f"seed={seed}: {phrase!r} missing from:\n{hidden}"

    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("entry", WRONG, ids=[entry.id for entry in WRONG])
def test_failure_messages_fit_the_feedback_box(entry, short_time_limit):
    """Every line fits nbgrader's feedback box, the first after IPython's "CheckFailed: ", and
    wrapping changed nothing but where the lines break."""
    failed, _ = failure(entry.exercise, entry.fn, entry.fails)
    assert failed is not None
    shown = f"CheckFailed: {failed}"
    assert max(len(line) for line in shown.split("\n")) <= messages.WIDTH, shown
    assert str(failed).split() == failed.message.split()
    for code in re.findall(r"`[^`\n]+`", failed.message):  # code in backticks stays on one line
        assert code in str(failed), code


ENDLESS = [entry for entry in WRONG if ENDLESS_LOOP in entry.says]


@pytest.mark.parametrize("entry", ENDLESS, ids=[entry.id for entry in ENDLESS])
def test_an_endless_loop_is_named_once_and_later_checks_fail_at_once(
    entry, short_time_limit, monkeypatch
):
    """The first check waits for the time limit; every later check of the same function (other
    cases, hidden seeds) fails at once with the same explanation, without calling it again."""
    calls = []
    real_call = framework.call

    def counting_call(fn, *args, **kwargs):
        calls.append(fn)
        return real_call(fn, *args, **kwargs)

    monkeypatch.setattr(framework, "call", counting_call)
    monkeypatch.setattr(framework, "_STOPPED", {})  # forget what earlier tests stopped
    first, _ = outcome(entry.exercise, entry.fn, entry.fails)
    assert first is not None and ENDLESS_LOOP in first
    assert calls.count(entry.fn) == 1
    for case in EXERCISES[entry.exercise].cases:
        again, _ = outcome(entry.exercise, entry.fn, case, seed=7)
        assert again is not None and first.split(": FAILED.\n", 1)[1] in again, case
    assert calls.count(entry.fn) == 1, "a stopped function is not called again"


def test_an_unnamed_mistake_reports_expected_and_got():
    """The +0.1 % error matches no known mistake: the message says shape, dtype and values."""
    entry = next(e for e in WRONG if e.id == "scores_off_by_a_thousandth")
    message, _ = outcome(entry.exercise, entry.fn, "random")
    assert "Likely mistake" not in message
    assert "right shape (" in message and "= (..., n_q, n_k)" in message
    assert "and dtype float64, but wrong values" in message
    assert "expected " in message and ", got " in message
    assert "Called with: Q of shape (" in message


def test_a_wrong_shape_reports_expected_and_got_shapes():
    def scores_missing_the_last_query(Q, K):
        return (Q @ K.swapaxes(-1, -2))[..., :-1, :]

    message, _ = outcome("dot_product_scores", scores_missing_the_last_query, "random")
    assert "Likely mistake" not in message
    assert "scores: expected an array of shape (" in message
    assert "= (..., n_q, n_k) and dtype float64, got shape (" in message


def test_a_mask_with_the_right_pattern_but_numbers_passes_the_values_with_a_note():
    message, printed = outcome("causal_mask", causal_float_ones, "square")
    assert message is None
    assert "your mask has dtype float64, not bool" in " ".join(printed.split())


def test_a_wrong_mask_shows_both_patterns():
    message, _ = outcome("causal_mask", causal_upper_triangle, "square")
    assert "Expected (1 = may attend):\n    1 0" in message and "Yours:\n    1 1" in message
    assert "Called with: n_q=" in message


def test_the_memory_check_reports_the_sizes():
    message, _ = outcome("tiled_attention", tiled_scores_first, "memory")
    assert re.search(r"allocated [\d,]+ kB at its peak, but the check allows \d+ kB", message)
    assert re.search(r"n_q × block_size = \d × \d+\)", message)
    assert re.search(
        r"all n_k = \d\d,\d\d\d keys, is \d+ kB: your peak is \d+\.\d such rows", message
    )


def test_the_memory_budget_does_not_grow_with_n_k_and_a_whole_row_exceeds_it():
    """The memory case's budget is proportional to n_q · block_size; one query's row of n_k
    float64 scores is more than twice the largest budget the case can draw."""
    high = {name: top - 1 for name, (_, top) in tiled.MEMORY_SIZES.items()}  # [low, high)
    largest = tiled.memory_budget(high["n_q"], high["d_k"], high["d_v"], high["block_size"])
    assert 8 * tiled.MEMORY_SIZES["n_k"][0] > 2 * largest
    for seed in (None, 1, 2, 3):
        rng = np.random.default_rng(seed)
        ((Q, K, V, block_size), _), *_ = EXERCISES["tiled_attention"].cases["memory"].make(rng)
        assert Q.shape[-2] <= 4 and K.shape[-2] >= 36_000
        budget = tiled.memory_budget(Q.shape[-2], Q.shape[-1], V.shape[-1], block_size)
        assert 8 * K.shape[-2] > 2 * budget  # one (1, n_k) float64 row of scores


def test_the_float32_rule_holds_only_when_every_floating_input_is_float32():
    """Float32 in, float32 out; float32 queries with float64 keys may give float64 (NumPy
    promotes them), and a right float32 answer passes."""
    exercise = EXERCISES["dot_product_scores"]
    Q32 = np.arange(6, dtype=np.float32).reshape(2, 3)  # (n_q, d_k)
    K64 = np.arange(12, dtype=np.float64).reshape(4, 3)  # (n_k, d_k)
    K32 = K64.astype(np.float32)

    def broken(args, value):
        trial = Trial(exercise, None, args, {}, Outcome(value=value), "Called with: Q, K.")
        return FLOAT32_KEPT.broken(trial)

    assert broken((Q32, K32), Q32 @ K32.T) is None  # (2, 3) @ (3, 4) -> (2, 4)
    assert broken((Q32, K64), Q32 @ K64.T) is None
    message = broken((Q32, K32), (Q32 @ K32.T).astype(np.float64))
    assert "scores came back as float64 for float32 input" in message
    assert "NEP 50" in message and "dtype=x.dtype" in message


def test_the_memory_check_works_while_tracemalloc_is_already_tracing():
    tracemalloc.start()
    try:
        assert outcome("tiled_attention", tiled_textbook, "memory")[0] is None
        assert outcome("tiled_attention", tiled_scores_first, "memory")[0] is not None
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", BEYOND_EXERCISES)
def test_every_catalogued_mistake_of_06_08_committed_by_a_learner_is_named(name, capfd):
    """Run each Mistake of the grader's own catalogue as the learner's function: wherever the
    check fails, the message names that mistake (first, or among the answers it also matches:
    on fully masked rows, "-inf gives NaN" and "mask after the softmax, renormalised" agree).
    Notebooks 01-05: tests/test_checks.py."""
    exercise = EXERCISES[name]
    for mistake in exercise.mistakes:
        failed = 0
        for case in exercise.cases:
            message, _ = outcome(name, mistake.fn, case)
            if message is None:
                continue  # this mistake agrees with the reference on this case
            failed += 1
            assert f"mistake: {mistake.name}." in message, (case, message)
        assert failed, f"no case tells {mistake.name!r} from the reference"
    assert capfd.readouterr().err == ""


# ---- correct alternatives get full marks -----------------------------------------------------


@pytest.mark.parametrize("entry", RIGHT, ids=[entry.id for entry in RIGHT])
def test_correct_alternative_gets_full_marks(entry, capfd):
    cases = EXERCISES[entry.exercise].cases
    for seed in (None, *HIDDEN_SEEDS[entry.exercise]):
        for case in cases:
            message, printed = outcome(entry.exercise, entry.fn, case, seed=seed)
            assert message is None, f"{entry.id} fails {case!r} (seed={seed}):\n{message}"
            assert printed.startswith(f"✓ {entry.exercise}: "), printed
            assert "Note for" not in printed, printed
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_hidden_test_says_so_in_its_tick_line(name):
    """The learner sees the visible and the hidden test's lines one under the other: they must
    not read the same."""
    right = next(entry.fn for entry in RIGHT if entry.exercise == name)
    case, description = next((c, case.description) for c, case in EXERCISES[name].cases.items())
    _, visible = outcome(name, right, case)
    _, hidden = outcome(name, right, case, seed=1)
    assert " ".join(visible.split()) == f"✓ {name}: {description}."
    assert " ".join(hidden.split()) == f"✓ {name}: {description} — hidden test, on other inputs."
    assert max(len(line) for line in (visible + hidden).splitlines()) <= messages.WIDTH


# ---- stubs score zero with "not implemented" -------------------------------------------------


def stub(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError()


@pytest.mark.parametrize(
    ("exercise", "case"),
    [(name, case) for name, ex in EXERCISES.items() for case in ex.cases],
)
def test_stub_fails_every_case_as_not_implemented(exercise, case, capfd):
    for seed in (None, 1):
        with pytest.raises(CheckFailed) as failed:
            CHECKS[exercise](stub, case, seed=seed)
        assert "not implemented" in failed.value.message
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


# ---- inputs and notebooks of 06-08 -----------------------------------------------------------


def test_case_inputs_of_06_08_have_all_dimensions_different():
    """Sizes of one call are all different (the memory case apart, whose sizes are large).
    Notebooks 01-05: tests/test_checks.py."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        for case in ("causal", "random", "padding"):
            for args, _ in EXERCISES["masked_attention"].cases[case].make(rng):
                Q, K, V = args[:3]
                sizes = [*Q.shape, K.shape[-2], V.shape[-1]]
                assert len(set(sizes)) == len(sizes), (case, sizes)
        for case in ("random", "batch", "one_head"):
            for args, _ in EXERCISES["multi_head_attention"].cases[case].make(rng):
                X, Z, W_q, W_k, W_v, W_o, n_heads = args[:7]
                d_k, d_v = W_q.shape[1] // n_heads, W_v.shape[1] // n_heads
                sizes = [*X.shape, *Z.shape[-2:], d_k, d_v, W_o.shape[1]]
                sizes += [n_heads] if n_heads > 1 else []
                assert len(set(sizes)) == len(sizes), (case, sizes)
        (args, _), *_ = EXERCISES["tiled_attention"].cases["batch"].make(rng)
        Q, K, V, b = args[:4]
        sizes = [*Q.shape, K.shape[-2], V.shape[-1]]
        assert len(set(sizes)) == len(sizes) and 2 <= b <= K.shape[-2] // 2, sizes


def _notebook_checks():
    """(notebook, check name, case, points) of every graded test cell of notebooks 06-08."""
    found = []
    for path in sorted((ROOT / "solutions").glob("0[678]_*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell["metadata"].get("nbgrader", {})
            if meta.get("grade") and cell["cell_type"] == "code":
                source = "".join(cell["source"])
                calls = re.findall(r'checks\.(check_\w+)\(\w+, "(\w+)"\)', source)
                hidden = re.findall(r'checks\.(check_\w+)\(\w+, "(\w+)", seed=1\)', source)
                assert calls and calls == hidden, (path.name, meta["grade_id"])
                found += [(path.name, check, case, meta["points"]) for check, case in calls]
    return found


def test_notebook_test_cells_call_existing_cases_with_one_to_three_points():
    found = _notebook_checks()
    if not found:
        pytest.skip("notebooks 06-08 are not in solutions/ yet")
    for notebook, check, case, points in found:
        name = check.removeprefix("check_")
        assert name in BEYOND_EXERCISES, (notebook, check)
        assert case in EXERCISES[name].cases, (notebook, check, case)
        assert points in (1, 2, 3), (notebook, check, case, points)
    # every case of every exercise of 06-08 is graded exactly once
    assert Counter((c.removeprefix("check_"), k) for _, c, k, _ in found) == Counter(
        (name, case) for name in BEYOND_EXERCISES for case in EXERCISES[name].cases
    )
