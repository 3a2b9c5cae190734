"""``make check``: the learner's self-check grades with the same grader and changes nothing.

The session's two self-checks (tests/conftest.py ``self_checks``: ``attention-check --strict``
of ``solutions/`` and of the untouched ``course/``, against the session's one release): on
``solutions/`` every code point is earned, on ``course/`` none is, and each failing check is
printed with its message. The console script itself is run once, on a missing folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS, COURSE = ROOT / "solutions", ROOT / "course"

pytestmark = pytest.mark.skipif(not list(SOLUTIONS.glob("*/*.ipynb")), reason="no course notebooks")


def table(stdout: str) -> dict[str, tuple[float, float]]:
    """``{notebook: (points, max)}`` from the printed table."""
    found = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\S+\.ipynb|total)\s+([\d.]+) / ([\d.]+)", line)
        if match:
            found[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return found


def test_solutions_get_every_code_point(self_checks):
    done = self_checks["solutions"]
    assert done.returncode == 0, done.stdout
    points = table(done.stdout)
    notebooks = sorted(p.relative_to(SOLUTIONS).as_posix() for p in SOLUTIONS.glob("*/*.ipynb"))
    assert sorted(k for k in points if k != "total") == notebooks
    for notebook, (got, most) in points.items():
        assert most > 0 and got == most, f"{notebook}: {got} / {most}\n{done.stdout}"
    assert "Every check passes." in done.stdout
    pages = list((done.out / "feedback").rglob("*.html"))
    assert len(pages) == len(notebooks)


def test_untouched_course_gets_no_code_point_and_is_not_modified(self_checks):
    done = self_checks["course"]
    # --strict: exit 1 when code points are missing (without it: 0, failing is learning).
    assert done.returncode == 1, done.stdout
    assert not done.modified, "the self-check modified course/"
    points = table(done.stdout)
    assert len(points) == len(list(COURSE.glob("*/*.ipynb"))) + 1
    for notebook, (got, most) in points.items():
        assert got == 0 and most > 0, f"{notebook}: {got} / {most}"
    assert "Failing checks" in done.stdout
    # Each failing check is listed with the check's own message.
    assert "is not implemented yet" in done.stdout
    assert "HIDDEN" not in done.stdout


def test_console_script_reports_a_missing_folder(tmp_path):
    """``attention-check`` (what ``make check`` runs) is installed and fails in one line."""
    script = Path(sys.executable).parent / "attention-check"
    done = subprocess.run(
        [str(script), str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done
    assert done.stderr.strip() == f"attention-check: error: no such folder: {tmp_path / 'nowhere'}"
