"""What a batch produces: rows of grades.csv, the summary table, the plot, the merged gradebook."""

from __future__ import annotations

import csv
import shutil
import statistics
from collections import Counter
from pathlib import Path

from .results import CellKind, JobResult, NotebookState, Status

COLUMNS = [
    "student_id",  # as in the submissions folder (made safe for nbgrader paths)
    "assignment",
    "status",  # ok, repaired, timeout, kernel died, missing, unreadable notebook, ...
    "code_score",  # autograded points (test cells); empty if the grader itself failed
    "code_max",
    "written_max",  # points of the written answers, graded by hand in Formgrader
    "written_to_grade",  # written answers handed in and waiting for a human grader
    "failed_tests",  # grade_ids of the test cells that did not get full points
    "notes",  # what the grader repaired, skipped or noticed, and why
    "feedback",  # feedback HTML, relative to the output folder
]


def row_from_result(result: JobResult, out: Path) -> dict:
    """The ``grades.csv`` row of one learner x assignment (columns: :data:`COLUMNS`)."""
    tests, written = result.cells(CellKind.TEST), result.cells(CellKind.WRITTEN)
    feedback = [
        str(Path(nb.feedback_out).relative_to(out))
        for nb in result.notebooks.values()
        if nb.feedback_out
    ]
    status = result.status
    return {
        "student_id": result.student,
        "assignment": result.assignment,
        "status": status.value,
        "code_score": ""
        if status is Status.GRADER_ERROR
        else _num(sum(c.score or 0.0 for c in tests)),
        "code_max": _num(sum(c.points for c in tests)),
        "written_max": _num(sum(c.points for c in written)),
        "written_to_grade": sum(1 for c in written if c.needs_manual),
        "failed_tests": ";".join(c.grade_id for c in tests if c.failed),
        "notes": "; ".join(dict.fromkeys(result.notes)),
        "feedback": ";".join(feedback),
    }


def _num(value: float) -> str:
    return f"{value:g}"


def write_csv(rows: list[dict], path: Path) -> None:
    rows = sorted(rows, key=lambda r: (r["student_id"], r["assignment"]))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _fraction(row: dict) -> float:
    try:
        return float(row["code_score"] or 0) / float(row["code_max"])
    except (ValueError, ZeroDivisionError):
        return 0.0


