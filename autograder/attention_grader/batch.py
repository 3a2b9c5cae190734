"""A grading batch: template, jobs in parallel, results merged into one output folder.

Output folder (``grade.py --out``, default ``grading-output/``)::

    grades.csv                 one row per learner x assignment (_report.COLUMNS)
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

import _engine
import _pool
import _report
import _submissions
from _common import InstructorError, default_workers  # noqa: F401 - re-exported
from _engine import Settings

OUTPUTS = ("grades.csv", "summary.txt", "grade-distribution.png", "feedback", "logs", "nbgrader")


def prepare_out(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def build_template(source: Path, assignments: dict[str, list[str]], work: Path) -> dict:
    task = {
        "source": str(source),
        "template": str(work / "template"),
        "assignments": assignments,
        "job_dir": str(work / "template-job"),
    }
    try:
        return _pool.run_one(_engine.build_template, task, timeout=1800)
    except RuntimeError as exc:
        raise InstructorError(
            f"the source notebooks could not be released by nbgrader:\n{exc}"
        ) from None


def _zero_cells(info: dict, assignment: str, notebook: str) -> list[dict]:
    return [
        dict(c, score=0.0, needs_manual=False, failed=c["kind"] == "test", message=None)
        for c in info["cells"][f"{assignment}/{notebook}"]
    ]


def plan(
    learners: list[_submissions.Learner], info: dict, work: Path, settings: Settings
) -> tuple[list[dict], list[dict]]:
    """Jobs to run, and results known without running anything (missing, broken zip)."""
    jobs, known = [], []
    for learner in learners:
        for assignment, notebooks in info["assignments"].items():
            refs = {
                nb: learner.refs[(assignment, nb)]
                for nb in notebooks
                if (assignment, nb) in learner.refs
            }
            notes = [*learner.general, *learner.notes.get(assignment, [])]
            if not refs:
                status = "unreadable notebook" if learner.unreadable else "missing"
                known.append(
                    {
                        "student": learner.student,
                        "assignment": assignment,
                        "status": status,
                        "notes": notes
                        or ([] if status != "missing" else ["no notebook for this assignment"]),
                        "flags": [status],
                        "notebooks": {
                            nb: {"state": "missing", "cells": _zero_cells(info, assignment, nb)}
                            for nb in notebooks
                        },
                    }
                )
                continue
            jobs.append(
                {
                    "student": learner.student,
                    "assignment": assignment,
                    "notebooks": notebooks,
                    "refs": refs,
                    "notes": notes,
                    "flags": [],
                    "extras": learner.extras.get(assignment, {}),
                    "template": info["template"],
                    "settings": settings.__dict__,
                    "job_dir": str(work / "jobs" / f"{learner.student}--{assignment}"),
                }
            )
    return jobs, known


def _failed_result(job: dict, info: dict, outcome: dict, settings: Settings) -> dict:
    if outcome.get("killed"):
        status = "time limit"
        note = (
            f"grading stopped after {outcome.get('seconds', settings.wall_timeout):.0f} s "
            f"(limit {settings.wall_timeout:.0f} s per notebook); not graded"
        )
    else:
        status = "grader error"
        note = f"grader error: {outcome.get('error', 'unknown')}"
    return {
        "student": job["student"],
        "assignment": job["assignment"],
        "status": status,
        "notes": [*job["notes"], note],
        "flags": [status],
        "notebooks": {
            nb: {"state": "missing", "cells": _zero_cells(info, job["assignment"], nb)}
            for nb in job["notebooks"]
        },
    }


class _Progress:
    """tqdm if it is installed, else one line per finished job."""

    def __init__(self, total: int, enabled: bool, label: str):
        self.bar = None
        self.total, self.done, self.enabled, self.label = total, 0, enabled, label
        if enabled:
            try:
                import tqdm

                tqdm.tqdm.monitor_interval = 0  # no monitor thread: the parent forks
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


def _copy(src, dest: Path) -> Path | None:
    if not src or not Path(src).exists():
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dest)
    return dest


def run(
    *,
    learners: list[_submissions.Learner],
    info: dict,
    work: Path,
    out: Path,
    source: Path,
    settings: Settings,
    workers: int,
    progress: bool = True,
    keep_work: bool = False,
    label: str = "grading",
) -> list[dict]:
    """Grade every learner x assignment; write the outputs; return the results."""
    started = time.monotonic()
    jobs, known = plan(learners, info, work, settings)
    course = out / "nbgrader"
    gradebook = _report.MergedGradebook(Path(info["template"]) / "gradebook.db", course)
    _write_course_config(course, source)
    results = list(known)
    _engine.warm_up(Path(info["template"]))
    bar = _Progress(len(jobs), progress, label)
    problems = 0  # graded rows that need a look (missing work is counted in the summary)

    def on_done(job: dict, outcome: dict) -> None:
        nonlocal problems
        result = (
            outcome["value"] if outcome.get("ok") else _failed_result(job, info, outcome, settings)
        )
        student, assignment = job["student"], job["assignment"]
        for notebook, entry in result["notebooks"].items():
            entry["feedback_out"] = _copy(
                entry.get("feedback"), out / "feedback" / student / assignment / f"{notebook}.html"
            )
            _copy(
                entry.get("autograded"),
                course / "autograded" / student / assignment / f"{notebook}.ipynb",
            )
            ref = job["refs"].get(notebook)
            if ref is not None:  # exactly what was handed in, for the record and the exchange
                try:
                    original = _engine.read_ref(ref)
                except Exception:  # noqa: BLE001 - a broken zip: nothing to keep
                    original = None
                if original is not None:
                    path = course / "submitted" / student / assignment / f"{notebook}.ipynb"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(original)
        for name, text in job.get("extras", {}).items():
            for folder in (course / "submitted", course / "autograded", out / "feedback"):
                if (folder / student / assignment).is_dir():
                    (folder / student / assignment / name).write_text(text, encoding="utf-8")
        job_dir = Path(job["job_dir"])
        log = out / "logs" / student / f"{assignment}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w", encoding="utf-8") as handle:
            for part in ("nbgrader.log", "job.log"):
                if (job_dir / part).exists():
                    handle.write((job_dir / part).read_text(encoding="utf-8", errors="replace"))
        gradebook.add(result)
        results.append(result)
        if result["status"] not in ("ok", "missing"):
            problems += 1
        bar.update(problems)
        if not keep_work:
            shutil.rmtree(job_dir, ignore_errors=True)

    try:
        _pool.run(
            jobs,
            _engine.grade_job,
            workers=workers,
            wall_timeout=settings.wall_timeout,
            on_done=on_done,
        )
    finally:
        bar.close()
        gradebook.close()
    for result in results:
        for entry in result["notebooks"].values():
            entry.setdefault("feedback_out", None)
            if entry["feedback_out"]:
                entry["feedback_out"] = str(entry["feedback_out"])
    rows = [_report.row_from_result(r, out) for r in results]
    _report.write_csv(rows, out / "grades.csv")
    seconds = time.monotonic() - started
    text = _report.summary(rows, seconds, workers)
    (out / "summary.txt").write_text(text + "\n", encoding="utf-8")
    if rows:
        _report.plot(rows, out / "grade-distribution.png")
    for result in results:
        result["row"] = next(
            r
            for r in rows
            if r["student_id"] == result["student"] and r["assignment"] == result["assignment"]
        )
    return results


def _write_course_config(course: Path, source: Path) -> None:
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        '"""Written by autograder/grade.py: this folder is an nbgrader course directory.\n\n'
        "Open it in Formgrader to grade the written answers by hand (run `jupyter lab` here),\n"
        "or run nbgrader here (`nbgrader generate_feedback --force`, `nbgrader export`).\n"
        '"""\n\n'
        "from pathlib import Path\n\n"
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(_engine.CONFIG_FILE)!r})  # noqa: F821 - the course's settings\n"
        "HERE = Path(__file__).resolve().parent\n"
        "c.CourseDirectory.root = str(HERE)\n"
        f"c.CourseDirectory.source_directory = {str(Path(source).resolve())!r}\n"
        "c.CourseDirectory.release_directory = str(HERE / 'release')\n"
        "c.CourseDirectory.feedback_directory = str(HERE.parent / 'feedback')\n"
        "c.CourseDirectory.db_url = f\"sqlite:///{HERE / 'gradebook.db'}\"\n",
        encoding="utf-8",
    )
