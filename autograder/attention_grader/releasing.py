"""Release: the learners' notebooks (course/) from the hand-written ones (solutions/).

One function, :func:`release`, serves ``make release`` (``attention-release``), the template
of every grading batch (``engine.build_template``, hence ``make grade`` and ``make check``)
and the tests. Usage::

    attention-release                 # solutions/ -> course/  (what `make release` runs)
    attention-release --out DIR       # solutions/ -> DIR
    attention-release --source DIR    # another source folder (the tests' fixture)

Every assignment is a folder ``<source>/<assignment>/`` holding at least one notebook; the list
is discovered from ``<source>/*/*.ipynb``, never written down. Each is released by nbgrader's
own ``generate_assignment`` (``NbGraderAPI``, in this process) with the course's
``autograder/nbgrader_config.py``, exactly the configuration ``nbgrader generate_assignment``
reads when it runs in ``autograder/``. (An earlier version re-launched itself as that command
in ``autograder/``, because nbgrader's command reads its configuration from the working
folder; the API takes the configuration as an object, so no second process and no change of
folder are needed. Its other reason, starting nbgrader once for all assignments, still holds:
they are released one after the other by one ``NbGraderAPI``.) The gradebook is a throwaway
sqlite file unless the caller keeps it (a batch's template does). Released assignments whose
source folder is gone are removed.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .paths import COURSE, SOLUTIONS


class ReleaseError(RuntimeError):
    """nbgrader could not release an assignment; the message holds its log."""


def assignment_names(source_dir: Path = SOLUTIONS) -> list[str]:
    """Names of the assignment folders of ``source_dir`` that hold a notebook, sorted."""
    return sorted({nb.parent.name for nb in Path(source_dir).glob("*/*.ipynb")})


def _prune(out_dir: Path, names: list[str], source_dir: Path) -> None:
    """Remove released assignments that are gone from the source; leave hidden entries."""
    for entry in sorted(out_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir() and entry.name not in names:
            print(f"removing {entry}: its assignment is no longer in {source_dir}")
            shutil.rmtree(entry)
        elif not entry.is_dir():
            print(f"warning: {entry} is not a released assignment (left in place)")


def release(
    source_dir: Path = SOLUTIONS,
    out_dir: Path = COURSE,
    *,
    assignments: list[str] | None = None,
    gradebook: Path | None = None,
) -> list[str]:
    """Release assignments of ``source_dir`` into ``out_dir``; return their names.

    Parameters
    ----------
    source_dir, out_dir : Path
        nbgrader's source and release folders (``<folder>/<assignment>/<notebook>.ipynb``).
    assignments : list of str, optional
        Release only these. By default every assignment of ``source_dir``, and ``out_dir`` is
        made to hold exactly one folder per assignment (hidden entries such as ``.gitkeep`` are
        left alone; other stray top-level files are reported, not deleted).
    gradebook : Path, optional
        Keep nbgrader's gradebook (which knows every graded cell) in this sqlite file; by
        default a temporary one is thrown away.

    Raises
    ------
    ReleaseError
        If any assignment fails (the others are released), with nbgrader's log of each failure.
    """
    from nbgrader.apps import NbGraderAPI

    from . import engine

    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir).resolve()
    names = sorted(assignments) if assignments is not None else assignment_names(source_dir)
    if not names:
        raise ReleaseError(f"no notebooks found in {source_dir}/*/*.ipynb: nothing to release")
    out_dir.mkdir(parents=True, exist_ok=True)
    if assignments is None:
        _prune(out_dir, names, source_dir)
    engine.fast_alembic()
    with tempfile.TemporaryDirectory(prefix="release-gradebook-") as tmp:
        root = Path(gradebook).resolve().parent if gradebook else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        cfg = engine.nbgrader_config(root, source_dir, out_dir)
        cfg.CourseDirectory.db_url = f"sqlite:///{Path(gradebook or Path(tmp) / 'gradebook.db')}"
        api = NbGraderAPI(config=cfg)
        errors = []
        for name in names:
            outcome = api.generate_assignment(name, force=True)
            released = len(list((out_dir / name).glob("*.ipynb")))
            expected = len(list((source_dir / name).glob("*.ipynb")))
            if not outcome["success"] or released != expected:
                log = f"{outcome.get('log', '')}\n{outcome.get('error', '')}".strip()
                errors.append(
                    f"`nbgrader generate_assignment {name} --force` failed ({released} of "
                    f"{expected} notebooks released). nbgrader's log:\n{log}"
                )
    if errors:
        raise ReleaseError("\n\n".join(errors))
    return names


def main(argv: list[str] | None = None) -> int:
    """``attention-release``: release solutions/ (or --source) into course/ (or --out)."""
    parser = argparse.ArgumentParser(prog="attention-release", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=COURSE, help="release folder (course/)")
    parser.add_argument("--source", type=Path, default=SOLUTIONS, help="source (solutions/)")
    args = parser.parse_args(argv)
    try:
        names = release(args.source, args.out)
    except ReleaseError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name in names:
        print(f"released {name} -> {args.out.resolve() / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
