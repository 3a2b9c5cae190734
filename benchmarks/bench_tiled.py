"""Benchmark: tiled (FlashAttention-style) attention against the naive reference, in NumPy.

Compares :func:`attention_course.reference.tiled_attention` with
:func:`attention_course.reference.scaled_dot_product_attention` (which builds the whole
``n_q × n_k`` score matrix, and the same again for the weights) at ``n_q = n_k = 16384``,
``d_k = d_v = 64``, float32, and prints the ratios against two targets:

- memory: tiled's peak extra memory ≤ 1/20 of one ``n_q × n_k`` score matrix
  (16384² × 4 B = 1 GiB, so ≤ 51.2 MiB);
- time: tiled's median time ≤ 1.5 × the naive reference's.

How it measures, in one run:

- **Time**: in this process, the two functions alternate (naive, tiled, then tiled, naive, …)
  for ``--repeats`` rounds after a small warm-up; the target is judged on the medians (the
  minima are printed too). Alternating means a burst of load from other programs on the
  machine hits both alike; still, on a busy machine the many mid-sized BLAS calls of the tiled
  version suffer more from thread contention than the naive version's two huge ones, so
  compare runs made with a low load average (printed at the start and end).
- **Memory**: each function runs once in a *fresh* Python subprocess (this script with
  ``--child``), so no memory the allocator kept from an earlier run can hide an allocation.
  The child builds the inputs, warms up at a small size (so BLAS's one-time thread buffers are
  not counted), resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``), and
  reports ``VmHWM - VmRSS``: the growth of the resident set during the call, i.e. what the
  operating system really had to provide, allocator slack and BLAS workspaces included.
  It then repeats the call under :mod:`tracemalloc`, which NumPy reports its array
  allocations to: the exact peak of bytes NumPy asked for, independent of the allocator.
  Where ``clear_refs`` is unavailable (not Linux), ``ru_maxrss`` growth is used instead.

Usage::

    python benchmarks/bench_tiled.py            # the full size (needs ~3 GiB of RAM, minutes)
    python benchmarks/bench_tiled.py --quick    # a smoke run at n = 2048, a few seconds

At the quick size the ``O(n·d)`` arrays (inputs, output, scaled queries) are not small next
to the ``n²`` score matrix, so the targets are only meaningful at the full size.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from attention_course.reference import scaled_dot_product_attention, tiled_attention

MEMORY_TARGET = 1 / 20  # of one n_q x n_k score matrix
TIME_TARGET = 1.5  # x the naive reference's time
FULL = {"n": 16384, "d": 64, "block_size": 2048, "q_block_size": 2048, "repeats": 5}
QUICK = {"n": 2048, "d": 64, "block_size": 256, "q_block_size": 512, "repeats": 3}


def make_inputs(n: int, d: int, seed: int = 0):
    """Q, K (n, d) and V (n, d) in float32; n_q = n_k = n and d_k = d_v = d here."""
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((n, d), dtype=np.float32) for _ in range(3))


def runner(name: str, block_size: int, q_block_size: int):
    """A function (Q, K, V) -> output (n_q, d_v) for the implementation called ``name``."""
    if name == "naive":
        return lambda Q, K, V: scaled_dot_product_attention(Q, K, V)[0]
    return lambda Q, K, V: tiled_attention(Q, K, V, block_size, q_block_size=q_block_size)


# --------------------------------------------------------------------------------------------
# Memory, measured in a fresh child process
# --------------------------------------------------------------------------------------------


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak RSS (VmHWM) to the current RSS; False where that is unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def child(name: str, n: int, d: int, block_size: int, q_block_size: int) -> None:
    """Measure one implementation's peak memory growth and print it as a JSON line."""
    run = runner(name, block_size, q_block_size)
    run(*make_inputs(256, d))  # warm up: BLAS buffers and lazy imports are not the function's
    Q, K, V = make_inputs(n, d)
    gc.collect()

    if _reset_peak_rss():
        method = "VmHWM - VmRSS after clear_refs"
        before = _status_bytes("VmRSS")
        output = run(Q, K, V)
        rss_growth = _status_bytes("VmHWM") - before
    else:  # ru_maxrss is in KiB on Linux and bytes on macOS; it is only a fallback here
        method = "ru_maxrss growth (peak counter could not be reset)"
        unit = 1 if sys.platform == "darwin" else 1024
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit
        output = run(Q, K, V)
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit - before
    del output
    gc.collect()

    tracemalloc.start()
    tracemalloc.reset_peak()
    run(Q, K, V)  # the output is part of the peak, then dropped
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"rss_growth": rss_growth, "traced_peak": traced_peak, "method": method}))


