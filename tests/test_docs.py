"""Facts the documentation states that come from elsewhere in the repository stay true.

- ``docs/instructors.md``'s table of assignments (points, written answers) is what
  ``solutions/`` holds: add or change a notebook and this test prints the table to paste.
- The README's table of notebooks has one row per assignment of ``solutions/``.
- Nothing tracked points to files outside the repository (``../shared/...``): a comment
  states the fact it relies on instead.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- assignments table: generated from solutions/ by tests/test_docs.py -->"
END = "<!-- end of assignments table -->"


def assignments_table() -> str:
    """The Markdown table of assignments, computed from the nbgrader metadata in solutions/."""
    rows = [
        "| assignment | notebook | autograded points | written answers (points, graded by hand) |",
        "|---|---|---|---|",
    ]
    for path in sorted(ROOT.glob("solutions/*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        graded = [c.metadata["nbgrader"] for c in nb.cells if _nbgrader(c).get("grade")]
        code = sum(m.get("points", 0) for m in graded if not m.get("solution"))
        written = [m.get("points", 0) for m in graded if m.get("solution")]
        title = next(
            c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"
        ).lstrip("# ")
        title = re.sub(r"^\d+\s*·\s*", "", title)
        answers = f"{len(written)} ({sum(written)})" if written else "—"
        rows.append(f"| `{path.parent.name}` | {title} | {code} | {answers} |")
    return "\n".join(rows)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def test_the_instructor_guide_lists_the_assignments_of_solutions():
    text = (ROOT / "docs" / "instructors.md").read_text()
    assert BEGIN in text and END in text, f"docs/instructors.md lacks the markers {BEGIN!r}"
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    expected = assignments_table()
    assert documented == expected, (
        "docs/instructors.md's assignments table differs from solutions/; replace it with:\n"
        + expected
    )


def test_the_readme_lists_every_notebook():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| (\d\d) \|", readme, flags=re.MULTILINE))
    numbers = {p.name[:2] for p in ROOT.glob("solutions/*") if p.is_dir()}
    assert numbers and listed == numbers, (
        f"README's notebook table lists {sorted(listed)}, solutions/ has {sorted(numbers)}"
    )


def test_nothing_points_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ""}:
            continue
        if name == "tests/test_docs.py" or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [
            f"{name}: {line.strip()}" for line in text.splitlines() if "../shared" in line
        ]
    assert not offenders, "state the fact instead of pointing outside the repository:\n" + (
        "\n".join(offenders)
    )
