"""The grading engine shared by ``grade.py`` (a class) and ``selfcheck.py`` (one learner).

Everything here runs nbgrader itself, in-process, through its Python API (``NbGraderAPI``):
``generate_assignment`` once per batch to build a *template* (the release and a gradebook that
knows every cell), then, per learner × assignment, ``autograde`` and ``generate_feedback`` in a
private nbgrader course directory::

    <job>/course/gradebook.db                      copy of the template's gradebook
    <job>/course/submitted/<student>/<assignment>/  the learner's notebook(s), after _repair
    <job>/course/autograded/..., feedback/...      written by nbgrader
    <job>/jupyter/kernels/python3/kernel.json      the kernel: _kernel.py (limits, sandbox)
    <job>/home, <job>/runtime                      the kernel's HOME and connection files

Each job runs in its own process (``_pool``); nothing a learner's notebook does can reach
another job's gradebook, files or kernel. The parent merges the results.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import _preprocessors
import _repair
import nbformat
from _common import (  # noqa: F401 - re-exported for the entry points
    AUTOGRADER,
    CONFIG_FILE,
    COURSE,
    ROOT,
    SOLUTIONS,
    discover_assignments,
)
from _preprocessors import CELL_TIMEOUT, KERNEL_DIED, KERNEL_UNRESPONSIVE
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.preprocessors import Execute
from traitlets.config import Config, PyFileConfigLoader

#: Status of a learner × assignment row, most severe first (a row shows the most severe).
STATUSES = (
    "grader error",  # nbgrader failed for a reason of its own: the notes have its error
    "time limit",  # grading the notebook exceeded the wall-clock limit: not graded
    "unreadable notebook",  # corrupt JSON, empty, not a notebook, a broken zip
    "missing",  # no notebook handed in for this assignment
    "kernel died",  # graded up to the crash (os._exit, segfault, memory limit)
    "timeout",  # a cell hit the per-cell time limit; graded, that cell scored 0
    "repaired",  # graded after automatic repairs listed in the notes
    "ok",
)


def worst(statuses) -> str:
    statuses = set(statuses) or {"ok"}
    return next(s for s in STATUSES if s in statuses)


@dataclass
class Settings:
    """How to grade; the same for every job of a batch."""

    timeout: int | None = None  # seconds per cell; None: nbgrader_config.py's
    wall_timeout: float = 900.0  # seconds per learner × assignment, all cells together
    memory_mb: int = 2048  # address-space limit of each kernel
    file_mb: int = 1024  # largest file a kernel may write
    sandbox: bool = False
    masks: list[str] = field(default_factory=list)  # hidden from sandboxed kernels
    feedback: bool = True


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def nbgrader_config(
    root: Path,
    source: Path,
    release: Path,
    settings: Settings | None = None,
    runtime: Path | None = None,
) -> Config:
    """The course's nbgrader_config.py, pointed at a private course directory."""
    cfg = PyFileConfigLoader(CONFIG_FILE.name, path=str(AUTOGRADER)).load_config()
    cfg.CourseDirectory.root = str(root)
    cfg.CourseDirectory.source_directory = str(source)
    cfg.CourseDirectory.release_directory = str(release)
    cfg.CourseDirectory.db_url = f"sqlite:///{Path(root) / 'gradebook.db'}"
    cfg.NbGraderAPI.log_level = "INFO"
    if settings is None:
        return cfg
    if settings.timeout:
        cfg.Execute.timeout = int(settings.timeout)
        cfg.ExecutePreprocessor.timeout = int(settings.timeout)
    # Autograde: our Execute (survives dead kernels) and stderr relabelled in test cells.
    steps = cfg.Autograde.get("autograde_preprocessors") or list(
        Autograde.class_traits()["autograde_preprocessors"].default()
    )
    graded = []
    for step in steps:
        name = step if isinstance(step, str) else f"{step.__module__}.{step.__name__}"
        if step is Execute or name.endswith(".Execute"):
            graded += [_preprocessors.GraderExecute, _preprocessors.StderrAsText]
        else:
            graded.append(step)
    cfg.Autograde.autograde_preprocessors = graded
    # Feedback: quotes of hidden tests removed from outputs before ClearHiddenTests runs.
    steps = list(
        cfg.GenerateFeedback.get("preprocessors")
        or [
            "nbgrader.preprocessors.GetGrades",
            "nbgrader.preprocessors.ClearHiddenTests",
            "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        ]
    )
    names = [s if isinstance(s, str) else s.__name__ for s in steps]
    at = next((i for i, n in enumerate(names) if n.endswith("ClearHiddenTests")), None)
    if at is None:
        steps.insert(1, "nbgrader.preprocessors.ClearHiddenTests")
        at = 1
    steps.insert(at, _preprocessors.ScrubHiddenTests)
    cfg.GenerateFeedback.preprocessors = steps
    if settings.sandbox:
        # The jailed kernel has no network, not even the grader's loopback: unix sockets.
        cfg.KernelManager.transport = "ipc"
        if runtime is not None:
            cfg.KernelManager.ip = str(Path(runtime) / "kernel")  # socket files, shared
    return cfg


def fast_alembic() -> None:
    """Let nbgrader create gradebooks without running the ``alembic`` program.

    nbgrader asks ``alembic heads`` (a subprocess that imports nbgrader again: seconds, and it
    must be on PATH) for the schema version of a new gradebook. The answer is read here from
    nbgrader's own migration scripts instead. If anything about that changes, nbgrader's way
    is kept.
    """
    try:
        import nbgrader.api
        from alembic.config import Config as AlembicConfig
        from alembic.script import ScriptDirectory
        from nbgrader.dbutil import ALEMBIC_DIR

        alembic_cfg = AlembicConfig()
        alembic_cfg.set_main_option("script_location", ALEMBIC_DIR)
        head = ScriptDirectory.from_config(alembic_cfg).get_current_head()
        if head:
            nbgrader.api.get_alembic_version = lambda: head
    except Exception:  # noqa: BLE001 - fall back to nbgrader's subprocess
        os.environ["PATH"] = os.pathsep.join(
            [str(Path(sys.executable).parent), os.environ.get("PATH", "")]
        )


# --------------------------------------------------------------------------------------------
# The template: source snapshot, release and gradebook, built once per batch
# --------------------------------------------------------------------------------------------


class TemplateError(RuntimeError):
    pass


def build_template(task: dict) -> dict:
    """Release every assignment into ``task['template']`` (run in a child process)."""
    source, template = Path(task["source"]), Path(task["template"])
    assignments = task["assignments"]
    snapshot = template / "source"
    for assignment in assignments:  # a snapshot: authors may edit solutions/ meanwhile
        shutil.copytree(
            Path(source) / assignment,
            snapshot / assignment,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    fast_alembic()
    cfg = nbgrader_config(template, snapshot, template / "release")
    api = NbGraderAPI(config=cfg)
    for assignment in assignments:
        result = api.generate_assignment(assignment, force=True)
        if not result["success"]:
            raise TemplateError(
                f"nbgrader generate_assignment {assignment} failed:\n"
                f"{result.get('log', '')}\n{result.get('error', '')}"
            )
    cells = {}
    for assignment, notebooks in assignments.items():
        for notebook in notebooks:
            nb = nbformat.read(template / "release" / assignment / f"{notebook}.ipynb", 4)
            cells[f"{assignment}/{notebook}"] = [
                {
                    "grade_id": _repair.grade_id(c),
                    "points": _repair.nbgrader_meta(c)["points"],
                    "kind": "written" if _repair.nbgrader_meta(c).get("solution") else "test",
                }
                for c in nb.cells
                if _repair.nbgrader_meta(c).get("grade")
            ]
    # Warm matplotlib's font cache once; every kernel gets a copy (a private one each).
    os.environ["MPLCONFIGDIR"] = str(template / "mpl")
    try:
        import matplotlib.font_manager  # noqa: F401 - builds the cache as a side effect
    except Exception:  # noqa: BLE001 - only a speed-up
        pass
    return {"assignments": assignments, "cells": cells, "template": str(template)}


def warm_up(template: Path) -> None:
    """Load, once in the parent, what every forked job would otherwise load for itself.

    Measured: the first autograde + feedback in a fresh process costs about a second more
    than the next one (IPython, ipykernel's kernelspec helpers, pygments lexers, mistune
    plugins, sqlite). Jobs are forked from the parent, so they inherit all of it. Only imports
    and one HTML rendering: no threads, event loops or sockets (fork safety). Best effort.
    """
    try:
        import codeop  # noqa: F401
        import difflib  # noqa: F401
        import sqlite3  # noqa: F401

        import ipykernel.connect  # noqa: F401
        import ipykernel.kernelspec  # noqa: F401
        import IPython  # noqa: F401
        import jinja2.ext  # noqa: F401
        import psutil  # noqa: F401
        import pygments.styles.default  # noqa: F401
        from jupyter_client.manager import AsyncKernelManager  # noqa: F401
        from nbconvert.exporters import HTMLExporter
        from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

        release = next(Path(template, "release").glob("*/*.ipynb"), None)
        if release is not None:
            nb = nbformat.read(release, 4)
            from jupyter_core.paths import jupyter_config_dir

            CSSHTMLHeaderPreprocessor(enabled=True).preprocess(
                nb, {"config_dir": jupyter_config_dir()}
            )
            HTMLExporter().from_notebook_node(nb)
    except Exception:  # noqa: BLE001 - only a speed-up
        pass


# --------------------------------------------------------------------------------------------
# One job: one learner × one assignment, in its own course directory and process
# --------------------------------------------------------------------------------------------


def read_ref(ref: dict) -> bytes:
    """The bytes of a submitted notebook: a file, or a member of a zip (size-limited)."""
    limit = _repair.MAX_BYTES + 1
    if ref["kind"] == "zip":
        with zipfile.ZipFile(ref["path"]) as archive, archive.open(ref["member"]) as member:
            return member.read(limit)
    with open(ref["path"], "rb") as handle:
        return handle.read(limit)


def write_kernelspec(job_dir: Path, template: Path, settings: Settings) -> None:
    """The job's own ``python3`` kernel: _kernel.py with limits (and the sandbox)."""
    home, runtime = job_dir / "home", job_dir / "runtime"
    runtime.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    if (template / "mpl").is_dir():
        shutil.copytree(template / "mpl", home / "mpl", dirs_exist_ok=True)
    kernel = {
        "memory_mb": settings.memory_mb,
        "file_mb": settings.file_mb,
        "sandbox": settings.sandbox,
        "home": str(home),
        "writable": [str(home), str(runtime)],
        "masks": list(settings.masks),
    }
    spec = {
        "argv": [sys.executable, str(AUTOGRADER / "_kernel.py"), "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel, grading)",
        "language": "python",
        "interrupt_mode": "message" if settings.sandbox else "signal",
        "metadata": {"debugger": False},
        "env": {
            "ATTENTION_GRADER_KERNEL": json.dumps(kernel),
            # Nothing a learner writes to ~ (IPython startup files, matplotlibrc, user
            # site-packages) can reach the next learner's kernel.
            "HOME": str(home),
            "IPYTHONDIR": str(home / ".ipython"),
            "MPLCONFIGDIR": str(home / "mpl"),
            "PYTHONNOUSERSITE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            # One BLAS thread per kernel: the batch already uses every core.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        },
    }
    spec_dir = job_dir / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(job_dir / "jupyter"), *filter(None, [os.environ.get("JUPYTER_PATH")])]
    )
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)


def grade_job(job: dict) -> dict:
    """Grade one learner's assignment (run in a child process; returns the result dict)."""
    started = time.time()
    settings = Settings(**job["settings"])
    template = Path(job["template"])
    job_dir = Path(job["job_dir"])
    student, assignment = job["student"], job["assignment"]
    root = job_dir / "course"
    submitted = root / "submitted" / student / assignment
    submitted.mkdir(parents=True)
    shutil.copy(template / "gradebook.db", root / "gradebook.db")
    result = {
        "student": student,
        "assignment": assignment,
        "notes": list(job.get("notes", [])),
        "flags": list(job.get("flags", [])),
        "notebooks": {},
    }
    flags, notes = result["flags"], result["notes"]
    timing = result["timing"] = {}

    releases, learner_nbs = {}, {}
    for notebook in job["notebooks"]:
        releases[notebook] = nbformat.read(
            template / "release" / assignment / f"{notebook}.ipynb", 4
        )
        entry = {"state": "missing"}
        result["notebooks"][notebook] = entry
        ref = job["refs"].get(notebook)
        if ref is None:  # another notebook of this assignment was handed in (else: no job)
            notes.append(f"notebook {notebook}.ipynb missing (scored 0)")
            continue
        try:
            nb, repairs = _repair.prepare(read_ref(ref), releases[notebook])
        except _repair.Unreadable as exc:
            entry["state"] = "unreadable"
            flags.append("unreadable notebook")
            notes.append(f"{ref['label']}: {exc}")
            continue
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            entry["state"] = "unreadable"
            flags.append("unreadable notebook")
            notes.append(f"{ref['label']}: could not be read ({exc})")
            continue
        if repairs:
            flags.append("repaired")
            notes.extend(repairs)
        learner_nbs[notebook] = nb
        nbformat.write(nb, submitted / f"{notebook}.ipynb")
        entry["state"] = "submitted"
    for name, text in job.get("extras", {}).items():  # timestamp.txt, submission_secret.txt
        (submitted / name).write_text(text, encoding="utf-8")

    if learner_nbs:
        write_kernelspec(job_dir, template, settings)
        cfg = nbgrader_config(
            root, template / "source", template / "release", settings, runtime=job_dir / "runtime"
        )
        api = NbGraderAPI(config=cfg)
        timing["setup"] = round(time.time() - started, 2)
        outcome = api.autograde(assignment, student, force=True, create=True)
        timing["autograde"] = round(time.time() - started - timing["setup"], 2)
        if not outcome["success"] and _kernel_failed_to_start(outcome):
            flags.append("grader error")
            notes.append(f"the grading kernel did not start: {_first_error(outcome)}")
        elif not outcome["success"]:
            # Last resort: the release with the learner's answers copied in.
            first_error = _first_error(outcome)
            for notebook, nb in learner_nbs.items():
                nbformat.write(
                    _repair.rebuild(nb, releases[notebook]), submitted / f"{notebook}.ipynb"
                )
            retry = api.autograde(assignment, student, force=True, create=True)
            _append_log(job_dir, outcome)
            if retry["success"]:
                flags.append("repaired")
                notes.append(
                    "nbgrader could not grade the notebook as handed in "
                    f"({first_error}); graded the learner's answers copied into "
                    "the released notebook"
                )
            else:
                flags.append("grader error")
                notes.append(f"nbgrader failed: {first_error}")
            outcome = retry
        _append_log(job_dir, outcome)
        if outcome["success"] and settings.feedback:
            mark = time.time()
            feedback = api.generate_feedback(assignment, student, force=True)
            timing["feedback"] = round(time.time() - mark, 2)
            _append_log(job_dir, feedback)
            if not feedback["success"]:
                notes.append(f"no feedback: {_first_error(feedback)}")
        if outcome["success"]:
            _collect(result, root, cfg, releases, settings)

    for notebook, entry in result["notebooks"].items():
        if "cells" not in entry:  # not graded: every cell scores 0
            entry["cells"] = [
                {
                    "grade_id": _repair.grade_id(c),
                    "kind": "written" if _repair.nbgrader_meta(c).get("solution") else "test",
                    "points": float(_repair.nbgrader_meta(c)["points"]),
                    "score": 0.0,
                    "needs_manual": False,
                    "failed": True,
                    "message": None,
                }
                for c in releases[notebook].cells
                if _repair.nbgrader_meta(c).get("grade")
            ]
    result["status"] = worst(flags)
    result["seconds"] = round(time.time() - started, 2)
    return result


def _kernel_failed_to_start(outcome: dict) -> bool:
    text = f"{outcome.get('log', '')}{outcome.get('error', '')}"
    return "Kernel didn't respond" in text or "Kernel died before replying" in text


def _first_error(outcome: dict) -> str:
    text = outcome.get("error") or outcome.get("log") or "unknown error"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors[-1] if errors else lines[-1])[:300] if lines else "unknown error"


