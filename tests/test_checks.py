"""Unit tests of the grader's machinery in :mod:`attention_course.checks`.

What a notebook author relies on: the public API is stable; a failure message hides the test
cell (``_render_traceback_``, checked in a real kernel too); warnings and stderr output of
learner code are captured and nothing reaches stderr; calling the reference is caught however
it is reached; in-place changes to the inputs are detected; hidden seeds give other shapes and
values, the same seed the same ones; every input has all its dimensions different.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import io
import os
import signal
import sys
import threading
import types
import warnings

import catalogue.right  # noqa: F401 - registers the correct alternatives
import numpy as np
import pytest
from catalogue import CORE_EXERCISES, RIGHT

from attention_course import checks
from attention_course import reference as ref
from attention_course.checks import CheckFailed, compare, inputs, messages, runner, self_cross

# These machinery tests cover the core exercises; 06-08 are tested with their catalogue.
EXERCISES = {name: checks.EXERCISES[name] for name in CORE_EXERCISES}

CHECKS = {name: getattr(checks, f"check_{name}") for name in EXERCISES}
# One correct, vectorised implementation per exercise (from the catalogue of alternatives).
CORRECT = {name: next(e.fn for e in RIGHT if e.exercise == name) for name in EXERCISES}
HIDDEN_SEEDS = (1, 2, 3, 4, 5)
ALL_CASES = [(name, case) for name, ex in EXERCISES.items() for case in ex.cases]


def run(exercise: str, fn, case: str = "random", seed: int | None = None):
    """(failure message or None, printed text) of one check."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            CHECKS[exercise](fn, case, seed=seed)
        except CheckFailed as failure:
            return failure.message, printed.getvalue()
    return None, printed.getvalue()


def textbook_softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


# ---- the public API notebook authors write test cells against --------------------------------


def test_public_api_is_stable():
    assert set(CORE_EXERCISES) <= set(checks.EXERCISES)
    for name, exercise in EXERCISES.items():
        assert {"random", "batch", "float32", "inputs_unchanged"} <= set(exercise.cases), name
        params = inspect.signature(CHECKS[name]).parameters
        assert list(params) == ["fn", "case", "seed"]
        assert params["case"].default == "random" and params["seed"].default is None
        assert CHECKS[name].__name__ == f"check_{name}"
        assert exercise.mistakes, name
    assert {"large", "axis"} <= set(EXERCISES["softmax"].cases)
    assert "large" in EXERCISES["scaled_dot_product_attention"].cases
    assert issubclass(CheckFailed, AssertionError)


def test_success_prints_exactly_one_tick_line(capfd):
    message, printed = run("softmax", textbook_softmax, "large")
    assert message is None
    description = EXERCISES["softmax"].cases["large"].description
    assert printed == f"✓ softmax: {description}.\n"
    assert capfd.readouterr().err == ""


def test_unknown_case_names_the_cases():
    with pytest.raises(ValueError, match=r"no check case 'huge'.*'axis'.*'large'"):
        checks.check_softmax(textbook_softmax, "huge")


def test_not_a_function():
    message, _ = run("softmax", np.ones(3))
    assert "`softmax` is not a function (got ndarray)" in message


# ---- hidden tests stay hidden ----------------------------------------------------------------


def test_render_traceback_shows_only_the_message():
    failure = CheckFailed("softmax — works: FAILED.\nLikely mistake: something.")
    try:
        raise failure
    except CheckFailed as caught:
        rendered = caught._render_traceback_()
    assert rendered == [
        "\x1b[31mCheckFailed\x1b[0m: softmax — works: FAILED.\nLikely mistake: something."
    ]
    assert "test_checks.py" not in "".join(rendered) and "raise failure" not in "".join(rendered)


