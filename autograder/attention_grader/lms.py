"""Grades into the LMS: a batch's ``grades.csv`` and an LMS roster to a file the LMS imports.

Usage::

    attention-lms-export GRADES_CSV --roster ROSTER --lms {canvas,moodle} --match KEY
                         --out FILE [--gradebook URL] [--no-work {empty,zero}]
                         [--skip-unmatched]

Rosters are the LMS's own exports:

- **Canvas**: the gradebook export (Grades → Export → CSV): columns ``Student, ID,
  SIS User ID, SIS Login ID, Section``, then one column per assignment, and a second row
  whose ``Student`` cell reads ``Points Possible``. The output is Canvas's gradebook import
  format: the same five columns, one column per assignment (an assignment's existing
  ``<name> (<canvas id>)`` header is reused when the roster has one; otherwise Canvas creates
  the assignment), and the ``Points Possible`` row.
- **Moodle**: the grade export (Grade administration → Export → Plain text file), or any CSV
  with ``First name, Last name`` and the column named by ``--match``. The output has
  ``First name, Last name``, the key column, and one column per assignment; on Moodle's
  "Import → CSV file" page, "Identify user by" maps that key column (email address, ID
  number or username) and each assignment column maps to its grade item.

``--match`` names how the ``student_id`` of ``grades.csv`` (the learner's folder or hub login
name) appears in the roster: ``login`` (Canvas ``SIS Login ID``, Moodle ``Username``),
``sis`` (Canvas ``SIS User ID``, Moodle ``ID number``), ``email`` (Moodle ``Email address``),
``id`` (Canvas ``ID``), or any roster column's exact header.

Points: autograded only (``code_score`` of ``grades.csv``, out of ``code_max``), or, with
``--gradebook URL`` (the batch's ``grading-output/nbgrader/gradebook.db`` or a PostgreSQL
URL), autograded plus the manual grades of the written answers from nbgrader's gradebook (out
of ``code_max + written_max``). Roster learners without work (no row, or status
``missing``) get an empty cell or 0 (``--no-work``). A learner of ``grades.csv`` who matches
no roster row stops the export (exit 2) unless ``--skip-unmatched``: then each is listed on
stderr, never dropped silently.

Exit status: 0 when the file was written; 2 on bad input (one line naming the row or column
to fix; no file is written).
"""

from __future__ import annotations

import argparse
import csv
import enum
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .paths import InstructorError, run_command


class Lms(enum.Enum):
    CANVAS = "canvas"
    MOODLE = "moodle"


class NoWork(enum.Enum):
    """The cell of a roster learner who handed in nothing for an assignment."""

    EMPTY = "empty"
    ZERO = "zero"


#: ``--match`` words and the roster column each names, per LMS.
KEY_COLUMNS = {
    Lms.CANVAS: {"login": "SIS Login ID", "sis": "SIS User ID", "id": "ID"},
    Lms.MOODLE: {
        "login": "Username",
        "username": "Username",
        "sis": "ID number",
        "idnumber": "ID number",
        "email": "Email address",
    },
}
#: Columns of the roster copied into the output, in this order (those the roster has).
IDENTITY_COLUMNS = {
    Lms.CANVAS: ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"],
    Lms.MOODLE: ["First name", "Last name"],
}
#: Columns a roster of each LMS must have besides the key.
REQUIRED_COLUMNS = {
    Lms.CANVAS: ["Student", "ID"],
    Lms.MOODLE: ["First name", "Last name"],
}
POINTS_POSSIBLE = "Points Possible"
#: The "Student View" learner Canvas adds to every course (no SIS ids): not a learner.
CANVAS_TEST_STUDENT = ("Student, Test", "Test Student")


@dataclass(frozen=True)
class RosterEntry:
    """One learner of the LMS roster.

    ``key`` is the value of the matching column; ``fields`` the roster row as exported;
    ``line`` its line number in the roster file (for error messages).
    """

    key: str
    fields: dict[str, str]
    line: int


@dataclass
class Roster:
    """An LMS roster: its learners by key, and the assignment headers it already has."""

    lms: Lms
    key_column: str
    entries: list[RosterEntry]
    columns: list[str] = field(default_factory=list)

    def by_key(self) -> dict[str, RosterEntry]:
        return {entry.key: entry for entry in self.entries}


@dataclass(frozen=True)
class Grade:
    """One learner x assignment of a batch, as the LMS will see it.

    ``points`` is None when there is no score to report (no work, or the grader failed);
    ``to_grade`` is True when the gradebook still has written answers of it for a person.
    """

    student: str
    assignment: str
    points: float | None
    possible: float
    handed_in: bool
    status: str
    to_grade: bool = False


