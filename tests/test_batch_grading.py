"""``make grade`` on the tamper catalogue: every learner gets a correct row, nobody stops the batch.

One batch grades the whole catalogue (tests/batch_submissions.py: ≥ 12 kinds of broken, odd or
hostile submissions built from solutions/ and its release) through the command line, as
``make grade`` runs it (``attention-grade``); the tests below read its outputs, and compare its
rows with those the grader gave before it became a package
(tests/fixtures/grading/expected_rows.csv). Cost: one nbgrader release of two assignments
plus ~26 notebooks on 2 workers (about a minute on 2 idle cores).

The command's other duties (statuses, instructor errors, the wall-clock limit, the sandbox)
are tested in test_grade_command.py, on the small fixture course.
"""

from __future__ import annotations

import csv
import html
import re
import subprocess
import sys
from pathlib import Path

import batch_submissions
import nbformat
import pytest

from attention_course.checks.runner import TIME_LIMIT_SECONDS
from attention_grader import read_csv

ROOT = Path(__file__).resolve().parents[1]
#: The console script `make grade` runs, installed next to this interpreter.
GRADE = Path(sys.executable).parent / "attention-grade"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading" / "source"
EXPECTED_ROWS = Path(__file__).resolve().parent / "fixtures" / "grading" / "expected_rows.csv"
#: The learner whose exercise never returns: item 9 of issue 11 changes that row on purpose.
ENDLESS_LOOP = "infinite_loop"
#: The batch's per-cell time limit: above the checks' own limit per call of a learner's
#: function, so that an endless loop is stopped (and named) by the checks, not by the cell
#: timeout; short enough that a loop the checks cannot stop (one that swallows the
#: interrupt) costs little.
CELL_TIMEOUT = int(2 * TIME_LIMIT_SECONDS)

pytestmark = pytest.mark.skipif(
    not list(batch_submissions.SOLUTIONS.glob("*/*.ipynb")), reason="no course notebooks"
)


