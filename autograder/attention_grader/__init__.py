"""The course's grading engine on top of nbgrader: release, batch grading, learner self-check.

Commands (console scripts of ``pip install -e .``; the ``make`` targets call them):

- ``attention-release`` (``make release``): course/ from solutions/ (:mod:`.releasing`);
- ``attention-grade`` (``make grade``): a class's submissions to ``grades.csv``, feedback and
  a gradebook (:mod:`.grade`, :mod:`.batch`, :mod:`.engine`, :mod:`.pool`);
- ``attention-check`` (``make check``): a learner grades their own notebooks (:mod:`.selfcheck`).
- ``attention-lms-export``: ``grades.csv`` and an LMS roster to Canvas's or Moodle's grade
  import CSV (:mod:`.lms`);
- ``attention-gradebook-push``: a batch's gradebook into a shared PostgreSQL database, which
  ``attention-grade --db-url`` also does (:mod:`.gradebook_db`).
- ``attention-hub-check``: are these hub users in the course's nbgrader group (:mod:`.hubcheck`).

``autograder/nbgrader_config.py`` is the course's nbgrader configuration; it names this
package's preprocessors (:mod:`.preprocessors`). The names below are the public API that tests
and benchmarks use. Importing the package is cheap (the grading kernel imports
:mod:`.kernel`): the names that need nbgrader are loaded when first used.
"""

from __future__ import annotations

import importlib

from .paths import AUTOGRADER, CONFIG_FILE, COURSE, ROOT, SOLUTIONS, InstructorError
from .report import COLUMNS, read_csv
from .results import CellKind, CellResult, JobResult, NotebookResult, NotebookState, Status

#: Public names loaded on first use, and the module each comes from.
_LAZY = {
    "release": "releasing",
    "ReleaseError": "releasing",
    "assignment_names": "releasing",
    "Settings": "engine",
    "Template": "engine",
    "Job": "engine",
    "grade_job": "engine",
    "nbgrader_config": "engine",
    "build_template": "batch",
}

__all__ = [
    "AUTOGRADER",
    "COLUMNS",
    "CONFIG_FILE",
    "COURSE",
    "ROOT",
    "SOLUTIONS",
    "CellKind",
    "CellResult",
    "InstructorError",
    "JobResult",
    "NotebookResult",
    "NotebookState",
    "Status",
    "read_csv",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
