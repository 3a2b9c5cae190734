"""nbgrader grades the course as intended, end to end.

The session's one autograde (tests/conftest.py ``self_checks``: the course's grader, as ``make
check`` runs it, against the session's one release of solutions/) graded two submissions of
every notebook; their merged nbgrader gradebooks and autograded notebooks are read here:

- ``reference-student`` submits solutions/: full marks on every code cell; every written
  answer is left for manual grading;
- ``untouched-student`` submits course/ as released: zero code marks everywhere.

nbgrader's Validate button is tested in test_validate.py (it needs no autograde, so it runs
beside these tests, not after them).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
SOLUTION_NOTEBOOKS = sorted(SOLUTIONS.glob("*/*.ipynb"))
IDS = [f"{p.parent.name}/{p.stem}" for p in SOLUTION_NOTEBOOKS]

REFERENCE, UNTOUCHED = "reference-student", "untouched-student"
#: Who handed in what: the self-check of that folder (one learner, "you", per gradebook).
SUBMITTED = {REFERENCE: "solutions", UNTOUCHED: "course"}


def _results(gradebook, nbgrader_dir: Path, student: str) -> dict:
    """{(student, assignment, notebook): {totals..., "grades": [per graded cell]}}."""
    from nbgrader.api import MissingEntry

    from attention_grader.selfcheck import STUDENT

    results = {}
    for path in SOLUTION_NOTEBOOKS:
        assignment, notebook = path.parent.name, path.stem
        try:
            nb = gradebook.find_submission_notebook(notebook, assignment, STUDENT)
        except MissingEntry:  # not graded at all: the tests say so
            continue
        results[student, assignment, notebook] = {
            "code_score": nb.code_score,
            "max_code_score": nb.max_code_score,
            "grades": [
                {
                    "name": g.name,
                    "cell_type": g.cell_type,
                    "auto_score": g.auto_score,
                    "max_score": g.max_score,
                    "needs_manual_grade": g.needs_manual_grade,
                }
                for g in nb.grades
            ],
            "autograded": nbgrader_dir / "autograded" / STUDENT / assignment / f"{notebook}.ipynb",
        }
    return results


@pytest.fixture(scope="module")
def course(self_checks):
    """The session's autograde of solutions/ and course/: the config, grades and logs."""
    if not SOLUTION_NOTEBOOKS:
        pytest.skip("no notebooks in solutions/ yet")
    from nbgrader.api import Gradebook

    results, logs = {}, []
    for student, name in SUBMITTED.items():
        out = self_checks[name].out
        with Gradebook(f"sqlite:///{out / 'nbgrader' / 'gradebook.db'}") as gradebook:
            results.update(_results(gradebook, out / "nbgrader", student))
        logs += [log.read_text(errors="replace") for log in sorted((out / "logs").rglob("*.log"))]
    return {"results": results, "log": "\n".join(logs)}


def _cell_report(autograded: Path, grade_id: str) -> str:
    """What a graded cell printed when it was autograded: the reason it lost points."""
    if not autograded.exists():
        return "(no autograded notebook)"
    for cell in nbformat.read(autograded, as_version=4).cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") != grade_id:
            continue
        lines = []
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                lines.append(f"{output.ename}: {output.evalue}")
            elif output.output_type == "stream" and output.name == "stderr":
                lines.append(f"(stderr, which scores the cell zero) {output.text.strip()}")
        return " | ".join(lines)[:600] or "(no error output)"
    return "(cell not found)"


def _graded(course, student: str, path: Path) -> dict:
    key = (student, path.parent.name, path.stem)
    assert key in course["results"], (
        f"nbgrader did not grade {student}'s {path.parent.name}/{path.name}"
        + (" — course/ lacks it: run `make release`" if student == UNTOUCHED else "")
        + f"\nautograde log:\n{course['log'][-3000:]}"
    )
    return course["results"][key]


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_solutions_get_full_code_marks(course, path):
    graded = _graded(course, REFERENCE, path)
    assert graded["max_code_score"] > 0, f"{path.name} has no graded test cell worth points"
    lost = [
        f"{g['name']}: {g['auto_score']}/{g['max_score']} — "
        + _cell_report(graded["autograded"], g["name"])
        for g in graded["grades"]
        if g["cell_type"] == "code" and g["auto_score"] != g["max_score"]
    ]
    assert not lost and graded["code_score"] == graded["max_code_score"], (
        f"solutions/{path.parent.name}/{path.name} autograded to {graded['code_score']}/"
        f"{graded['max_code_score']}; the reference solution must get full marks. Cells that "
        "lost points:\n  " + "\n  ".join(lost)
    )


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_written_answers_are_left_for_manual_grading(course, path):
    graded = _graded(course, REFERENCE, path)
    written = [g for g in graded["grades"] if g["cell_type"] == "markdown"]
    if not written:
        pytest.skip(f"{path.name} has no written answer")
    wrong = [g for g in written if not g["needs_manual_grade"] or g["auto_score"] is not None]
    assert not wrong, (
        "written answers must wait for a human grader (needs_manual_grade, no auto score), "
        f"but: {wrong}"
    )


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_untouched_course_scores_zero(course, path):
    graded = _graded(course, UNTOUCHED, path)
    scored = [
        f"{g['name']}: {g['auto_score']}/{g['max_score']}"
        for g in graded["grades"]
        if g["cell_type"] == "code" and g["auto_score"]
    ]
    assert graded["code_score"] == 0 and not scored, (
        f"course/{path.parent.name}/{path.name}, submitted untouched, scored "
        f"{graded['code_score']}/{graded['max_code_score']}: these test cells pass without "
        "the learner writing anything (they check nothing, or a solution leaked into the "
        "release):\n  " + "\n  ".join(scored)
    )
