"""The grading engine shared by ``attention-grade`` (a class) and ``attention-check`` (one learner).

Everything here runs nbgrader itself, in-process, through its Python API (``NbGraderAPI``):
:func:`build_template` releases every assignment once per batch (the one release function,
:func:`attention_grader.releasing.release`) into a *template* (the release and a gradebook that
knows every cell); then :func:`grade_job`, per learner x assignment, runs ``autograde`` and
``generate_feedback`` in a private nbgrader course directory::

    <job>/course/gradebook.db                      copy of the template's gradebook
    <job>/course/submitted/<student>/<assignment>/  the learner's notebook(s), after repair
    <job>/course/autograded/..., feedback/...      written by nbgrader
    <job>/jupyter/kernels/python3/kernel.json      the kernel: attention_grader.kernel
    <job>/home, <job>/runtime                      the kernel's HOME and connection files

Each job runs in a worker process (:mod:`attention_grader.pool`); nothing a learner's notebook
does can reach another job's gradebook, files or kernel. The parent merges the results.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from traitlets.config import Config, PyFileConfigLoader

from . import preprocessors, repair
from .paths import AUTOGRADER, CONFIG_FILE
from .pool import KERNEL_PIDS
from .preprocessors import CELL_TIMEOUT, KERNEL_DIED, KERNEL_UNRESPONSIVE
from .results import CellKind, CellResult, JobResult, NotebookResult, NotebookState, Status
from .submissions import NotebookRef


@dataclass
class Settings:
    """How to grade; the same for every job of a batch."""

    timeout: int | None = None  # seconds per cell; None: nbgrader_config.py's
    wall_timeout: float = 900.0  # seconds per learner x assignment, all cells together
    memory_mb: int = 2048  # address-space limit of each kernel
    file_mb: int = 1024  # largest file a kernel may write
    sandbox: bool = False
    masks: list[str] = field(default_factory=list)  # hidden from sandboxed kernels
    feedback: bool = True


@dataclass
class Template:
    """The release of a batch's assignments, and the gradebook that knows their cells."""

    path: Path  # <work>/template: source/ (snapshot), release/, gradebook.db, mpl/
    assignments: dict[str, list[str]]  # {assignment: [notebook ids]}
    cells: dict[tuple[str, str], list[CellResult]]  # graded cells, ungraded (0 points)

    def zero_cells(self, assignment: str, notebook: str) -> list[CellResult]:
        """The notebook's graded cells, each scored 0 (a test cell counts as failed)."""
        return [
            CellResult.ungraded(c.grade_id, c.kind, c.points)
            for c in self.cells[(assignment, notebook)]
        ]

    def grade_ids(self) -> dict[tuple[str, str], set[str]]:
        """Every grade_id of each released notebook (ungraded cells too), to match by content."""
        found = {}
        for assignment, notebook in self.cells:
            path = self.path / "release" / assignment / f"{notebook}.ipynb"
            found[(assignment, notebook)] = repair.grade_ids(nbformat.read(path, 4))
        return found


@dataclass
class Job:
    """One learner x one assignment to grade (sent to a worker process)."""

    student: str
    assignment: str
    notebooks: list[str]  # every notebook of the assignment
    refs: dict[str, NotebookRef]  # the notebooks handed in, by notebook id
    notes: list[str]  # notes known before grading (how the files were found)
    extras: dict[str, str]  # timestamp.txt, submission_secret.txt
    template: str
    settings: Settings
    job_dir: str


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
    """The course's nbgrader_config.py, pointed at a private course directory.

    The pipeline (which preprocessors autograde and feedback run) is the configuration file's;
    only folders, the per-cell timeout and the sandbox's kernel transport are set here.
    """
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