def key_column(lms: Lms, match: str) -> str:
    """The roster column that ``--match`` names (a known word, or a column's own header)."""
    return KEY_COLUMNS[lms].get(match, match)


def read_roster(path: Path, lms: Lms, match: str) -> Roster:
    """The roster exported from the LMS, checked: every learner has one unique key.

    Raises :class:`InstructorError` naming the file, line and column to fix.
    """
    column = key_column(lms, match)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise InstructorError(f"no such roster file: {path}") from None
    for needed in [*REQUIRED_COLUMNS[lms], column]:
        if needed not in columns:
            words = ", ".join(sorted(KEY_COLUMNS[lms]))
            hint = f" (--match takes {words} or a column header)" if needed == column else ""
            raise InstructorError(
                f"{path}: no column {needed!r} in this {lms.value} roster{hint}; "
                f"its columns are: {', '.join(columns) or 'none'}"
            )
    entries: list[RosterEntry] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        first = (row.get(columns[0]) or "").strip()
        if lms is Lms.CANVAS and first in (POINTS_POSSIBLE, "Muted", *CANVAS_TEST_STUDENT):
            continue  # Canvas's rows about the assignments, and its test student
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        key = (row.get(column) or "").strip()
        if not key:
            raise InstructorError(
                f"{path} line {line}: empty {column!r} for {first or 'a learner'}; fill it in "
                "or match by another column (--match)"
            )
        if key in seen:
            raise InstructorError(
                f"{path} line {line}: {column} {key!r} is also on line {seen[key]}; "
                "each learner needs their own key"
            )
        seen[key] = line
        entries.append(RosterEntry(key, {k: (v or "") for k, v in row.items() if k}, line))
    return Roster(lms, column, entries, columns)


def read_grades(path: Path, gradebook: str | None = None) -> list[Grade]:
    """The batch's grades: ``grades.csv``, with the gradebook's manual grades if given."""
    from .report import COLUMNS, read_csv

    try:
        rows = read_csv(path)
    except FileNotFoundError:
        raise InstructorError(f"no such grades file: {path}") from None
    if rows and set(COLUMNS) - set(rows[0]):
        missing = ", ".join(sorted(set(COLUMNS) - set(rows[0])))
        raise InstructorError(f"{path} is not a grades.csv of attention-grade (no {missing})")
    totals = _gradebook_scores(gradebook) if gradebook else None
    grades = []
    for line, row in enumerate(rows, start=2):
        student, assignment = row["student_id"], row["assignment"]
        try:
            possible = float(row["code_max"])
            written_max = float(row["written_max"] or 0)
            code = float(row["code_score"]) if row["code_score"] else None
        except ValueError:
            raise InstructorError(f"{path} line {line}: a score is not a number") from None
        handed_in = row["status"] not in ("missing",)
        points, to_grade = code, False
        if totals is not None:
            possible += written_max
            if handed_in and code is not None:
                if (student, assignment) not in totals:
                    raise InstructorError(
                        f"{path} line {line}: {student} / {assignment} is not in the gradebook "
                        f"{_safe_url(gradebook)}; give the gradebook of this batch"
                    )
                points, to_grade = totals[(student, assignment)]
        grades.append(
            Grade(student, assignment, points, possible, handed_in, row["status"], to_grade)
        )
    return grades


