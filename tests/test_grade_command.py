"""``attention-grade`` beyond the tamper batch: statuses, the JSON hand-off, instructor errors,
the wall-clock limit and the sandbox.

None of these needs the session's release of the course (they grade the small fixture course
of tests/fixtures/grading), so under pytest-xdist they run beside the grading tests, not
after them (tests/conftest.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import batch_submissions
import nbformat
import pytest

from attention_grader import Status, read_csv, release

ROOT = Path(__file__).resolve().parents[1]
#: The console script `make grade` runs, installed next to this interpreter.
GRADE = Path(sys.executable).parent / "attention-grade"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading" / "source"


def run_grade(*args, timeout=1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GRADE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_statuses_are_the_words_of_grades_csv_most_severe_first():
    assert [s.value for s in Status] == [
        "grader error",
        "time limit",
        "unreadable notebook",
        "missing",
        "kernel died",
        "timeout",
        "repaired",
        "ok",
    ]
    assert Status.worst([]) is Status.OK
    assert Status.worst([Status.REPAIRED, Status.TIMEOUT, Status.OK]) is Status.TIMEOUT
    assert Status.worst([Status.KERNEL_DIED, Status.GRADER_ERROR]) is Status.GRADER_ERROR


def test_a_job_result_survives_the_json_hand_off():
    """What a worker sends is what the parent reads: every field, enums and None included."""
    from attention_grader import CellKind, CellResult, JobResult, NotebookResult, NotebookState

    result = JobResult(
        "alice",
        "03_softmax",
        notebooks={
            "03_softmax": NotebookResult(
                state=NotebookState.GRADED,
                cells=[
                    CellResult("test_a", CellKind.TEST, 2.0, 0.0, False, True, "CheckFailed: x"),
                    CellResult("answer", CellKind.WRITTEN, 3.0, None, True, False, None),
                ],
                autograded="/job/a.ipynb",
                feedback="/job/a.html",
            ),
            "other": NotebookResult(),
        },
        notes=["repaired something"],
        flags=[Status.REPAIRED, Status.TIMEOUT],
        timing={"autograde": 1.5},
        seconds=2.25,
    )
    back = JobResult.from_json(result.to_json())
    assert back == result
    assert back.status is Status.TIMEOUT
    assert [c.grade_id for c in back.cells(CellKind.WRITTEN)] == ["answer"]


def test_instructor_errors_exit_2(tmp_path):
    done = run_grade(tmp_path / "nowhere", "--out", tmp_path / "out")
    assert done.returncode == 2 and "no such folder" in done.stderr
    (tmp_path / "subs").mkdir()
    (tmp_path / "empty-source").mkdir()
    done = run_grade(
        tmp_path / "subs", "--source", tmp_path / "empty-source", "--out", tmp_path / "out"
    )
    assert done.returncode == 2 and "no assignments" in done.stderr


def _grade_one_learner(tmp_path: Path, extra: str, wall_timeout: float):
    """Grade one learner of the fixture course whose first exercise cell ends with ``extra``;
    return attention-grade's run and the learner's row."""
    subs = tmp_path / "subs"
    assignment = sorted(p.parent.name for p in FIXTURE.glob("*/*.ipynb"))[0]
    course = batch_submissions.Course(
        FIXTURE, _release(FIXTURE, tmp_path / "release-work", only=[assignment])
    )
    nb = course.perfect(assignment)
    exercise = course.exercises(assignment)[0][0]
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise)
    cell.source += "\n\n" + extra
    (subs / "slow" / assignment).mkdir(parents=True)
    nbformat.write(nb, subs / "slow" / assignment / f"{assignment}.ipynb")
    done = run_grade(
        subs,
        "--out",
        tmp_path / "out",
        "--source",
        FIXTURE,
        "--assignment",
        assignment,
        "--wall-timeout",
        wall_timeout,
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = read_csv(tmp_path / "out" / "grades.csv")
    return done, row


def test_wall_clock_limit_is_a_row_and_leaves_nothing_running(tmp_path):
    """A notebook that exceeds --wall-timeout is reported, and stopped with its kernel and
    what learner code started in it.

    The kernel runs in its own session, and a process the learner started (here ``sleep``)
    outlives the kernel's own exit when its parent dies: only killing the kernel's tree stops it.
    """
    import psutil

    pids = tmp_path / "pids.txt"
    extra = (
        "import os, pathlib, subprocess, time\n\n"
        "child = subprocess.Popen(['sleep', '600'])\n"
        f"pathlib.Path({str(pids)!r}).write_text(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)  # slow, but under the cell time limit\n"
    )
    try:
        _, row = _grade_one_learner(tmp_path, extra, wall_timeout=12)
        assert (row["student_id"], row["status"], row["code_score"]) == ("slow", "time limit", "0")
        assert "not graded" in row["notes"]
        kernel, child = map(int, pids.read_text().split())  # the learner's code did run
        assert not psutil.pid_exists(kernel), "the stopped job's kernel still runs"
        assert not psutil.pid_exists(child), "a process the learner started still runs"
    finally:
        for pid in map(int, pids.read_text().split() if pids.exists() else []):
            try:
                proc = psutil.Process(pid)
                if proc.cmdline()[:2] == ["sleep", "600"]:
                    proc.kill()
            except psutil.Error:
                pass


# --------------------------------------------------------------------------------------------
# Sandbox (bubblewrap): learner code without network and without writes outside its folder
# --------------------------------------------------------------------------------------------

PROBE = """
import pathlib
import socket