def measure_memory(name: str, config: dict) -> dict:
    """Run :func:`child` in a fresh interpreter and return its measurements."""
    command = [sys.executable, os.path.abspath(__file__), "--child", name,
               "--n", str(config["n"]), "--d", str(config["d"]),
               "--block-size", str(config["block_size"]),
               "--q-block-size", str(config["q_block_size"])]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Time, measured here with the two implementations alternating
# --------------------------------------------------------------------------------------------


def measure_time(config: dict) -> tuple[dict[str, list[float]], float]:
    """Alternate naive and tiled for ``repeats`` rounds; also return their max difference."""
    runs = {name: runner(name, config["block_size"], config["q_block_size"])
            for name in ("naive", "tiled")}  # fmt: skip
    small = make_inputs(256, config["d"])
    for run in runs.values():
        run(*small)  # warm up
    Q, K, V = make_inputs(config["n"], config["d"])
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {}
    for round_ in range(config["repeats"]):
        order = ("naive", "tiled") if round_ % 2 == 0 else ("tiled", "naive")
        for name in order:
            gc.collect()
            start = time.perf_counter()
            outputs[name] = runs[name](Q, K, V)  # (n_q, d_v); the naive weights are dropped
            times[name].append(time.perf_counter() - start)
    difference = float(np.max(np.abs(outputs["tiled"] - outputs["naive"])))
    return times, difference


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:8.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run at n = 2048")
    parser.add_argument("--n", type=int, help="n_q = n_k")
    parser.add_argument("--d", type=int, help="d_k = d_v")
    parser.add_argument("--block-size", type=int, help="keys per block of tiled_attention")
    parser.add_argument("--q-block-size", type=int, help="queries per block")
    parser.add_argument("--repeats", type=int, help="timing rounds (median reported)")
    parser.add_argument("--child", choices=("naive", "tiled"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = dict(QUICK if args.quick else FULL)
    for key in config:
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)

    if args.child:
        child(args.child, config["n"], config["d"], config["block_size"],
              config["q_block_size"])  # fmt: skip
        return

    n, d = config["n"], config["d"]
    score_bytes = n * n * np.dtype(np.float32).itemsize  # one n_q x n_k float32 matrix
    blocks = f"block_size = {config['block_size']}, q_block_size = {config['q_block_size']}"
    print(f"n_q = n_k = {n}, d_k = d_v = {d}, float32; tiled_attention with {blocks}")
    print(f"NumPy {np.__version__}, {os.cpu_count()} CPUs, load average at start "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip

    memory = {name: measure_memory(name, config) for name in ("naive", "tiled")}
    times, difference = measure_time(config)
    median = {name: statistics.median(ts) for name, ts in times.items()}

    print(f"\nmax |tiled - naive| over the output: {difference:.2e}")
    print(f"\nPeak memory growth during one call ({memory['tiled']['method']}; "
          f"tracemalloc: NumPy's own allocations):")  # fmt: skip
    print(f"  one n x n float32 score matrix {mib(score_bytes)}")
    for name in ("naive", "tiled"):
        print(f"  {name:5s}  RSS {mib(memory[name]['rss_growth'])}   "
              f"tracemalloc {mib(memory[name]['traced_peak'])}")  # fmt: skip
    print(f"\nTime, median of {config['repeats']} alternating rounds:")
    for name in ("naive", "tiled"):
        rounds = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"  {name:5s}  {median[name]:7.2f} s   (min {min(times[name]):.2f} s; "
              f"rounds: {rounds} s)")  # fmt: skip
    print(f"load average at end {os.getloadavg()[0]:.1f}")

    memory_ratio = memory["tiled"]["rss_growth"] / score_bytes
    traced_ratio = memory["tiled"]["traced_peak"] / score_bytes
    time_ratio = median["tiled"] / median["naive"]
    at_full_size = (n, d) == (FULL["n"], FULL["d"])

    def verdict(ok: bool) -> str:
        if not at_full_size:
            return f"not judged (the targets are set for n = {FULL['n']}, d = {FULL['d']})"
        return "met" if ok else "MISSED"

    print("\nTargets:")
    print(f"  memory: tiled RSS growth / score matrix = 1/{1 / max(memory_ratio, 1e-12):.0f} "
          f"(tracemalloc 1/{1 / max(traced_ratio, 1e-12):.0f}); target <= 1/20: "
          f"{verdict(max(memory_ratio, traced_ratio) <= MEMORY_TARGET)}")  # fmt: skip
    best_ratio = min(times["tiled"]) / min(times["naive"])
    print(f"  time:   tiled / naive = {time_ratio:.2f}x of the medians ({best_ratio:.2f}x of the "
          f"minima); target <= {TIME_TARGET}x: {verdict(time_ratio <= TIME_TARGET)}")  # fmt: skip


if __name__ == "__main__":
    main()