def summary(rows: list[dict], seconds: float, workers: int) -> str:
    assignments = sorted({r["assignment"] for r in rows})
    students = sorted({r["student_id"] for r in rows})
    shown = [s.value for s in reversed(Status) if any(r["status"] == s.value for r in rows)]
    head = ["assignment", "learners", *shown, "mean code %", "median %"]
    table = []
    for assignment in assignments:
        mine = [r for r in rows if r["assignment"] == assignment]
        counts = Counter(r["status"] for r in mine)
        fractions = [100 * _fraction(r) for r in mine]
        table.append(
            [
                assignment,
                str(len(mine)),
                *(str(counts.get(s, 0)) for s in shown),
                f"{statistics.fmean(fractions):.1f}" if fractions else "-",
                f"{statistics.median(fractions):.1f}" if fractions else "-",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *table, strict=True)]
    lines = [
        f"Graded {len(students)} learner(s) x {len(assignments)} assignment(s) "
        f"({len(rows)} rows) in {seconds:.0f} s with {workers} worker(s).",
        "",
    ]
    lines.append(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        )
    )
    for line in table:
        lines.append(
            "  ".join(
                x.ljust(w) if i == 0 else x.rjust(w)
                for i, (x, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    odd = [r for r in rows if Status(r["status"]).needs_a_look]
    if odd:
        lines += ["", f"Rows to look at ({len(odd)}; all details in grades.csv):"]
        for r in sorted(odd, key=lambda r: (Status(r["status"]).severity, r["student_id"]))[:60]:
            note = r["notes"] if len(r["notes"]) <= 150 else r["notes"][:147] + "..."
            lines.append(
                f"  {r['student_id']} / {r['assignment']}: {r['status']}"
                + (f" — {note}" if note else "")
            )
        if len(odd) > 60:
            lines.append(f"  ... and {len(odd) - 60} more")
    missing: dict[str, list[str]] = {}
    for r in rows:
        if r["status"] == "missing":
            missing.setdefault(r["student_id"], []).append(r["assignment"])
    if missing:
        lines += ["", f"Missing work ({sum(map(len, missing.values()))} rows):"]
        shown_missing = sorted(missing.items())
        for student, items in shown_missing[:60]:
            what = "everything" if len(items) == len(assignments) else ", ".join(items)
            lines.append(f"  {student}: {what}")
        if len(shown_missing) > 60:
            lines.append(f"  ... and {len(shown_missing) - 60} more learners")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Grade distribution: learners' total code score, and each assignment's spread."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    students = sorted({r["student_id"] for r in rows})
    assignments = sorted({r["assignment"] for r in rows})
    totals = []
    for student in students:
        mine = [r for r in rows if r["student_id"] == student]
        top = sum(float(r["code_max"] or 0) for r in mine)
        got = sum(float(r["code_score"] or 0) for r in mine)
        totals.append(100 * got / top if top else 0.0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    left.hist(totals, bins=[i * 5 for i in range(21)], color="#0072B2", edgecolor="white")
    left.set_xlabel("total autograded score (% of code points, all assignments)")
    left.set_ylabel("learners")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))  # whole learners, never 0.25
    left.set_title(f"{len(students)} learners")
    data = [[100 * _fraction(r) for r in rows if r["assignment"] == a] for a in assignments]
    right.boxplot(data, **_horizontal_boxplot(assignments))
    right.invert_yaxis()
    right.set_xlabel("autograded score (% of the assignment's code points)")
    right.set_title("per assignment (missing work counts 0)")
    fig.suptitle("Grade distribution (written answers not included: graded by hand)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _horizontal_boxplot(labels: list[str]) -> dict:
    """``boxplot`` options for horizontal boxes with labels, in this matplotlib's words.

    ``tick_labels`` replaced ``labels`` in matplotlib 3.9, ``orientation`` replaced ``vert``
    in 3.10 (the old names warn from 3.11); the course supports matplotlib >= 3.8.
    """
    import inspect

    import matplotlib.axes

    params = inspect.signature(matplotlib.axes.Axes.boxplot).parameters
    options = {"tick_labels" if "tick_labels" in params else "labels": labels}
    if "orientation" in params:
        options["orientation"] = "horizontal"
    else:
        options["vert"] = False
    return options


class MergedGradebook:
    """One nbgrader gradebook for the whole batch, written by the parent process only.

    Starts as a copy of the template's gradebook (assignments, notebooks and cells) and gets
    each learner's scores as their job finishes. Together with ``autograded/`` next to it, it
    is a course directory Formgrader can open for manual grading of the written answers.
    """

    def __init__(self, template_db: Path, course_dir: Path):
        import warnings

        from nbgrader.api import Gradebook
        from sqlalchemy.exc import SAWarning

        # nbgrader's own "... not in session" SAWarning is harmless: it is silenced here.
        warnings.filterwarnings("ignore", category=SAWarning)
        course_dir.mkdir(parents=True, exist_ok=True)
        self.path = course_dir / "gradebook.db"
        shutil.copy(template_db, self.path)
        self.gb = Gradebook(f"sqlite:///{self.path}")

    def add(self, result: JobResult) -> None:
        graded = {nb: e for nb, e in result.notebooks.items() if e.state is NotebookState.GRADED}
        if not graded:
            return
        student, assignment = result.student, result.assignment
        self.gb.update_or_create_student(student)
        self.gb.update_or_create_submission(assignment, student)
        for notebook, entry in graded.items():
            for cell in entry.cells or []:
                grade = self.gb.find_grade(cell.grade_id, notebook, assignment, student)
                grade.auto_score = cell.score
                grade.needs_manual_grade = cell.needs_manual
        self.gb.db.commit()

    def close(self) -> None:
        self.gb.close()
