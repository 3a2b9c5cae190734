"""Checks that grade a learner's functions and say *what* is wrong.

Every graded test cell in the course calls one check::

    from attention_course import checks
    checks.check_softmax(softmax, "large")          # visible test
    checks.check_softmax(softmax, "large", seed=7)  # hidden test: other seed, other shapes

A check runs the learner's function on inputs built for one *case* (random input, batch
dimensions, large magnitudes, float32, ...), compares the answer with the reference in
:mod:`attention_course.reference`, and either prints one line starting with ``✓`` (a hidden
test says so: "hidden test, on other inputs") or raises :class:`CheckFailed`. When the answer is
wrong, the check runs a catalogue of known mistakes (softmax over the wrong axis, scaling by
``d_k`` instead of ``sqrt(d_k)``, ``K.T`` on batched input, ...) on the same inputs and, if the
learner's answer matches one, names it and says how to fix it. Otherwise it reports what was
expected and what came back: shape, dtype and the first differing entry, plus a hint when the
difference has a recognisable pattern (swapped axes, a constant factor, NaN, an integer dtype,
an error NumPy raises for batched input).

Rules every check follows:

- Dimensions are always all different, so a wrong transpose cannot pass by accident.
- Float32 in, float32 out: when every floating input is float32, an answer with the right
  values returned in float64 fails, with a message naming the usual causes — an array made
  with ``np.zeros(shape)`` without ``dtype=``, or a NumPy float64 scalar such as
  ``np.sqrt(d_k)``, which under NumPy >= 2's promotion rules (NEP 50) turns float32 arrays
  into float64 while a Python float (``math.sqrt(d_k)``, ``d_k ** 0.5``) does not
  (:data:`~.framework.FLOAT32_KEPT`).
- Warnings raised by learner code and anything it writes to stderr are captured and reported in
  the message: nothing reaches stderr, where nbgrader would score the cell zero.
- A learner function that calls the reference implementation of the function it is meant to
  write (directly, through an alias, a module, ``functools.partial`` or a wrapper) fails.
- A call that does not return within ``runner.TIME_LIMIT_SECONDS`` is stopped and the check
  names an endless loop; later checks of the same function fail at once with that message.
- Failure messages never quote the test cell, so hidden tests stay hidden in feedback, and
  their lines are wrapped to fit nbgrader's feedback box (:mod:`.messages`).
- Any correct implementation passes; a known mistake is only named when the learner's answer
  is wrong *and* equals what that mistake gives on the same input.

Layout of the package:

- :mod:`.runner` calls learner code (copies of the inputs, captured warnings and stderr,
  reference calls, in-place changes, the time limit); :mod:`.compare` compares and describes
  answers; :mod:`.messages` holds :class:`CheckFailed` and the line wrapping;
  :mod:`.framework` the records (:class:`~.framework.Exercise`, :class:`~.framework.Case`,
  :class:`~.framework.Mistake`, :class:`~.framework.Requirement`) and the one driver behind
  every check, :func:`~.framework.make_check`.
- One catalogue module per notebook: :mod:`.dot_product` (01), :mod:`.scaling` (02),
  :mod:`.softmax` (03), :mod:`.weighted_sum` (04), :mod:`.self_cross` (05), :mod:`.masks` (06),
  :mod:`.multi_head` (07), :mod:`.tiled` (08), :mod:`.backward` (09), :mod:`.inference` (10);
  :mod:`.inputs` and :mod:`.mistakes` hold the input builders and known mistakes several
  catalogues share.

Adding an exercise: write a catalogue module that builds its ``Exercise`` (cases, mistakes,
requirements) and ends with ``check_<name> = make_check(EXERCISE)``, then add one line below
importing its ``check_*`` functions: ``EXERCISES`` and ``__all__`` pick them up from there.
"""

from __future__ import annotations

from .backward import check_attention_backward, check_softmax_backward  # noqa: F401
from .dot_product import check_dot_product_scores  # noqa: F401
from .framework import Exercise
from .inference import (  # noqa: F401
    check_decode_step,
    check_grouped_query_attention,
    check_sliding_window_mask,
)
from .masks import check_causal_mask, check_masked_attention, check_padding_mask  # noqa: F401
from .messages import CheckFailed
from .multi_head import check_multi_head_attention  # noqa: F401
from .scaling import check_scale_scores  # noqa: F401
from .self_cross import check_cross_attention, check_self_attention  # noqa: F401
from .softmax import check_softmax  # noqa: F401
from .tiled import check_online_softmax, check_tiled_attention  # noqa: F401
from .weighted_sum import check_scaled_dot_product_attention, check_weighted_sum  # noqa: F401

# The imports above marked F401 are the catalogues' checks, re-exported through __all__ below.
_CHECKS = [value for name, value in sorted(globals().items()) if name.startswith("check_")]

#: Every exercise by name: its cases (``EXERCISES[name].cases``), mistakes and requirements.
EXERCISES: dict[str, Exercise] = {check.exercise.name: check.exercise for check in _CHECKS}

__all__ = ["CheckFailed", "EXERCISES", *(check.__name__ for check in _CHECKS)]
