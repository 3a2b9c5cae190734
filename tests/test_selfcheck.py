"""``make check``: the learner's self-check grades with the same grader and changes nothing.

Two runs of ``autograder/selfcheck.py`` (each: an nbgrader release of the course, then every
notebook graded on 2 workers): on ``solutions/`` every code point is earned, on the untouched
``course/`` none is, and each failing check is printed with its message.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELFCHECK = ROOT / "autograder" / "selfcheck.py"
SOLUTIONS, COURSE = ROOT / "solutions", ROOT / "course"

pytestmark = pytest.mark.skipif(not list(SOLUTIONS.glob("*/*.ipynb")), reason="no course notebooks")


def selfcheck(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SELFCHECK), *map(str, args), "--no-progress", "--jobs", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )


def table(stdout: str) -> dict[str, tuple[float, float]]:
    """``{notebook: (points, max)}`` from the printed table."""
    found = {}
    for line in stdout.splitlines():
        match = re.match(r"^(\S+\.ipynb|total)\s+([\d.]+) / ([\d.]+)", line)
        if match:
            found[match.group(1)] = (float(match.group(2)), float(match.group(3)))
    return found


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_solutions_get_every_code_point(tmp_path):
    done = selfcheck(SOLUTIONS, "--out", tmp_path / "out", "--strict")
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    points = table(done.stdout)
    notebooks = sorted(p.relative_to(SOLUTIONS).as_posix() for p in SOLUTIONS.glob("*/*.ipynb"))
    assert sorted(k for k in points if k != "total") == notebooks
    for notebook, (got, most) in points.items():
        assert most > 0 and got == most, f"{notebook}: {got} / {most}\n{done.stdout}"
    assert "Every check passes." in done.stdout
    pages = list((tmp_path / "out" / "feedback").rglob("*.html"))
    assert len(pages) == len(notebooks)


def test_untouched_course_gets_no_code_point_and_is_not_modified(tmp_path):
    before = digest(COURSE)
    done = selfcheck(COURSE, "--out", tmp_path / "out", "--strict")
    # --strict: exit 1 when code points are missing (without it: 0, failing is learning).
    assert done.returncode == 1, done.stdout + done.stderr[-3000:]
    assert digest(COURSE) == before, "the self-check modified course/"
    points = table(done.stdout)
    assert len(points) == len(list(COURSE.glob("*/*.ipynb"))) + 1
    for notebook, (got, most) in points.items():
        assert got == 0 and most > 0, f"{notebook}: {got} / {most}"
    assert "Failing checks" in done.stdout
    # Each failing check is listed with the check's own message.
    assert "is not implemented yet" in done.stdout
    assert "HIDDEN" not in done.stdout
