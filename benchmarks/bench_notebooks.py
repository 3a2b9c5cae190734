"""How much does each solution notebook cost beyond starting a kernel and importing?

For every ``solutions/*/*.ipynb`` (discovered, never listed), this executes with nbclient, in
the same run:

- the **full** notebook, every cell, as ``make test`` does;
- an **empty** notebook holding only that notebook's setup cell (imports and seed: the cell
  with ``grade_id`` ``setup``, else its first code cell).

Each timing is the wall time of a whole execution: kernel start, cells, kernel shutdown. The
two alternate (empty, full, full, empty, ...) for ``--repeats`` rounds, so a burst of load from
other programs hits both alike, and the medians are compared. Target: full ≤ 1.5 × empty,
i.e. a notebook's own content costs at most half of what a bare kernel with the course's
imports costs. The kernel's CPU time is printed beside it: on a busy machine it is the steadier
of the two figures.

Matplotlib uses Agg, as in the tests and nbval (figures are built, and drawn only
where a cell saves them or an explorer renders itself); the target applies to this mode: it
budgets what a notebook computes. ``--inline`` uses the Jupyter inline backend instead, which
also renders every ``plt.show()`` to PNG as JupyterLab does for learners; that adds
matplotlib's drawing time, reported beside it (README, Performance) but not held to the
target.

Usage::

    python benchmarks/bench_notebooks.py                       # all notebooks, 3 rounds
    python benchmarks/bench_notebooks.py --repeats 5 solutions/03_softmax/03_softmax.ipynb
    python benchmarks/bench_notebooks.py --inline --strict     # exit 1 above the target
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5


def setup_only(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` with only its setup cell (imports and seed)."""
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    setup = next(
        (c for c in code if c.metadata.get("nbgrader", {}).get("grade_id") == "setup"), code[0]
    )
    empty = copy.deepcopy(nb)
    empty.cells = [copy.deepcopy(setup)]
    return empty


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: float) -> tuple[float, float]:
    """Execute ``nb`` in a fresh kernel of this interpreter, start to shutdown.

    Returns (wall seconds, CPU seconds of the kernel process). The kernel is a child of this
    process and is reaped at shutdown, so its CPU time shows in RUSAGE_CHILDREN: unlike wall
    time, it hardly moves when other programs load the machine.
    """
    client = NotebookClient(
        copy.deepcopy(nb),
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
    )
    cpu, start = _children_cpu(), time.perf_counter()
    # The kernel's own stderr only says "running over TCP without encryption"; cell errors
    # still arrive as messages and raise CellExecutionError.
    client.execute(stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, _children_cpu() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: solutions/*/*.ipynb")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per notebook (3)")
    parser.add_argument("--target", type=float, default=TARGET, help="max full/empty ratio")
    parser.add_argument("--timeout", type=float, default=600, help="per-cell timeout, s")
    parser.add_argument("--inline", action="store_true", help="render figures as Jupyter does")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a ratio > target")
    args = parser.parse_args(argv)

    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline" if args.inline else "Agg"
    # The kernel is "python3": jupyter_client starts it with this interpreter (the venv's).
    paths = args.notebooks or sorted((ROOT / "solutions").glob("*/*.ipynb"))
    if not paths:
        print("no notebooks found in solutions/*/*.ipynb", file=sys.stderr)
        return 1
    print(
        f"{len(paths)} notebook(s), {args.repeats} interleaved rounds each, medians; "
        f"MPLBACKEND={os.environ['MPLBACKEND']}, {os.cpu_count()} CPU(s), load average "
        f"{os.getloadavg()[0]:.1f}. Wall = kernel start to shutdown; CPU = the kernel's.\n"
    )
    header = (
        f"{'notebook':<40} {'empty wall':>10} {'full wall':>10} {'ratio':>6}   "
        f"{'empty CPU':>9} {'full CPU':>9} {'ratio':>6}   wall ≤ {args.target}×?"
    )
    print(header)
    print("-" * len(header))

    over = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        runs = {"empty": [], "full": []}
        for round_ in range(args.repeats):
            order = ("empty", "full") if round_ % 2 == 0 else ("full", "empty")
            for kind in order:
                runs[kind].append(
                    execute(nb if kind == "full" else setup_only(nb), path.parent, args.timeout)
                )
        (e_wall, e_cpu), (f_wall, f_cpu) = (
            (statistics.median(r[0] for r in runs[k]), statistics.median(r[1] for r in runs[k]))
            for k in ("empty", "full")
        )
        ratio = f_wall / e_wall
        if ratio > args.target:
            over.append(path)
        print(
            f"{path.stem:<40} {e_wall:9.2f}s {f_wall:9.2f}s {ratio:6.2f}   "
            f"{e_cpu:8.2f}s {f_cpu:8.2f}s {f_cpu / e_cpu:6.2f}   "
            f"{'yes' if ratio <= args.target else 'NO'}"
        )

    print(f"\n{len(paths) - len(over)} of {len(paths)} within {args.target}× of the empty notebook")
    return 1 if (args.strict and over) else 0


if __name__ == "__main__":
    sys.exit(main())
