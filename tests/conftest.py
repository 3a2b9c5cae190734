"""Test-suite set-up, and the rules nbval executes the course notebooks by.

``pyproject.toml`` puts ``solutions/`` and ``course/`` in pytest's ``testpaths`` and passes
``--nbval-lax --nbval-current-env``: nbval collects one item per code cell of every notebook
found there (``<notebook>.ipynb::Cell N``) and runs the cells in order in one kernel of this
venv. Cells are committed without outputs, so nothing is compared: a cell passes if it runs.

- ``solutions/``: every cell must run without error (nbval's default).
- ``course/`` (the learners' release, solutions replaced by ``raise NotImplementedError()``):
  only exercise cells (nbgrader ``solution``) and graded test cells (nbgrader ``grade``) may
  raise, and only ``NotImplementedError`` or ``attention_course.checks.CheckFailed``. Every
  other cell -- setup, demos, plots, widgets -- must run, because learners see it before
  writing any code. nbval alone cannot say this: its ``raises-exception`` option lets a cell
  raise *anything* (and does not require it to raise). So :class:`ReleaseCellRules` turns that
  option on for exactly those cells and then fails the cell if the error it raised has any
  other name.

These hooks live in ``tests/``: run ``pytest`` from the repository root (``make test``), or
name ``tests`` among the arguments (``pytest tests course/02_scaling``), so this file is loaded.

Matplotlib uses the non-interactive Agg backend in every kernel the tests start (nbval,
nbgrader, nbclient inherit this process's environment).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

os.environ["MPLBACKEND"] = "Agg"

# tests/fixtures/ holds test data (notebooks among them), not course content: nbval skips it.
collect_ignore = ["fixtures"]

#: The only errors a released exercise or graded test cell may raise (by exception class name).
ALLOWED_RELEASE_ERRORS = frozenset({"NotImplementedError", "CheckFailed"})


def may_fail_in_release(cell) -> bool:
    """Exercise cells and graded test cells: the cells a learner's stub is allowed to break."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("solution") or meta.get("grade"))


class ReleaseCellRules:
    """Let exercise and graded test cells of ``course/`` fail, but only with the allowed errors."""

    def __init__(self, release_dir: Path):
        self.release_dir = release_dir

    def _is_release_cell(self, item) -> bool:
        # nbval's items carry the cell they run (IPyNbCell.cell); other tests do not.
        return (
            hasattr(item, "cell")
            and hasattr(item, "options")
            and Path(item.path).resolve().is_relative_to(self.release_dir)
        )

    def pytest_collection_modifyitems(self, items):
        for item in items:
            if self._is_release_cell(item) and may_fail_in_release(item.cell):
                item.options["check_exception"] = True  # nbval: an error does not fail it...
                item.stash[_MAY_FAIL] = True

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        result = yield
        if item.stash.get(_MAY_FAIL, False):  # ...so check which error it was
            for output in item.test_outputs or []:
                if output.get("output_type") == "error" and (
                    output.get("ename") not in ALLOWED_RELEASE_ERRORS
                ):
                    meta = item.cell.metadata.get("nbgrader", {})
                    kind = "exercise" if meta.get("solution") else "graded test"
                    item.raise_cell_error(
                        f"this {kind} cell ({meta.get('grade_id')}) of the released notebook "
                        f"raised {output.get('ename')}: {output.get('evalue')}. With the "
                        "learner's stubs it may only raise NotImplementedError or CheckFailed "
                        "(a check saying 'not implemented yet'); any other error means the "
                        "cell itself is broken for learners.",
                        "\n" + "\n".join(output.get("traceback", [])),
                    )
        return result


_MAY_FAIL = pytest.StashKey[bool]()


def pytest_configure(config):
    config.pluginmanager.register(
        ReleaseCellRules(Path(config.rootpath, "course").resolve()), "attention-course-release"
    )


#: The test modules that use the session's one release and one autograde (``course_template``
#: and what is built on it). ``make test`` runs pytest-xdist with the scheduler below, which
#: sends all of them to one worker, so those are made once, not once per worker.
GRADING_MODULES = frozenset(
    {
        "tests/test_autograde_roundtrip.py",
        "tests/test_batch_grading.py",
        "tests/test_release.py",
        "tests/test_selfcheck.py",
    }
)
GRADING_FIXTURE = "course_template"


