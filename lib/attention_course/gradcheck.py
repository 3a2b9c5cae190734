"""A learner's backward pass against central differences (notebook 09).

The graded checks compare a learner's ``attention_backward`` with the reference; this module
compares it with the *definition* of a gradient, the numerical one of
:func:`attention_course.reference.numerical_attention_gradients`, and says how far apart they
are. It calls the learner's function through :func:`attention_course.checks.runner.call`
(copies of the inputs, warnings and stderr captured, a time limit), so a notebook cell that
uses it runs before the exercise is written: a stub that raises ``NotImplementedError`` gives a
sentence, not an error.

Shape legend: ``...`` batch dimensions, ``n_q`` queries, ``n_k`` keys (and values), ``d_k``
query/key width, ``d_v`` value width.

Used by notebook 09.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import reference as ref
from .checks import runner

__all__ = ["TOLERANCE", "GradientCheck", "compare_with_numerical"]

#: Largest difference accepted, relative to the gradient's largest entry. Central differences
#: with eps = 1e-6 in float64 are off by about 1e-9 relative on inputs of order one (see
#: :func:`attention_course.reference.numerical_gradient`); a real mistake (a missing term, a
#: wrong scale, a transpose) by 1e-2 or more.
TOLERANCE = 1e-5

_NAMES = ("grad_Q", "grad_K", "grad_V")


@dataclass(frozen=True)
class GradientCheck:
    """How far a backward pass is from central differences.

    Attributes
    ----------
    errors : tuple of float
        For ``grad_Q``, ``grad_K``, ``grad_V``: the largest absolute difference between the
        function's gradient and the numerical one, divided by the numerical gradient's largest
        entry. Empty if no comparison could be made.
    problem : str or None
        Why no comparison could be made (the function is not written yet, raised an error, or
        returned something else than three arrays of the inputs' shapes); None otherwise.
    """

    errors: tuple[float, ...] = ()
    problem: str | None = None

    @property
    def passed(self) -> bool:
        """Whether every gradient is within :data:`TOLERANCE` of the numerical one."""
        return self.problem is None and all(e <= TOLERANCE for e in self.errors)

    def __str__(self) -> str:
        if self.problem is not None:
            return self.problem
        lines = [
            f"{name}: largest difference {error:.1e} of its largest entry "
            f"{'✓' if error <= TOLERANCE else f'✗ (more than {TOLERANCE:.0e})'}"
            for name, error in zip(_NAMES, self.errors, strict=True)
        ]
        return "\n".join(lines)


def compare_with_numerical(
    backward: Callable, Q, K, V, grad_output, mask=None, scale=None
) -> GradientCheck:
    """Compare ``backward(Q, K, V, grad_output, mask=mask, scale=scale)`` with central differences.

    Parameters
    ----------
    backward : callable
        A function with the signature of :func:`attention_course.reference.attention_backward`,
        returning ``(grad_Q, grad_K, grad_V)``.
    Q : (..., n_q, d_k) ndarray
    K : (..., n_k, d_k) ndarray
    V : (..., n_k, d_v) ndarray
    grad_output : (..., n_q, d_v) ndarray
        Gradient of the loss with respect to the attention output.
    mask : (..., n_q, n_k) ndarray of bool, optional
        True where a query may attend to a key.
    scale : float, optional
        Defaults to ``1 / sqrt(d_k)``.

    Returns
    -------
    check : GradientCheck
        Printing it gives one line per gradient, or the reason no comparison was made.
    """
    numerical = ref.numerical_attention_gradients(Q, K, V, grad_output, mask=mask, scale=scale)
    outcome = runner.call(
        backward,
        (Q, K, V, grad_output),
        {"mask": mask, "scale": scale},
        forbidden=frozenset(),
        arg_names=("Q", "K", "V", "grad_output"),
    )
    name = getattr(backward, "__name__", "your function")
    if isinstance(outcome.error, NotImplementedError):
        return GradientCheck(problem=f"{name} is not written yet: nothing to compare.")
    if outcome.timed_out:
        return GradientCheck(problem=f"{name} did not return within {runner.TIME_LIMIT_SECONDS} s.")
    if outcome.error is not None:
        error = f"{type(outcome.error).__name__}: {outcome.error}"
        return GradientCheck(problem=f"{name} raised {error}{outcome.error_where}.")
    value = outcome.value
    shapes = [np.shape(a) for a in numerical]
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        return GradientCheck(problem=f"{name} must return three arrays (grad_Q, grad_K, grad_V).")
    if [np.shape(a) for a in value] != shapes:
        got = [np.shape(a) for a in value]
        return GradientCheck(problem=f"{name} returned shapes {got}, expected {shapes}.")
    errors = []
    for analytic, exact in zip(value, numerical, strict=True):
        largest = max(float(np.max(np.abs(exact))), np.finfo(np.float64).tiny)
        difference = np.abs(np.asarray(analytic, dtype=np.float64) - exact)  # same shape
        errors.append(float(np.max(difference)) / largest if np.all(np.isfinite(difference))
                      else float("inf"))  # fmt: skip
    return GradientCheck(errors=tuple(errors))