def test_in_a_real_kernel_failures_hide_the_test_cell_and_nothing_reaches_stderr():
    """Run a notebook as nbgrader does: the hidden test's failure shows the message but not
    the code of the cell, and no cell has stderr output (which would score zero)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import os, sys, warnings\nimport numpy as np\nfrom attention_course import checks",
        # a learner's softmax without max subtraction: overflows (and warns) on large input
        "def softmax(x, axis=-1):\n    e = np.exp(x)\n    return e / e.sum(axis=axis, "
        "keepdims=True)",
        "checks.check_softmax(softmax, 'random')\n### BEGIN HIDDEN TESTS\n"
        "checks.check_softmax(softmax, 'large', seed=4)  # HIDDEN-MARKER-SOFTMAX\n"
        "### END HIDDEN TESTS",
        # a right answer with noise on every channel learners can reach
        "def noisy(x, axis=-1):\n    warnings.warn('noisy warning')\n"
        "    print('python stderr', file=sys.stderr)\n    os.write(2, b'fd stderr\\n')\n"
        "    np.exp(np.array([1000.0]))\n"
        "    e = np.exp(x - x.max(axis=axis, keepdims=True))\n"
        "    return e / e.sum(axis=axis, keepdims=True)",
        "checks.check_softmax(noisy, 'random')",
        "assert 1 == 2, 'plain assert'  # HIDDEN-MARKER-PLAIN",  # a plain assert leaks its line
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute()

    outputs = [cell.outputs for cell in nb.cells]
    for cell_outputs in outputs:
        for out in cell_outputs:
            assert not (out.output_type == "stream" and out.name == "stderr"), out

    (error,) = [o for o in outputs[2] if o.output_type == "error"]
    shown = error.evalue + "\n".join(error.traceback)
    assert error.ename == "CheckFailed"
    assert "Likely mistake: no max subtraction" in shown
    assert "RuntimeWarning: overflow encountered in exp" in shown
    assert "HIDDEN-MARKER" not in shown and "seed=4" not in shown and "check_softmax" not in shown
    assert "✓ softmax: matches the reference on random input." in "".join(
        o.get("text", "") for o in outputs[2] if o.output_type == "stream"
    )

    printed = "".join(o.get("text", "") for o in outputs[4] if o.output_type == "stream")
    assert printed.startswith("✓ softmax")
    for noise in ("noisy warning", "python stderr", "fd stderr", "overflow encountered in exp"):
        assert noise in printed

    # The control: an ordinary exception shows its source line in the traceback.
    (plain,) = [o for o in outputs[5] if o.output_type == "error"]
    assert "HIDDEN-MARKER-PLAIN" in "\n".join(plain.traceback)


def test_messages_quote_the_learners_line_not_library_code():
    def scores(Q, K):
        Q_rows, d_k = Q.shape  # breaks on batched input
        return Q @ K.swapaxes(-1, -2)

    message, _ = run("dot_product_scores", scores, "batch")
    assert "at the line `Q_rows, d_k = Q.shape  # breaks on batched input`" in message
    assert "read sizes from the end" in message


# ---- warnings and stderr are captured ---------------------------------------------------------


def test_warnings_and_stderr_of_a_right_answer_become_a_note(capfd):
    def noisy_softmax(x, axis=-1):
        warnings.warn("look at me", RuntimeWarning, stacklevel=1)
        print("debugging", file=sys.stderr)
        os.write(2, b"written to fd 2\n")
        return textbook_softmax(x, axis)

    message, printed = run("softmax", noisy_softmax)
    assert message is None
    assert printed.startswith("✓ softmax")
    assert "RuntimeWarning: look at me" in printed
    assert "debugging" in printed and "written to fd 2" in printed
    assert capfd.readouterr().err == ""


def test_numpy_floating_point_warnings_are_reported_in_the_message(capfd):
    def overflowing_softmax(x, axis=-1):
        e = np.exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    message, _ = run("softmax", overflowing_softmax, "float32")
    assert "RuntimeWarning: overflow encountered in exp" in message
    assert capfd.readouterr().err == ""


def test_global_state_is_restored_after_a_check():
    filters, errstate = list(warnings.filters), np.geterr()
    profile, stderr = sys.getprofile(), sys.stderr

    def rude(x, axis=-1):
        np.seterr(all="raise")
        warnings.simplefilter("error")
        return textbook_softmax(x, axis)

    for fn in (rude, textbook_softmax):
        run("softmax", fn, "large")
    assert warnings.filters == filters and np.geterr() == errstate
    assert sys.getprofile() is profile and sys.stderr is stderr


def test_an_existing_profiler_is_restored():
    calls = []

    def outer_profiler(frame, event, arg):
        calls.append(event)

    sys.setprofile(outer_profiler)
    try:
        run("softmax", textbook_softmax)
        assert sys.getprofile() is outer_profiler
    finally:
        sys.setprofile(None)


# ---- calling the reference is caught ----------------------------------------------------------


def _reference_copy(module):
    """A second instance of one module of the reference package, as after an edit and
    importlib.reload: new code objects, same file (the installed module's source one line
    lower, compiled under its file name). Code objects compiled from the same source at the
    same lines compare equal, so the shift is what makes the copy's code new."""
    namespace = {"__name__": f"{module.__name__}_copy", "__package__": ref.__name__}
    source = "\n" + inspect.getsource(module)
    exec(compile(source, module.__file__, "exec"), namespace)
    return types.SimpleNamespace(**namespace)


