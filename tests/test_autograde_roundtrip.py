"""nbgrader grades the course as intended, end to end.

A temporary nbgrader course (its own ``nbgrader_config.py`` on top of the course's, a copy of
solutions/ as its source, its own sqlite gradebook) receives two submissions of every
notebook, autograded in one nbgrader call:

- ``reference-student`` submits solutions/: full marks on every code cell; every written
  answer is left for manual grading;
- ``untouched-student`` submits course/ as released: zero code marks everywhere.

nbgrader's Validator (what the learner's Validate button runs) must pass every solution
notebook and, inverted, find every graded test of course/ failing.
"""

from __future__ import annotations

import os
import shutil
import sys
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

CONFIG = '''\
"""Temporary course for tests/test_autograde_roundtrip.py: the course's settings, own folders."""
c = get_config()  # noqa: F821
load_subconfig({repo_config!r})  # noqa: F821 - stubs, preprocessors, timeouts of the course
c.CourseDirectory.root = {root!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.db_url = "sqlite:///{root}/gradebook.db"
'''


def _results(gradebook, root: Path) -> dict:
    """{(student, assignment, notebook): {totals..., "grades": [per graded cell]}}."""
    from nbgrader.api import MissingEntry

    results = {}
    for path in SOLUTION_NOTEBOOKS:
        assignment, notebook = path.parent.name, path.stem
        for student in (REFERENCE, UNTOUCHED):
            try:
                nb = gradebook.find_submission_notebook(notebook, assignment, student)
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
                "autograded": root / "autograded" / student / assignment / f"{notebook}.ipynb",
            }
    return results


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Release, submit and autograde everything once; return the config, grades and log."""
    if not SOLUTION_NOTEBOOKS:
        pytest.skip("no notebooks in solutions/ yet")
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    root = tmp_path_factory.mktemp("nbgrader-course")
    shutil.copytree(SOLUTIONS, root / "source", ignore=shutil.ignore_patterns(".*", "__pycache__"))
    (root / "nbgrader_config.py").write_text(
        CONFIG.format(repo_config=str(ROOT / "autograder" / "nbgrader_config.py"), root=str(root))
    )
    for path in SOLUTION_NOTEBOOKS:
        relative = path.relative_to(SOLUTIONS)
        for student, origin in ((REFERENCE, SOLUTIONS), (UNTOUCHED, COURSE)):
            if (origin / relative).exists():
                (root / "submitted" / student / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(origin / relative, root / "submitted" / student / relative)

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    with pytest.MonkeyPatch.context() as mp:
        # nbgrader starts `alembic` by name when it creates the gradebook.
        mp.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
        api = NbGraderAPI(config=config)
        released = api.generate_assignment("*", force=True)
        assert released["success"], f"nbgrader could not release solutions/:\n{released}"
        graded = api.autograde("*", "*", force=True, create=True)  # all students, one call
        assert graded["success"], f"nbgrader autograde failed:\n{graded}"
        with Gradebook(config.CourseDirectory.db_url, api.coursedir.course_id) as gradebook:
            results = _results(gradebook, root)
    return {"config": config, "results": results, "log": graded.get("log", "")}


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


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_validator_passes_solutions(course, path):
    from nbgrader.validator import Validator

    result = Validator(config=course["config"]).validate(str(path))
    assert not result, (
        f"nbgrader's Validate finds problems in solutions/{path.parent.name}/{path.name}:\n"
        + "\n".join(
            f"{kind}: {cell.get('source', '')[:200]!r} -> {cell.get('raw_error', '')}"
            for kind, cells in result.items()
            for cell in cells
        )
    )


@pytest.mark.parametrize("path", SOLUTION_NOTEBOOKS, ids=IDS)
def test_validator_fails_untouched_course(course, path):
    from nbgrader.validator import Validator

    release = COURSE / path.relative_to(SOLUTIONS)
    assert release.exists(), f"{release.relative_to(ROOT)} does not exist: run `make release`"
    result = Validator(config=course["config"], invert=True).validate(str(release))
    assert not result, (
        f"nbgrader's Validate (inverted) on the untouched course/{path.parent.name}/{path.name} "
        "should find every graded test failing, but reports:\n"
        + "\n".join(
            f"{kind}: {cell.get('source', '')[:200]!r}"
            for kind, cells in result.items()
            for cell in cells
        )
    )
