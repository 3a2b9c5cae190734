"""The records a notebook's checks are made of, and the one driver that runs them.

An :class:`Exercise` is data: the reference, the argument and output names and layouts, its
:class:`Case` s (an input builder each), its catalogue of known :class:`Mistake` s, the
reference functions the learner may not call, the kind of output (:class:`OutputKind`: arrays
of numbers compared with tolerances, or boolean masks compared exactly) and the
:class:`Requirement` s a right answer must also meet (inputs left unchanged, no NumPy warnings,
booleans, a memory bound ...); one holds in every case of every exercise, :data:`FLOAT32_KEPT`
(float32 in, float32 out). :func:`make_check` turns an exercise into the ``check_<name>``
function that test cells call; :class:`_Check` is the driver behind every one of them.

One check, for one case: build the case's inputs from a seeded generator; for each call, run the
learner's function (:func:`~.runner.call`: copies of the inputs, warnings and stderr captured,
reference calls and in-place changes detected, the time limited), compare with the reference;
if right, test the requirements; if wrong, try the catalogue of mistakes on the same inputs (or
on a mistake's own probe) and name the one whose answer the learner's matches, else describe the
difference. Print one ``✓`` line, or raise :class:`~.messages.CheckFailed`.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import CodeType

import numpy as np

from . import compare, runner
from .messages import CheckFailed, wrap
from .runner import Outcome, call, quiet_call, signature_problem


class OutputKind(Enum):
    """How an exercise's answer is compared with the reference and described."""

    ARRAYS = "arrays"  # arrays of numbers, close within tolerances of the input's dtype
    MASK = "mask"  # one boolean mask, equal entry for entry


@dataclass(frozen=True)
class Mistake:
    """A known wrong implementation, with its name and how to fix it.

    ``fn`` takes the same arguments as the learner's function. If ``probe`` is given, the
    diagnosis runs both on the inputs it builds (from a generator) instead of the case's own
    inputs — for mistakes that only give a comparable answer on specially shaped input (for
    example ``Q @ K`` without a transpose, which needs ``n_k == d_k`` to run at all).
    """

    name: str
    fix: str
    fn: Callable
    probe: Callable[[np.random.Generator], tuple[tuple, dict]] | None = None


@dataclass(frozen=True)
class Trial:
    """One call of the learner's function whose values were right: what requirements judge."""

    exercise: Exercise
    fn: Callable
    args: tuple
    kwargs: dict
    outcome: Outcome
    called_with: str


@dataclass(frozen=True)
class Requirement:
    """Something a right answer must also do, beyond its values.

    ``broken(trial)`` is the body of the failure message when the answer breaks it (None when
    it does not). A case that lists the requirement in ``Case.requires`` fails with it; in the
    other cases of an exercise that lists it in ``Exercise.watch``, ``note(trial)`` (if given)
    is printed under the ✓ line, to warn that the case testing it will fail.
    """

    broken: Callable[[Trial], str | None]
    note: Callable[[Trial], str | None] | None = None


def inputs_unchanged(advice: str) -> Requirement:
    """The arguments must come back unchanged; ``advice`` says which operations to avoid."""

    def broken(trial: Trial) -> str | None:
        if not trial.outcome.mutated:
            return None
        return (
            f"Your function modified its input in place ({', '.join(trial.outcome.mutated)}): "
            f"the answer is right, but the caller's array was changed. {advice}"
        )

    def note(trial: Trial) -> str:
        return (
            f"your function modified its input ({', '.join(trial.outcome.mutated)}) in place; "
            "the test that inputs are left unchanged will fail."
        )

    return Requirement(broken, note)


INPUTS_UNCHANGED = inputs_unchanged(
    "Avoid in-place operators such as `x -= ...`, `x /= ...` or `np.exp(x, out=x)` on the "
    "inputs; write `x = x - ...` to make a new array (or work on x.copy())."
)

