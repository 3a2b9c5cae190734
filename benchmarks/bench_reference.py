"""How close is the reference attention to the cost of its two matrix products?

Attention with ``n_q = n_k = n`` queries and keys does two matrix products, ``Q Kᵀ``
(n x d_k x n) and ``P V`` (n x n x d_v); everything else (scaling, masking, softmax) touches
the ``n x n`` scores a constant number of times. The "two-matmul floor" times exactly those two
products, with a precomputed ``P``, so no implementation of attention can beat it. The target
is ``reference.scaled_dot_product_attention <= 1.3 x floor`` at n = 1024, d_k = d_v = 64 in
float64.

Both are timed in the same run, interleaved (floor, reference, floor, reference, ...), so a
change in machine load hits both; the minimum over rounds is the headline (the least-disturbed
run), the median is printed beside it.

Shape legend: ``n_q`` queries, ``n_k`` keys and values, ``d_k`` query/key width, ``d_v`` value
width.

Usage::

    python benchmarks/bench_reference.py              # full run, a few seconds
    python benchmarks/bench_reference.py --quick      # smoke run: smaller sizes, few rounds
    python benchmarks/bench_reference.py --breakdown  # also time the softmax's passes

``--breakdown`` times, on the same ``(n_q, n_k)`` scores, the element-wise passes any
stable softmax makes (row max, subtract, exp, row sum, divide): what separates the reference
from the floor. Set ``OPENBLAS_NUM_THREADS=1`` to compare with single-threaded matmuls (NumPy's
element-wise functions always run on one thread).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import timeit

import numpy as np

from attention_course import reference

TARGET_RATIO = 1.3


def blas_description() -> str:
    """The BLAS NumPy uses, and its thread count if threadpoolctl is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        pools = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
            f"{p.get('filepath')})"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        ]
        if pools:
            return "; ".join(pools)
    try:  # NumPy >= 1.25 describes its build; no thread count without threadpoolctl.
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (threadpoolctl not installed)"
    except Exception:  # noqa: BLE001 - purely informative
        return "unknown (install threadpoolctl for details)"


def make_inputs(n_q: int, n_k: int, d_k: int, d_v: int, seed: int = 0):
    """Random float64 Q (n_q, d_k), K (n_k, d_k), V (n_k, d_v) and weights P (n_q, n_k)."""
    rng = np.random.default_rng(seed)
    Q = rng.standard_normal((n_q, d_k))
    K = rng.standard_normal((n_k, d_k))
    V = rng.standard_normal((n_k, d_v))
    _, P = reference.scaled_dot_product_attention(Q, K, V)  # (n_q, n_k), precomputed
    return Q, K, V, P


def two_matmul_floor(Q, K, V, P):
    """The two products every attention must do, and nothing else."""
    scores = Q @ np.swapaxes(K, -1, -2)  # (n_q, d_k) @ (d_k, n_k) -> (n_q, n_k)
    output = P @ V  # (n_q, n_k) @ (n_k, d_v) -> (n_q, d_v)
    return scores, output


def time_interleaved(candidates: dict, rounds: int, number: int) -> dict[str, list[float]]:
    """Seconds per call of every candidate, ``rounds`` times, alternating between them."""
    timers = {name: timeit.Timer(fn) for name, fn in candidates.items()}
    for timer in timers.values():  # warm-up: BLAS thread pools, page faults, caches
        timer.timeit(number=1)
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, timer in timers.items():
            results[name].append(timer.timeit(number=number) / number)
    return results


def softmax_passes(Q, K):
    """The element-wise passes of a stable softmax over the (n_q, n_k) scores, one by one.

    Each works into a preallocated buffer, so only the arithmetic is timed.
    """
    scores = Q @ np.swapaxes(K, -1, -2)  # (n_q, d_k) @ (d_k, n_k) -> (n_q, n_k)
    row_max = scores.max(axis=-1, keepdims=True)  # (n_q, 1)
    shifted = scores - row_max  # (n_q, n_k)
    e = np.exp(shifted)  # (n_q, n_k)
    total = e.sum(axis=-1, keepdims=True)  # (n_q, 1)
    out = np.empty_like(scores)  # (n_q, n_k)
    return {
        "row max": lambda: scores.max(axis=-1, keepdims=True),
        "subtract max": lambda: np.subtract(scores, row_max, out=out),
        "exp": lambda: np.exp(shifted, out=out),
        "row sum": lambda: e.sum(axis=-1, keepdims=True),
        "divide": lambda: np.divide(e, total, out=out),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: n = 256 and 3 rounds (not a measurement)"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each element-wise softmax pass"
    )
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--number", type=int, default=None, help="calls per timing")
    args = parser.parse_args(argv)

    n, d_k, d_v = (256, 64, 64) if args.quick else (1024, 64, 64)
    rounds = args.rounds or (3 if args.quick else 15)
    number = args.number or (3 if args.quick else 5)

    print(f"Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"BLAS: {blas_description()}")
    if hasattr(os, "getloadavg"):
        load, cpus = os.getloadavg()[0], os.cpu_count() or 1
        busy = "  <- busy machine: expect noisy timings" if load > 0.5 * cpus else ""
        print(f"load average {load:.1f} on {cpus} CPUs{busy}")
    print(
        f"n_q = n_k = {n}, d_k = {d_k}, d_v = {d_v}, float64; "
        f"{rounds} interleaved rounds of {number} calls each"
        + (" (--quick: a smoke run, not the target measurement)" if args.quick else "")
    )

    Q, K, V, P = make_inputs(n, n, d_k, d_v)
    candidates = {
        "two-matmul floor": lambda: two_matmul_floor(Q, K, V, P),
        "reference": lambda: reference.scaled_dot_product_attention(Q, K, V),
    }
    if args.breakdown:
        candidates |= {f"  {name}": fn for name, fn in softmax_passes(Q, K).items()}
    times = time_interleaved(candidates, rounds=rounds, number=number)

    print(f"{'':18s} {'min (ms)':>10s} {'median (ms)':>12s}")
    for name, seconds in times.items():
        print(f"{name:18s} {1e3 * min(seconds):10.2f} {1e3 * statistics.median(seconds):12.2f}")
    if args.breakdown:
        passes = sum(min(t) for name, t in times.items() if name.startswith("  "))
        print(
            f"softmax passes together: {1e3 * passes:.2f} ms, "
            f"{passes / min(times['two-matmul floor']):.2f}x the floor"
        )
    floor, ref = times["two-matmul floor"], times["reference"]
    ratio_min = min(ref) / min(floor)
    ratio_median = statistics.median(ref) / statistics.median(floor)
    verdict = "meets" if ratio_min <= TARGET_RATIO else "MISSES"
    print(
        f"reference / floor = {ratio_min:.2f}x (min), {ratio_median:.2f}x (median); "
        f"target <= {TARGET_RATIO}x: {verdict} the target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
