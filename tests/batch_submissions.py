"""Batch submissions: what learners really hand in, built from the course's own notebooks.

Every submission is made from ``course/`` (what learners start from) and ``solutions/`` (the
answers), so the catalogue follows the course as it changes. :func:`build` writes a
submissions folder mixing both layouts ``attention-grade`` accepts, and returns what each row
of ``grades.csv`` must say.

Most tampering happens in the *target* assignment: the one with the most exercises (two
exercises let a learner break one and keep the other). Learners other than ``perfect`` hand in
only that assignment, so their other rows must say ``missing``.

Usage from a shell (to try ``make grade`` on it)::

    python tests/batch_submissions.py /tmp/catalogue
    make grade SUBMISSIONS=/tmp/catalogue GRADE_ARGS="--timeout 5"
"""

from __future__ import annotations

import copy
import json
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"


@dataclass(frozen=True)
class Expected:
    """What grades.csv must say for one learner x assignment."""

    status: str
    code_score: float | None  # None: not checked (e.g. the grader itself failed)
    note: str = ""  # a fragment the notes must contain
    why: str = ""  # what the learner did (shown when the test fails)


def _meta(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _gid(cell) -> str | None:
    return _meta(cell).get("grade_id")


def _strip_markers(source: str) -> str:
    return "\n".join(
        line
        for line in source.splitlines()
        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    )


class Course:
    """The released and the solved notebooks of a course, and facts about their cells."""

    def __init__(self, source: Path = SOLUTIONS, release: Path = COURSE):
        self.source, self.release = Path(source), Path(release)
        self.assignments = sorted(p.parent.name for p in self.source.glob("*/*.ipynb"))
        if not self.assignments:
            raise FileNotFoundError(f"no notebooks in {self.source}")

    def notebook(self, assignment: str) -> str:
        return next(self.source.glob(f"{assignment}/*.ipynb")).stem

    def released(self, assignment: str):
        return nbformat.read(self.release / assignment / f"{self.notebook(assignment)}.ipynb", 4)

    def solved(self, assignment: str):
        return nbformat.read(self.source / assignment / f"{self.notebook(assignment)}.ipynb", 4)

    def solved_sources(self, assignment: str) -> dict[str, str]:
        nb = self.solved(assignment)
        return {
            _gid(c): _strip_markers(c.source)
            for c in nb.cells
            if _meta(c).get("solution") and c.cell_type == "code"
        }

    def exercises(self, assignment: str) -> list[tuple[str, list[str]]]:
        """``[(exercise grade_id, [its test grade_ids])]`` in notebook order."""
        out: list[tuple[str, list[str]]] = []
        for cell in self.solved(assignment).cells:
            meta = _meta(cell)
            if meta.get("solution") and cell.cell_type == "code":
                out.append((meta["grade_id"], []))
            elif meta.get("grade") and not meta.get("solution") and out:
                out[-1][1].append(meta["grade_id"])
        return out

    def points(self, assignment: str, test_ids=None) -> float:
        return float(
            sum(
                _meta(c)["points"]
                for c in self.solved(assignment).cells
                if _meta(c).get("grade")
                and not _meta(c).get("solution")
                and (test_ids is None or _gid(c) in test_ids)
            )
        )

    def target(self) -> str:
        """Where the tampering happens: an assignment with two or more exercises (a learner
        can break one and keep the others) that do not call each other; among those, one
        with a written answer, then the one with the fewest code cells (the fastest)."""

        def independent(assignment):
            solved = self.solved_sources(assignment)
            names = [name for name, _ in self.exercises(assignment)]
            return not any(
                f"{a}(" in solved[b] for i, a in enumerate(names) for b in names[i + 1 :]
            )

        def key(assignment):
            cells = self.solved(assignment).cells
            written = any(_meta(c).get("grade") and _meta(c).get("solution") for c in cells)
            return (
                len(self.exercises(assignment)) >= 2 and independent(assignment),
                written,
                -sum(c.cell_type == "code" for c in cells),
                assignment,
            )

        return max(self.assignments, key=key)

    def perfect(self, assignment: str):
        """The release with every exercise solved and every written answer written."""
        nb = self.released(assignment)
        solved = self.solved_sources(assignment)
        for cell in nb.cells:
            meta = _meta(cell)
            if meta.get("solution") and cell.cell_type == "code":
                cell.source = solved[meta["grade_id"]]
            elif meta.get("solution"):
                cell.source = "Because the scores would otherwise grow with the width."
        return nb


def _index(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if _gid(c) == gid)


def with_body(source: str, body: str) -> str:
    """Replace a function's body (after its docstring) with ``body``."""
    match = re.search(r'(def [^\n]*:\n\s+"""[\s\S]*?"""\n)', source)
    head = match.group(1) if match else source.split("\n", 1)[0] + "\n"
    return head + "".join(f"    {line}\n" for line in body.splitlines())


def _write(nb, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def plan(source: Path = SOLUTIONS) -> list[str]:
    """The assignments the catalogue uses: the first one and the target (see Course.target).

    Read from the source notebooks only: the release of these two is all :func:`build` needs.
    """
    course = Course(source)
    return sorted({course.assignments[0], course.target()})


def build(
    dest: Path,
    source: Path = SOLUTIONS,
    release: Path = COURSE,
) -> dict[tuple[str, str], Expected]:
    """Write the catalogue's submissions into ``dest``; return the expected rows.

    The rows cover the assignments of :func:`plan` (grade with ``--assignment`` for each).
    """
    course = Course(source, release)
    course.assignments = plan(source)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = course.target()
    name = course.notebook(target)
    (ex1, tests1), (ex2, tests2) = course.exercises(target)[:2]
    full = course.points(target)
    part1 = course.points(target, tests1)  # only exercise 1's tests ran (kernel died in ex. 2)
    part2 = full - part1  # exercise 1 broken, every other exercise right
    expected: dict[tuple[str, str], Expected] = {}

    def folder(student: str, nb, filename: str | None = None) -> None:
        _write(nb, dest / student / target / (filename or f"{name}.ipynb"))

    def expect(
        student: str, status: str, score, note: str = "", why: str = "", others: str = "missing"
    ) -> None:
        expected[(student, target)] = Expected(status, score, note, why)
        for assignment in course.assignments:
            if assignment != target:
                expected[(student, assignment)] = Expected(others, 0.0, "", why)

    # -- the baseline (the only learner who hands in more than one assignment) ------------------
    for assignment in course.assignments:
        _write(
            course.perfect(assignment),
            dest / "perfect" / assignment / f"{course.notebook(assignment)}.ipynb",
        )
        expected[("perfect", assignment)] = Expected(
            "ok", course.points(assignment), "", "every exercise solved"
        )

    folder("untouched", course.released(target))
    expect("untouched", "ok", 0.0, "", "handed in the release as it is")

    nb = course.perfect(target)
    nb.cells[_index(nb, ex1)].source = with_body(nb.cells[_index(nb, ex1)].source, "return None")
    folder("wrong_answer", nb)
    expect("wrong_answer", "ok", part2, "", "exercise 1 returns None")

    # -- cells duplicated, deleted, edited ---------------------------------------------------
    nb = course.perfect(target)
    at = _index(nb, ex1)
    nb.cells.insert(at + 1, copy.deepcopy(nb.cells[at]))  # same grade_id *and* same cell id
    path = dest / "duplicated_solution" / target / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(nb, indent=1))  # as a JSON edit would: nbformat would fix the id
    expect(
        "duplicated_solution",
        "repaired",
        full,
        f"cell '{ex1}' appeared 2 times",
        "exercise cell duplicated (nbgrader alone: KeyError, notebook not graded)",
    )

    nb = course.perfect(target)
    duplicate = copy.deepcopy(nb.cells[_index(nb, tests2[0])])
    duplicate["id"] = "pasted-copy"
    nb.cells.append(duplicate)
    folder("duplicated_test", nb)
    expect(
        "duplicated_test",
        "repaired",
        full,
        f"cell '{tests2[0]}' appeared 2 times",
        "test cell pasted again at the end",
    )

    nb = course.perfect(target)
    statement = _index(nb, ex2) - 1  # the read-only statement before exercise 2
    doomed = {nb.cells[statement]["id"], *(nb.cells[_index(nb, t)]["id"] for t in tests1)}
    nb.cells = [c for c in nb.cells if c["id"] not in doomed or _gid(c) == ex2]
    folder("deleted_tests", nb)
    expect(
        "deleted_tests",
        "repaired",
        full,
        "restored deleted cell(s)",
        "deleted exercise 1's tests and a read-only cell (nbgrader alone: KeyError)",
    )

    nb = course.perfect(target)
    for gid in tests1:
        cell = nb.cells[_index(nb, gid)]
        cell.source = "pass  # tests are for other people"
        cell.metadata["nbgrader"]["points"] = 100
        cell.metadata["nbgrader"]["locked"] = False
    nb.cells[_index(nb, ex1)].source = with_body(nb.cells[_index(nb, ex1)].source, "return None")
    folder("edited_tests", nb)
    expect(
        "edited_tests",
        "repaired",
        part2,
        "edited read-only cell(s) restored",
        "replaced exercise 1's tests with `pass` and set their points to 100",
    )

    nb = course.perfect(target)
    nb.cells[_index(nb, tests2[-1])].cell_type = "markdown"
    nb.cells[_index(nb, tests2[-1])].pop("outputs", None)
    nb.cells[_index(nb, tests2[-1])].pop("execution_count", None)
    nb.metadata["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia", "language": "julia"}
    folder("changed_cell_type", nb)
    expect(
        "changed_cell_type",
        "repaired",
        full,
        "cell type restored",
        "turned a test cell into markdown, and a Julia kernelspec",
    )

    # -- files that are not (good) notebooks -------------------------------------------------
    text = nbformat.writes(course.perfect(target))
    path = dest / "corrupt_json" / target / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(text[: len(text) // 2])
    expect("corrupt_json", "unreadable notebook", 0.0, "corrupt JSON", "file cut in half")

    path = dest / "empty_file" / target / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    expect("empty_file", "unreadable notebook", 0.0, "empty", "a 0-byte file")

    path = dest / "not_a_notebook" / target / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"hello": "world"}))
    expect(
        "not_a_notebook",
        "unreadable notebook",
        0.0,
        "not a Jupyter notebook",
        "valid JSON that is not a notebook",
    )

    old = nbformat.convert(course.perfect(target), 3)
    path = dest / "old_format" / target / f"{name}.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text(nbformat.writes(old, version=3))
    expect(
        "old_format", "repaired", full, "converted from notebook format 3", "saved in nbformat 3"
    )

    (dest / "missing_notebook" / target).mkdir(parents=True)
    (dest / "missing_notebook" / target / "notes.txt").write_text("I ran out of time.\n")
    expect("missing_notebook", "missing", 0.0, "", "a folder without a notebook")

    (dest / "broken_zip.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    expect(
        "broken_zip",
        "unreadable notebook",
        0.0,
        "not a readable zip",
        "a corrupt zip",
        others="unreadable notebook",
    )

    # -- the other layout: one .zip or .ipynb per learner -----------------------------------
    with zipfile.ZipFile(dest / "zip_submission.zip", "w") as archive:
        archive.writestr(f"attention-course/course/{target}/{name}.ipynb", text)
        archive.writestr(f"__MACOSX/attention-course/course/{target}/._{name}.ipynb", "junk")
        archive.writestr(
            f"attention-course/course/{target}/.ipynb_checkpoints/{name}-checkpoint.ipynb",
            nbformat.writes(course.released(target)),
        )
    expect("zip_submission", "ok", full, "", "a zip of the learner's course/ folder")

    (dest / "single_notebook.ipynb").write_text(text)
    expect(
        "single_notebook",
        "ok",
        full,
        "graded single_notebook.ipynb as",
        "one notebook named by student id, recognised by its cells",
    )

    folder("renamed_notebook", course.perfect(target), f"{name} (1).ipynb")
    expect("renamed_notebook", "ok", full, f"as {name}.ipynb", "notebook renamed by a download")

    # -- learner code that misbehaves while it runs ------------------------------------------
    nb = course.perfect(target)
    nb.cells[_index(nb, ex1)].source = with_body(
        nb.cells[_index(nb, ex1)].source, "while True:\n    pass"
    )
    folder("infinite_loop", nb)
    expect(
        "infinite_loop",
        "ok",
        part2,
        "",
        "exercise 1 never returns (the checks stop each call and say so: no cell times out)",
    )

    nb = course.perfect(target)
    nb.cells[_index(nb, ex2)].source = with_body(
        nb.cells[_index(nb, ex2)].source,
        (
            "import time\n"
            "while True:  # a bare except swallows the grader's KeyboardInterrupt\n"
            "    try:\n"
            "        time.sleep(1)\n"
            "    except:  # noqa: E722\n"
            "        pass"
        ),
    )
    folder("swallows_interrupt", nb)
    expect(
        "swallows_interrupt",
        "kernel died",
        part1,
        "stopped responding after a timeout",
        "exercise 2 loops forever and catches KeyboardInterrupt",
    )

    nb = course.perfect(target)
    nb.cells[_index(nb, ex2)].source += "\n\nimport os\nos._exit(1)\n"
    folder("os_exit", nb)
    expect(
        "os_exit",
        "kernel died",
        part1,
        f"the kernel died in cell {ex2}",
        "os._exit(1) after defining exercise 2",
    )

    nb = course.perfect(target)
    nb.cells[
        _index(nb, ex2)
    ].source += "\n\nimport os\nimport signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
    folder("oom_killed", nb)
    expect(
        "oom_killed",
        "kernel died",
        part1,
        f"the kernel died in cell {ex2}",
        "the kernel is SIGKILLed, as the kernel's OOM killer does",
    )

    nb = course.perfect(target)
    nb.cells[_index(nb, ex1)].source = with_body(
        nb.cells[_index(nb, ex1)].source,
        "hog = np.ones(8 * 2**30 // 8)  # 8 GB, far above the kernel's memory limit\nreturn hog",
    )
    folder("memory_hog", nb)
    expect("memory_hog", "ok", part2, "", "exercise 1 allocates 8 GB (MemoryError, alone)")

    nb = course.perfect(target)
    cell = nb.cells[_index(nb, ex1)]
    solved = course.solved_sources(target)[ex1]
    cell.source = (
        "import logging\nimport sys\n\nlogging.basicConfig()  # a handler on stderr\n"
        f"\n{solved}\n\n_inner_{ex1} = {ex1}\n\n\n"
        f"def {ex1}(*args, **kwargs):\n"
        f"    logging.warning('debug: called {ex1}')\n"
        f"    return _inner_{ex1}(*args, **kwargs)\n"
    )
    folder("stderr_correct", nb)
    expect(
        "stderr_correct",
        "ok",
        full,
        "output on stderr in test cell(s) kept as text",
        "a correct answer that logs to stderr (plain nbgrader scores it 0)",
    )
    return expected


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/batch_submissions.py DEST")
    rows = build(Path(sys.argv[1]))
    print(f"wrote {len({s for s, _ in rows})} learners to {sys.argv[1]}")
