"""The registry of the catalogue: what a wrong or right implementation is registered with.

(Kept apart from ``__init__``: importing the submodule ``catalogue.wrong`` sets the package
attribute ``wrong`` to that module, which would hide a decorator of the same name there.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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