def pytest_xdist_make_scheduler(config, log):
    """Work units for pytest-xdist: one per test module or notebook, the grading modules as one.

    Scopes are file paths: the cells of one notebook share a kernel and must run in order in
    one worker (nbval), and a module's tests share its module fixtures. (pytest 9.2 no longer
    lets ``--dist loadgroup`` rename node ids, so the grouping is done here instead.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class CourseScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "grading" if path in GRADING_MODULES else path

    return CourseScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """A test outside GRADING_MODULES that uses the shared grading fixture is a set-up error:
    under xdist it would make the session's release and autograde a second time."""
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if GRADING_FIXTURE in getattr(item, "fixturenames", ()) and module not in GRADING_MODULES:
            raise pytest.UsageError(
                f"{item.nodeid} uses {GRADING_FIXTURE}: add {module} to GRADING_MODULES in "
                "tests/conftest.py"
            )


# --------------------------------------------------------------------------------------------
# Session fixtures: one release and one autograde of the course, shared by test_release.py,
# test_autograde_roundtrip.py, test_selfcheck.py and test_batch_grading.py
# --------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_SOURCE = Path(__file__).resolve().parent / "fixtures" / "solutions"


@pytest.fixture(scope="session")
def course_template(tmp_path_factory):
    """THE release of solutions/ for the whole session, with the gradebook that knows its cells.

    Made by the course's one release function (``attention_grader.release``) through
    ``build_template``, exactly as ``make grade`` and ``make check`` begin. Its ``release/`` is
    what ``make release`` writes to course/ (test_release.py compares them byte for byte).
    """
    from attention_grader import SOLUTIONS, build_template
    from attention_grader.paths import discover_assignments

    assignments = discover_assignments(SOLUTIONS)
    if not assignments:
        pytest.skip("no notebooks in solutions/ yet")
    return build_template(SOLUTIONS, assignments, tmp_path_factory.mktemp("course-template"))


@dataclass
class SelfCheck:
    """One ``attention-check --strict`` run: exit status, printed report, output folder."""

    returncode: int
    stdout: str
    out: Path
    modified: bool  # whether the checked folder changed while it was graded


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def self_checks(course_template, tmp_path_factory) -> dict[str, SelfCheck]:
    """``attention-check --strict`` of solutions/ and of the untouched course/, once each.

    Both grade against :func:`course_template` (no second release). Each output folder is an
    nbgrader course directory whose merged gradebook and autograded notebooks the round-trip
    tests read: the session's one autograde of solutions/ and of course/.
    """
    from attention_grader import COURSE, SOLUTIONS, selfcheck

    checks = {}
    for name, folder in (("solutions", SOLUTIONS), ("course", COURSE)):
        out = tmp_path_factory.mktemp(f"self-check-{name}")
        args = selfcheck.parse_args(
            [str(folder), "--out", str(out), "--strict", "--no-progress", "--jobs", "2"]
        )
        before = _digest(folder)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = selfcheck.check(args, template=course_template)
        checks[name] = SelfCheck(code, printed.getvalue(), out, _digest(folder) != before)
    return checks


@pytest.fixture(scope="session")
def released_fixture(tmp_path_factory):
    """A small course made from tests/fixtures/: ``<tmp>/solutions/`` and its ``<tmp>/course/``.

    The fixture notebook (``00_fixture``) has a setup cell, a demo with a plot, one exercise
    (softmax), two graded test cells with hidden tests, and a written answer with a mark
    scheme; each secret line carries a ``fixture-*-marker`` comment.

    The same release run also meets what the release function must cope with: an assignment nbgrader
    rejects (``01_broken``, a duplicated grade_id; its error is saved in
    ``<tmp>/release-error.log``), an assignment removed from the source since the last release
    (``course/99_removed``) and a hidden file (``course/.gitkeep``).
    """
    root = tmp_path_factory.mktemp("fixture-course")
    shutil.copytree(FIXTURE_SOURCE, root / "solutions")
    broken = root / "solutions" / "01_broken" / "01_broken.ipynb"
    broken.parent.mkdir()
    nb = nbformat.read(root / "solutions" / "00_fixture" / "00_fixture.ipynb", as_version=4)
    graded = [c for c in nb.cells if c.metadata["nbgrader"].get("grade")]
    graded[1].metadata["nbgrader"]["grade_id"] = graded[0].metadata["nbgrader"]["grade_id"]
    nbformat.write(nb, broken)
    (root / "course" / "99_removed").mkdir(parents=True)
    (root / "course" / "99_removed" / "99_removed.ipynb").write_text("{}")
    (root / "course" / ".gitkeep").touch()

    from attention_grader import ReleaseError, release

    with pytest.raises(ReleaseError) as error:
        release(out_dir=root / "course", source_dir=root / "solutions")
    (root / "release-error.log").write_text(str(error.value))
    shutil.rmtree(root / "solutions" / "01_broken")  # the other tests see a valid course
    return root
