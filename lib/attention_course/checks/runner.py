"""Calling learner code safely: one call, its value or error, and everything it did on the side.

:func:`call` runs a learner's function on *copies* of the inputs and returns an
:class:`Outcome`: the value or the exception (with the learner's own line that raised it), the
warnings and the stderr output it produced (captured, so that nothing reaches the notebook's
stderr, where nbgrader would score the cell zero), whether it called the course's reference
(directly, through an alias, a module, ``functools.partial`` or a wrapper), which inputs it
changed in place, and whether it ran out of time (:data:`TIME_LIMIT_SECONDS`).

:func:`quiet_call` runs our own code (the reference, a catalogued mistake) with its expected
warnings silenced; :func:`silenced` discards everything a repeated learner call writes on the
side, and :func:`peak_bytes` measures what a call allocates.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import signal
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
import tracemalloc
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import reference as ref

#: The longest one call of a learner's function may run before the check stops it and names
#: an endless loop. Pure-Python loops over every query, key and feature take 1.6 s (2.7 s while
#: other jobs ran) on the course's 2-core machine on tiled_attention's "memory" case (up to
#: 4 x 44 000 scores); the vectorised and block-loop alternatives of the test catalogues take
#: at most 0.15 s there (measured 2026-12). 10 s leaves room for a busy machine and is still far
#: below nbgrader's 120 s cell timeout. The limit needs SIGALRM on the
#: main thread (not on Windows): elsewhere calls are not limited and nbgrader's timeout applies.
TIME_LIMIT_SECONDS = 10.0


@dataclass
class Outcome:
    """What happened when a function was called: a value or an exception, plus side effects."""

    value: Any = None
    error: BaseException | None = None
    error_where: str = ""
    warnings: list[str] = field(default_factory=list)
    stderr: str = ""
    called_reference: str | None = None
    mutated: list[str] = field(default_factory=list)
    timed_out: bool = False


# ---- calls of the reference ------------------------------------------------------------------

_REFERENCE_CODES = {
    getattr(ref, name).__code__: name
    for name in ref.__all__
    if callable(getattr(ref, name, None)) and hasattr(getattr(ref, name), "__code__")
}
_REFERENCE_NAMES = frozenset(_REFERENCE_CODES.values())
# The reference is a package (forward, tiled and backward passes in their own modules): a
# reference function's code lives in one of the files of its folder.
_REFERENCE_DIR = os.path.normcase(os.path.dirname(os.path.abspath(ref.__file__)))


def _reference_name(code) -> str | None:
    """The reference function ``code`` belongs to, if any.

    Identity of the code object catches aliases, ``import ... as``, ``functools.partial`` and
    wrappers; the file name (any module of the reference package) also catches a reference
    module that was reloaded.
    """
    name = _REFERENCE_CODES.get(code)
    if name is None and code.co_name in _REFERENCE_NAMES:
        folder = os.path.dirname(os.path.normcase(os.path.abspath(code.co_filename)))
        if folder == _REFERENCE_DIR:
            name = code.co_name
    return name


# ---- the learner's line in a traceback -------------------------------------------------------

_PACKAGE_DIR = os.path.normcase(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_LIBRARY_DIRS = tuple(
    sorted(
        {
            os.path.normcase(os.path.abspath(path))
            for key, path in sysconfig.get_paths().items()
            if key in ("stdlib", "platstdlib", "purelib", "platlib")
        }
    )
)


def _is_library_file(filename: str) -> bool:
    path = os.path.normcase(os.path.abspath(filename))
    return (
        path.startswith(_PACKAGE_DIR)
        or path.startswith(_LIBRARY_DIRS)
        or "site-packages" in path
        or "dist-packages" in path
    )


def _learner_frame(tb) -> str:
    """Quote the innermost line of the learner's own code in a traceback (not NumPy's, SciPy's,
    the standard library's or this package's)."""
    for frame in reversed(traceback.extract_tb(tb)):
        if _is_library_file(frame.filename):
            continue
        line = (frame.line or "").strip()
        return f" at the line `{line}`" if line else ""
    return ""


# ---- side channels: file descriptor 2, and the time limit ------------------------------------


@contextlib.contextmanager
def capture_fd2(captured: list[str]) -> Iterator[None]:
    """Point file descriptor 2 at a temporary file while learner code runs.

    Output written below Python's ``sys.stderr`` (C libraries, subprocesses) would otherwise
    reach the kernel's stderr, which ipykernel forwards to the notebook: nbgrader scores that
    cell zero. What was written is appended to ``captured``.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no usable descriptor 2 (some embedded interpreters): nothing to capture
        yield
        return
    try:
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                tmp.seek(0)
                captured.append(tmp.read().decode(errors="replace"))
    finally:
        os.close(saved)


class _OutOfTime(BaseException):  # noqa: N818 - a signal, not an error of the learner's
    """Raised inside learner code by the alarm; a BaseException, so ``except Exception:`` in
    the learner's loop does not swallow it."""


