"""The repository is an installed package, not a set of path hacks.

No tracked ``.py`` or ``.ipynb`` file edits ``sys.path`` or loads a module from a file path:
code is imported from ``attention_course`` and ``attention_grader`` as ``pip install -e .``
installs them. The grep is tested on planted lines, so it cannot silently find nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Ways of importing around the installed packages.
FORBIDDEN = (
    "sys.path.insert",
    "sys.path.append",
    "spec_from_file_location",
    "runpy.run_path",
    "SourceFileLoader",
    "importlib.machinery",
)
# Built from parts so that this file's own lines do not match.
_PATTERN = re.compile("|".join(re.escape(word) for word in FORBIDDEN))


def path_hacks(path: Path, text: str) -> list[str]:
    """``path:line: text`` for every line of ``text`` that uses a forbidden import."""
    return [
        f"{path}:{number}: {line.strip()[:120]}"
        for number, line in enumerate(text.splitlines(), 1)
        if _PATTERN.search(line)
    ]


def tracked_sources() -> list[Path]:
    done = subprocess.run(
        ["git", "ls-files", "-z", "--", "*.py", "*.ipynb"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [ROOT / name for name in done.stdout.split("\0") if name]


def test_no_tracked_file_edits_sys_path_or_imports_by_file_path():
    files = [p for p in tracked_sources() if p.exists() and p != Path(__file__).resolve()]
    assert len(files) > 20, "git ls-files found too few sources: is this a git checkout?"
    found = [
        hit
        for path in files
        for hit in path_hacks(path.relative_to(ROOT), path.read_text(encoding="utf-8"))
    ]
    assert not found, (
        "import the installed packages instead (pip install -e . / make test):\n  "
        + "\n  ".join(found)
    )


@pytest.mark.parametrize("word", FORBIDDEN)
def test_the_grep_finds_a_planted_line(word):
    planted = f"import os\n    {word}(0, 'elsewhere')  # planted\nx = 1\n"
    assert path_hacks(Path("planted.py"), planted) == [
        f"planted.py:2: {word}(0, 'elsewhere')  # planted"
    ]
    # In a notebook, a cell's source is a JSON string: the words are still found.
    assert path_hacks(Path("planted.ipynb"), f'{{"source": ["{word}(0)"]}}')


def test_the_grader_imports_from_the_installed_package():
    """A fresh interpreter, outside the repository, imports both packages from their folders."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import attention_course, attention_grader, attention_grader.kernel; "
            "print(attention_course.__file__); print(attention_grader.__file__)",
        ],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    )
    course, grader = done.stdout.split()
    assert Path(course).resolve().is_relative_to(ROOT / "lib")
    assert Path(grader).resolve() == ROOT / "autograder" / "attention_grader" / "__init__.py"