def _via_helper(x, axis=-1):
    def helper(y):
        return ref.softmax(y, axis=axis)

    return helper(x)


REFERENCE_CALLERS = {
    "alias": ref.softmax,
    "wrapper": lambda x, axis=-1: ref.softmax(x, axis=axis),
    "partial": functools.partial(ref.softmax),
    "nested_helper": _via_helper,
    "through_attention": lambda x, axis=-1: ref.scaled_dot_product_attention(
        np.eye(x.shape[-2]), np.moveaxis(x, axis, -1), np.eye(x.shape[axis])
    )[1],
    "reloaded_module": _reference_copy(ref.forward).softmax,
}


@pytest.mark.parametrize("how", list(REFERENCE_CALLERS))
def test_calling_the_reference_scores_zero(how, capfd):
    message, _ = run("softmax", REFERENCE_CALLERS[how])
    assert "calls the course's reference" in message
    assert capfd.readouterr().err == ""


def _backward_via_helper(Q, K, V, grad_output, mask=None, scale=None):
    def helper():
        return ref.attention_backward(Q, K, V, grad_output, mask=mask, scale=scale)

    return helper()


# The backward pass lives in another module of the reference package than softmax.
BACKWARD_REFERENCE_CALLERS = {
    "alias": ref.attention_backward,
    "wrapper": lambda Q, K, V, grad_output, mask=None, scale=None: ref.attention_backward(
        Q, K, V, grad_output, mask, scale
    ),
    "partial": functools.partial(ref.attention_backward),
    "nested_helper": _backward_via_helper,
    "numerical": lambda Q, K, V, grad_output, mask=None, scale=None: (
        ref.numerical_attention_gradients(Q, K, V, grad_output, mask, scale)
    ),
    "reloaded_module": _reference_copy(ref.backward).attention_backward,
}


@pytest.mark.parametrize("how", list(BACKWARD_REFERENCE_CALLERS))
def test_calling_the_reference_backward_scores_zero(how, capfd):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(CheckFailed) as failure:
        checks.check_attention_backward(BACKWARD_REFERENCE_CALLERS[how], "random")
    assert "calls the course's reference" in failure.value.message
    assert capfd.readouterr().err == ""


def test_every_module_of_the_reference_package_is_recognised():
    """The runner knows a reloaded function by its file: every public name's file counts.

    Each copy is called with ``None`` for every required argument: it raises inside its own
    body, after the runner has seen the call."""
    for name in ref.__all__:
        module = sys.modules[getattr(ref, name).__module__]
        copy = getattr(_reference_copy(module), name)
        assert copy.__code__ != getattr(ref, name).__code__
        required = [p for p in inspect.signature(copy).parameters.values() if p.default is p.empty]
        outcome = runner.call(copy, [None] * len(required), {}, frozenset({name}))
        assert outcome.error is not None and outcome.called_reference == name, name


@pytest.mark.parametrize("name", list(EXERCISES))
def test_calling_its_own_reference_fails_every_exercise(name):
    reference = getattr(ref, name)
    message, _ = run(name, lambda *args: reference(*args))
    assert f"calls the course's reference `{name}`" in message