def _append_log(job_dir: Path, outcome: dict) -> None:
    with open(job_dir / "nbgrader.log", "a", encoding="utf-8") as log:
        log.write(outcome.get("log", ""))
        if outcome.get("error"):
            log.write("\n" + outcome["error"])
        log.write("\n")


def _collect(result: dict, root: Path, cfg: Config, releases: dict, settings: Settings) -> None:
    """Scores from the job's gradebook, messages and events from the autograded notebooks."""
    student, assignment = result["student"], result["assignment"]
    flags, notes = result["flags"], result["notes"]
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        for notebook, entry in result["notebooks"].items():
            release_cells = {
                _repair.grade_id(c): c
                for c in releases[notebook].cells
                if _repair.nbgrader_meta(c).get("grade")
            }
            try:
                graded = gb.find_submission_notebook(notebook, assignment, student)
            except MissingEntry:
                continue
            grades = {g.name: g for g in graded.grades}
            autograded = root / "autograded" / student / assignment / f"{notebook}.ipynb"
            cells_run = {}
            if autograded.exists():
                entry["autograded"] = str(autograded)
                nb = nbformat.read(autograded, 4)
                cells_run = {_repair.grade_id(c): c for c in nb.cells if _repair.grade_id(c)}
                _events(nb, notebook, flags, notes, settings)
            feedback = root / "feedback" / student / assignment / f"{notebook}.html"
            if feedback.exists():
                entry["feedback"] = str(feedback)
            if entry["state"] == "submitted":
                entry["submitted"] = str(
                    root / "submitted" / student / assignment / f"{notebook}.ipynb"
                )
            entry["cells"] = []
            for gid, cell in release_cells.items():
                grade = grades.get(gid)
                written = bool(_repair.nbgrader_meta(cell).get("solution"))
                run = cells_run.get(gid)
                error = _error_of(run) if (run is not None and not written) else None
                score = None if grade is None else grade.auto_score
                entry["cells"].append(
                    {
                        "grade_id": gid,
                        "kind": "written" if written else "test",
                        "points": float(_repair.nbgrader_meta(cell)["points"]),
                        "score": None if score is None else float(score),
                        "needs_manual": bool(grade.needs_manual_grade) if grade else False,
                        "failed": (not written)
                        and (
                            score is None
                            or float(score) < float(_repair.nbgrader_meta(cell)["points"])
                        ),
                        "message": error,
                    }
                )
            if entry["state"] == "graded" or entry["state"] == "submitted":
                entry["state"] = "graded"
            stderr = [
                gid
                for gid, c in cells_run.items()
                if any(
                    o.get("output_type") == "stream" and o.get("text", "").startswith("[stderr]")
                    for o in c.get("outputs", [])
                )
            ]
            if stderr:
                notes.append(
                    "output on stderr in test cell(s) kept as text, not counted as a "
                    "failure: " + ", ".join(stderr)
                )