_NO_WARNINGS_FIX = (
    "For an all -inf row your code still computes -inf - (-inf) or 0 / 0 and then hides the "
    "NaN. Avoid the invalid operation instead: replace a row maximum of -inf by 0 before "
    "subtracting it (m = np.where(np.isfinite(m), m, 0)), and divide only where the sum is "
    "positive (np.divide(e, total, out=np.zeros_like(e), where=total > 0)). Replacing the NaN "
    "afterwards (np.nan_to_num, np.isnan) does not count, and np.where(total > 0, e / total, 0) "
    "is not enough: it computes e / total everywhere first"
)


def _warned(trial: Trial) -> str | None:
    if not trial.outcome.warnings:
        return None
    return (
        "Your function returns the right values, but NumPy warned while computing them: "
        f"{'; '.join(trial.outcome.warnings)}.\nHow to fix it: {_NO_WARNINGS_FIX}."
    )


#: Fully masked (all -inf) rows must come out without NumPy warnings: returning zeros after
#: computing -inf - (-inf) or 0 / 0 and hiding the NaN is not accepted.
NO_WARNINGS = Requirement(_warned)

_FLOAT32_FIX = (
    "The usual causes: an array made with np.zeros(shape), np.ones(shape) or np.full(shape, "
    "value) without dtype= (these are float64), or a NumPy float64 scalar such as "
    "np.sqrt(d_k): under the promotion rules of NumPy >= 2 (NEP 50) a float32 array times or "
    "divided by a np.float64 becomes float64, while a Python float such as math.sqrt(d_k) or "
    "d_k ** 0.5 keeps it float32. How to fix it: allocate with the input's dtype "
    "(np.zeros(shape, dtype=x.dtype), np.zeros_like(x), np.full(shape, -np.inf, "
    "dtype=x.dtype)) and scale by a Python float"
)