def test_building_blocks_from_the_reference_are_allowed_in_later_exercises():
    """Only the function being written (and those that contain it) are off limits."""

    def attention(Q, K, V):
        weights = ref.softmax(ref.scale_scores(ref.dot_product_scores(Q, K), Q.shape[-1]))
        return ref.weighted_sum(weights, V), weights

    assert run("scaled_dot_product_attention", attention)[0] is None


# ---- in-place changes to the inputs -----------------------------------------------------------


def test_mutation_is_detected_by_argument_name():
    def scale_keys_in_place(Q, K, V):
        K *= 1.0 / np.sqrt(Q.shape[-1])  # scales the keys instead of the scores
        weights = textbook_softmax(Q @ np.swapaxes(K, -1, -2))
        return weights @ V, weights

    message, _ = run("scaled_dot_product_attention", scale_keys_in_place, "inputs_unchanged")
    assert "modified its input in place (K)" in message
    # In the other cases the answer is right: it passes, with a note that the other test fails.
    message, printed = run("scaled_dot_product_attention", scale_keys_in_place, "random")
    assert message is None and "modified its input (K) in place" in " ".join(printed.split())


def test_the_callers_arrays_are_never_changed():
    x = np.arange(12.0).reshape(3, 4)
    kept = x.copy()

    def in_place(x):
        x -= 1.0
        return x

    outcome = runner.call(in_place, (x,), {}, frozenset(), ("x",))
    assert np.array_equal(x, kept) and outcome.mutated == ["x"]


def test_a_wrong_answer_also_mentions_the_mutation():
    def wrong_and_in_place(x, axis=-1):
        x -= np.max(x)  # global max, in place
        np.exp(x, out=x)
        x /= x.sum()
        return x

    message, _ = run("softmax", wrong_and_in_place, "inputs_unchanged")
    assert "whole array" in message and "also modified its input (x) in place" in message


# ---- signatures -------------------------------------------------------------------------------


def test_a_missing_parameter_is_explained():
    def softmax(x):
        return textbook_softmax(x)

    message, _ = run("softmax", softmax, "axis")
    assert "The check calls `softmax(x, axis=0)`" in message
    assert "your function takes the parameters (x)" in message
    assert "unexpected keyword argument 'axis'" in message
    assert "def softmax(x, axis=-1):" in message


def test_an_extra_required_parameter_is_explained():
    def attention(Q, K, V, mask):
        return CORRECT["scaled_dot_product_attention"](Q, K, V)

    message, _ = run("scaled_dot_product_attention", attention)
    assert "missing a required argument: 'mask'" in message and "mask=None" in message


def test_extra_parameters_with_defaults_and_star_args_are_fine():
    def attention(Q, K, V, mask=None, scale=None, *args, **kwargs):
        return CORRECT["scaled_dot_product_attention"](Q, K, V)

    assert run("scaled_dot_product_attention", attention)[0] is None
    assert (
        run("softmax", lambda *args, **kwargs: textbook_softmax(*args, **kwargs), "axis")[0] is None
    )


def test_errors_raised_inside_learner_code_are_reported_with_a_hint():
    def recursive(x, axis=-1):
        return recursive(x, axis)

    message, _ = run("softmax", recursive)
    assert "Your function raised RecursionError" in message
    assert sys.getprofile() is None

    def no_keepdims(x, axis=-1):
        return np.exp(x) / np.exp(x).sum(axis=axis)

    message, _ = run("softmax", no_keepdims)
    assert "could not be broadcast" in message and "keepdims=True" in message


# ---- diagnosis rules --------------------------------------------------------------------------


def test_a_mistake_that_agrees_with_the_reference_is_not_a_diagnosis():
    """K.T is right on 2-D input: that case passes, only the batched one names the mistake."""

    def scores(Q, K):
        return Q @ K.T

    assert run("dot_product_scores", scores, "random")[0] is None
    assert "K.T used on batched input" in run("dot_product_scores", scores, "batch")[0]


