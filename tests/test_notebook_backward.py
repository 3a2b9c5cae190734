"""Notebook 09's graded cells grade every case of its two exercises exactly once.

Each graded test cell of ``solutions/09_backpropagation`` makes the same check calls visibly
and, in its hidden block, with ``seed=1``; every case of ``softmax_backward`` and
``attention_backward`` (:mod:`attention_course.checks.backward`) is graded by exactly one cell,
worth 1 to 3 points; and each written answer carries a mark scheme. (Notebooks 06-08:
``tests/test_grader_catalogue.py``.)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from attention_course.checks import EXERCISES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "09_backpropagation" / "09_backpropagation.ipynb"
EXERCISE_NAMES = ("softmax_backward", "attention_backward")


def _graded_cells():
    if not NOTEBOOK.exists():
        pytest.skip("notebook 09 is not in solutions/ yet")
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]


def test_every_case_of_both_exercises_is_graded_once_visibly_and_hidden():
    found = []
    for cell in _graded_cells():
        if cell["cell_type"] != "code":
            continue
        meta, source = cell["metadata"]["nbgrader"], "".join(cell["source"])
        visible, hidden = source.split("### BEGIN HIDDEN TESTS")
        calls = re.findall(r'checks\.check_(\w+)\((\w+), "(\w+)"\)', visible)
        hidden_calls = re.findall(r'checks\.check_(\w+)\((\w+), "(\w+)", seed=1\)', hidden)
        assert len(calls) == 1 and calls == hidden_calls, meta["grade_id"]
        (name, fn, case), = calls  # fmt: skip
        assert name == fn and name in EXERCISE_NAMES, meta["grade_id"]
        assert case in EXERCISES[name].cases, meta["grade_id"]
        assert meta["points"] in (1, 2, 3) and meta["grade_id"] == f"test_{name}_{case}"
        found.append((name, case))
    assert Counter(found) == Counter(
        (name, case) for name in EXERCISE_NAMES for case in EXERCISES[name].cases
    )


def test_every_written_answer_has_a_mark_scheme():
    answers = [c for c in _graded_cells() if c["cell_type"] == "markdown"]
    assert len(answers) == 2
    for cell in answers:
        source = "".join(cell["source"])
        assert "=== BEGIN MARK SCHEME ===" in source and "=== END MARK SCHEME ===" in source
        assert cell["metadata"]["nbgrader"]["solution"] and cell["metadata"]["nbgrader"]["points"]