def _events(nb, notebook: str, flags: list, notes: list, settings: Settings) -> None:
    timeouts, died, stuck = [], None, False
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            name = _repair.grade_id(cell) or f"#{index + 1}"
            if output.get("ename") == CELL_TIMEOUT:
                timeouts.append(name)
            elif output.get("ename") == KERNEL_DIED and died is None:
                died = name
            elif output.get("ename") == KERNEL_UNRESPONSIVE:
                stuck = True
    if timeouts:
        flags.append("timeout")
        limit = f" {settings.timeout} s" if settings.timeout else ""
        notes.append(
            f"{notebook}: cell(s) stopped at the{limit} time limit: " + ", ".join(timeouts)
        )
    if died:
        flags.append("kernel died")
        notes.append(f"{notebook}: the kernel died in cell {died}; later test cells scored 0")
    if stuck:
        flags.append("kernel died")
        notes.append(
            f"{notebook}: the kernel stopped responding after a timeout; later test cells scored 0"
        )


def _error_of(cell) -> str | None:
    """The first error a graded cell raised, as ``Name: message`` (hidden lines scrubbed)."""
    secrets = _preprocessors.secrets_of([cell.source])
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
            return _preprocessors.strip_ansi(_preprocessors.scrub_text(text, secrets))
    return None


def as_json(obj) -> str:
    return json.dumps(asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj, indent=1)
