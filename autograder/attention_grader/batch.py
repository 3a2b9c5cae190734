"""A grading batch: template, jobs in parallel, results merged into one output folder.

Output folder (``attention-grade --out``, default ``grading-output/``)::

    grades.csv                 one row per learner x assignment (report.COLUMNS)
    summary.txt                the table printed at the end
    grade-distribution.png     histogram of learners' totals, spread per assignment
    feedback/<student>/<assignment>/<notebook>.html   hidden tests removed
    logs/<student>/<assignment>.log                   nbgrader's log of that job
    nbgrader/                  an nbgrader course directory for Formgrader:
        nbgrader_config.py, gradebook.db, submitted/, autograded/

Only those names are replaced when a batch runs again; nothing else in the folder is touched.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from . import engine, pool, report
from .engine import Job, Settings, Template
from .paths import CONFIG_FILE, InstructorError
from .releasing import ReleaseError
from .results import JobResult, NotebookResult, Status
from .submissions import Learner

OUTPUTS = ("grades.csv", "summary.txt", "grade-distribution.png", "feedback", "logs", "nbgrader")


def prepare_out(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def build_template(source: Path, assignments: dict[str, list[str]], work: Path) -> Template:
    """The batch's release and gradebook (:func:`engine.build_template`), or an InstructorError."""
    try:
        return engine.build_template(source, assignments, work)
    except ReleaseError as exc:
        raise InstructorError(
            f"the source notebooks could not be released by nbgrader:\n{exc}"
        ) from None


def _not_graded(
    template: Template, student: str, assignment: str, status: Status, notes: list[str]
) -> JobResult:
    return JobResult(
        student,
        assignment,
        notebooks={
            nb: NotebookResult(cells=template.zero_cells(assignment, nb))
            for nb in template.assignments[assignment]
        },
        notes=notes,
        flags=[status],
    )


def plan(
    learners: list[Learner], template: Template, work: Path, settings: Settings
) -> tuple[list[Job], list[JobResult]]:
    """Jobs to run, and results known without running anything (missing, broken zip)."""
    jobs, known = [], []
    for learner in learners:
        for assignment, notebooks in template.assignments.items():
            refs = {
                nb: learner.refs[(assignment, nb)]
                for nb in notebooks
                if (assignment, nb) in learner.refs
            }
            notes = [*learner.general, *learner.notes.get(assignment, [])]
            if not refs:
                status = Status.UNREADABLE if learner.unreadable else Status.MISSING
                if not notes and status is Status.MISSING:
                    notes = ["no notebook for this assignment"]
                known.append(_not_graded(template, learner.student, assignment, status, notes))
                continue
            jobs.append(
                Job(
                    student=learner.student,
                    assignment=assignment,
                    notebooks=notebooks,
                    refs=refs,
                    notes=notes,
                    extras=learner.extras.get(assignment, {}),
                    template=str(template.path),
                    settings=settings,
                    job_dir=str(work / "jobs" / f"{learner.student}--{assignment}"),
                )
            )
    return jobs, known


def _failed_result(job: Job, template: Template, outcome: pool.Outcome) -> JobResult:
    if outcome.killed:
        status = Status.TIME_LIMIT
        note = (
            f"grading stopped after {outcome.seconds:.0f} s "
            f"(limit {job.settings.wall_timeout:.0f} s per notebook); not graded"
        )
    else:
        status = Status.GRADER_ERROR
        note = f"grader error: {outcome.error or 'unknown'}"
    return _not_graded(template, job.student, job.assignment, status, [*job.notes, note])


def grade_in_worker(job: Job) -> str:
    """:func:`engine.grade_job` in a worker process; the result travels back as JSON."""
    return engine.grade_job(job).to_json()


