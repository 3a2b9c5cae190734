"""Benchmark: time per generated token with and without the KV cache, at n = 2048 (notebook 10).

One attention layer (``d_model = 256``, 8 heads of width 32, float32). The token at position
``n - 1`` is produced two ways, side by side in one run:

- **with the cache**: :func:`attention_course.reference.decode_step` with the keys and values
  of the ``n - 1`` earlier tokens (one query against ``n`` keys; the cache is copied once to
  append the new row, as the reference does);
- **recomputing**: :func:`attention_course.reference.multi_head_attention` over all ``n``
  tokens with a causal mask (what generation without a cache does at every step).

The two alternate (cache, recompute, then recompute, cache, ...) for ``--repeats`` rounds after
a warm-up, so a burst of load from other programs hits both alike; the ratio of the medians is
printed, with the load average at the start and end (compare runs made with a low one). The
two outputs are checked to agree first.

Usage::

    python benchmarks/bench_decode.py            # n = 2048
    python benchmarks/bench_decode.py --n 512    # another length
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np

from attention_course.reference import causal_mask, decode_step, multi_head_attention

D_MODEL, N_HEADS = 256, 8


def make_inputs(n: int, seed: int = 0):
    """X (n, d_model) and W_q, W_k, W_v, W_o (d_model, d_model), float32."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D_MODEL), dtype=np.float32)
    W = rng.standard_normal((4, D_MODEL, D_MODEL), dtype=np.float32) / np.float32(
        math.sqrt(D_MODEL)
    )
    return X, tuple(W)


def fill_cache(X, weights):
    """The (K_cache, V_cache) of all tokens of X but the last, built token by token."""
    cache = None
    for t in range(X.shape[0] - 1):
        _, cache = decode_step(X[t : t + 1], cache, *weights, N_HEADS)
    return cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2048, help="sequence length (the new token's)")
    parser.add_argument("--repeats", type=int, default=21, help="timing rounds (median reported)")
    args = parser.parse_args()
    n = args.n

    print(f"n = {n} tokens, d_model = {D_MODEL}, {N_HEADS} heads of width {D_MODEL // N_HEADS},"
          " float32")  # fmt: skip
    print(f"NumPy {np.__version__}, {os.cpu_count()} CPUs, load average at start "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    X, weights = make_inputs(n)
    cache = fill_cache(X, weights)
    mask = causal_mask(n)
    runs = {
        "with the cache": lambda: decode_step(X[n - 1 :], cache, *weights, N_HEADS)[0][0],
        "recomputing": lambda: multi_head_attention(X, X, *weights, N_HEADS, mask=mask)[0][-1],
    }
    difference = float(np.max(np.abs(runs["with the cache"]() - runs["recomputing"]())))
    print(f"max |cached - recomputed| for the last token: {difference:.2e}")

    times = {name: [] for name in runs}
    order = list(runs)
    for _ in range(args.repeats):
        for name in order:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
        order.reverse()  # alternate which goes first
    median = {name: statistics.median(ts) for name, ts in times.items()}

    print(f"\nTime for token {n}, median of {args.repeats} alternating rounds:")
    for name in runs:
        print(f"  {name:15s} {median[name] * 1e3:9.3f} ms   (min {min(times[name]) * 1e3:.3f})")
    ratio = median["recomputing"] / median["with the cache"]
    print(f"ratio recomputing / with the cache: {ratio:.0f}x")
    cache_bytes = sum(part.nbytes for part in cache)
    print(f"cache of {n - 1} tokens: {cache_bytes / 2**20:.1f} MiB (one layer)")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
