"""The code is ruff-clean: lint everywhere (notebooks included), formatting for Python files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (pip install -e '.[dev]')")
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["check", "."], id="check"),
        pytest.param(["format", "--check", "lib", "tests", "benchmarks", "autograder"],
                     id="format"),
    ],
)  # fmt: skip
def test_ruff(args):
    result = subprocess.run([RUFF, *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, (
        f"`ruff {' '.join(args)}` found problems (run `make lint`; `ruff check --fix` and "
        f"`ruff format` fix most):\n{result.stdout}{result.stderr}"
    )