def _float_dtypes(trial: Trial) -> set[np.dtype]:
    arrays = [*trial.args, *trial.kwargs.values()]
    return {a.dtype for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f"}


def _widened(trial: Trial) -> str | None:
    if _float_dtypes(trial) != {np.dtype(np.float32)}:
        return None
    outputs = compare.as_outputs(trial.outcome.value, trial.exercise.n_outputs) or ()
    widened = [
        label
        for got, label in zip(outputs, trial.exercise.output_names, strict=False)
        if isinstance(got, np.ndarray) and got.dtype == np.float64
    ]
    if not widened:
        return None
    return (
        f"Your function returns the right values, but {' and '.join(widened)} came back as "
        "float64 for float32 input. The rule is float32 in, float32 out: a float32 model must "
        "not silently double its memory. "
        f"{_FLOAT32_FIX}.\n{trial.called_with}"
    )


#: Float32 in, float32 out: when every floating input is float32, a floating output returned
#: in float64 fails, in every case of every exercise (see the package docstring).
FLOAT32_KEPT = Requirement(_widened)


@dataclass(frozen=True)
class Case:
    """One graded situation: what it checks (``description``, shown in every message), the
    inputs (``make(rng)`` -> a list of ``(args, kwargs)`` calls), the requirements a right answer
    must meet in it, and a sentence for learners whose function raises in it."""

    description: str
    make: Callable[[np.random.Generator], list[tuple[tuple, dict]]]
    requires: tuple[Requirement, ...] = ()
    error_hint: str = ""


def unchanged_inputs_case(
    make: Callable[[np.random.Generator], list[tuple[tuple, dict]]],
    description: str = "does not modify its inputs",
) -> Case:
    """The ``"inputs_unchanged"`` case most exercises have: ``make``'s inputs must come back as
    they went in (:data:`INPUTS_UNCHANGED`); ``description`` in the singular for one input."""
    return Case(description, make, requires=(INPUTS_UNCHANGED,))


@dataclass(frozen=True)
class Exercise:
    """One function a learner writes, and everything its checks need to know about it."""

    name: str
    arg_names: tuple[str, ...]
    reference: Callable
    n_outputs: int
    output_names: tuple[str, ...]
    cases: dict[str, Case]
    mistakes: tuple[Mistake, ...]
    forbidden: frozenset[str]
    signature: str = ""
    arg_layouts: tuple[str, ...] = ()
    output_layouts: tuple[str, ...] = ()
    # Largest magnitude the function exponentiates, from its arguments (see compare.exp_slack).
    exp_magnitude: Callable[..., float] | None = None
    output: OutputKind = OutputKind.ARRAYS
    # Requirements noted (not failed) in the cases that do not require them.
    watch: tuple[Requirement, ...] = field(default=(INPUTS_UNCHANGED,))
    # How the "not implemented" message names the function, when not `name`.
    shown_as: str = ""


# ---- describing calls ------------------------------------------------------------------------


def _arguments_by_shape(exercise: Exercise, args, kwargs) -> str:
    layouts = list(exercise.arg_layouts) + [""] * (len(args) - len(exercise.arg_layouts))
    parts = [
        f"{name} of shape {compare.shape_text(a.shape, layout)} ({a.dtype})"
        if isinstance(a, np.ndarray)
        else f"{name} = a pair of arrays of shapes {a[0].shape} and {a[1].shape} ({a[0].dtype})"
        if isinstance(a, tuple) and len(a) == 2 and all(isinstance(x, np.ndarray) for x in a)
        else f"{name}={a!r}"
        for name, a, layout in zip(exercise.arg_names, args, layouts, strict=False)
    ]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _arguments_by_value(exercise: Exercise, args, kwargs) -> str:
    return ", ".join(
        f"{name}={(a.tolist() if isinstance(a, np.ndarray) else a)!r}"
        for name, a in zip(exercise.arg_names, args, strict=False)
    )


def _call_by_names(exercise: Exercise, args, kwargs) -> str:
    names = list(exercise.arg_names[: len(args)]) + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{exercise.name}({', '.join(names)})"


def _call_by_values(exercise: Exercise, args, kwargs) -> str:
    return f"{exercise.name}({_arguments_by_value(exercise, args, kwargs)})"


def _not_arrays(exercise: Exercise, outputs) -> str | None:
    wrong_type = [
        f"your {label} came back as a {type(g).__name__}"
        for g, label in zip(outputs, exercise.output_names, strict=True)
        if not isinstance(g, np.ndarray)
    ]
    if not wrong_type:
        return None
    return (
        f"The values are right, but {' and '.join(wrong_type)}, not a NumPy array: "
        "code that uses your result needs .shape, @ and NumPy's axis arguments. "
        "Build the result with NumPy operations, or return np.array(...) of it."
    )


def _not_a_mask_array(exercise: Exercise, outputs) -> str | None:
    (got,) = outputs
    if isinstance(got, np.ndarray):
        return None
    return (
        f"The pattern is right, but your mask came back as a {type(got).__name__}, not "
        "a NumPy array: return np.array(...) of it, with dtype=bool."
    )


def _describe_arrays(exercise: Exercise, value, expected, dtype, slack: float) -> str:
    return compare.describe_outputs(
        value, expected, exercise.output_names, exercise.output_layouts, dtype, slack
    )


def _describe_mask(exercise: Exercise, value, expected, dtype, slack: float) -> str:
    return compare.describe_mask(value, np.asarray(expected[0]), exercise.output_layouts[0])


@dataclass(frozen=True)
class _OutputRules:
    """What differs between kinds of output, for the one driver."""

    agree: compare.Agreement  # (got, expected, dtype, slack) -> equal?
    describe: Callable[..., str]  # expected vs got, for an unnamed mistake
    arguments: Callable[..., str]  # the inputs, after "Called with: "
    call: Callable[..., str]  # the call, in "The check calls `...`"
    signature_advice: str  # after "Define it as `def ...:`"
    not_arrays: Callable[..., str | None]  # right values, but not returned as arrays
    difference_with_mistake: bool  # also describe the difference under a named mistake


_RULES = {
    OutputKind.ARRAYS: _OutputRules(
        agree=compare.close,
        describe=_describe_arrays,
        arguments=_arguments_by_shape,
        call=_call_by_names,
        signature_advice=" (any extra parameter needs a default value, such as mask=None)",
        not_arrays=_not_arrays,
        difference_with_mistake=False,
    ),
    OutputKind.MASK: _OutputRules(
        agree=compare.same_mask,
        describe=_describe_mask,
        arguments=_arguments_by_value,
        call=_call_by_values,
        signature_advice="",
        not_arrays=_not_a_mask_array,
        difference_with_mistake=True,
    ),
}


# ---- endless loops ---------------------------------------------------------------------------

_ENDLESS = (
    "Your function did not return within {limit:g} seconds, so the check stopped it: most "
    "likely it runs an endless loop — a `while` loop whose condition never becomes false "
    "(a counter that is never advanced, such as a forgotten `start += block_size`), or a "
    "`while True:` whose `break` is never reached. Make sure every loop moves towards its end."
)
_STOPPED_BEFORE = (
    "(It was stopped in an earlier check and is not run again until you run its cell again.)"
)
#: Failure messages of functions that ran out of time, by code object: later checks of the same
#: function fail at once with the same message instead of waiting for the limit again.
_STOPPED: dict[CodeType, str] = {}


def _code(fn: Callable) -> CodeType | None:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__code__", None)


# ---- the driver ------------------------------------------------------------------------------


def _case_seed(exercise: str, case: str, seed: int | None) -> int:
    base = sum((i + 1) * ord(c) for i, c in enumerate(f"{exercise}/{case}"))
    return base if seed is None else base * 7919 + int(seed)


def _first_dtype(args) -> np.dtype:
    return next((a.dtype for a in args if isinstance(a, np.ndarray)), np.dtype(np.float64))


class _Verdict(Enum):
    """How the learner's answer relates to what one known mistake gives."""

    MATCH = "the same answer"
    MISMATCH = "another answer"
    UNTELLABLE = "the mistake agrees with the reference here"


class _Check:
    """One check of one learner function on one case: the driver of every exercise."""

    def __init__(self, exercise: Exercise, case_name: str, fn: Callable, seed: int | None):
        if case_name not in exercise.cases:
            raise ValueError(
                f"{exercise.name} has no check case {case_name!r}; the cases are "
                f"{sorted(exercise.cases)}."
            )
        self.exercise, self.fn, self.seed = exercise, fn, seed
        self.case = exercise.cases[case_name]
        self.rules = _RULES[exercise.output]
        self.rng = np.random.default_rng(_case_seed(exercise.name, case_name, seed))
        self.notes: list[str] = []

    def fail(self, body: str) -> CheckFailed:
        return CheckFailed(f"{self.exercise.name} — {self.case.description}: FAILED.\n{body}")

    def run(self) -> None:
        exercise, fn = self.exercise, self.fn
        if not callable(fn):
            raise self.fail(
                f"`{exercise.name}` is not a function (got {type(fn).__name__}). "
                "Did you overwrite it with a value?"
            )
        stopped = _STOPPED.get(_code(fn))
        if stopped is not None:
            raise self.fail(f"{stopped}\n{_STOPPED_BEFORE}")
        # Our own comparisons must not warn either: nbgrader scores any stderr output as zero.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for args, kwargs in self.case.make(self.rng):
                self.judge(args, kwargs)
        hidden = "" if self.seed is None else " — hidden test, on other inputs"
        print(wrap(f"✓ {exercise.name}: {self.case.description}{hidden}."))
        for note in dict.fromkeys(self.notes):
            print(wrap(note))

    def call(self, args, kwargs, called_with: str) -> Outcome:
        """Run the learner's function; fail at once (and remember it) if it runs out of time."""
        outcome = call(self.fn, args, kwargs, self.exercise.forbidden, self.exercise.arg_names)
        if outcome.timed_out:
            body = f"{_ENDLESS.format(limit=runner.TIME_LIMIT_SECONDS)}\n{called_with}"
            code = _code(self.fn)
            if code is not None:
                _STOPPED[code] = body
            raise self.fail(body)
        return outcome

    def judge(self, args, kwargs) -> None:
        """Check one call: return if right (noting what to note), raise CheckFailed if not."""
        exercise, rules = self.exercise, self.rules
        dtype = _first_dtype(args)
        called_with = f"Called with: {rules.arguments(exercise, args, kwargs)}."

        problem = signature_problem(self.fn, args, kwargs)
        if problem is not None:
            raise self.fail(
                f"The check calls `{rules.call(exercise, args, kwargs)}`, but {problem}. "
                f"Define it as `def {exercise.signature or exercise.name + '(...)'}:`"
                f"{rules.signature_advice}."
            )

        learner = self.call(args, kwargs, called_with)
        if learner.called_reference:
            raise self.fail(
                f"Your function calls the course's reference `{learner.called_reference}` "
                "instead of computing the answer itself. Write it with NumPy operations; the "
                "reference is there for the demos and later notebooks, not for this exercise."
            )
        if isinstance(learner.error, NotImplementedError):
            raise self.fail(
                f"{exercise.shown_as or f'`{exercise.name}`'} is not implemented yet: replace "
                "`raise NotImplementedError()` with your code and run its cell again."
            )

        expected = quiet_call(exercise.reference, args, kwargs)
        assert expected.error is None, f"reference failed on check input: {expected.error!r}"
        expected_outputs = compare.as_outputs(expected.value, exercise.n_outputs)
        got_outputs = (
            None if learner.error else compare.as_outputs(learner.value, exercise.n_outputs)
        )
        slack = 0.0
        if exercise.exp_magnitude is not None:
            magnitude = quiet_call(exercise.exp_magnitude, args, kwargs).value or 0.0
            slack = compare.exp_slack(dtype, magnitude)
        right = got_outputs is not None and all(
            rules.agree(g, e, dtype, slack)
            for g, e in zip(got_outputs, expected_outputs, strict=True)
        )
        if right:
            self.accept(Trial(exercise, self.fn, args, kwargs, learner, called_with), got_outputs)
            return

        extra = _side_effects(learner)
        mistakes = self.diagnose(args, kwargs, learner, dtype)
        difference = rules.describe(exercise, learner.value, expected_outputs, dtype, slack)
        if mistakes:
            mistake, *others = mistakes
            also = "".join(f"\nYour answer also matches this mistake: {m.name}." for m in others)
            shown = f"{difference}\n" if rules.difference_with_mistake else ""
            raise self.fail(
                f"Likely mistake: {mistake.name}.\nHow to fix it: {mistake.fix}.{also}\n"
                f"{shown}{called_with}{extra}"
            )
        if learner.error is not None:
            hint = compare.error_hint(learner.error)
            hint += f"\n{self.case.error_hint}" if self.case.error_hint else ""
            raise self.fail(
                f"Your function raised {type(learner.error).__name__}: {learner.error}"
                f"{learner.error_where}.{hint}\n{called_with}{extra}"
            )
        raise self.fail(f"{difference}\n{called_with}{extra}")

    def accept(self, trial: Trial, outputs) -> None:
        """Right values: the answer must still be arrays and meet the case's requirements."""
        not_arrays = self.rules.not_arrays(self.exercise, outputs)
        if not_arrays:
            raise self.fail(f"{not_arrays}\n{trial.called_with}")
        required = (*self.case.requires, FLOAT32_KEPT)
        for requirement in dict.fromkeys((*required, *self.exercise.watch)):
            body = requirement.broken(trial)
            if body is None:
                continue
            if requirement in required:
                raise self.fail(body)
            if requirement.note is not None:
                self.notes.append(f"Note for {self.exercise.name}: {requirement.note(trial)}")
        side = _side_effects(Outcome(warnings=trial.outcome.warnings, stderr=trial.outcome.stderr))
        if side:
            self.notes.append(f"Note for {self.exercise.name}:{side}")

    def verdict(self, mistake: Mistake, args, kwargs, learner, expected, dtype) -> _Verdict:
        """Does the learner's answer equal what ``mistake`` gives, on these inputs or its probe?"""
        exercise, agree = self.exercise, self.rules.agree
        if mistake.probe is not None:
            args, kwargs = mistake.probe(self.rng)
            learner = self.call(args, kwargs, "")
            expected = quiet_call(exercise.reference, args, kwargs)
            dtype = _first_dtype(args)
            if compare.same_outcome(learner, expected, exercise.n_outputs, dtype, agree):
                return _Verdict.MISMATCH  # right on the probe: the learner's bug is another one
        wrong = quiet_call(mistake.fn, args, kwargs)
        # A "mistake" that agrees with the reference on these inputs proves nothing.
        if compare.same_outcome(wrong, expected, exercise.n_outputs, dtype, agree):
            return _Verdict.UNTELLABLE
        if wrong.error is not None and learner.error is None:
            return _Verdict.MISMATCH
        same = compare.same_outcome(learner, wrong, exercise.n_outputs, dtype, agree)
        return _Verdict.MATCH if same else _Verdict.MISMATCH

    def diagnose(self, args, kwargs, learner: Outcome, dtype) -> list[Mistake]:
        """The known mistakes whose answers match the learner's, most likely first.

        Every mistake is tried on the case's inputs (or on its probe). When several match —
        large scores saturate the softmax, so that different wrong scalings all give one-hot
        weights — they are tried again on up to three fresh "random" inputs, and only those
        that still match (or cannot be told from the reference there) are kept. Order in the
        list: as in the catalogue.
        """
        exercise = self.exercise
        expected = quiet_call(exercise.reference, args, kwargs)
        candidates = [
            m
            for m in exercise.mistakes
            if self.verdict(m, args, kwargs, learner, expected, dtype) is _Verdict.MATCH
        ]
        # Break ties on fresh "random" inputs: two wrong scalings can coincide on one input
        # (int(√6) = √4), rarely on three.
        for _ in range(3):
            if len(candidates) < 2 or "random" not in exercise.cases:
                break
            (t_args, t_kwargs), *_ = exercise.cases["random"].make(self.rng)
            t_learner = self.call(t_args, t_kwargs, "")
            t_expected = quiet_call(exercise.reference, t_args, t_kwargs)
            t_dtype = _first_dtype(t_args)
            verdicts = [
                self.verdict(m, t_args, t_kwargs, t_learner, t_expected, t_dtype)
                for m in candidates
            ]
            judged = list(zip(candidates, verdicts, strict=True))
            decisive = [m for m, v in judged if v is _Verdict.MATCH]
            possible = [m for m, v in judged if v is not _Verdict.MISMATCH]
            candidates = decisive or possible or candidates
        return candidates


def _side_effects(outcome: Outcome) -> str:
    notes = []
    if outcome.warnings:
        notes.append("Your code raised these warnings: " + "; ".join(outcome.warnings) + ".")
    if outcome.stderr:
        notes.append(f"Your code wrote to stderr: {outcome.stderr[:300]!r}.")
    if outcome.mutated:
        notes.append(
            f"Your function also modified its input ({', '.join(outcome.mutated)}) in place."
        )
    return ("\n" + "\n".join(notes)) if notes else ""


def make_check(exercise: Exercise) -> Callable[..., None]:
    """The ``check_<name>`` function test cells call for ``exercise``."""

    def check(fn: Callable, case: str = "random", seed: int | None = None) -> None:
        _Check(exercise, case, fn, seed).run()

    check.__name__ = check.__qualname__ = f"check_{exercise.name}"
    check.__doc__ = (
        f"Check a learner's ``{exercise.name}`` on one case; print ``✓ ...`` or raise "
        f"CheckFailed.\n\nParameters\n----------\nfn : callable\n    The learner's "
        f"``{exercise.name}``.\ncase : str\n    One of {sorted(exercise.cases)}.\n"
        "seed : int, optional\n    Another seed gives other sizes and values (hidden tests)."
    )
    check.exercise = exercise  # type: ignore[attr-defined] - read by checks.EXERCISES
    return check