def time_limit_available() -> bool:
    """Whether calls can be limited here: SIGALRM exists and this is the main thread."""
    return hasattr(signal, "SIGALRM") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in the running code after ``seconds``; restore any previous
    SIGALRM handler and timer (with the time it has left) afterwards."""
    if not time_limit_available():
        yield
        return

    def alarm(signum, frame):
        raise _OutOfTime()

    previous_handler = signal.signal(signal.SIGALRM, alarm)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:  # someone else's timer: give it back what is left of it
            left = previous_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), previous_interval)


# ---- calls -----------------------------------------------------------------------------------


def _copy(a):
    """A copy of an array, or of a tuple of arrays (notebook 10's KV cache); else ``a``."""
    if isinstance(a, tuple) and a and all(isinstance(x, np.ndarray) for x in a):
        return tuple(np.array(x, copy=True) for x in a)
    return np.array(a, copy=True) if isinstance(a, np.ndarray) else a


def _changed(original, copy) -> bool:
    """Was the array ``original`` (or an array of the tuple ``original``) changed in ``copy``?"""
    if isinstance(original, tuple) and isinstance(copy, tuple) and len(copy) == len(original):
        return any(_changed(o, c) for o, c in zip(original, copy, strict=True))
    return isinstance(original, np.ndarray) and not _unchanged(original, copy)


def _unchanged(original: np.ndarray, copy) -> bool:
    return (
        isinstance(copy, np.ndarray)
        and copy.dtype == original.dtype
        and np.array_equal(original, copy, equal_nan=True)
    )


def call(
    fn: Callable,
    args: Sequence,
    kwargs: dict,
    forbidden: frozenset[str],
    arg_names: Sequence[str] = (),
) -> Outcome:
    """Call a learner's ``fn`` on copies of the inputs, within :data:`TIME_LIMIT_SECONDS`,
    capturing warnings, stderr and calls of the ``forbidden`` reference functions."""
    copies = [_copy(a) for a in args]
    kw_copies = {k: _copy(v) for k, v in kwargs.items()}
    outcome = Outcome()
    seen_reference: list[str] = []

    def profiler(frame, event, arg):
        if event == "call":
            name = _reference_name(frame.f_code)
            if name is not None and name in forbidden:
                seen_reference.append(name)

    stderr = io.StringIO()
    fd_stderr: list[str] = []
    old_profile = sys.getprofile()
    # Underflow (exp of a very negative number -> 0) is expected in a stable softmax.
    with (
        capture_fd2(fd_stderr),
        warnings.catch_warnings(record=True) as caught,
        np.errstate(all="warn", under="ignore"),
        contextlib.redirect_stderr(stderr),
    ):
        warnings.simplefilter("always")
        sys.setprofile(profiler)
        try:
            with _time_limit(TIME_LIMIT_SECONDS):
                outcome.value = fn(*copies, **kw_copies)
        except _OutOfTime:
            outcome.timed_out = True
        except Exception as exc:  # noqa: BLE001 - any learner error becomes a message
            outcome.error = exc
            outcome.error_where = _learner_frame(exc.__traceback__)
        finally:
            sys.setprofile(old_profile)
    outcome.warnings = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    outcome.stderr = (stderr.getvalue() + "".join(fd_stderr)).strip()
    outcome.called_reference = seen_reference[0] if seen_reference else None
    names = list(arg_names)[: len(args)]
    names += [f"argument {i + 1}" for i in range(len(names), len(args))]
    for name, original, copy in zip(names, args, copies, strict=True):
        if _changed(original, copy):
            outcome.mutated.append(name)
    for name, original in kwargs.items():
        if _changed(original, kw_copies[name]):
            outcome.mutated.append(name)
    return outcome


def quiet_call(fn: Callable, args: Sequence, kwargs: dict) -> Outcome:
    """Call a reference or mistake function, silencing its warnings (they are expected)."""
    outcome = Outcome()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            outcome.value = fn(*[_copy(a) for a in args], **kwargs)
        except Exception as exc:  # noqa: BLE001
            outcome.error = exc
    return outcome


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """Run a second call of learner code with nothing reaching the notebook: its warnings,
    floating-point errors, ``sys.stderr`` and file descriptor 2 are all discarded.

    For measurements (memory, reductions taken) on a function that :func:`call` has already
    run and reported on with the same inputs.
    """
    sink: list[str] = []
    with (
        capture_fd2(sink),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
        np.errstate(all="ignore"),
    ):
        warnings.simplefilter("ignore")
        yield


def peak_bytes(fn: Callable, args: Sequence, kwargs: dict) -> int:
    """Peak bytes allocated (NumPy arrays included) while ``fn(*args, **kwargs)`` runs.

    Not time-limited: it measures a function that has just returned in time on these inputs.
    """
    copies = [_copy(a) for a in args]
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        with silenced():
            fn(*copies, **kwargs)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()


# ---- signatures ------------------------------------------------------------------------------


def signature_problem(fn: Callable, args: Sequence, kwargs: dict) -> str | None:
    """Why ``fn(*args, **kwargs)`` cannot bind to ``fn``'s parameters, or None if it can."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: just call them
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        return f"your function takes {_describe_parameters(signature)} (Python says: {exc})"
    return None


def _describe_parameters(signature: inspect.Signature) -> str:
    if not signature.parameters:
        return "no parameters"
    return f"the parameters ({', '.join(str(p) for p in signature.parameters.values())})"
