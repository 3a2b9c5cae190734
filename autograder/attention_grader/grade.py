"""Grade a whole class with nbgrader: one command from a folder of submissions to grades.

Usage::

    attention-grade SUBMISSIONS [--out DIR] [--jobs N] [--timeout S] [--sandbox]
    make grade SUBMISSIONS=path/to/submissions [GRADE_ARGS="--jobs 4 --sandbox"]

SUBMISSIONS holds each learner's work either in nbgrader's layout
``<student>/<assignment>/<notebook>.ipynb`` (what ``nbgrader collect`` produces) or as one
``<student>.zip`` / ``<student>.ipynb`` per learner (see ``submissions.py``); both may be
mixed. Every learner is graded on every assignment of ``solutions/`` (``--source``), with
``autograder/nbgrader_config.py``, each learner × assignment in its own nbgrader course folder
(``engine.py``), N at a time in worker processes (``pool.py``). Outputs, in
``grading-output/`` by default (``batch.py``): ``grades.csv`` (one row per learner ×
assignment, with a ``status``), ``summary.txt``, ``grade-distribution.png``,
``feedback/<student>/<assignment>/*.html``, ``logs/``, and ``nbgrader/`` (a course folder
with the merged gradebook, for Formgrader).

With ``--db-url``, the merged gradebook is also copied into a shared database (PostgreSQL) for
Formgrader and several graders (``gradebook_db.py``).

Exit status: 0 when the batch completed — even if some learners' work could not be graded
(their rows say why); 2 when the batch could not start (no such folder, no assignments, the
sandbox is unavailable, the source notebooks do not release, the database cannot be reached),
and 2 after a complete batch whose gradebook could not be copied into the database.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .paths import (
    ROOT,
    SOLUTIONS,
    InstructorError,
    default_workers,
    discover_assignments,
    run_command,
)

DEFAULT_OUT = ROOT / "grading-output"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="attention-grade",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", type=Path, help="folder of learners' submissions")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="output folder (default: grading-output/ in the repository)",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=default_workers(),
        help="notebooks graded at the same time (default: number of cores)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds a single cell may run (default: nbgrader_config.py's)",
    )
    parser.add_argument(
        "--wall-timeout",
        type=float,
        default=None,
        help="seconds for a whole notebook of one learner, all cells together "
        "(default: 900, or 8 x --timeout if that is larger)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=2048,
        help="memory (address space) limit of each learner's kernel, in MB",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="run learner code in a bubblewrap jail: no network, no writing "
        "outside its own folder (Linux; apt-get install bubblewrap)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=SOLUTIONS,
        help="nbgrader source folder (default: solutions/)",
    )
    parser.add_argument(
        "--assignment",
        action="append",
        default=None,
        metavar="NAME",
        help="grade only this assignment (repeatable; default: all)",
    )
    parser.add_argument(
        "--no-feedback", action="store_true", help="autograde only, no feedback HTML (faster)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--db-url",
        default=None,
        metavar="URL",
        help="also write the merged gradebook into this shared database, e.g. "
        "postgresql://grader@db.example.org/attention_gradebook (password from PGPASSWORD, "
        "never in the URL; see gradebook_db.py)",
    )
    parser.add_argument(
        "--db-password-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the database password (default: PGPASSWORD)",
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the per-job nbgrader folders (printed) for debugging",
    )
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, masks: list[Path]):
    from .engine import Settings

    wall = args.wall_timeout or max(900.0, 8.0 * (args.timeout or 0))
    return Settings(
        timeout=args.timeout,
        wall_timeout=wall,
        memory_mb=args.memory_mb,
        sandbox=args.sandbox,
        masks=[str(m) for m in masks],
        feedback=not args.no_feedback,
    )


def main(argv: list[str] | None = None) -> int:
    return run_command("attention-grade", grade, parse_args(argv))


def grade(args: argparse.Namespace) -> int:
    submissions_dir, source = args.submissions.resolve(), args.source.resolve()
    if not submissions_dir.is_dir():
        raise InstructorError(f"no such folder of submissions: {args.submissions}")
    assignments = discover_assignments(source)
    if args.assignment:
        unknown = sorted(set(args.assignment) - set(assignments))
        if unknown:
            raise InstructorError(
                f"unknown assignment(s) {', '.join(unknown)}; the source "
                f"folder {source} has: {', '.join(assignments) or 'none'}"
            )
        assignments = {a: nbs for a, nbs in assignments.items() if a in args.assignment}
    if not assignments:
        raise InstructorError(f"no assignments: {source} has no <assignment>/<notebook>.ipynb")
    if args.jobs < 1:
        raise InstructorError("--jobs must be at least 1")
    out = args.out.resolve()
    if out == submissions_dir or submissions_dir in out.parents:
        raise InstructorError("--out must not be inside the submissions folder")
    db_url = None
    if args.db_url:  # a wrong URL, password or server is reported before anything is graded
        from . import gradebook_db

        db_url = gradebook_db.parse_url(args.db_url, args.db_password_env)
        gradebook_db.check(db_url)
    # Only now the heavy imports (nbgrader, nbconvert: seconds): errors above come at once.
    from . import batch, pool, sandbox, submissions

    if args.sandbox and (problem := sandbox.problem()):
        raise InstructorError(f"--sandbox is not available: {problem}")
    batch.prepare_out(out)

    work = Path(tempfile.mkdtemp(prefix="attention-grading-"))
    try:
        masks = [submissions_dir, out, source, SOLUTIONS, work]
        settings = settings_from(args, sandbox.default_masks(*masks) if args.sandbox else [])
        print(f"Releasing {len(assignments)} assignment(s) from {source} ...", file=sys.stderr)
        pool.start()  # the workers' forkserver loads nbgrader while nbgrader releases
        template = batch.build_template(source, assignments, work)
        # Content matching also looks at ungraded cells: every grade_id of the release.
        learners, warnings = submissions.discover(
            submissions_dir, assignments, template.grade_ids()
        )
        for warning in warnings:
            print(f"attention-grade: {warning}", file=sys.stderr)
        if not learners:
            raise InstructorError(f"no submissions found in {submissions_dir}")
        print(
            f"Grading {len(learners)} learner(s) x {len(assignments)} assignment(s) with "
            f"{args.jobs} worker(s){' in the sandbox' if args.sandbox else ''} ...",
            file=sys.stderr,
        )
        results, _ = batch.run(
            learners=learners,
            template=template,
            work=work,
            out=out,
            source=source,
            settings=settings,
            workers=args.jobs,
            progress=not args.no_progress,
            keep_work=args.keep_work,
        )
    finally:
        if args.keep_work:
            print(f"attention-grade: work folders kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print((out / "summary.txt").read_text(encoding="utf-8"))
    print(f"grades:       {out / 'grades.csv'} ({len(results)} rows)")
    print(f"plot:         {out / 'grade-distribution.png'}")
    print(f"feedback:     {out / 'feedback'}/<student>/<assignment>/<notebook>.html")
    print(
        f"gradebook:    {out / 'nbgrader' / 'gradebook.db'} (Formgrader: run `jupyter lab` in "
        f"{out / 'nbgrader'})"
    )
    if db_url is not None:
        try:
            pushed = gradebook_db.push_batch(out, db_url)
        except InstructorError as exc:
            raise InstructorError(
                f"{exc} -- the grades are complete in {out}; once fixed, copy them with: "
                f"attention-gradebook-push {out} --db-url {gradebook_db.shown(db_url)}"
            ) from None
        print(
            f"database:     {gradebook_db.shown(db_url)} ({pushed.students} learner(s), "
            f"{pushed.submissions} submission(s); Formgrader in {out / 'nbgrader'} uses it)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