try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print("NET-OPEN")
except OSError as exc:
    print("NET-BLOCKED", type(exc).__name__)
for target in {targets!r}:
    try:
        pathlib.Path(target).write_text("escaped")
        print("WRITE-DONE", target)
    except OSError as exc:
        print("WRITE-BLOCKED", type(exc).__name__)
pathlib.Path("own-folder.txt").write_text("fine")
print("OWN-FOLDER-OK")
try:
    print("SECRET-READ", len(open({secret!r}).read()))
except OSError as exc:
    print("SECRET-HIDDEN", type(exc).__name__)
"""


def _sandbox_problem():
    from attention_grader import sandbox

    return sandbox.problem()


@pytest.fixture
def listener():
    """A listening TCP port on the grader's loopback (the backlog accepts without a thread)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def test_sandbox_blocks_network_and_outside_writes(tmp_path, listener):
    problem = _sandbox_problem()
    if problem:
        pytest.skip(f"sandbox unavailable here: {problem}")
    outside = tmp_path / "outside.txt"
    in_repo = ROOT / "autograder" / f"escape-{tmp_path.name}.txt"
    secret = next(FIXTURE.glob("*/*.ipynb"))  # the hidden tests: must be invisible
    probe = PROBE.format(port=listener, targets=[str(outside), str(in_repo)], secret=str(secret))

    # The probe works: unsandboxed, it reaches the port and reads the secret.
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            probe.replace(str(outside), str(tmp_path / "plain.txt")).replace(
                str(in_repo), str(tmp_path / "plain2.txt")
            ),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "NET-OPEN" in plain.stdout and "SECRET-READ" in plain.stdout, plain

    course = batch_submissions.Course(FIXTURE, _release(FIXTURE, tmp_path / "release-work"))
    assignment = course.assignments[0]
    name = course.notebook(assignment)
    subs = tmp_path / "subs"
    prober = course.perfect(assignment)
    exercise = course.exercises(assignment)[0][0]
    cell = next(
        c for c in prober.cells if c.metadata.get("nbgrader", {}).get("grade_id") == exercise
    )
    cell.source += "\n" + probe
    for student, nb in (("prober", prober), ("good", course.perfect(assignment))):
        (subs / student / assignment).mkdir(parents=True)
        nbformat.write(nb, subs / student / assignment / f"{name}.ipynb")

    out = tmp_path / "out"
    done = run_grade(
        subs,
        "--out",
        out,
        "--source",
        FIXTURE,
        "--assignment",
        assignment,
        "--sandbox",
        "--timeout",
        20,
        "--no-progress",
        "--jobs",
        2,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {r["student_id"]: r for r in read_csv(out / "grades.csv")}
    full = f"{course.points(assignment):g}"
    assert rows["good"]["status"] == "ok" and rows["good"]["code_score"] == full, rows["good"]
    assert rows["prober"]["code_score"] == full, rows["prober"]

    graded = nbformat.read(
        out / "nbgrader" / "autograded" / "prober" / assignment / f"{name}.ipynb", 4
    )
    text = "".join(
        o.get("text", "")
        for c in graded.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert "NET-BLOCKED" in text and "NET-OPEN" not in text, text
    assert "OWN-FOLDER-OK" in text, text
    assert "SECRET-HIDDEN" in text, text
    assert not outside.exists()  # /tmp is a private tmpfs inside the jail
    assert not in_repo.exists()  # the repository is read-only inside the jail
    if not ROOT.resolve().is_relative_to("/tmp"):
        # ... so that write failed outright. (A clone under /tmp sits inside the jail's
        # private tmpfs, where the write lands in the jail and vanishes with it: nothing
        # reaches the host either, which the line above checks.)
        assert "WRITE-BLOCKED" in text


def _release(source: Path, work: Path, only=None) -> Path:
    """The release of ``source`` (or of its assignments ``only``), by the course's release."""
    release(source, work / "release", assignments=only)
    return work / "release"
