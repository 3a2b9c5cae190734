"""Where the course lives, and light helpers shared by the commands (no nbgrader import).

The package is installed in editable mode from ``autograder/attention_grader/`` of the
repository (``pip install -e .``): the repository's folders are found from this file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

AUTOGRADER = Path(__file__).resolve().parents[1]  # autograder/: nbgrader_config.py
ROOT = AUTOGRADER.parent
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
CONFIG_FILE = AUTOGRADER / "nbgrader_config.py"


class InstructorError(Exception):
    """Something the person running the grader must fix; the batch did not start."""


def run_command(prog: str, command, args) -> int:
    """``command(args)``'s exit status; an InstructorError or a missing module: one line, 2."""
    try:
        return command(args)
    except InstructorError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # the venv is incomplete
        print(
            f"{prog}: error: {exc}; run it through make (it installs what is needed)",
            file=sys.stderr,
        )
        return 2


def discover_assignments(source: Path) -> dict[str, list[str]]:
    """``{assignment: [notebook ids]}`` from ``<source>/<assignment>/<notebook>.ipynb``."""
    found: dict[str, list[str]] = {}
    for path in sorted(Path(source).glob("*/*.ipynb")):
        found.setdefault(path.parent.name, []).append(path.stem)
    return found


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def split_hidden(source: str) -> tuple[list[str], list[str]]:
    """A cell's source lines outside and inside its BEGIN/END HIDDEN TESTS blocks (no markers)."""
    visible: list[str] = []
    hidden: list[str] = []
    inside = False
    for line in source.splitlines():
        if "BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "END HIDDEN TESTS" in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return visible, hidden
