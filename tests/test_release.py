"""course/ is exactly nbgrader's release of solutions/, it gives nothing away, and every
notebook is committed clean.

- sync: releasing solutions/ again (into a temporary folder) gives byte-identical files;
- leaks: no solution code, hidden test or mark scheme of solutions/ reaches course/, and no
  non-notebook file of an assignment is copied next to the learners' notebooks;
- hygiene: no outputs, execution counts, widget state or execution timestamps; stable cell ids;
  complete nbgrader metadata; graded test cells that really check something; nbstripout (with
  the pre-commit hook's options) would change nothing;
- the rules ``tests/conftest.py`` gives nbval for course/ are themselves tested on the fixture.

The notebooks are discovered from ``solutions/*/*.ipynb`` and ``course/*/*.ipynb``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"
BIN = Path(sys.executable).parent

SOLUTION_NOTEBOOKS = sorted(SOLUTIONS.glob("*/*.ipynb"))
COURSE_NOTEBOOKS = sorted(COURSE.glob("*/*.ipynb"))
ALL_NOTEBOOKS = SOLUTION_NOTEBOOKS + COURSE_NOTEBOOKS


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def _visible(path: Path) -> bool:
    """Not hidden (.gitkeep, .ipynb_checkpoints) and not a cache: what git would commit."""
    return not any(part.startswith(".") or part == "__pycache__" for part in path.parts)


def _tree(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and _visible(p.relative_to(folder))
    }


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _name(index: int, cell) -> str:
    return f"cell {index} ({_nbgrader(cell).get('grade_id') or cell.get('id', 'no id')})"


def test_the_course_has_notebooks():
    assert SOLUTION_NOTEBOOKS, (
        f"no notebook found in {SOLUTIONS}/*/*.ipynb: the course has no assignment yet"
    )


# --------------------------------------------------------------------------------------------
# course/ is the release of solutions/
# --------------------------------------------------------------------------------------------


def test_course_is_the_release_of_solutions(course_template):
    """The session's release of solutions/ (what `make release` writes): same files, same bytes."""
    fresh = course_template.path / "release"
    expected, committed = _tree(fresh), _tree(COURSE)
    different = sorted(p for p in expected.keys() & committed.keys() if expected[p] != committed[p])
    missing = sorted(expected.keys() - committed.keys())
    stale = sorted(committed.keys() - expected.keys())
    report = [
        f"  differs from a fresh release: course/{p}{_changed_cells(fresh / p, COURSE / p)}"
        for p in different
    ]
    report += [f"  missing (not released yet):   course/{p}" for p in missing]
    report += [f"  not made from solutions/:     course/{p}" for p in stale]
    assert not report, (
        "course/ is out of step with solutions/ — run `make release` and commit course/:\n"
        + "\n".join(report)
    )


def _changed_cells(fresh: Path, committed: Path) -> str:
    """For a notebook, which cells differ (by grade_id or id): a hint for the failure message."""
    if fresh.suffix != ".ipynb":
        return ""
    try:
        new, old = (nbformat.read(p, as_version=4).cells for p in (fresh, committed))
    except Exception:  # noqa: BLE001 - not even a notebook: the file name says enough
        return ""
    new_ids = [c.get("id") for c in new]
    old_by_id = {c.get("id"): c for c in old}
    names = [
        _nbgrader(c).get("grade_id") or c.get("id") for c in new if old_by_id.get(c.get("id")) != c
    ]
    names += [f"{i} (removed)" for i in old_by_id if i not in new_ids]
    return f" (cells: {', '.join(map(str, names[:8]))}{', ...' if len(names) > 8 else ''})"


def test_release_removes_stale_assignments_and_keeps_hidden_files(released_fixture):
    course = released_fixture / "course"
    assert not (course / "99_removed").exists(), (
        "release() left course/99_removed/, whose assignment is not in solutions/"
    )
    assert (course / ".gitkeep").exists(), "release() deleted course/.gitkeep"


def test_release_reports_a_failing_assignment_and_releases_the_others(released_fixture):
    error = (released_fixture / "release-error.log").read_text()
    assert "generate_assignment 01_broken --force` failed" in error, error
    assert "Duplicate grade id" in error, f"nbgrader's reason is not in the message:\n{error}"
    assert "00_fixture" not in error, f"the error mixes in another assignment's log:\n{error}"
    course = released_fixture / "course"
    released = sorted(str(p.relative_to(course)) for p in course.rglob("*") if p.is_file())
    assert released == [".gitkeep", "00_fixture/00_fixture.ipynb"], released


# --------------------------------------------------------------------------------------------
# Nothing secret reaches course/
# --------------------------------------------------------------------------------------------