def test_every_mistake_differs_from_the_reference_where_it_is_tried():
    """Each catalogued mistake must be distinguishable from the reference on its own inputs
    (the case inputs or its probe), otherwise it could never be named."""
    for name, exercise in EXERCISES.items():
        for mistake in exercise.mistakes:
            seen_difference = False
            for case in exercise.cases.values():
                rng = np.random.default_rng(0)
                calls = [mistake.probe(rng)] if mistake.probe else case.make(rng)
                for args, kwargs in calls:
                    wrong = runner.quiet_call(mistake.fn, args, kwargs)
                    right = runner.quiet_call(exercise.reference, args, kwargs)
                    dtype = next(a.dtype for a in args if isinstance(a, np.ndarray))
                    if not compare.same_outcome(wrong, right, exercise.n_outputs, dtype):
                        seen_difference = True
            assert seen_difference, (name, mistake.name)


@pytest.mark.parametrize("exercise", list(EXERCISES))
def test_each_catalogued_mistake_committed_by_a_learner_is_named(exercise):
    """Run every Mistake's own function as the learner's: wherever the check fails, the message
    names that very mistake — first, or among the others that give the same answer there — and
    at least one case names it first."""
    ex = EXERCISES[exercise]
    for mistake in ex.mistakes:
        named_first = False
        for case in ex.cases:
            message, _ = run(exercise, mistake.fn, case)
            if message is None:
                continue  # this mistake agrees with the reference on this case
            first = f"Likely mistake: {mistake.name}.\n"
            also = f"Your answer also matches this mistake: {mistake.name}.\n"
            assert first in message or also in message, (case, message)
            named_first = named_first or first in message
        assert named_first, f"no case names {mistake.name!r} first"


def test_mistake_names_are_unique_within_an_exercise():
    for name, exercise in EXERCISES.items():
        names = [m.name for m in exercise.mistakes]
        assert len(names) == len(set(names)), name


# ---- inputs: all dimensions different, seeds, determinism ------------------------------------


def dimensions(name: str, args) -> list[int]:
    """Every size in one call's inputs: batch sizes, then the named dimensions."""
    if name == "dot_product_scores":
        Q, K = args
        assert K.shape[:-2] == Q.shape[:-2] and K.shape[-1] == Q.shape[-1]
        return [*Q.shape, K.shape[-2]]
    if name == "scale_scores":
        scores, d_k = args
        return [*scores.shape, d_k]
    if name == "softmax":
        return list(args[0].shape)
    if name == "weighted_sum":
        weights, V = args
        assert V.shape[:-1] == (*weights.shape[:-2], weights.shape[-1])
        return [*weights.shape, V.shape[-1]]
    if name == "scaled_dot_product_attention":
        Q, K, V = args
        assert K.shape[-1] == Q.shape[-1] and V.shape[:-1] == K.shape[:-1]
        return [*Q.shape, K.shape[-2], V.shape[-1]]
    if name == "self_attention":
        X, W_q, W_k, W_v = args
        assert W_q.shape == W_k.shape and W_q.shape[0] == W_v.shape[0] == X.shape[-1]
        return [*X.shape, W_q.shape[1], W_v.shape[1]]
    X, Z, W_q, W_k, W_v = args
    assert X.shape[-1] == W_q.shape[0] and Z.shape[-1] == W_k.shape[0] == W_v.shape[0]
    return [*X.shape, *Z.shape[-2:], W_q.shape[1], W_v.shape[1]]


@pytest.mark.parametrize(("exercise", "case"), ALL_CASES)
def test_every_input_has_all_dimensions_different(exercise, case):
    make = EXERCISES[exercise].cases[case].make
    for seed in range(40):
        for args, _ in make(np.random.default_rng(seed)):
            sizes = dimensions(exercise, args)
            assert len(set(sizes)) == len(sizes), (seed, sizes)
            assert min(sizes) >= 2, (seed, sizes)


def recorded_inputs(exercise: str, case: str, seed: int | None) -> list[np.ndarray]:
    """The arrays a check passes to the learner's function (spied on with a right answer)."""
    seen: list[np.ndarray] = []

    def spy(*args, **kwargs):
        seen.extend(np.array(a, copy=True) for a in args if isinstance(a, np.ndarray))
        return CORRECT[exercise](*args, **kwargs)

    assert run(exercise, spy, case, seed)[0] is None
    return seen


