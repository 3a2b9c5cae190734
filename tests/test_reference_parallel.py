"""The multi-threaded path of the reference softmax (large arrays) is exact and fork-safe."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np
import pytest

from attention_course import reference as ref


def _large_scores(rng: np.random.Generator) -> np.ndarray:
    """Scores big enough for the threaded path, with a fully masked (all -inf) row."""
    n_q, n_k = 700, 513  # 359,100 entries >= the threshold
    x = rng.standard_normal((n_q, n_k)) * 40.0
    x[5] = -np.inf
    assert x.size >= ref._PARALLEL_MIN_SIZE
    return x


def test_threaded_softmax_equals_the_single_threaded_one():
    x = _large_scores(np.random.default_rng(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        threaded = ref.softmax(x)
    single = ref._softmax_rows_inplace(x.copy())
    np.testing.assert_array_equal(threaded, single)  # same operations per row: bit-identical
    assert np.all(threaded[5] == 0)
    np.testing.assert_allclose(np.delete(threaded, 5, axis=0).sum(-1), 1.0, rtol=1e-12)


def test_threaded_softmax_over_a_non_contiguous_or_other_axis_is_right():
    x = _large_scores(np.random.default_rng(1))
    p0 = ref.softmax(x.T, axis=0)  # transposed view: the rows are not contiguous
    # Sums run in another order along another axis: equal up to rounding.
    np.testing.assert_allclose(p0, ref.softmax(x, axis=-1).T, rtol=1e-13, atol=0)


@pytest.mark.skipif(
    not hasattr(os, "fork") or sys.platform == "darwin",
    reason="fork is POSIX-only (and discouraged on macOS)",
)
def test_softmax_works_in_a_forked_child_after_the_parent_used_threads():
    """A pool inherited through fork has no threads: the child must make its own, not hang."""
    x = _large_scores(np.random.default_rng(2))
    expected = ref.softmax(x)  # the parent's pool now exists
    pid = os.fork()
    if pid == 0:  # child: exit code says whether it got the same answer
        try:
            os._exit(0 if np.array_equal(ref.softmax(x), expected) else 3)
        finally:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "softmax in a forked child failed or hung"
