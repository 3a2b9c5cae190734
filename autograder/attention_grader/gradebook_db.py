"""A batch's gradebook into a shared database (PostgreSQL), through nbgrader's own Gradebook API.

``attention-grade ... --db-url postgresql://USER@HOST:PORT/DB`` grades as usual (the local
``grading-output/`` is complete on its own), then copies the merged gradebook of
``grading-output/nbgrader/gradebook.db`` into that database, so Formgrader and several graders
share it. A re-run updates the same rows: assignments, notebooks, cells, learners and
submissions are matched by name, and only the autograded scores change; a grader's manual
score, and the "graded" mark it carries, are never touched.

The password never goes into the URL or a file: libpq reads it from ``PGPASSWORD`` (or
``~/.pgpass``); ``--db-password-env NAME`` names another variable to read it from. The
database must exist (``createdb``); nbgrader creates its tables on first use.

``attention-gradebook-push OUT --db-url URL`` copies an existing output folder's gradebook
again, without grading (after the database was unreachable at the end of a batch).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from .paths import InstructorError, run_command

#: Seconds to wait for the database server before saying it is unreachable.
CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class Pushed:
    """What a push wrote: learners and submissions now in the database (all of the batch)."""

    students: int
    submissions: int


def parse_url(db_url: str, password_env: str | None = None):
    """The SQLAlchemy URL of ``--db-url``, checked; sets ``PGPASSWORD`` from ``password_env``.

    Raises :class:`InstructorError` for a password written into the URL (it would end up in
    logs and in ``nbgrader_config.py``) and for an unset ``password_env``.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(db_url)
    except ArgumentError:
        raise InstructorError(
            f"--db-url {db_url!r} is not a database URL "
            "(e.g. postgresql://grader@db.example.org:5432/attention_gradebook)"
        ) from None
    if url.password is not None:
        raise InstructorError(
            "--db-url contains a password: remove it from the URL and put it in the "
            "PGPASSWORD environment variable (or the variable named by --db-password-env)"
        )
    if password_env:
        if password_env not in os.environ:
            raise InstructorError(
                f"--db-password-env {password_env}: that environment variable is not set"
            )
        os.environ["PGPASSWORD"] = os.environ[password_env]  # libpq's own variable
    return url


def shown(url) -> str:
    """``url`` as it may appear in messages (never with a password)."""
    return url.render_as_string(hide_password=True)


def explain(exc: Exception, url) -> str:
    """One line naming what to fix, for a database error of ``url``."""
    reason = str(getattr(exc, "orig", None) or exc).strip()
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    low = reason.lower()
    if "password authentication failed" in low or "no password supplied" in low:
        return (
            f"the database server at {where} refused the password of user "
            f"{url.username!r}: set PGPASSWORD (or --db-password-env NAME) to that user's password"
        )
    if "does not exist" in low and "database" in low:
        return (
            f"there is no database {url.database!r} on {where}: create it "
            f"(createdb -h {url.host or 'localhost'} -p {url.port or 5432} "
            f"-U {url.username} {url.database}) or fix the name in --db-url"
        )
    if any(
        word in low
        for word in (
            "connection refused",
            "could not translate",
            "timeout",
            "timed out",
            "no route",
        )
    ):
        return (
            f"cannot reach a database server at {where}: start it, or fix the host and port "
            "in --db-url"
        )
    first = reason.splitlines()[0] if reason else type(exc).__name__
    return f"database {shown(url)}: {first}"