@pytest.mark.parametrize(("exercise", "case"), ALL_CASES)
def test_hidden_seeds_change_the_inputs_and_the_same_seed_repeats_them(exercise, case):
    visible = recorded_inputs(exercise, case, None)
    shapes = [a.shape for a in visible]
    changed_shape = 0
    for seed in HIDDEN_SEEDS:
        hidden = recorded_inputs(exercise, case, seed)
        assert not all(
            a.shape == b.shape and np.array_equal(a, b)
            for a, b in zip(hidden, visible, strict=True)
        ), f"seed={seed} repeats the visible inputs"
        changed_shape += [a.shape for a in hidden] != shapes
        again = recorded_inputs(exercise, case, seed)
        assert len(again) == len(hidden)
        assert all(
            np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(again, hidden, strict=True)
        )
    assert changed_shape >= 4, f"only {changed_shape} of 5 hidden seeds change the shapes"


def test_case_inputs_are_deterministic_functions_of_the_generator():
    for exercise in EXERCISES.values():
        for case in exercise.cases.values():
            first = case.make(np.random.default_rng(123))
            second = case.make(np.random.default_rng(123))
            for (a_args, a_kw), (b_args, b_kw) in zip(first, second, strict=True):
                assert a_kw == b_kw
                for a, b in zip(a_args, b_args, strict=True):
                    assert np.array_equal(a, b)


def test_float32_cases_are_float32():
    for name, exercise in EXERCISES.items():
        for seed in range(5):
            for args, _ in exercise.cases["float32"].make(np.random.default_rng(seed)):
                arrays = [a for a in args if isinstance(a, np.ndarray)]
                assert all(a.dtype == np.float32 for a in arrays), name


@pytest.mark.parametrize(
    "exercise", ["softmax", "scaled_dot_product_attention", "self_attention", "cross_attention"]
)
def test_large_cases_break_an_unstable_softmax_every_time(exercise):
    """Scores above 800 (np.exp overflows) and a row whose maximum is 800 below the largest
    (subtracting one global maximum gives 0 / 0): both mistakes are caught on every seed."""
    ex = EXERCISES[exercise]
    for seed in range(30):
        for args, kwargs in ex.cases["large"].make(np.random.default_rng(seed)):
            scores = args[0] if exercise == "softmax" else None
            if scores is None and exercise == "scaled_dot_product_attention":
                Q, K, _ = args
                scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
            elif scores is None:
                scores = self_cross.projected_scores(*args)
            assert inputs.adversarial(scores), seed
            assert ex.exp_magnitude(*args, **kwargs) > 800


def test_a_float32_log_sum_exp_softmax_of_scores_near_1e4_passes():
    """exp(x - logsumexp(x)) rounds the float32 exponent near 1e4 to ~1e-3: still right."""

    def log_sum_exp_softmax(x, axis=-1):
        m = np.max(x, axis=axis, keepdims=True)
        return np.exp(x - (m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))))

    for seed in (None, *range(1, 30)):
        assert run("softmax", log_sum_exp_softmax, "large", seed)[0] is None, seed


@pytest.mark.parametrize(
    ("exercise", "position"),
    [("scaled_dot_product_attention", 0), ("self_attention", 1), ("cross_attention", 2)],
)
def test_d_k_is_never_a_perfect_square(exercise, position):
    """So that a scale of int(np.sqrt(d_k)) is always wrong."""
    for case in EXERCISES[exercise].cases.values():
        for seed in range(30):
            for args, _ in case.make(np.random.default_rng(seed)):
                d_k = args[position].shape[-1]
                assert int(np.sqrt(d_k)) ** 2 != d_k, (seed, d_k)
    for seed in range(30):
        for (_, d_k), _ in (
            EXERCISES["scale_scores"].cases["random"].make(np.random.default_rng(seed))
        ):
            assert int(np.sqrt(d_k)) ** 2 != d_k


# ---- an endless loop is stopped, named, and not run again ------------------------------------


def _no_alarm(signum, frame):  # pragma: no cover - the test's own timer never fires
    raise AssertionError("the previous timer fired during the test")


