"""nbgrader's Validator (what a learner's Validate button runs), with the course's configuration.

It must pass every solution notebook and, inverted, find every graded test of the untouched
course/ failing. It needs no release or autograde of its own (test_autograde_roundtrip.py
reads the session's one autograde), so under pytest-xdist it runs beside the grading tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
SOLUTION_NOTEBOOKS = sorted(SOLUTIONS.glob("*/*.ipynb"))
IDS = [f"{p.parent.name}/{p.stem}" for p in SOLUTION_NOTEBOOKS]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The course's nbgrader configuration, in a private course folder."""
    from attention_grader import nbgrader_config

    return {"config": nbgrader_config(tmp_path_factory.mktemp("validator"), SOLUTIONS, COURSE)}


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