def _safe_url(url: str) -> str:
    """A database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL: a path, shown as given
        return url


def _gradebook_scores(url: str) -> dict[tuple[str, str], tuple[float, bool]]:
    """``{(student, assignment): (autograded + manual points, written answers left to grade)}``
    from an nbgrader gradebook (a file, or a database URL: see :mod:`.gradebook_db`)."""
    if "://" not in url:
        path = Path(url)
        if not path.is_file():
            raise InstructorError(f"no such gradebook: {url}")
        url = f"sqlite:///{path.resolve()}"
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning, SQLAlchemyError

    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's harmless "not in session"

    try:
        with Gradebook(url) as gb:
            return {
                (sub.student_id, sub.assignment.name): (
                    float(sub.score),
                    bool(sub.needs_manual_grade),
                )
                for assignment in gb.assignments
                for sub in assignment.submissions
            }
    except SQLAlchemyError as exc:
        from sqlalchemy.engine import make_url

        from .gradebook_db import explain

        raise InstructorError(f"cannot read the gradebook: {explain(exc, make_url(url))}") from None


@dataclass
class Export:
    """What an export writes, and what it could not place."""

    header: list[str]
    rows: list[list[str]]
    unmatched: list[str]  # grades.csv learners on no roster row
    ungraded: list[str]  # "student / assignment" whose grader failed: left empty


def build(roster: Roster, grades: list[Grade], no_work: NoWork) -> Export:
    """The LMS file's header and rows for ``roster`` from ``grades``."""
    assignments = sorted({g.assignment for g in grades})
    possible = {g.assignment: g.possible for g in grades}
    by_key = roster.by_key()
    mine: dict[tuple[str, str], Grade] = {(g.student, g.assignment): g for g in grades}
    unmatched = sorted({g.student for g in grades} - set(by_key))
    ungraded = sorted(
        f"{g.student} / {g.assignment}" for g in grades if g.handed_in and g.points is None
    )
    identity = [c for c in IDENTITY_COLUMNS[roster.lms] if c in roster.columns]
    if roster.key_column not in identity:
        identity.append(roster.key_column)
    headers = [_assignment_header(roster, a) for a in assignments]
    rows = []
    if roster.lms is Lms.CANVAS:
        rows.append(
            [POINTS_POSSIBLE if c == "Student" else "" for c in identity]
            + [_num(possible[a]) for a in assignments]
        )
    for entry in roster.entries:
        cells = []
        for assignment in assignments:
            grade = mine.get((entry.key, assignment))
            if grade is None or not grade.handed_in:
                cells.append("0" if no_work is NoWork.ZERO else "")
            else:
                cells.append("" if grade.points is None else _num(grade.points))
        rows.append([entry.fields.get(c, "") for c in identity] + cells)
    return Export([*identity, *headers], rows, unmatched, ungraded)


def _assignment_header(roster: Roster, assignment: str) -> str:
    """The roster's own column for ``assignment`` (Canvas: ``name (id)``), else its name."""
    for column in roster.columns:
        if column == assignment or column.startswith(f"{assignment} ("):
            return column
    return assignment


def _num(value: float) -> str:
    return f"{value:g}"


def write_csv(export: Export, path: Path) -> None:
    """Write all of ``export`` to ``path`` at once (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(export.header)
            writer.writerows(export.rows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="attention-lms-export",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("grades", type=Path, help="grades.csv of attention-grade")
    parser.add_argument("--roster", type=Path, required=True, help="roster exported from the LMS")
    parser.add_argument("--lms", choices=[x.value for x in Lms], required=True)
    parser.add_argument(
        "--match",
        required=True,
        help="roster key equal to grades.csv's student_id: login, sis, email, id, "
        "username, idnumber, or a roster column's header",
    )
    parser.add_argument("--out", type=Path, required=True, help="CSV file to upload to the LMS")
    parser.add_argument(
        "--gradebook",
        default=None,
        help="nbgrader gradebook (file or database URL): add the manual grades of the "
        "written answers (default: autograded points only)",
    )
    parser.add_argument(
        "--no-work",
        choices=[x.value for x in NoWork],
        default=NoWork.EMPTY.value,
        help="cell of a roster learner with no work for an assignment (default: empty)",
    )
    parser.add_argument(
        "--skip-unmatched",
        action="store_true",
        help="write the file although some learners of grades.csv are on no roster row "
        "(they are listed on stderr)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_command("attention-lms-export", export, parse_args(argv))


def export(args: argparse.Namespace) -> int:
    lms = Lms(args.lms)
    roster = read_roster(args.roster, lms, args.match)
    grades = read_grades(args.grades, args.gradebook)
    result = build(roster, grades, NoWork(args.no_work))
    if result.unmatched and not args.skip_unmatched:
        raise InstructorError(
            f"{args.grades}: student_id {', '.join(result.unmatched)} matches no "
            f"{roster.key_column!r} of {args.roster}; add them to the roster, fix --match, "
            "or pass --skip-unmatched"
        )
    write_csv(result, args.out)
    prog = "attention-lms-export"
    for student in result.unmatched:
        print(f"{prog}: not exported: {student} is on no roster row", file=sys.stderr)
    for what in result.ungraded:
        print(f"{prog}: left empty: {what} could not be graded (see grades.csv)", file=sys.stderr)
    for g in grades:
        if g.to_grade:
            print(
                f"{prog}: {g.student} / {g.assignment} has written answers not graded yet "
                "(Formgrader): exported without them",
                file=sys.stderr,
            )
    if args.gradebook is None and any(g.handed_in for g in grades):
        print(f"{prog}: points are autograded only (--gradebook adds the manual grades)")
    learners = len(result.rows) - (lms is Lms.CANVAS)
    assignments = len({g.assignment for g in grades})
    print(f"{prog}: wrote {args.out}: {learners} learner(s) x {assignments} assignment(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
