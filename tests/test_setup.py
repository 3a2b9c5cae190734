"""The README's commands: `make lab` serves course/, and the venv set-up is idempotent."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=timeout,
    )


def test_make_is_idempotent_once_installed():
    """A second `make` of the install stamps does nothing: no reinstall on every run."""
    stamp = ROOT / ".venv" / ".installed-test"
    if not stamp.exists():
        pytest.skip("the venv was not made by `make` (tests run outside the Makefile)")
    if (ROOT / "pyproject.toml").stat().st_mtime > stamp.stat().st_mtime:
        pytest.skip("pyproject.toml changed since the last install: `make test` reinstalls first")
    result = _make("-q", ".venv/.installed-test", ".venv/.installed-lab")
    assert result.returncode == 0, (
        "`make` would reinstall although pyproject.toml has not changed:\n"
        + result.stdout
        + result.stderr
    )


def test_make_lab_serves_the_course():
    """`make lab` starts JupyterLab with course/ as its root folder."""
    if not (ROOT / ".venv" / ".installed-lab").exists():
        pytest.skip("the venv was not made by `make`")
    port, token = _free_port(), "attention-course-test"
    args = f"--no-browser --port={port} --ip=127.0.0.1 --IdentityProvider.token={token}"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(ROOT / ".venv" / "test-runtime")}
    server = subprocess.Popen(
        ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        listing = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=2
                ) as response:
                    listing = json.load(response)
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "JupyterLab did not answer within 60 s; its output:\n" + (
            server.stdout.read() if server.poll() is not None else "(still running)"
        )
        names = sorted(item["name"] for item in listing["content"])
        expected = sorted(p.name for p in (ROOT / "course").iterdir() if not p.name.startswith("."))
        assert names == expected, f"make lab serves {names}, not course/'s {expected}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_a_too_old_python_stops_make_with_one_line(tmp_path):
    """nbgrader needs Python >= 3.11: make says so in one line, before pip prints a wall."""
    fake = tmp_path / "python3.10"
    fake.write_text(
        "#!/bin/sh\n"
        '[ "$1" = --version ] && { echo "Python 3.10.13"; exit 0; }\n'
        "exit 1  # the version check: sys.version_info < (3, 11)\n"
    )
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    result = _make("test", f"PYTHON={fake}", f"VENV={venv}")
    assert result.returncode != 0
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert "Python >= 3.11 is needed" in lines[0] and "Python 3.10.13" in lines[0]
    assert "make PYTHON=python3.12 test" in lines[0]
    assert not venv.exists()  # nothing half-made
