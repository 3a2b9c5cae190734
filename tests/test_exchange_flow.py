"""SLOW (30-60 s: eight nbgrader commands and one batch grading).

The whole exchange flow a class on JupyterHub goes through, with nbgrader's own commands and
the course's nbgrader_config.py, in a temporary exchange folder (docs/instructors.md):

    instructor: generate_assignment -> release_assignment
    learner:    fetch_assignment -> (solves it) -> submit
    instructor: collect -> autograde -> generate_feedback -> export

and then ``attention-grade`` (``make grade``) on the collected ``submitted/`` folder, which
must agree with nbgrader's export. It uses the small fixture course (tests/fixtures/grading)
so the flow, not the course, is what is timed. Deselect with ``-m "not slow"``.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import batch_submissions
import nbformat
import pytest
from nbgrader.apps import nbgraderapp

from attention_grader import CONFIG_FILE

GRADE = Path(sys.executable).parent / "attention-grade"  # the console script of make grade
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading" / "source"
ASSIGNMENT = "00_fixture_one"
STUDENT = "learner1"

pytestmark = pytest.mark.slow


def _nbgrader_main(cwd: str, args: list[str], log: str) -> None:
    """What the ``nbgrader`` command runs (``nbgrader.apps.nbgraderapp:main``), in ``cwd``."""
    os.chdir(cwd)
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(handle, 1)
    os.dup2(handle, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    # nbgrader runs `alembic` by name when it creates a gradebook: this venv's bin/ first.
    os.environ["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
    )
    sys.argv = ["nbgrader", *args]
    nbgraderapp.main()


def nbgrader(cwd: Path, *args: str) -> str:
    """Run one nbgrader command, as the command line does, in a fresh process.

    The process is forked from this one, which has imported nbgrader already: the same code
    as ``nbgrader ARGS`` in a shell, without paying nbgrader's import time ten times.
    """
    log = cwd.parent / f"nbgrader-{args[0]}-{cwd.name}.log"
    process = multiprocessing.get_context("fork").Process(
        target=_nbgrader_main, args=(str(cwd), list(args), str(log))
    )
    process.start()
    process.join(600)
    output = log.read_text(errors="replace") if log.exists() else ""
    assert process.exitcode == 0, f"nbgrader {' '.join(args)} failed:\n{output}"
    return output


def test_release_fetch_submit_collect_autograde_feedback_export(tmp_path):
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # as on a shared JupyterHub: everyone writes, nbgrader sets the rest
    course, learner = tmp_path / "course", tmp_path / "learner"
    course.mkdir()
    learner.mkdir()
    # The course's own configuration, pointed at this folder and this exchange.
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(CONFIG_FILE)!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.source_directory = {str(FIXTURE)!r}\n"
        f"c.CourseDirectory.release_directory = {str(course / 'release')!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
    )
    course_id = "attention-from-scratch"
    (learner / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"c.CourseDirectory.course_id = {course_id!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
    )

    # Instructor: release through the exchange.
    nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    nbgrader(course, "release_assignment", ASSIGNMENT, "--force")
    assert (exchange / course_id / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()

    # Learner: fetch, solve, submit.
    nbgrader(learner, "fetch_assignment", ASSIGNMENT)
    fetched = learner / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert fetched.is_file()
    solved = batch_submissions.Course(FIXTURE, course / "release")
    answers = solved.solved_sources(ASSIGNMENT)
    nb = nbformat.read(fetched, 4)
    hidden = "grading-fixture-hidden-marker"
    assert hidden not in nbformat.writes(nb), "the release leaks a hidden test"
    first = True
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            # The first exercise right, the second left as released: a partial score.
            cell.source = answers[gid] if first else cell.source
            first = False
    nbformat.write(nb, fetched)
    nbgrader(learner, "submit", ASSIGNMENT, f"--student={STUDENT}")
    assert list((exchange / course_id / "inbound").glob(f"{STUDENT}+{ASSIGNMENT}+*"))

    # Instructor: collect, autograde, feedback, export.
    nbgrader(course, "collect", ASSIGNMENT)
    assert (course / "submitted" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    nbgrader(course, "autograde", ASSIGNMENT)
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    feedback = course / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert feedback.is_file()
    assert hidden not in feedback.read_text(encoding="utf-8"), "feedback shows a hidden test"
    nbgrader(course, "export")
    with open(course / "grades.csv", newline="") as handle:
        exported = [r for r in csv.DictReader(handle) if r["student_id"] == STUDENT]
    assert len(exported) == 1
    score = float(exported[0]["score"])
    # Softmax (3 points) right, scaling (2 points) not implemented: 3 of 5 code points.
    assert score == solved.points(ASSIGNMENT, solved.exercises(ASSIGNMENT)[0][1]) == 3

    # The batch grader reads nbgrader's collect layout and agrees with nbgrader.
    out = tmp_path / "batch"
    done = subprocess.run(
        [
            str(GRADE),
            str(course / "submitted"),
            "--out",
            str(out),
            "--source",
            str(FIXTURE),
            "--assignment",
            ASSIGNMENT,
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(out / "grades.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["student_id"], r["status"], float(r["code_score"])) for r in rows] == [
        (STUDENT, "ok", score)
    ]