class _Progress:
    """tqdm if it is installed, else one line per finished job."""

    def __init__(self, total: int, enabled: bool, label: str):
        self.bar = None
        self.total, self.done, self.enabled, self.label = total, 0, enabled, label
        if enabled:
            try:
                import tqdm

                tqdm.tqdm.monitor_interval = 0  # no monitor thread
                self.bar = tqdm.tqdm(
                    total=total, desc=label, unit="notebook", file=sys.stderr, dynamic_ncols=True
                )
            except ImportError:
                pass

    def update(self, problems: int) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"{problems} need a look", refresh=False)
            self.bar.update(1)
        elif self.enabled:
            print(
                f"{self.label}: {self.done}/{self.total} ({problems} need a look)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(
    *,
    learners: list[Learner],
    template: Template,
    work: Path,
    out: Path,
    source: Path,
    settings: Settings,
    workers: int,
    progress: bool = True,
    keep_work: bool = False,
    label: str = "grading",
) -> tuple[list[JobResult], list[dict]]:
    """Grade every learner x assignment; write the outputs; return the results and their rows."""
    started = time.monotonic()
    jobs, known = plan(learners, template, work, settings)
    course = out / "nbgrader"
    gradebook = report.MergedGradebook(template.path / "gradebook.db", course)
    _write_course_config(course, source)
    results = list(known)
    bar = _Progress(len(jobs), progress, label)
    problems = 0  # graded rows that need a look (missing work is counted in the summary)

    def on_done(job: Job, outcome: pool.Outcome) -> None:
        nonlocal problems
        if outcome.ok:
            result = JobResult.from_json(outcome.value)
        else:
            result = _failed_result(job, template, outcome)
        student, assignment = job.student, job.assignment
        for notebook, entry in result.notebooks.items():
            entry.feedback_out = _copy(
                entry.feedback, out / "feedback" / student / assignment / f"{notebook}.html"
            )
            _copy(
                entry.autograded,
                course / "autograded" / student / assignment / f"{notebook}.ipynb",
            )
            ref = job.refs.get(notebook)
            if ref is not None:  # exactly what was handed in, for the record and the exchange
                try:
                    original = ref.read()
                except Exception:  # noqa: BLE001 - a broken zip: nothing to keep
                    original = None
                if original is not None:
                    path = course / "submitted" / student / assignment / f"{notebook}.ipynb"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(original)
        for name, text in job.extras.items():
            for folder in (course / "submitted", course / "autograded", out / "feedback"):
                if (folder / student / assignment).is_dir():
                    (folder / student / assignment / name).write_text(text, encoding="utf-8")
        job_dir = Path(job.job_dir)
        log = out / "logs" / student / f"{assignment}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as handle:
            for part in ("nbgrader.log", "job.log"):
                if (job_dir / part).exists():
                    handle.write((job_dir / part).read_text(encoding="utf-8", errors="replace"))
        gradebook.add(result)
        results.append(result)
        if result.status.needs_a_look:
            problems += 1
        bar.update(problems)
        if not keep_work:
            shutil.rmtree(job_dir, ignore_errors=True)

    try:
        pool.run(
            jobs,
            grade_in_worker,
            workers=workers,
            wall_timeout=settings.wall_timeout,
            on_done=on_done,
            job_dir=lambda job: Path(job.job_dir),
            initializer=engine.warm_up,
            initargs=(template.path,),
        )
    finally:
        bar.close()
        gradebook.close()
    rows = [report.row_from_result(r, out) for r in results]
    report.write_csv(rows, out / "grades.csv")
    seconds = time.monotonic() - started
    text = report.summary(rows, seconds, workers)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    if rows:
        report.plot(rows, out / "grade-distribution.png")
    return results, rows


def _copy(src: str | None, dest: Path) -> str | None:
    if not src or not Path(src).exists():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)
    return str(dest)


def _write_course_config(course: Path, source: Path) -> None:
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        '"""Written by attention-grade: this folder is an nbgrader course directory.\n\n'
        "Open it in Formgrader to grade the written answers by hand (run `jupyter lab` here),\n"
        "or run nbgrader here (`nbgrader generate_feedback --force`, `nbgrader export`).\n"
        '"""\n\n'
        "from pathlib import Path\n\n"
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(CONFIG_FILE)!r})  # noqa: F821 - the course's settings\n"
        "HERE = Path(__file__).resolve().parent\n"
        "c.CourseDirectory.root = str(HERE)\n"
        f"c.CourseDirectory.source_directory = {str(Path(source).resolve())!r}\n"
        "c.CourseDirectory.release_directory = str(HERE / 'release')\n"
        "c.CourseDirectory.feedback_directory = str(HERE.parent / 'feedback')\n"
        "c.CourseDirectory.db_url = f\"sqlite:///{HERE / 'gradebook.db'}\"\n",
        encoding="utf-8",
    )