def build_template(source: Path, assignments: dict[str, list[str]], work: Path) -> Template:
    """Release ``assignments`` of ``source`` into ``<work>/template`` (raises ReleaseError)."""
    from .releasing import release

    template = Path(work) / "template"
    snapshot = template / "source"
    for assignment in assignments:  # a snapshot: authors may edit solutions/ meanwhile
        shutil.copytree(
            Path(source) / assignment,
            snapshot / assignment,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    # Matplotlib's font cache, built once (in a child, so this process's matplotlib is
    # untouched) while nbgrader releases; every kernel gets a private copy.
    fonts = subprocess.Popen(
        [sys.executable, "-c", "import matplotlib.font_manager"],
        env={**os.environ, "MPLCONFIGDIR": str(template / "mpl")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        release(
            snapshot,
            template / "release",
            assignments=list(assignments),
            gradebook=template / "gradebook.db",
        )
    finally:
        fonts.wait()
    cells = {}
    for assignment, notebooks in assignments.items():
        for notebook in notebooks:
            nb = nbformat.read(template / "release" / assignment / f"{notebook}.ipynb", 4)
            cells[(assignment, notebook)] = [
                CellResult.ungraded(
                    repair.grade_id(c), _kind(c), float(repair.nbgrader_meta(c)["points"])
                )
                for c in nb.cells
                if repair.nbgrader_meta(c).get("grade")
            ]
    return Template(template, dict(assignments), cells)


def _kind(cell) -> CellKind:
    return CellKind.WRITTEN if repair.nbgrader_meta(cell).get("solution") else CellKind.TEST


def warm_up(template: Path) -> None:
    """Load, once per worker process, what every job would otherwise load for itself.

    Measured: the first autograde + feedback in a fresh process costs about a second more
    than the next one (IPython, ipykernel's kernelspec helpers, pygments lexers, mistune
    plugins, sqlite). Only imports and one HTML rendering. Best effort.
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
# One job: one learner x one assignment, in its own course directory and process
# --------------------------------------------------------------------------------------------

_JUPYTER_PATH = [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]


def write_kernelspec(job_dir: Path, template: Path, settings: Settings) -> None:
    """The job's own ``python3`` kernel: ``attention_grader.kernel`` with limits (and sandbox)."""
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
        "pid_file": str(job_dir / KERNEL_PIDS),  # the pool kills them if it stops the job
    }
    spec = {
        "argv": [sys.executable, "-m", "attention_grader.kernel", "-f", "{connection_file}"],
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
    # A worker process grades one job after another: this job's kernelspec replaces the last's.
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(job_dir / "jupyter"), *_JUPYTER_PATH])
    os.environ["JUPYTER_RUNTIME_DIR"] = str(runtime)


def grade_job(job: Job) -> JobResult:
    """Grade one learner's assignment (in a worker process)."""
    started = time.time()
    settings, template, job_dir = job.settings, Path(job.template), Path(job.job_dir)
    student, assignment = job.student, job.assignment
    root = job_dir / "course"
    submitted = root / "submitted" / student / assignment
    submitted.mkdir(parents=True)
    shutil.copy(template / "gradebook.db", root / "gradebook.db")
    result = JobResult(student, assignment, notes=list(job.notes))
    flags, notes, timing = result.flags, result.notes, result.timing

    releases, learner_nbs = {}, {}
    for notebook in job.notebooks:
        releases[notebook] = nbformat.read(
            template / "release" / assignment / f"{notebook}.ipynb", 4
        )
        entry = result.notebooks[notebook] = NotebookResult()
        ref = job.refs.get(notebook)
        if ref is None:  # another notebook of this assignment was handed in (else: no job)
            notes.append(f"notebook {notebook}.ipynb missing (scored 0)")
            continue
        try:
            nb, repairs = repair.prepare(ref.read(), releases[notebook])
        except repair.Unreadable as exc:
            entry.state = NotebookState.UNREADABLE
            flags.append(Status.UNREADABLE)
            notes.append(f"{ref.label}: {exc}")
            continue
        except (OSError, zipfile.BadZipFile, KeyError) as exc:
            entry.state = NotebookState.UNREADABLE
            flags.append(Status.UNREADABLE)
            notes.append(f"{ref.label}: could not be read ({exc})")
            continue
        if repairs:
            flags.append(Status.REPAIRED)
            notes.extend(repairs)
        learner_nbs[notebook] = nb
        nbformat.write(nb, submitted / f"{notebook}.ipynb")
        entry.state = NotebookState.SUBMITTED
    for name, text in job.extras.items():  # timestamp.txt, submission_secret.txt
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
            flags.append(Status.GRADER_ERROR)
            notes.append(f"the grading kernel did not start: {_first_error(outcome)}")
        elif not outcome["success"]:
            # Last resort: the release with the learner's answers copied in.
            first_error = _first_error(outcome)
            for notebook, nb in learner_nbs.items():
                nbformat.write(
                    repair.rebuild(nb, releases[notebook]), submitted / f"{notebook}.ipynb"
                )
            retry = api.autograde(assignment, student, force=True, create=True)
            _append_log(job_dir, outcome)
            if retry["success"]:
                flags.append(Status.REPAIRED)
                notes.append(
                    "nbgrader could not grade the notebook as handed in "
                    f"({first_error}); graded the learner's answers copied into "
                    "the released notebook"
                )
            else:
                flags.append(Status.GRADER_ERROR)
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

    for notebook, entry in result.notebooks.items():
        if entry.cells is None:  # not graded: every cell scores 0
            entry.cells = [
                CellResult.ungraded(
                    repair.grade_id(c), _kind(c), float(repair.nbgrader_meta(c)["points"])
                )
                for c in releases[notebook].cells
                if repair.nbgrader_meta(c).get("grade")
            ]
    result.seconds = round(time.time() - started, 2)
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


def _collect(
    result: JobResult, root: Path, cfg: Config, releases: dict, settings: Settings
) -> None:
    """Scores from the job's gradebook, messages and events from the autograded notebooks."""
    student, assignment = result.student, result.assignment
    flags, notes = result.flags, result.notes
    with Gradebook(cfg.CourseDirectory.db_url) as gb:
        for notebook, entry in result.notebooks.items():
            release_cells = {
                repair.grade_id(c): c
                for c in releases[notebook].cells
                if repair.nbgrader_meta(c).get("grade")
            }
            try:
                graded = gb.find_submission_notebook(notebook, assignment, student)
            except MissingEntry:
                continue
            grades = {g.name: g for g in graded.grades}
            autograded = root / "autograded" / student / assignment / f"{notebook}.ipynb"
            cells_run = {}
            if autograded.exists():
                entry.autograded = str(autograded)
                nb = nbformat.read(autograded, 4)
                cells_run = {repair.grade_id(c): c for c in nb.cells if repair.grade_id(c)}
                _events(nb, notebook, flags, notes, settings)
            feedback = root / "feedback" / student / assignment / f"{notebook}.html"
            if feedback.exists():
                entry.feedback = str(feedback)
            if entry.state is NotebookState.SUBMITTED:
                entry.submitted = str(
                    root / "submitted" / student / assignment / f"{notebook}.ipynb"
                )
            entry.cells = []
            for gid, cell in release_cells.items():
                grade = grades.get(gid)
                kind = _kind(cell)
                points = float(repair.nbgrader_meta(cell)["points"])
                run = cells_run.get(gid)
                error = _error_of(run) if (run is not None and kind is CellKind.TEST) else None
                score = None if grade is None else grade.auto_score
                entry.cells.append(
                    CellResult(
                        grade_id=gid,
                        kind=kind,
                        points=points,
                        score=None if score is None else float(score),
                        needs_manual=bool(grade.needs_manual_grade) if grade else False,
                        failed=kind is CellKind.TEST and (score is None or float(score) < points),
                        message=error,
                    )
                )
            if entry.state is NotebookState.SUBMITTED:
                entry.state = NotebookState.GRADED
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
            name = repair.grade_id(cell) or f"#{index + 1}"
            if output.get("ename") == CELL_TIMEOUT:
                timeouts.append(name)
            elif output.get("ename") == KERNEL_DIED and died is None:
                died = name
            elif output.get("ename") == KERNEL_UNRESPONSIVE:
                stuck = True
    if timeouts:
        flags.append(Status.TIMEOUT)
        limit = f" {settings.timeout} s" if settings.timeout else ""
        notes.append(
            f"{notebook}: cell(s) stopped at the{limit} time limit: " + ", ".join(timeouts)
        )
    if died:
        flags.append(Status.KERNEL_DIED)
        notes.append(f"{notebook}: the kernel died in cell {died}; later test cells scored 0")
    if stuck:
        flags.append(Status.KERNEL_DIED)
        notes.append(
            f"{notebook}: the kernel stopped responding after a timeout; later test cells scored 0"
        )


def _error_of(cell) -> str | None:
    """The first error a graded cell raised, as ``Name: message`` (hidden lines scrubbed)."""
    secrets = preprocessors.secrets_of([cell.source])
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
            return preprocessors.strip_ansi(preprocessors.scrub_text(text, secrets))
    return None
