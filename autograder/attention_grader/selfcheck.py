"""Self-check: grade your own notebooks with the course's autograder, as an instructor would.

Usage::

    make check                                   # your notebooks in course/
    attention-check [NOTEBOOKS] [--out DIR] [--assignment NAME]

NOTEBOOKS (default ``course/``) holds ``<assignment>/<notebook>.ipynb``. Each notebook is copied
into a private nbgrader course folder and graded there — exactly as ``make grade`` grades a
class (same nbgrader configuration, same hidden tests from ``solutions/``, same repairs and time
limits) — so **your notebooks are never modified** (they are only read). Then it prints a table
(points / max per notebook) and every failing check with its message, and writes feedback HTML
(hidden tests removed) to ``grading-output/self-check/feedback/``.

Exit status: 0 (also when checks fail: failing is how you learn), 2 if nothing could be
graded; ``--strict`` exits 1 unless every code point is earned (for CI, on ``solutions/``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .paths import (
    COURSE,
    ROOT,
    SOLUTIONS,
    InstructorError,
    default_workers,
    discover_assignments,
    run_command,
)
from .results import CellKind, JobResult

if TYPE_CHECKING:
    from .engine import Template

STUDENT = "you"
DEFAULT_OUT = ROOT / "grading-output" / "self-check"


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="attention-check", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "notebooks",
        nargs="?",
        type=Path,
        default=COURSE,
        help="folder of <assignment>/<notebook>.ipynb (default: course/)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="where feedback goes (default: grading-output/self-check/)",
    )
    parser.add_argument(
        "--assignment",
        action="append",
        default=None,
        metavar="NAME",
        help="check only this assignment (repeatable)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=SOLUTIONS,
        help="the course's source notebooks (default: solutions/)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds a single cell may run (default: the course's)",
    )
    parser.add_argument("--jobs", "-j", type=int, default=default_workers())
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 unless every notebook gets all its code points",
    )
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    return run_command("attention-check", check, parse_args(argv))


def check(args: argparse.Namespace, template: Template | None = None) -> int:
    """Grade the notebooks of ``args`` and print the report; return the exit status.

    ``template`` is a release of ``args.source`` made earlier (``engine.build_template``) to
    grade against; by default one is made for this check.
    """
    notebooks, source = args.notebooks.resolve(), args.source.resolve()
    if not notebooks.is_dir():
        raise InstructorError(f"no such folder: {args.notebooks}")
    assignments = discover_assignments(source)
    if not assignments:
        raise InstructorError(
            f"{source} holds no <assignment>/<notebook>.ipynb: the self-check "
            "needs the course's source notebooks (its hidden tests)"
        )
    if args.assignment:
        assignments = {a: n for a, n in assignments.items() if a in args.assignment}
    from . import batch, pool  # nbgrader: seconds to import, after the quick checks above
    from .engine import Settings
    from .submissions import Learner, NotebookRef

    learner = Learner(student=STUDENT, origin="folder")
    for assignment, names in assignments.items():
        for name in names:
            path = notebooks / assignment / f"{name}.ipynb"
            if path.is_file():
                learner.refs[(assignment, name)] = NotebookRef(
                    kind="file",
                    path=str(path),
                    member=None,
                    label=str(path.relative_to(notebooks.parent)),
                )
    assignments = {
        a: n for a, n in assignments.items() if any((a, name) in learner.refs for name in n)
    }
    if not assignments:
        raise InstructorError(f"none of the course's notebooks is in {notebooks}")
    out = args.out.resolve()
    batch.prepare_out(out)
    work = Path(tempfile.mkdtemp(prefix="attention-selfcheck-"))
    try:
        settings = Settings(
            timeout=args.timeout, wall_timeout=max(900.0, 8.0 * (args.timeout or 0))
        )
        print(f"Grading {len(assignments)} notebook(s) of {args.notebooks} ...", file=sys.stderr)
        if template is None:
            pool.start()  # the workers' forkserver loads nbgrader while nbgrader releases
            template = batch.build_template(source, assignments, work)
        else:  # only the assignments handed in
            template = replace(template, assignments={a: assignments[a] for a in assignments})
        results, rows = batch.run(
            learners=[learner],
            template=template,
            work=work,
            out=out,
            source=source,
            settings=settings,
            workers=args.jobs,
            label="checking",
            progress=not args.no_progress,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(report(results, rows, args.notebooks, out))
    full = all(row["code_score"] == row["code_max"] for row in rows)
    return 1 if args.strict and not full else 0


def report(results: list[JobResult], rows: list[dict], notebooks: Path, out: Path) -> str:
    """The table of points per notebook, the notes, and every failing check with its message."""
    results = sorted(results, key=lambda r: r.assignment)
    notes_of = {row["assignment"]: row["notes"] for row in rows}
    table, failing = [], []
    total, top = 0.0, 0.0
    for result in results:
        for name, entry in result.notebooks.items():
            cells = entry.cells or []
            tests = [c for c in cells if c.kind is CellKind.TEST]
            written = [c for c in cells if c.kind is CellKind.WRITTEN]
            got = sum(c.score or 0.0 for c in tests)
            most = sum(c.points for c in tests)
            total, top = total + got, top + most
            hand = sum(c.points for c in written)
            table.append(
                [
                    f"{result.assignment}/{name}.ipynb",
                    f"{got:g} / {most:g}",
                    f"{hand:g} by hand" if hand else "-",
                    result.status.value,
                ]
            )
            failing += [(result.assignment, c) for c in tests if c.failed]
    table.append(["total", f"{total:g} / {top:g}", "", ""])
    head = ["notebook", "code points", "written", "status"]
    widths = [max(len(x) for x in col) for col in zip(head, *table, strict=True)]

    def line(cols):
        return "  ".join(
            [
                cols[0].ljust(widths[0]),
                cols[1].rjust(widths[1]),
                cols[2].rjust(widths[2]),
                cols[3].ljust(widths[3]),
            ]
        ).rstrip()

    text = [
        f"Self-check of {notebooks} (graded by the course's autograder; your notebooks "
        "were only read, not changed)",
        "",
        line(head),
        line(["-" * w for w in widths]),
    ]
    text += [line(r) for r in table[:-1]] + [line(["-" * w for w in widths]), line(table[-1])]
    notes = [(r.assignment, notes_of[r.assignment]) for r in results if notes_of[r.assignment]]
    if notes:
        text += ["", "Notes:"] + [f"  {a}: {n}" for a, n in notes]
    if failing:
        text += ["", f"Failing checks ({len(failing)}):"]
        for assignment, cell in failing:
            text.append(
                f"  {assignment} · {cell.grade_id} ({cell.points:g} point"
                f"{'s' if cell.points != 1 else ''})"
            )
            message = cell.message or "this test did not run (see the notes above)"
            lines = message.splitlines()
            for part in lines[:8]:
                text.append(textwrap.indent(textwrap.fill(part, 92) or " ", "      "))
            if len(lines) > 8:
                text.append("      ...")
    else:
        text += ["", "Every check passes."]
    written = sum(len(r.cells(CellKind.WRITTEN)) for r in results)
    if written:
        text += ["", f"{written} written answer(s) are graded by a person, not by this check."]
    text += ["", f"Feedback (HTML, hidden tests removed): {out / 'feedback' / STUDENT}/"]
    return "\n".join(text)


if __name__ == "__main__":
    sys.exit(main())
