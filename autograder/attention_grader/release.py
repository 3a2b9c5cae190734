"""Regenerate the learners' notebooks (course/) from the hand-written ones (solutions/).

Usage::

    python autograder/release.py               # solutions/ -> course/  (what `make release` runs)
    python autograder/release.py --out DIR     # solutions/ -> DIR      (as the sync test)
    python autograder/release.py --source DIR  # another source folder (the tests' fixture)

Every assignment is a folder ``<source>/<assignment>/`` holding at least one notebook; the list
is discovered from ``<source>/*/*.ipynb``, never written down. Each one is released exactly as

    nbgrader generate_assignment <assignment> --force

would: the same nbgrader application and arguments, run from ``autograder/`` (nbgrader has no
``--config`` flag: it reads ``nbgrader_config.py`` from its working directory) with this
interpreter's ``bin/`` first on PATH (nbgrader starts ``alembic`` by name when it creates a
gradebook). All assignments go through one child process, one after the other: starting
nbgrader costs ~4 s of CPU and creating its gradebook as much again, which a separate command
per assignment would pay every time. The gradebook is a throwaway sqlite file in a temporary
folder (``--CourseDirectory.db_url``): releasing never leaves a ``gradebook.db`` behind.
Released assignments whose source folder is gone are removed.

From Python (tests)::

    from release import release      # with autograder/ on sys.path
    release(out_dir=tmp / "course")
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

AUTOGRADER = Path(__file__).resolve().parent
ROOT = AUTOGRADER.parent
SOLUTIONS = ROOT / "solutions"
COURSE = ROOT / "course"

#: Printed by the worker before each assignment, to split nbgrader's log per assignment.
_MARK = "=== release.py:"


class ReleaseError(RuntimeError):
    """nbgrader could not release an assignment; the message holds its log."""


def assignments(source_dir: Path = SOLUTIONS) -> list[str]:
    """Names of the assignment folders of ``source_dir`` that hold a notebook, sorted."""
    return sorted({nb.parent.name for nb in Path(source_dir).glob("*/*.ipynb")})


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: this interpreter's bin/ (alembic, jupyter) first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def _worker(names: list[str], options: list[str]) -> int:
    """In the child process: `nbgrader generate_assignment <name> --force <options>` for each.

    Runs from autograder/. A failing assignment does not stop the others.
    """
    from nbgrader.apps.generateassignmentapp import GenerateAssignmentApp

    failed = 0
    for name in names:
        print(f"{_MARK} {name}", file=sys.stderr, flush=True)
        app = GenerateAssignmentApp()  # a fresh application, as each command would start
        ok = True
        try:
            app.initialize([name, "--force", *options])
            app.start()
        except SystemExit as exc:  # nbgrader exits 1 when the conversion fails
            ok = not exc.code
        except Exception as exc:  # noqa: BLE001 - report it with the assignment's log
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            ok = False
        for handler in app.log.handlers:
            handler.flush()
        print(f"{_MARK} {name} {'released' if ok else 'FAILED'}", file=sys.stderr, flush=True)
        failed += not ok
    return 1 if failed else 0


def release(out_dir: Path = COURSE, source_dir: Path = SOLUTIONS) -> list[str]:
    """Release every assignment of ``source_dir`` into ``out_dir``; return their names.

    ``out_dir`` ends up holding exactly one folder per assignment (hidden entries such as
    ``.gitkeep`` are left alone; other stray top-level files are reported, not deleted).
    Raises :class:`ReleaseError`, with nbgrader's log, if any assignment fails.
    """
    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir).resolve()
    names = assignments(source_dir)
    if not names:
        raise ReleaseError(f"no notebooks found in {source_dir}/*/*.ipynb: nothing to release")
    out_dir.mkdir(parents=True, exist_ok=True)

    for entry in sorted(out_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name not in names:
            print(f"removing {entry}: its assignment is no longer in {source_dir}")
            shutil.rmtree(entry)
        elif not entry.is_dir():
            print(f"warning: {entry} is not a released assignment (left in place)")

    with tempfile.TemporaryDirectory(prefix="release-gradebook-") as tmp:
        options = [
            f"--CourseDirectory.db_url=sqlite:///{Path(tmp) / 'gradebook.db'}",
            f"--CourseDirectory.source_directory={source_dir}",
            f"--CourseDirectory.release_directory={out_dir}",
        ]
        result = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", *names, "--", *options],
            cwd=AUTOGRADER,
            env=nbgrader_env(),
            capture_output=True,
            text=True,
        )

    logs, outcome, current = {name: "" for name in names}, {}, None
    for line in result.stderr.splitlines(keepends=True):
        if line.startswith(_MARK):
            current, *verdict = line[len(_MARK) :].split()
            if verdict:
                outcome[current] = verdict[0]
        elif current in logs:
            logs[current] += line
    errors = []
    for name in names:
        released = len(list((out_dir / name).glob("*.ipynb")))
        expected = len(list((source_dir / name).glob("*.ipynb")))
        if outcome.get(name) != "released" or released != expected:
            errors.append(
                f"`nbgrader generate_assignment {name} --force` failed ({released} of "
                f"{expected} notebooks released). nbgrader's log:\n{logs[name]}"
            )
    if result.returncode != 0 and not errors:
        errors.append(f"the nbgrader run failed:\n{result.stdout}{result.stderr}")
    if errors:
        raise ReleaseError("\n\n".join(errors))
    return names


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:  # internal: the child process started by release()
        split = argv.index("--")
        return _worker(argv[1:split], argv[split + 1 :])

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=COURSE, help="release folder (course/)")
    parser.add_argument("--source", type=Path, default=SOLUTIONS, help="source (solutions/)")
    args = parser.parse_args(argv)
    try:
        names = release(args.out, args.source)
    except ReleaseError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name in names:
        print(f"released {name} -> {args.out.resolve() / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