_REGIONS = {  # kind -> (begin marker, end marker), as nbgrader finds them in a line
    "solution": ("BEGIN SOLUTION", "END SOLUTION"),
    "hidden test": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
    "mark scheme": ("BEGIN MARK SCHEME", "END MARK SCHEME"),
}
#: Text that must never appear in a released notebook.
_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "MARK SCHEME",
)
#: What nbgrader puts in place of solutions (autograder/nbgrader_config.py).
_STUBS = "# YOUR CODE HERE\nraise NotImplementedError()\nYOUR ANSWER HERE"


def _split_regions(source: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Split a cell into secret lines (kind, line) and public lines, by nbgrader's markers."""
    secret, public, inside = [], [], None
    for line in source.splitlines():
        begins = [k for k, (begin, _) in _REGIONS.items() if begin in line]
        if inside is None and begins:
            inside = begins[0]
        elif inside is not None and _REGIONS[inside][1] in line:
            inside = None
        elif inside is not None:
            secret.append((inside, line))
        else:
            public.append(line)
    return secret, public


def _secrets(nb) -> tuple[list[tuple[str, str, str]], str]:
    """Lines of a source notebook that must not be released: (kind, cell, line); public text."""
    secrets, public = [], [_STUBS]
    for index, cell in enumerate(nb.cells):
        meta = _nbgrader(cell)
        secret, visible = _split_regions(cell.source)
        has_solution_region = any(kind == "solution" for kind, _ in secret)
        if meta.get("solution") and (cell.cell_type == "markdown" or not has_solution_region):
            # nbgrader replaces the whole cell: a written answer's model answer, or a solution
            # cell without markers.
            secret += [
                ("model answer" if cell.cell_type == "markdown" else "solution", line)
                for line in visible
            ]
            visible = []
        secrets += [(kind, _name(index, cell), line) for kind, line in secret]
        public += visible
    return secrets, "\n".join(public)


def _nontrivial(line: str, public: str) -> bool:
    text = line.strip()
    return len(text) >= 10 and re.search(r"[A-Za-z0-9]", text) is not None and text not in public


def find_leaks(source_path: Path, release_path: Path) -> list[str]:
    """Describe every secret of ``source_path`` that appears in ``release_path``."""
    source = nbformat.read(source_path, as_version=4)
    raw = release_path.read_text(encoding="utf-8")
    released = "\n".join(cell.source for cell in nbformat.reads(raw, as_version=4).cells)
    leaks = [
        f"the marker {marker!r} appears in the release" for marker in _MARKERS if marker in raw
    ]
    secrets, public = _secrets(source)
    for kind, where, line in secrets:
        if _nontrivial(line, public) and line.strip() in released:
            leaks.append(f"{kind} line of {where} is released: {line.strip()!r}")
    return leaks


@pytest.mark.parametrize("source", SOLUTION_NOTEBOOKS, ids=_ids(SOLUTION_NOTEBOOKS))
def test_no_solution_hidden_test_or_mark_scheme_in_course(source):
    release = COURSE / source.relative_to(SOLUTIONS)
    assert release.exists(), f"{release.relative_to(ROOT)} does not exist: run `make release`"
    leaks = find_leaks(source, release)
    assert not leaks, (
        f"{release.relative_to(ROOT)} gives away what only {source.relative_to(ROOT)} may "
        "contain (check the BEGIN/END markers in the source, then run `make release`):\n  "
        + "\n  ".join(leaks)
    )


def test_leak_finder_sees_the_fixture_secrets(released_fixture):
    """The leak finder is not blind: the fixture's source leaks everything into itself..."""
    source = released_fixture / "solutions" / "00_fixture" / "00_fixture.ipynb"
    release = released_fixture / "course" / "00_fixture" / "00_fixture.ipynb"
    leaks = "\n".join(find_leaks(source, source))
    for expected in (
        "fixture-solution-marker",
        "fixture-hidden-marker",
        "fixture-mark-scheme-marker",
        "'BEGIN HIDDEN TESTS'",
        "'MARK SCHEME'",
        "'BEGIN SOLUTION'",
    ):
        assert expected in leaks, f"the leak finder missed {expected} in:\n{leaks}"
    # ... and nbgrader's release of it leaks nothing.
    assert find_leaks(source, release) == []


def test_no_other_file_of_solutions_is_released():
    """nbgrader copies every non-notebook file of an assignment folder to the learners."""
    copied = [
        str(path.relative_to(ROOT))
        for path in sorted(SOLUTIONS.glob("*/**/*"))
        if path.is_file()
        and path.suffix != ".ipynb"
        and _visible(path.relative_to(SOLUTIONS))
        and (COURSE / path.relative_to(SOLUTIONS)).exists()
    ]
    assert not copied, (
        "these files of solutions/ were copied into course/ by nbgrader (and would be copied "
        "over learners' files when grading): move them out of solutions/<assignment>/, e.g. "
        f"into lib/attention_course/, then run `make release`: {copied}"
    )


# --------------------------------------------------------------------------------------------
# Notebooks are committed clean, with complete nbgrader metadata
# --------------------------------------------------------------------------------------------

_GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")
#: (grade, solution, locked) of the four kinds of cell (docs/authoring.md).
_KINDS = {
    (False, False, True): "read-only",
    (False, True, False): "exercise",
    (True, False, True): "graded test",
    (True, True, False): "written answer",
}
_CHECK_CALL = re.compile(r"\bchecks\.check_\w+\(")
_NBVAL_TAGS = {"raises-exception", "nbval-raises-exception", "nbval-skip"}


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_ids(ALL_NOTEBOOKS))
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    problems = []
    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        problems.append(
            f"nbformat {nb.nbformat}.{nb.nbformat_minor} has no cell ids: save it "
            "with nbformat >= 4.5"
        )
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        problems.append(f"not a valid notebook: {exc.message}")
    if "widgets" in nb.metadata:
        problems.append("metadata.widgets (saved widget state) is committed")
    for index, cell in enumerate(nb.cells):
        where = _name(index, cell)
        if not cell.get("id"):
            problems.append(f"{where} has no id")
        if cell.cell_type == "code":
            if cell.get("outputs"):
                problems.append(f"{where} has {len(cell.outputs)} output(s)")
            if cell.get("execution_count") is not None:
                problems.append(f"{where} has execution_count {cell.execution_count}")
        for key in ("execution", "ExecuteTime"):
            if key in cell.get("metadata", {}):
                problems.append(f"{where} has execution timestamps (metadata.{key})")
    assert not problems, (
        f"{path.relative_to(ROOT)} is not committed clean (strip it: `.venv/bin/nbstripout "
        "--keep-id NOTEBOOK`, or commit through the pre-commit hook):\n  " + "\n  ".join(problems)
    )


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_ids(ALL_NOTEBOOKS))
def test_nbgrader_metadata_is_complete(path):
    nb = nbformat.read(path, as_version=4)
    problems, seen = [], {}
    for index, cell in enumerate(nb.cells):
        where, meta = _name(index, cell), _nbgrader(cell)
        if not meta:
            problems.append(f"{where} has no metadata.nbgrader")
            continue
        if meta.get("schema_version") != 3:
            problems.append(f"{where} has schema_version {meta.get('schema_version')!r}, not 3")
        grade_id = meta.get("grade_id", "")
        if not _GRADE_ID.match(grade_id):
            problems.append(f"{where} has grade_id {grade_id!r}, not matching {_GRADE_ID.pattern}")
        elif grade_id in seen:
            problems.append(f"{where} repeats the grade_id {grade_id!r} of cell {seen[grade_id]}")
        seen.setdefault(grade_id, index)
        flags = (bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked")))
        kind = _KINDS.get(flags)
        if kind is None:
            problems.append(
                f"{where} has grade/solution/locked = {flags}, none of the four "
                "kinds of docs/authoring.md"
            )
            continue
        if meta.get("grade") and not (
            isinstance(meta.get("points"), int | float) and meta["points"] > 0
        ):
            problems.append(f"{where} ({kind}) has points {meta.get('points')!r}: must be > 0")
        if kind == "graded test":
            visible = "\n".join(_split_regions(cell.source)[1])
            if cell.cell_type != "code":
                problems.append(f"{where} is a graded test but a {cell.cell_type} cell")
            elif not _CHECK_CALL.search(visible):
                problems.append(
                    f"{where} is a graded test whose visible part calls no checks.check_*(...): "
                    "it could pass without checking anything"
                )
        if kind == "written answer" and cell.cell_type != "markdown":
            problems.append(f"{where} is a written answer but a {cell.cell_type} cell")
        if kind in ("exercise", "graded test"):
            tags = set(cell.metadata.get("tags", [])) & _NBVAL_TAGS
            if tags or "NBVAL_" in cell.source:
                problems.append(
                    f"{where} ({kind}) carries an nbval marker {sorted(tags)} that "
                    "would let it fail or skip it unnoticed"
                )
    assert not problems, (
        f"{path.relative_to(ROOT)}: nbgrader metadata problems (see docs/authoring.md):\n  "
        + "\n  ".join(problems)
    )


def _nbstripout_args() -> list[str]:
    """The options of the nbstripout hook in .pre-commit-config.yaml (one source of truth)."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    for repo in config["repos"]:
        for hook in repo["hooks"]:
            if hook["id"] == "nbstripout":
                return hook.get("entry", "nbstripout").split()[1:] + hook.get("args", [])
    raise AssertionError(".pre-commit-config.yaml has no hook with id 'nbstripout'")


def _nbstripout_verify(paths) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "nbstripout"), "--verify", *_nbstripout_args(), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_nbstripout_would_change_no_committed_notebook():
    if not ALL_NOTEBOOKS:
        pytest.skip("no notebooks yet")
    result = _nbstripout_verify(ALL_NOTEBOOKS)
    assert result.returncode == 0, (
        "nbstripout (the pre-commit hook) would strip these notebooks — run `.venv/bin/"
        f"nbstripout {' '.join(_nbstripout_args())} NOTEBOOK` on them:\n"
        + result.stdout
        + result.stderr
    )


def test_nbstripout_hook_strips_outputs_but_keeps_ids(tmp_path):
    """The hook's options strip an executed notebook, and leave a clean one (and its ids) alone."""
    clean = Path(__file__).parent / "fixtures" / "solutions" / "00_fixture" / "00_fixture.ipynb"
    nb = nbformat.read(clean, as_version=4)
    code = next(cell for cell in nb.cells if cell.cell_type == "code")
    code.execution_count = 1
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    executed = tmp_path / "executed.ipynb"
    nbformat.write(nb, executed)
    result = _nbstripout_verify([executed, clean])
    assert result.returncode == 1 and "executed.ipynb" in result.stdout, (
        "nbstripout does not flag a notebook with outputs:\n" + result.stdout + result.stderr
    )
    assert str(clean) not in result.stdout, (
        "nbstripout would rewrite a clean notebook (are cell ids kept? --keep-id):\n"
        + result.stdout
    )


# --------------------------------------------------------------------------------------------
# The nbval rules of tests/conftest.py, tried on the fixture
# --------------------------------------------------------------------------------------------


def test_nbval_rules_fail_broken_cells_and_only_them(released_fixture, tmp_path):
    """Run pytest with this repository's nbval options and conftest on a small project:

    - course/broken.ipynb, the released fixture with a demo that raises ValueError and a test
      cell that raises TypeError: exactly those two cells fail, while its other test cell,
      which raises CheckFailed against the stub, passes;
    - solutions/stub.ipynb, the fixture with its solution replaced by a stub: both test cells
      (CheckFailed) fail, since solutions/ gets no allowance.

    (The real notebooks run under the same rules in the main session.)
    """
    project = tmp_path / "project"
    (project / "tests").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "conftest.py", project / "tests" / "conftest.py")
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")  # the same pytest options

    def variant(src: Path, dest: Path, edits: dict[str, str]) -> None:
        nb = nbformat.read(src, as_version=4)
        for cell in nb.cells:
            if _nbgrader(cell).get("grade_id") in edits:
                cell.source = edits[_nbgrader(cell)["grade_id"]]
        dest.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest)

    variant(
        released_fixture / "course" / "00_fixture" / "00_fixture.ipynb",
        project / "course" / "00_fixture" / "broken.ipynb",
        {
            "demo_softmax": "raise ValueError('a demo that breaks')",
            "test_softmax_large": "softmax(1, 2, 3)",
        },
    )
    variant(
        released_fixture / "solutions" / "00_fixture" / "00_fixture.ipynb",
        project / "solutions" / "00_fixture" / "stub.ipynb",
        {"softmax": "def softmax(x, axis=-1):\n    raise NotImplementedError()"},
    )

    report = tmp_path / "report.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.exists(), f"pytest did not run:\n{result.stdout}\n{result.stderr}"
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = failed
    failed = sorted(name for name, bad in outcomes.items() if bad)
    # code cells: 0 setup, 1 demo, 2 exercise, 3 test (random), 4 test (large)
    expected = [
        "course.00_fixture.broken.ipynb::Cell 1",
        "course.00_fixture.broken.ipynb::Cell 4",
        "solutions.00_fixture.stub.ipynb::Cell 3",
        "solutions.00_fixture.stub.ipynb::Cell 4",
    ]
    assert len(outcomes) == 2 * 5, f"expected 10 notebook cells, pytest ran {sorted(outcomes)}"
    assert failed == expected, (
        f"the nbval rules failed {failed}, expected exactly {expected}.\n" + result.stdout[-4000:]
    )
    assert "raised TypeError" in result.stdout, "the failure does not say which error was raised"
    assert "CheckFailed" in result.stdout, "the solutions/ failure does not show the CheckFailed"