def run_grade(*args, timeout=1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GRADE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def batch(tmp_path_factory, course_template):
    """The catalogue, graded in one batch with attention-grade."""
    tmp = tmp_path_factory.mktemp("batch")
    # Learners start from the session's release of today's solutions/ (course/ may lag behind
    # while authors edit; tests/test_release.py checks that it does not, on commit).
    plan = batch_submissions.plan()
    release = course_template.path / "release"
    expected = batch_submissions.build(tmp / "submissions", release=release)
    only = [arg for a in plan for arg in ("--assignment", a)]
    out = tmp / "out"
    done = run_grade(
        tmp / "submissions",
        "--out",
        out,
        "--jobs",
        2,
        "--timeout",
        CELL_TIMEOUT,
        "--memory-mb",
        1024,
        "--no-progress",
        *only,
    )
    rows = read_csv(out / "grades.csv") if (out / "grades.csv").exists() else []
    return {
        "done": done,
        "expected": expected,
        "out": out,
        "tmp": tmp,
        "release": release,
        "rows": {(r["student_id"], r["assignment"]): r for r in rows},
    }


def test_batch_completes_and_prints_the_summary(batch):
    done = batch["done"]
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Graded" in done.stdout and "grades.csv" in done.stdout
    assert "Rows to look at" in done.stdout and "Missing work" in done.stdout


def test_catalogue_is_big_enough(batch):
    learners = {student for student, _ in batch["expected"]}
    assert len(learners) >= 12


def test_one_row_per_learner_and_assignment(batch):
    assert set(batch["rows"]) == set(batch["expected"])


def test_every_row_says_what_happened(batch):
    wrong = []
    for key, want in sorted(batch["expected"].items()):
        row = batch["rows"].get(key)
        if row is None:
            wrong.append(f"{key}: no row")
            continue
        problems = []
        if row["status"] != want.status:
            problems.append(f"status {row['status']!r}, expected {want.status!r}")
        if want.code_score is not None and float(row["code_score"] or -1) != want.code_score:
            problems.append(f"code_score {row['code_score']}, expected {want.code_score:g}")
        if want.note and want.note not in row["notes"]:
            problems.append(f"notes lack {want.note!r}")
        if problems:
            wrong.append(f"{key} ({want.why}): {'; '.join(problems)}; notes: {row['notes']!r}")
    assert not wrong, "\n".join(wrong)


#: The grades.csv columns the restructure of issue 11 must not change (notes may be reworded).
COMPARED = ("status", "code_score", "code_max", "written_max", "written_to_grade", "failed_tests")


def _recorded() -> dict[tuple[str, str], dict]:
    with open(EXPECTED_ROWS, newline="", encoding="utf-8") as handle:
        return {(r["student"], r["assignment"]): r for r in csv.DictReader(handle)}


def _differences(rows: dict, recorded: dict) -> list[str]:
    """Where ``rows`` (keyed by student, assignment) differ from the recorded rows."""
    if set(rows) != set(recorded):
        return [f"rows for {sorted(set(rows) ^ set(recorded))}"]
    wrong = []
    for key, want in sorted(recorded.items()):
        for column in COMPARED:
            if column == "status" and key[0] == ENDLESS_LOOP:
                continue
            if rows[key][column] != want[column]:
                wrong.append(f"{key} {column}: {rows[key][column]!r}, recorded {want[column]!r}")
    return wrong


def test_rows_are_those_of_the_grader_before_the_package(batch):
    """The same rows as the grader before it became a package (recorded at 4ba8f45).

    Only the endless-loop learner may differ in ``status`` (the checks now stop a call that
    never returns, so its test cells fail fast instead of timing out); its scores and failed
    tests may not.
    """
    wrong = _differences(batch["rows"], _recorded())
    assert not wrong, "\n".join(wrong)


def test_the_comparison_can_fail(batch):
    """A changed score, status or failed test is reported; only the loop's status is free."""
    recorded = _recorded()
    rows = {key: dict(row) for key, row in batch["rows"].items()}
    perfect = ("perfect", batch_submissions.Course(release=batch["release"]).target())
    rows[perfect]["code_score"] = "1"
    rows[perfect]["status"] = "repaired"
    rows[(ENDLESS_LOOP, perfect[1])]["status"] = "ok"
    rows[(ENDLESS_LOOP, perfect[1])]["failed_tests"] = ""
    wrong = _differences(rows, recorded)
    assert [w.split(":")[0] for w in wrong] == [
        f"{(ENDLESS_LOOP, perfect[1])} failed_tests",
        f"{perfect} status",
        f"{perfect} code_score",
    ], wrong
    del rows[perfect]
    assert _differences(rows, recorded) == [f"rows for {[perfect]}"]


def test_feedback_for_every_graded_notebook(batch):
    out = batch["out"]
    for (student, assignment), row in batch["rows"].items():
        if row["status"] in ("missing", "unreadable notebook"):
            assert not row["feedback"]
            continue
        assert row["feedback"], (student, assignment)
        assert (out / row["feedback"]).is_file()


def _visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_feedback_never_shows_hidden_tests(batch):
    course = batch_submissions.Course(release=batch["release"])
    hidden = set()
    for assignment in batch_submissions.plan():
        nb = nbformat.read(course.source / assignment / f"{course.notebook(assignment)}.ipynb", 4)
        for cell in nb.cells:
            inside = False
            for line in cell.source.splitlines():
                if "BEGIN HIDDEN TESTS" in line:
                    inside = True
                elif "END HIDDEN TESTS" in line:
                    inside = False
                elif inside and line.strip():
                    hidden.add(line.strip())
    assert hidden, "the course has hidden tests"
    pages = list((batch["out"] / "feedback").rglob("*.html"))
    assert len(pages) >= 12
    for page in pages:
        text = _visible_text(page.read_text(encoding="utf-8"))
        assert "HIDDEN TESTS" not in text, page
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{page}: {leaked[:3]}"


def test_failing_learner_sees_why_in_feedback(batch):
    row = batch["rows"][("untouched", batch_submissions.Course(release=batch["release"]).target())]
    text = _visible_text((batch["out"] / row["feedback"]).read_text(encoding="utf-8"))
    assert "not implemented yet" in text


def test_endless_loop_is_stopped_and_named_by_the_checks(batch):
    """The looping exercise's tests fail fast with a message naming the likely cause."""
    target = batch_submissions.Course(release=batch["release"]).target()
    row = batch["rows"][(ENDLESS_LOOP, target)]
    assert "time limit" not in row["notes"], row["notes"]  # no cell waited for its timeout
    text = _visible_text((batch["out"] / row["feedback"]).read_text(encoding="utf-8"))
    assert f"did not return within {TIME_LIMIT_SECONDS:g} seconds" in text
    assert "endless loop" in text


def test_plot_and_merged_gradebook(batch):
    out = batch["out"]
    assert (out / "grade-distribution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from nbgrader.api import Gradebook

    course = batch_submissions.Course(release=batch["release"])
    with Gradebook(f"sqlite:///{out / 'nbgrader' / 'gradebook.db'}") as gb:
        for assignment in batch_submissions.plan():
            submission = gb.find_submission(assignment, "perfect")
            assert submission.code_score == course.points(assignment)
        assert gb.find_submission(course.target(), "untouched").code_score == 0
    # Formgrader's course folder: the autograded notebooks sit next to the gradebook.
    assert list((out / "nbgrader" / "autograded" / "perfect").rglob("*.ipynb"))
    assert (out / "nbgrader" / "nbgrader_config.py").is_file()