@pytest.mark.skipif(not runner.time_limit_available(), reason="needs SIGALRM on the main thread")
def test_an_endless_loop_is_stopped_named_and_not_run_again(monkeypatch):
    monkeypatch.setattr(runner, "TIME_LIMIT_SECONDS", 0.5)
    calls = []

    def softmax(x, axis=-1):
        calls.append(x.shape)
        i = 0
        while i < x.shape[0]:  # i is never advanced
            x = x - x.max(axis=axis, keepdims=True)
        return x

    previous = signal.signal(signal.SIGALRM, _no_alarm)
    signal.setitimer(signal.ITIMER_REAL, 100.0)  # someone else's timer, e.g. pytest-timeout's
    try:
        message, _ = run("softmax", softmax, "random")
        assert "did not return within 0.5 seconds" in message and "endless loop" in message
        assert "`start += block_size`" in message and "Called with: x of shape (" in message
        assert len(calls) == 1

        again, _ = run("softmax", softmax, "large", seed=3)
        assert again.startswith("softmax — is stable for large scores")
        assert message.split(": FAILED.\n", 1)[1] in again and "stopped in an earlier" in again
        assert len(calls) == 1, "a stopped function is not called again"

        assert signal.getsignal(signal.SIGALRM) is _no_alarm
        assert 90.0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100.0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    def softmax(x, axis=-1):  # the learner fixes it and runs the cell again: a new code object
        return textbook_softmax(x, axis)

    assert run("softmax", softmax, "random")[0] is None


def test_an_except_clause_in_the_loop_does_not_swallow_the_time_limit(monkeypatch):
    if not runner.time_limit_available():
        pytest.skip("needs SIGALRM on the main thread")
    monkeypatch.setattr(runner, "TIME_LIMIT_SECONDS", 0.3)

    def weighted_sum(weights, V):
        while True:
            try:
                weights = weights + 0.0
            except Exception:  # noqa: BLE001 - a learner habit under test
                continue

    message, _ = run("weighted_sum", weighted_sum)
    assert "endless loop" in message


def test_without_sigalrm_on_this_thread_calls_run_unlimited():
    """Off the main thread (or on Windows) there is no way to interrupt a call: checks still
    work, without a limit, and nbgrader's cell timeout applies."""
    seen = {}

    def in_thread():
        seen["available"] = runner.time_limit_available()
        seen["result"] = run("softmax", textbook_softmax, "large")

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join(60)
    assert seen["available"] is False and seen["result"][0] is None


# ---- messages fit nbgrader's feedback box ------------------------------------------------------


def test_wrapping_keeps_code_and_indentation_whole():
    text = (
        "How to fix it: avoid in-place operators such as `x -= ...` or `np.exp(x, out=x)` and "
        "divide only where the sum is positive (np.divide(e, total, out=np.zeros_like(e), "
        "where=total > 0)) for shapes (..., n_q, n_k).\n    1 0 0 0 1 1 1 0 0 0 1 1 1 0 0 0 1 1 1 "
        "0 0 0 1 1 1 0 0 0 1 1 1 0 0 0 1 1 1 0 0 0 1 1 1 0 0 0 1 1 1 0 0 0"
    )
    wrapped = messages.wrap(text)
    lines = wrapped.split("\n")
    assert max(len(line) for line in lines) <= messages.WIDTH
    assert wrapped.split() == text.split()
    for code in (
        "`np.exp(x, out=x)`",
        "np.divide(e, total, out=np.zeros_like(e), where=total > 0)",
        "(..., n_q, n_k)",
    ):
        assert code in wrapped, code
    grid = [line for line in lines if line.lstrip().startswith(("0", "1"))]
    assert len(grid) >= 2 and all(line.startswith("    ") for line in grid)


def test_a_failure_shows_wrapped_and_keeps_the_unwrapped_message():
    failure = CheckFailed("softmax — works: FAILED.\n" + "word " * 40)
    assert str(failure).split() == failure.message.split()
    rendered = failure._render_traceback_()[0].replace("\x1b[31m", "").replace("\x1b[0m", "")
    assert max(len(line) for line in rendered.split("\n")) <= messages.WIDTH
