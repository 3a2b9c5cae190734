"""Kernel-side latency of the explorers: from a control change to the redrawn figure.

Setting a control's ``value`` from code runs exactly what a browser change runs in the kernel:
the observer recomputes the data, updates the figure's artists, encodes the PNG and puts it
into the Image widget. This script times that, per explorer, over a sweep of values, and
separately the rendering step alone (background restore + changed artists + PNG encoding).
Not included: the websocket round trip and the browser's decoding of the PNG.

Usage::

    .venv/bin/python benchmarks/bench_widgets.py            # print the table
    .venv/bin/python benchmarks/bench_widgets.py --check    # exit 1 if a median > 100 ms

The figure depends on the machine and on its load, which is printed with the results.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import matplotlib

from attention_course import widgets

TARGET_MS = 100.0


def _time(action, n: int) -> list[float]:
    times = []
    for i in range(n):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _row(name: str, times: list[float]) -> tuple[str, float]:
    times = sorted(times)
    p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
    median = statistics.median(times)
    print(f"{name:<44} {median:8.1f} {p90:8.1f} {times[-1]:8.1f} {len(times):6d}")
    return name, median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="sweeps per control")
    parser.add_argument("--check", action="store_true", help=f"fail if a median > {TARGET_MS}")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"python {platform.python_version()}, matplotlib {matplotlib.__version__}, "
        f"{os.cpu_count()} cores, load average {load:.2f}"
    )
    print(f"{'slider change -> redrawn figure (ms)':<44} {'median':>8} {'p90':>8} {'max':>8} "
          f"{'n':>6}")  # fmt: skip

    d_ks = [1, 4, 16, 64, 256, 1024, 512, 128, 32, 8, 2]
    temperatures = [0.1, 0.3, 1.0, 3.0, 10.0, 2.0, 0.5]
    created = {}
    start = time.perf_counter()
    saturation = widgets.saturation_explorer(seed=0)
    created["saturation"] = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    variance = widgets.variance_explorer(seed=0)
    created["variance"] = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    attention = widgets.attention_explorer()
    created["attention"] = (time.perf_counter() - start) * 1000

    def set_value(control, values):
        return lambda i: setattr(control, "value", values[i % len(values)])

    n = args.repeats * len(d_ks)
    medians = [
        _row("saturation_explorer: d_k slider", _time(set_value(saturation.d_k_slider, d_ks), n)),
        _row("variance_explorer: d_k slider", _time(set_value(variance.d_k_slider, d_ks), n)),
        _row(
            "attention_explorer: temperature slider",
            _time(set_value(attention.temperature_slider, temperatures), n),
        ),
        _row(
            "attention_explorer: query picker",
            _time(set_value(attention.query_picker, [1, 2, 3, 4, 0]), n),
        ),
    ]
    print(f"{'of which rendering only (blit + PNG)':<44}")
    for name, explorer in (
        ("  saturation_explorer.render()", saturation),
        ("  variance_explorer.render()", variance),
        ("  attention_explorer.render()", attention),
    ):
        _row(name, _time(lambda i, e=explorer: e.render(), n))
    print(f"{'first draw (creating the explorer, ms)':<44}")
    for name, ms in created.items():
        print(f"  {name + '_explorer(...)':<42} {ms:8.1f}")
    worst = max(medians, key=lambda row: row[1])
    verdict = "within" if worst[1] <= TARGET_MS else "OVER"
    print(
        f"slowest median: {worst[1]:.1f} ms ({worst[0]}): {verdict} the {TARGET_MS:.0f} ms target"
    )
    for explorer in (saturation, variance, attention):
        explorer.close()
    return 1 if args.check and worst[1] > TARGET_MS else 0


if __name__ == "__main__":
    sys.exit(main())
