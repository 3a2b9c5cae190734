"""Typed results of grading: a status, a graded cell, a notebook, a learner x assignment job.

A job runs in a worker process and hands its :class:`JobResult` back to the parent as JSON:
:meth:`JobResult.to_json` and :meth:`JobResult.from_json` are the only two places that know
the JSON shape. ``grades.csv`` (``report.row_from_result``) is computed from these records.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field


class Status(enum.Enum):
    """What happened to a learner x assignment, most severe first.

    The values are the words ``grades.csv`` shows in its ``status`` column. A row shows the most
    severe status of everything that happened (:meth:`worst`).
    """

    GRADER_ERROR = "grader error"  # nbgrader failed for a reason of its own: see the notes
    TIME_LIMIT = "time limit"  # the whole notebook exceeded the wall-clock limit: not graded
    UNREADABLE = "unreadable notebook"  # corrupt JSON, empty, not a notebook, a broken zip
    MISSING = "missing"  # no notebook handed in for this assignment
    KERNEL_DIED = "kernel died"  # graded up to the crash (os._exit, segfault, memory limit)
    TIMEOUT = "timeout"  # a cell hit the per-cell time limit; graded, that cell scored 0
    REPAIRED = "repaired"  # graded after automatic repairs listed in the notes
    OK = "ok"

    @property
    def severity(self) -> int:
        """0 for the most severe status; larger is milder."""
        return list(Status).index(self)

    @classmethod
    def worst(cls, statuses) -> Status:
        """The most severe of ``statuses`` (:attr:`OK` if there are none)."""
        return min(set(statuses) or {cls.OK}, key=lambda s: s.severity)

    @property
    def needs_a_look(self) -> bool:
        """Rows an instructor should read (not plain ok, not simply missing work)."""
        return self not in (Status.OK, Status.MISSING)


class CellKind(enum.Enum):
    """A graded cell: an autograded test, or a written answer graded by a person."""

    TEST = "test"
    WRITTEN = "written"


class NotebookState(enum.Enum):
    MISSING = "missing"  # not handed in, or not graded
    UNREADABLE = "unreadable"
    SUBMITTED = "submitted"  # handed in and prepared; not graded (yet)
    GRADED = "graded"


@dataclass
class CellResult:
    """One graded cell of one learner's notebook."""

    grade_id: str
    kind: CellKind
    points: float
    score: float | None = 0.0  # None: nbgrader has no score (the grader failed)
    needs_manual: bool = False  # a written answer waiting for a person
    failed: bool = False  # a test cell that did not get full points
    message: str | None = None  # the first error the cell raised (hidden lines scrubbed)

    @classmethod
    def ungraded(cls, grade_id: str, kind: CellKind, points: float) -> CellResult:
        """A cell of a notebook that was not graded: 0 points, a failed test."""
        return cls(grade_id, kind, float(points), 0.0, False, kind is CellKind.TEST, None)


@dataclass
class NotebookResult:
    """One notebook of a learner x assignment: its cells and where its files went."""

    state: NotebookState = NotebookState.MISSING
    cells: list[CellResult] | None = None  # None until graded or zeroed
    autograded: str | None = None  # nbgrader's autograded notebook (in the job's folder)
    feedback: str | None = None  # nbgrader's feedback HTML (in the job's folder)
    submitted: str | None = None  # the notebook nbgrader graded (after repairs)
    feedback_out: str | None = None  # the feedback HTML in the batch's output folder


@dataclass
class JobResult:
    """Everything known about one learner x one assignment after grading."""

    student: str
    assignment: str
    notebooks: dict[str, NotebookResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # shown in grades.csv, in order, deduplicated
    flags: list[Status] = field(default_factory=list)  # everything that happened
    timing: dict[str, float] = field(default_factory=dict)  # seconds per nbgrader step
    seconds: float = 0.0

    @property
    def status(self) -> Status:
        return Status.worst(self.flags)

    def cells(self, kind: CellKind | None = None) -> list[CellResult]:
        return [
            c
            for nb in self.notebooks.values()
            for c in (nb.cells or [])
            if kind is None or c.kind is kind
        ]

    # -- the JSON hand-off between processes -------------------------------------------------

    def to_json(self) -> str:
        data = asdict(self)
        data["flags"] = [s.value for s in self.flags]
        for entry in data["notebooks"].values():
            entry["state"] = entry["state"].value
            for cell in entry["cells"] or []:
                cell["kind"] = cell["kind"].value
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> JobResult:
        data = json.loads(text)
        notebooks = {}
        for name, entry in data.pop("notebooks").items():
            cells = entry.pop("cells")
            notebooks[name] = NotebookResult(
                state=NotebookState(entry.pop("state")),
                cells=None
                if cells is None
                else [CellResult(**dict(c, kind=CellKind(c["kind"]))) for c in cells],
                **entry,
            )
        flags = [Status(s) for s in data.pop("flags")]
        return cls(notebooks=notebooks, flags=flags, **data)
