"""Learner-style implementations that the grader in :mod:`attention_course.checks` must judge.

``wrong.py`` holds implementations with one mistake each, written the way learners write them
(``K.T`` on batched input, a softmax without max subtraction, ``scores / d_k`` ...); every one
is registered with :func:`wrong`, which records the exercise, the check case that must fail
and phrases the failure message must contain. ``right.py`` holds correct alternatives to the
reference (einsum, loops, ``scipy.special.softmax``, a log-sum-exp softmax, a ``list`` return
...), registered with :func:`right`: they must pass every case, visible and hidden seeds alike.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys and values, ``d_k``
query/key width, ``d_v`` value width, ``d_model`` / ``d_model_z`` widths of ``X`` / ``Z``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: The exercises of the core notebooks 01-05, which this catalogue covers. Notebooks 06-08
#: (masks, multi-head, tiled attention) have theirs in test_grader_catalogue_beyond.py.
CORE_EXERCISES = (
    "dot_product_scores",
    "scale_scores",
    "softmax",
    "weighted_sum",
    "scaled_dot_product_attention",
    "self_attention",
    "cross_attention",
)


@dataclass(frozen=True)
class Wrong:
    """A wrong implementation and what the grader must say about it."""

    id: str
    fn: Callable
    exercise: str
    fails: str  # the check case that must fail (the one a grader author would expect)
    says: tuple[str, ...]  # phrases the failure message of that case must contain


@dataclass(frozen=True)
class Right:
    """A correct alternative implementation: full marks on every case and seed."""

    id: str
    fn: Callable
    exercise: str


WRONG: list[Wrong] = []
RIGHT: list[Right] = []


def wrong(exercise: str, fails: str, *says: str, name: str | None = None):
    """Register a wrong implementation of ``exercise`` that must fail case ``fails``."""

    def register(fn: Callable) -> Callable:
        WRONG.append(Wrong(name or fn.__name__, fn, exercise, fails, says))
        return fn

    return register


def right(exercise: str, name: str | None = None):
    """Register a correct implementation of ``exercise``."""

    def register(fn: Callable) -> Callable:
        RIGHT.append(Right(name or fn.__name__, fn, exercise))
        return fn

    return register