def check(url) -> None:
    """Connect once and disconnect: an :class:`InstructorError` now, not after the batch."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    connect_args = (
        {"connect_timeout": CONNECT_TIMEOUT} if url.drivername.startswith("postgres") else {}
    )
    try:
        engine = create_engine(url, connect_args=connect_args)
    except ImportError as exc:
        raise InstructorError(
            f"{exc}: install the PostgreSQL driver (pip install 'psycopg[binary]')"
        ) from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise InstructorError(explain(exc, url)) from None
    finally:
        engine.dispose()


def push(local_db: Path, url) -> Pushed:
    """Copy the gradebook ``local_db`` (sqlite) into the database ``url``; update, never duplicate.

    Parameters
    ----------
    local_db : Path
        A batch's merged gradebook, ``grading-output/nbgrader/gradebook.db``.
    url : sqlalchemy.engine.URL
        The shared database (from :func:`parse_url`); it must exist.

    Returns
    -------
    Pushed
        The number of learners and submissions of the batch now in the database.
    """
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning, SQLAlchemyError

    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's harmless "not in session"
    if not local_db.is_file():
        raise InstructorError(f"no gradebook to copy: {local_db} (run attention-grade first)")
    students = submissions = 0
    try:
        with (
            Gradebook(f"sqlite:///{local_db.resolve()}") as src,
            Gradebook(url.render_as_string(hide_password=False)) as dst,
        ):
            for assignment in src.assignments:
                _copy_assignment(src, dst, assignment)
            for student in src.students:
                dst.update_or_create_student(student.id)
                students += 1
            for assignment in src.assignments:
                for submission in assignment.submissions:
                    _copy_submission(dst, assignment.name, submission)
                    submissions += 1
    except SQLAlchemyError as exc:
        raise InstructorError(explain(exc, url)) from None
    return Pushed(students, submissions)


def _copy_assignment(src, dst, assignment) -> None:
    dst.update_or_create_assignment(assignment.name)
    for notebook in assignment.notebooks:
        nb, name = notebook.name, assignment.name
        dst.update_or_create_notebook(nb, name)
        for cell in notebook.source_cells:
            dst.update_or_create_source_cell(
                cell.name,
                nb,
                name,
                cell_type=cell.cell_type,
                locked=cell.locked,
                source=cell.source,
                checksum=cell.checksum,
            )
        for cell in notebook.grade_cells:
            dst.update_or_create_grade_cell(
                cell.name, nb, name, max_score=cell.max_score, cell_type=cell.cell_type
            )
        for cell in notebook.solution_cells:
            dst.update_or_create_solution_cell(cell.name, nb, name)
        for cell in notebook.task_cells:
            dst.update_or_create_task_cell(
                cell.name, nb, name, max_score=cell.max_score, cell_type=cell.cell_type
            )


def _copy_submission(dst, assignment: str, submission) -> None:
    student = submission.student.id
    dst.update_or_create_submission(assignment, student)
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            target = dst.find_grade(grade.name, notebook.name, assignment, student)
            target.auto_score = grade.auto_score
            # A grader's manual score stands; otherwise the batch says what needs a person.
            if target.manual_score is None:
                target.needs_manual_grade = grade.needs_manual_grade
    dst.db.commit()


def point_config_at(course: Path, url) -> None:
    """Make ``course/nbgrader_config.py`` (Formgrader's) use the shared database, no password."""
    config = course / "nbgrader_config.py"
    text = config.read_text(encoding="utf-8")
    line = f"c.CourseDirectory.db_url = {shown(url)!r}  # password: PGPASSWORD\n"
    if line not in text:
        config.write_text(
            text
            + "# attention-grade --db-url: the shared gradebook (password from PGPASSWORD)\n"
            + line,
            encoding="utf-8",
        )


def push_batch(out: Path, url) -> Pushed:
    """Push ``out``'s merged gradebook into ``url`` and point its Formgrader folder there."""
    pushed = push(out / "nbgrader" / "gradebook.db", url)
    point_config_at(out / "nbgrader", url)
    return pushed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="attention-gradebook-push",
        description="Copy a batch's merged gradebook (OUT/nbgrader/gradebook.db) into a "
        "shared database, updating its rows.",
    )
    parser.add_argument("out", type=Path, help="output folder of attention-grade")
    parser.add_argument("--db-url", required=True, help="postgresql://USER@HOST:PORT/DB")
    parser.add_argument(
        "--db-password-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the password (default: PGPASSWORD)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run_command("attention-gradebook-push", _push_command, parse_args(argv))


def _push_command(args: argparse.Namespace) -> int:
    url = parse_url(args.db_url, args.db_password_env)
    check(url)
    pushed = push_batch(args.out.resolve(), url)
    print(
        f"gradebook:    {shown(url)} ({pushed.students} learner(s), "
        f"{pushed.submissions} submission(s))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
