"""The grader against a catalogue of learner implementations, wrong and right.

- Every wrong implementation in ``tests/catalogue/wrong.py`` loses points: the check case a
  grader author would expect fails (with the visible seed and with hidden-test seeds), and the
  message names the mistake (or, for an unnamed one, says what was expected and what came back).
- Every correct alternative in ``tests/catalogue/right.py`` gets full marks on every case, with
  the visible seed and with the hidden-test seeds.
- A stub that still raises ``NotImplementedError`` fails every case with "not implemented".
- Nothing ever reaches stderr (nbgrader scores a test cell with stderr output as zero).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter

import catalogue.right  # noqa: F401 - registers the correct alternatives
import catalogue.wrong  # noqa: F401 - registers the wrong implementations
import pytest
from catalogue import CORE_EXERCISES, RIGHT, WRONG

from attention_course import checks
from attention_course.checks import EXERCISES, CheckFailed

HIDDEN_SEEDS = (1, 2, 3, 4, 5)
CHECKS = {name: getattr(checks, f"check_{name}") for name in EXERCISES}


def outcome(exercise: str, fn, case: str, seed: int | None = None) -> tuple[str | None, str]:
    """Run one check: (failure message or None if it passed, what it printed)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            CHECKS[exercise](fn, case, seed=seed)
        except CheckFailed as failure:
            return failure.message, printed.getvalue()
    return None, printed.getvalue()


# ---- the catalogue is as large as promised ---------------------------------------------------


def test_catalogue_covers_every_exercise():
    wrong_per_exercise = Counter(entry.exercise for entry in WRONG)
    right_per_exercise = Counter(entry.exercise for entry in RIGHT)
    assert len(WRONG) >= 35
    assert len(RIGHT) >= 12
    for name in CORE_EXERCISES:
        assert wrong_per_exercise[name] >= 3, name
        assert right_per_exercise[name] >= 3, name
    assert len({entry.id for entry in WRONG}) == len(WRONG), "ids must be unique"
    assert len({entry.id for entry in RIGHT}) == len(RIGHT), "ids must be unique"
    for entry in WRONG:
        assert entry.fails in EXERCISES[entry.exercise].cases, entry.id
        assert entry.says, entry.id


# ---- wrong implementations lose points, and the message says why -----------------------------


@pytest.mark.parametrize("entry", WRONG, ids=[entry.id for entry in WRONG])
def test_wrong_implementation_fails_with_a_message_naming_the_mistake(entry, capfd):
    failures = {}
    for case in EXERCISES[entry.exercise].cases:
        message, _ = outcome(entry.exercise, entry.fn, case)
        if message is not None:
            failures[case] = message
    assert failures, f"{entry.id} gets full marks"
    assert entry.fails in failures, (
        f"{entry.id} should fail {entry.fails!r} but fails only {sorted(failures)}"
    )
    message = failures[entry.fails]
    for phrase in entry.says:
        assert phrase in message, f"{phrase!r} missing from:\n{message}"
    assert message.startswith(f"{entry.exercise} — ")
    assert "Traceback" not in message and "check_" not in message and "seed" not in message

    # Hidden tests (other seeds, other shapes) reach the same verdict.
    for seed in HIDDEN_SEEDS:
        hidden, _ = outcome(entry.exercise, entry.fn, entry.fails, seed=seed)
        assert hidden is not None, f"{entry.id} passes {entry.fails!r} with seed={seed}"
        for phrase in entry.says:
            assert phrase in hidden, f"seed={seed}: {phrase!r} missing from:\n{hidden}"

    assert capfd.readouterr().err == ""


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


# ---- correct alternatives get full marks -----------------------------------------------------


@pytest.mark.parametrize("entry", RIGHT, ids=[entry.id for entry in RIGHT])
def test_correct_alternative_gets_full_marks(entry, capfd):
    cases = EXERCISES[entry.exercise].cases
    for seed in (None, *HIDDEN_SEEDS):
        for case in cases:
            message, printed = outcome(entry.exercise, entry.fn, case, seed=seed)
            assert message is None, f"{entry.id} fails {case!r} (seed={seed}):\n{message}"
            assert printed.startswith(f"✓ {entry.exercise}: ")
    assert capfd.readouterr().err == ""


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
        with pytest.raises(CheckFailed, match="not implemented"):
            CHECKS[exercise](stub, case, seed=seed)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
