"""``attention-lms-export``: grades.csv and an LMS roster to Canvas's and Moodle's import CSV.

The rosters in tests/fixtures/lms are in the LMS's own export formats: Canvas's gradebook
export (``Student, ID, SIS User ID, SIS Login ID, Section``, a ``Points Possible`` row, a
test student, read-only total columns) and Moodle's plain-text grade export. The fixture
batch_grades.csv (a grades.csv of attention-grade; .gitignore keeps files named grades.csv out)
has every case: full marks, a fraction, missing work, a grader error, a learner on the roster
with no rows at all (emmy). The manual-grades path (``--gradebook``) is tested
on a real gradebook in tests/test_postgres_gradebook.py.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lms"
GRADES = FIXTURES / "batch_grades.csv"  # a grades.csv of attention-grade
CANVAS = FIXTURES / "canvas_gradebook_export.csv"
MOODLE = FIXTURES / "moodle_grades_export.csv"
#: The console script, installed next to this interpreter.
EXPORT = Path(sys.executable).parent / "attention-lms-export"


def run_export(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(EXPORT), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_canvas_import_file_from_a_canvas_gradebook_export(tmp_path):
    out = tmp_path / "canvas.csv"
    done = run_export(GRADES, "--roster", CANVAS, "--lms", "canvas", "--match", "login",
                      "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_rows(out) == [
        # The existing Canvas assignment keeps its "name (id)" header; 04 is a new column.
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "03_softmax (1201)",
         "04_attention"],
        ["Points Possible", "", "", "", "", "10", "12"],
        ["Lovelace, Ada", "5001", "S-1001", "ada", "Attention 101 - A", "10", "7.5"],
        ["Hopper, Grace", "5002", "S-1002", "grace", "Attention 101 - A", "4", ""],
        ["Torvalds, Linus", "5003", "S-1003", "linus", "Attention 101 - B", "", "12"],
        ["Noether, Emmy", "5004", "S-1004", "emmy", "Attention 101 - B", "", ""],
    ]  # fmt: skip
    # The grader error is not silently a zero: the cell is empty and stderr says why.
    assert "linus / 03_softmax could not be graded" in done.stderr
    assert "autograded only" in done.stdout


def test_moodle_import_file_by_id_number_with_zero_for_no_work(tmp_path):
    out = tmp_path / "moodle.csv"
    done = run_export(GRADES, "--roster", MOODLE, "--lms", "moodle", "--match", "idnumber",
                      "--out", out, "--no-work", "zero")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_rows(out) == [
        ["First name", "Last name", "ID number", "03_softmax", "04_attention"],
        ["Ada", "Lovelace", "ada", "10", "7.5"],
        ["Grace", "Hopper", "grace", "4", "0"],
        ["Linus", "Torvalds", "linus", "", "12"],
        ["Emmy", "Noether", "emmy", "0", "0"],
    ]


def test_moodle_match_by_email(tmp_path):
    grades = tmp_path / "grades.csv"
    text = GRADES.read_text()
    for name, email in [("ada", "ada.lovelace"), ("grace", "grace.hopper"),
                        ("linus", "linus.torvalds")]:  # fmt: skip
        text = text.replace(f"\n{name},", f"\n{email}@uni.example,")
    grades.write_text(text)
    out = tmp_path / "moodle.csv"
    done = run_export(grades, "--roster", MOODLE, "--lms", "moodle", "--match", "email",
                      "--out", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = read_rows(out)
    assert rows[0] == ["First name", "Last name", "Email address", "03_softmax", "04_attention"]
    assert rows[1] == ["Ada", "Lovelace", "ada.lovelace@uni.example", "10", "7.5"]
    assert rows[4] == ["Emmy", "Noether", "emmy.noether@uni.example", "", ""]


def _bad(tmp_path, roster_text: str | None = None, grades_text: str | None = None, *extra):
    roster = tmp_path / "roster.csv"
    roster.write_text(roster_text if roster_text is not None else CANVAS.read_text())
    grades = tmp_path / "grades.csv"
    grades.write_text(grades_text if grades_text is not None else GRADES.read_text())
    out = tmp_path / "canvas.csv"
    done = run_export(grades, "--roster", roster, "--lms", "canvas", "--out", out, *extra)
    return done, out


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # a second learner with ada's login, on the file's line 4
        (lambda t: t.replace(",grace,", ",ada,"), "line 4: SIS Login ID 'ada' is also on line 3"),
        # linus's login left empty, on line 5
        (lambda t: t.replace(",linus,", ",,"), "line 5: empty 'SIS Login ID' for Torvalds, Linus"),
        # a roster without the key column
        (lambda t: t.replace("SIS Login ID", "Login"), "no column 'SIS Login ID'"),
    ],
)
def test_bad_roster_is_one_line_exit_2_and_no_file(tmp_path, edit, message):
    done, out = _bad(tmp_path, edit(CANVAS.read_text()), None, "--match", "login")
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()


def test_work_without_roster_entry_is_never_dropped_silently(tmp_path):
    extra = "zed,03_softmax,ok,9,10,0,0,,,\n"
    done, out = _bad(tmp_path, None, GRADES.read_text() + extra, "--match", "login")
    assert done.returncode == 2
    assert "student_id zed matches no 'SIS Login ID'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not out.exists()
    # Asked for, the file is written and zed is listed on stderr.
    done, out = _bad(tmp_path, None, GRADES.read_text() + extra, "--match", "login",
                     "--skip-unmatched")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "not exported: zed is on no roster row" in done.stderr
    assert "zed" not in out.read_text()
    assert len(read_rows(out)) == 6  # header, Points Possible, the four roster learners


def test_wrong_match_column_for_the_lms_names_the_choices(tmp_path):
    done, out = _bad(tmp_path, None, None, "--match", "email")
    assert done.returncode == 2
    assert "no column 'email'" in done.stderr and "--match takes" in done.stderr
    assert not out.exists()


def test_a_failed_export_keeps_the_previous_file(tmp_path):
    out = tmp_path / "canvas.csv"
    out.write_text("previous upload\n")
    roster = tmp_path / "roster.csv"
    roster.write_text(CANVAS.read_text().replace(",grace,", ",ada,"))
    done = run_export(GRADES, "--roster", roster, "--lms", "canvas", "--match", "login",
                      "--out", out)  # fmt: skip
    assert done.returncode == 2
    assert out.read_text() == "previous upload\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
