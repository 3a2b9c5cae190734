"""How long one graded check takes: a learner runs about ten per exercise, again and again.

The slow path of a check is a *wrong* answer: the driver then tries every known mistake of the
exercise (and its probe) on the same inputs to name the learner's mistake. This script times
every case of every exercise with an answer that is never right (so every mistake is tried),
and prints the median and the slowest per exercise. The target — a check feels instant — is a
median under 0.05 s and no case over 1 s on the course's 2-core machine.

Usage::

    .venv/bin/python benchmarks/bench_checks.py

The load average is printed with the figures: on a shared machine they are upper bounds.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time

import numpy as np

from attention_course import checks
from attention_course.checks import EXERCISES, CheckFailed


def everything_wrong(*args, **kwargs):
    """Never right, never an error: every catalogued mistake of the exercise gets tried."""
    return [np.zeros((2, 2))] * 2


def time_case(name: str, case: str) -> float:
    check = getattr(checks, f"check_{name}")
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(CheckFailed):
        check(everything_wrong, case)
    return time.perf_counter() - start


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'exercise':32} {'cases':>5} {'median s':>9} {'slowest s':>10}")
    everything = []
    for name, exercise in sorted(EXERCISES.items()):
        durations = [time_case(name, case) for case in exercise.cases]
        everything += durations
        print(
            f"{name:32} {len(durations):5d} {statistics.median(durations):9.3f} "
            f"{max(durations):10.3f}"
        )
    print(
        f"{'all':32} {len(everything):5d} {statistics.median(everything):9.3f} "
        f"{max(everything):10.3f}"
    )


if __name__ == "__main__":
    main()
