"""Batch grading vs serial nbgrader, measured side by side in one run.

A class of N learners (default 100) hands in every assignment of solutions/: 70 % solve
everything, 20 % get the first exercise wrong, 10 % hand in the release untouched (a mix plain
nbgrader can grade: no tampering, so the baseline does not crash). Then, on the same machine:

1. serial baseline: plain ``nbgrader autograde <assignment>`` (one command per assignment, as
   an instructor runs it) in a course folder made with ``nbgrader generate_assignment``, then
   ``nbgrader generate_feedback <assignment>``;
2. ``attention-grade --no-feedback`` (autograde only: the same work as 1's autograde);
3. ``attention-grade`` (everything: autograde, feedback, CSV, plot, merged gradebook).

Every command runs end to end as a user would run it (its own start-up included; setting up
the baseline's course folder is not timed). Prints the times and the ratios; the README
records them. Usage, from the repository's root (the class is built with
``tests/batch_submissions.py``, imported as ``tests.batch_submissions``)::

    python -m benchmarks.bench_grading                    # 100 learners, all notebooks
    python -m benchmarks.bench_grading --learners 20      # smaller class
    python -m benchmarks.bench_grading --jobs 3           # attention-grade workers (default: cores)
    python -m benchmarks.bench_grading --autograde-only   # like for like, about half the time
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from attention_grader import CONFIG_FILE, ROOT, SOLUTIONS, build_template
from attention_grader.paths import default_workers, discover_assignments
from tests.batch_submissions import Course, with_body

#: The console script of `make grade`, next to this interpreter.
GRADE = Path(sys.executable).parent / "attention-grade"


def make_class(dest: Path, release: Path, learners: int) -> int:
    course = Course(release=release)
    notebooks = 0
    for i in range(learners):
        student = f"learner{i:03d}"
        kind = "untouched" if i % 10 == 9 else "wrong" if i % 10 in (7, 8) else "perfect"
        for assignment in course.assignments:
            name = course.notebook(assignment)
            if kind == "untouched":
                nb = course.released(assignment)
            else:
                nb = course.perfect(assignment)
                if kind == "wrong":
                    first = course.exercises(assignment)[0][0]
                    cell = next(
                        c
                        for c in nb.cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") == first
                    )
                    cell.source = with_body(cell.source, "return None")
            path = dest / student / assignment / f"{name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            notebooks += 1
    return notebooks


def nbgrader_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


CPU: dict[str, float] = {}


def run(command: list[str], cwd: Path, label: str | None = None) -> float:
    """Wall time of a command; its CPU time (with its children's) goes to CPU[label]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=nbgrader_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if label:
        CPU[label] = (
            CPU.get(label, 0.0)
            + (after.ru_utime - before.ru_utime)
            + (after.ru_stime - before.ru_stime)
        )
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds


def load() -> str:
    """The machine's load average: other work on the machine slows the parallel run most."""
    try:
        return f"load {os.getloadavg()[0]:.1f}"
    except OSError:
        return "load ?"


def serial(course: Path, assignments: list[str], step: str, label: str) -> float:
    """Run ``nbgrader <step> <assignment>`` per assignment in turn; print and return the time."""
    seconds = sum(
        run([sys.executable, "-m", "nbgrader", step, a], course, label) for a in assignments
    )
    print(
        f"{'serial nbgrader ' + step + ':':<41}{seconds:8.1f} s  "
        f"(CPU {CPU[label]:.0f} s; {load()})",
        flush=True,
    )
    return seconds


def serial_course(work: Path, submissions: Path, assignments: list[str]) -> Path:
    course = work / "serial"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(CONFIG_FILE)!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.source_directory = {str(SOLUTIONS)!r}\n"
        f"c.CourseDirectory.release_directory = {str(course / 'release')!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
    )
    for assignment in assignments:
        run(
            [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"], course
        )
    shutil.copytree(submissions, course / "submitted")
    return course


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=default_workers())
    parser.add_argument(
        "--skip-serial",
        action="store_true",
        help="only time attention-grade (no baseline, no ratio)",
    )
    parser.add_argument(
        "--autograde-only",
        action="store_true",
        help="compare autograding only: skip the full attention-grade run and serial "
        "generate_feedback",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        assignments = discover_assignments(SOLUTIONS)
        template = build_template(SOLUTIONS, assignments, work / "release-work")
        submissions = work / "class"
        notebooks = make_class(submissions, template.path / "release", args.learners)
        print(
            f"class: {args.learners} learners x {len(assignments)} notebooks = {notebooks} "
            f"notebooks; {os.cpu_count()} cores; attention-grade --jobs {args.jobs}",
            flush=True,
        )

        grade = [
            str(GRADE),
            str(submissions),
            "--jobs",
            str(args.jobs),
            "--no-progress",
        ]
        print(f"before: {load()}", flush=True)
        ours_auto = run([*grade, "--out", str(work / "out-auto"), "--no-feedback"], ROOT, "auto")
        print(
            f"attention-grade --no-feedback (autograde only): {ours_auto:8.1f} s  "
            f"(CPU {CPU['auto']:.0f} s; {load()})",
            flush=True,
        )
        if not args.autograde_only:
            ours_full = run([*grade, "--out", str(work / "out-full")], ROOT, "full")
            print(
                f"attention-grade (autograde + feedback + CSV):   {ours_full:8.1f} s  "
                f"(CPU {CPU['full']:.0f} s; {load()})",
                flush=True,
            )
        if args.skip_serial:
            return 0

        course = serial_course(work, submissions, sorted(assignments))
        serial_auto = serial(course, sorted(assignments), "autograde", "serial")
        cores = min(args.jobs, os.cpu_count() or 1)
        if args.autograde_only:
            print()
            print(
                f"autograde only:  attention-grade --no-feedback / serial nbgrader autograde = "
                f"{ours_auto / serial_auto:.2f}x   (target <= 0.55x on 2 cores)"
            )
            print(
                f"CPU seconds:     attention-grade {CPU['auto']:.0f} s, "
                f"serial {CPU['serial']:.0f} s; "
                f"projected on {cores} idle cores: {CPU['auto'] / cores / CPU['serial']:.2f}x"
            )
            return 0
        serial_feedback = serial(course, sorted(assignments), "generate_feedback", "fb")

        print()
        print(
            f"autograde only:  attention-grade / serial nbgrader autograde = "
            f"{ours_auto / serial_auto:.2f}x"
        )
        print(
            f"everything:      attention-grade / serial nbgrader autograde = "
            f"{ours_full / serial_auto:.2f}x   (target <= 0.55x on 2 cores)"
        )
        print(
            f"like for like:   attention-grade / serial autograde + generate_feedback = "
            f"{ours_full / (serial_auto + serial_feedback):.2f}x"
        )
        # On a machine shared with other work the parallel run loses most. The CPU seconds
        # each side needs barely depend on that: serial nbgrader keeps one core busy (its
        # kernel and nbgrader take turns), attention-grade keeps `cores` busy. A projection, not a
        # measurement: (attention-grade CPU / cores) / (serial CPU).
        print(
            f"CPU seconds:     attention-grade {CPU['full']:.0f} s "
            f"(autograde only {CPU['auto']:.0f} s), serial autograde {CPU['serial']:.0f} s; "
            f"projected on {cores} idle cores: "
            f"everything {CPU['full'] / cores / CPU['serial']:.2f}x, autograde only "
            f"{CPU['auto'] / cores / CPU['serial']:.2f}x"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
