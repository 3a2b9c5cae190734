"""``attention-grade --db-url``: a batch's gradebook in a real PostgreSQL server, read back with
nbgrader's own Gradebook API, graded again without duplicates, then exported to the LMS with
the manual grades a grader entered in between.

The test starts its own server (Debian's ``postgresql`` package: initdb and pg_ctl, run as the
``postgres`` system user when the test runs as root, because the server refuses root) in a
temporary folder on 127.0.0.1 and a free port, with password authentication, and stops it at
the end. It grades two learners of the small fixture course (tests/fixtures/grading). Without
the server programs it skips, except under CI, where it fails.
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import batch_submissions
import nbformat
import pytest

from attention_grader import read_csv, release

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading" / "source"
ASSIGNMENT = "00_fixture_one"  # 5 autograded points and one written answer (1 point)
BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Server:
    """A running PostgreSQL server of this test: where it listens, who may log in."""

    port: int
    user: str
    database: str

    def url(self, database: str | None = None, port: int | None = None) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{port or self.port}/{database or self.database}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("PostgreSQL is not installed (apt-get install postgresql; .ci/run does)")
        pytest.skip("PostgreSQL server programs not installed (apt-get install postgresql)")
    bindir = Path(found[-1]).parent
    # The server refuses to run as root: as root, its programs run as the postgres user.
    as_server = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    # Not under pytest's tmp folder: that is private to root, and the server runs as postgres.
    home = Path(tempfile.mkdtemp(prefix="attention-postgres-"))
    (home / "pw").write_text(PASSWORD + "\n")
    if as_server:
        shutil.chown(home, "postgres")
        shutil.chown(home / "pw", "postgres")
    port = _free_port()
    env = dict(os.environ, PGPASSWORD=PASSWORD)

    def run(tool: str, *args: str) -> None:
        subprocess.run(
            [*as_server, str(bindir / tool), *args],
            check=True,
            capture_output=True,
            env=env,
            cwd=home,
            timeout=120,
        )

    run("initdb", "-D", str(home / "data"), "-U", "grader", "-A", "scram-sha-256",
        f"--pwfile={home / 'pw'}")  # fmt: skip
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    run("pg_ctl", "-D", str(home / "data"), "-o", options, "-l", str(home / "log"), "-w", "start")
    try:
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook")
        yield Server(port, "grader", "gradebook")
    finally:
        run("pg_ctl", "-D", str(home / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    work = tmp_path_factory.mktemp("release")
    release(FIXTURE, work / "release", assignments=[ASSIGNMENT])
    return batch_submissions.Course(FIXTURE, work / "release")


def write_class(folder: Path, course, grace_solved: bool) -> None:
    """ada hands in a full solution; grace the untouched release, or a full solution too."""
    if folder.exists():
        shutil.rmtree(folder)
    name = course.notebook(ASSIGNMENT)
    for student, nb in (
        ("ada", course.perfect(ASSIGNMENT)),
        ("grace", course.perfect(ASSIGNMENT) if grace_solved else course.released(ASSIGNMENT)),
    ):
        (folder / student / ASSIGNMENT).mkdir(parents=True)
        nbformat.write(nb, folder / student / ASSIGNMENT / f"{name}.ipynb")


def run(program: str, *args, password: str | None = PASSWORD) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if password is not None:
        env["PGPASSWORD"] = password
    return subprocess.run(
        [str(BIN / program), *map(str, args)], capture_output=True, text=True, env=env,
        timeout=600,
    )  # fmt: skip


def grade(subs: Path, out: Path, db_url: str, password: str | None = PASSWORD):
    return run(
        "attention-grade", subs, "--out", out, "--source", FIXTURE, "--assignment", ASSIGNMENT,
        "--no-progress", "--no-feedback", "--jobs", "2", "--db-url", db_url, password=password,
    )  # fmt: skip


def scores(url: str) -> dict[str, tuple[float, float | None, bool]]:
    """``{student: (score, manual score of the written answer, needs manual grade)}``."""
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)
    with Gradebook(url) as gb:
        return {
            sub.student_id: (
                float(sub.score),
                gb.find_grade(
                    "answer_stability", ASSIGNMENT, ASSIGNMENT, sub.student_id
                ).manual_score,
                bool(sub.needs_manual_grade),
            )
            for sub in gb.find_assignment(ASSIGNMENT).submissions
        }


def count_rows(url: str) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("student", "assignment", "submitted_assignment", "grade")
            }
    finally:
        engine.dispose()


@pytest.mark.slow  # two grading runs of two learners: ~30 s on an idle 2-core machine
def test_a_batch_in_postgresql_regraded_and_exported_to_the_lms(
    server, course, tmp_path, monkeypatch
):
    monkeypatch.setenv("PGPASSWORD", PASSWORD)  # for this process's own Gradebook reads
    url, subs, out = server.url(), tmp_path / "subs", tmp_path / "out"
    full = course.points(ASSIGNMENT)
    assert full == 5.0

    write_class(subs, course, grace_solved=False)
    done = grade(subs, out, url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert PASSWORD not in done.stdout + done.stderr
    assert "database:     postgresql://grader@127.0.0.1" in done.stdout
    # The local output is complete, and Formgrader's config now names the shared database.
    assert {r["student_id"]: r["code_score"] for r in read_csv(out / "grades.csv")} == {
        "ada": "5",
        "grace": "0",
    }
    config = (out / "nbgrader" / "nbgrader_config.py").read_text()
    assert f"c.CourseDirectory.db_url = {url!r}" in config and PASSWORD not in config

    assert scores(url) == {"ada": (full, None, True), "grace": (0.0, None, False)}
    first = count_rows(url)
    assert first["student"] == 2 and first["submitted_assignment"] == 2

    # A grader grades ada's written answer, as Formgrader's API handler does ...
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)
    with Gradebook(url) as gb:
        answer = gb.find_grade("answer_stability", ASSIGNMENT, ASSIGNMENT, "ada")
        answer.manual_score, answer.needs_manual_grade = 1.0, False
        gb.db.commit()

    # ... grace hands in a full solution, and the class is graded again: same rows, new
    # scores, ada's manual grade kept.
    write_class(subs, course, grace_solved=True)
    done = grade(subs, out, url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert scores(url) == {"ada": (full + 1, 1.0, False), "grace": (full, None, True)}
    assert count_rows(url) == first

    # Grades into the LMS: autograded + manual points from the shared gradebook.
    roster = tmp_path / "canvas.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section\n"
        "    Points Possible,,,,\n"
        '"Lovelace, Ada",7001,S-1,ada,A\n'
        '"Hopper, Grace",7002,S-2,grace,A\n'
    )
    lms_file = tmp_path / "upload.csv"
    done = run(
        "attention-lms-export", out / "grades.csv", "--roster", roster, "--lms", "canvas",
        "--match", "login", "--gradebook", url, "--out", lms_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(lms_file, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", ASSIGNMENT],
        ["Points Possible", "", "", "", "", "6"],  # 5 autograded + 1 written
        ["Lovelace, Ada", "7001", "S-1", "ada", "A", "6"],
        ["Hopper, Grace", "7002", "S-2", "grace", "A", "5"],  # written answer not graded yet
    ]
    assert "grace / 00_fixture_one has written answers not graded yet" in done.stderr
    assert "ada / " not in done.stderr
    # The batch's own sqlite gradebook knows nothing of the grader's work in PostgreSQL.
    done = run(
        "attention-lms-export", out / "grades.csv", "--roster", roster, "--lms", "canvas",
        "--match", "login", "--gradebook", out / "nbgrader" / "gradebook.db", "--out", lms_file,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(lms_file, newline="") as handle:
        assert [row[-1] for row in csv.reader(handle)] == [ASSIGNMENT, "6", "5", "5"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("wrong password", "refused the password of user 'grader': set PGPASSWORD"),
        ("no such database", "there is no database 'nowhere' on 127.0.0.1:"),
        ("unreachable", "cannot reach a database server at 127.0.0.1:"),
        ("password in the URL", "--db-url contains a password"),
    ],
)
def test_bad_database_is_one_line_exit_2_before_grading(server, tmp_path, case, message):
    """Nothing is graded, and the previous output folder is left as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text("the previous batch\n")
    subs = tmp_path / "subs"
    (subs / "ada").mkdir(parents=True)
    url, password = server.url(), PASSWORD
    if case == "wrong password":
        password = "wrong"
    elif case == "no such database":
        url = server.url(database="nowhere")
    elif case == "unreachable":
        url = server.url(port=_free_port())
    else:
        url = url.replace("grader@", f"grader:{PASSWORD.replace(' ', '%20')}@")
    done = grade(subs, out, url, password=password)
    assert done.returncode == 2, done
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert PASSWORD not in done.stderr and PASSWORD.replace(" ", "%20") not in done.stderr
    assert (out / "grades.csv").read_text() == "the previous batch\n"


def test_a_complete_batch_is_pushed_again_without_grading(server, tmp_path, monkeypatch):
    """attention-gradebook-push: an existing output folder's gradebook, after a failed push."""
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    missing = run("attention-gradebook-push", tmp_path / "nothing", "--db-url", server.url())
    assert missing.returncode == 2 and "no gradebook to copy" in missing.stderr
    wrong = run("attention-gradebook-push", tmp_path, "--db-url", server.url(), password="x")
    assert wrong.returncode == 2 and "refused the password" in wrong.stderr
