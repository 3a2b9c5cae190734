"""End to end in a real browser: the saturation explorer reacts to its d_k slider.

JupyterLab and Voila are started on 127.0.0.1 with a course notebook, and Playwright drives the
system Chromium (``/usr/bin/chromium``, Debian's ``chromium`` package; Playwright's own browser
download is never used). Each test runs the notebook, moves the d_k slider to its largest
value, and checks that the plot image and the readout changed and that the unscaled softmax is
one-hot. Screenshots go to a temporary folder; their paths are printed.

Without Chromium or Playwright the tests are skipped with the reason — except when the
environment variable ``CI`` is set: there they fail, so CI never passes by skipping them.

Which notebook: the first course notebook whose source contains ``saturation_explorer(``
(``solutions/03_softmax/03_softmax.ipynb`` first: running *all* cells of the learner version
in ``course/`` stops at the first unimplemented exercise), else the fixture
``tests/fixtures/widgets/widgets_demo.ipynb``; the environment variable
``BROWSER_TEST_NOTEBOOK`` names another one. It is copied into a temporary folder, so the
servers never write into the repository.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
CANDIDATES = [
    ROOT / "solutions" / "03_softmax" / "03_softmax.ipynb",
    ROOT / "course" / "03_softmax" / "03_softmax.ipynb",
    ROOT / "solutions" / "02_scaling" / "02_scaling.ipynb",
]
FIXTURE = ROOT / "tests" / "fixtures" / "widgets" / "widgets_demo.ipynb"
EXPLORER = ".ac-saturation-explorer"
TOKEN = "attention-course-browser-test"


def _notebook() -> Path:
    if os.environ.get("BROWSER_TEST_NOTEBOOK"):  # e.g. to try a notebook before it is committed
        return Path(os.environ["BROWSER_TEST_NOTEBOOK"]).resolve()
    for path in CANDIDATES:
        if path.exists() and "saturation_explorer(" in path.read_text(encoding="utf-8"):
            return path
    return FIXTURE


NOTEBOOK = _notebook()


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _unavailable() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _unavailable()
    if reason:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """Start a server in its own process group (so its kernels can be stopped with it)."""
    with log.open("w") as out:
        return subprocess.Popen(args, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def _stop(server: subprocess.Popen) -> None:
    """Stop the server we started, and its kernels, by its own process (group) id."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def _wait_http(url: str, server: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # the server answers (Voila serves no /api/status: 403 is an answer)
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"no answer from {url} within {timeout:.0f} s:\n{log.read_text()}")


def _say(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n    {text}", end="")


def _move_slider_and_check(page, shots: Path, name: str, capsys) -> None:
    """Move the explorer's d_k slider to its maximum; the image and the readout must change."""
    explorer = page.locator(EXPLORER)
    explorer.wait_for(state="visible", timeout=60_000)
    image = explorer.locator("img")
    readout = explorer.locator(".ac-readout")
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel + ' img');"
        " return img && img.src && img.naturalWidth > 0; }",
        arg=EXPLORER,
        timeout=30_000,
    )
    explorer.scroll_into_view_if_needed()
    before_src, before_text = image.get_attribute("src"), readout.inner_text()
    assert "d_k = 16" in before_text, f"unexpected initial readout: {before_text!r}"
    before_shot = shots / f"{name}-d_k-16.png"
    explorer.screenshot(path=str(before_shot))

    handle = explorer.locator(".noUi-handle").first
    handle.focus()
    handle.press("End")  # the slider's maximum: d_k = 1024
    page.wait_for_function(
        "([sel, old]) => document.querySelector(sel + ' .ac-readout').innerText !== old",
        arg=[EXPLORER, before_text],
        timeout=20_000,
    )
    page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel + ' img');"
        " return img.src !== old && img.complete && img.naturalWidth > 0; }",
        arg=[EXPLORER, before_src],
        timeout=20_000,
    )
    after_text = readout.inner_text()
    after_shot = shots / f"{name}-d_k-1024.png"
    explorer.screenshot(path=str(after_shot))
    page.screenshot(path=str(shots / f"{name}-page.png"))
    _say(capsys, f"{name}: screenshots {before_shot}, {after_shot}")
    assert "d_k = 1024" in after_text, f"the readout did not follow the slider: {after_text!r}"
    unscaled = page.locator(f"{EXPLORER} .ac-unscaled").first.inner_text()
    assert float(unscaled) > 0.99, (
        f"at d_k = 1024 the unscaled softmax should be one-hot, readout says {unscaled}"
    )
    assert image.get_attribute("src") != before_src, "the plot image did not change"


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "root"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    return work


def test_saturation_explorer_in_jupyterlab(browser, shots, tmp_path, capsys):
    """Run all cells in JupyterLab 4, drag d_k to 1024: the plot and the readout change."""
    work = _workdir(tmp_path)
    settings = tmp_path / "lab-settings"
    for plugin, values in {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the DOM
    }.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = _free_port()
    args = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if os.getuid() == 0:
        args.append("--allow-root")
    env = {
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    log = tmp_path / "jupyterlab.log"
    _say(capsys, f"JupyterLab on {_shown(NOTEBOOK)}")
    server = _start(args, work, env, log)
    page = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={TOKEN}", server, log)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={TOKEN}")
        page.wait_for_function(
            "() => { const bar = document.querySelector('#jp-main-statusbar');"
            " return bar && bar.innerText.includes('Idle'); }",
            timeout=60_000,
        )
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        _move_slider_and_check(page, shots, "jupyterlab", capsys)
    except Exception:
        if page is not None:
            page.screenshot(path=str(shots / "jupyterlab-failure.png"))
            _say(capsys, f"failure screenshot {shots / 'jupyterlab-failure.png'}; log {log}")
        raise
    finally:
        if page is not None:
            page.close()
        _stop(server)


def test_saturation_explorer_in_voila(browser, shots, tmp_path, capsys):
    """Voila renders the notebook's widgets without its code: drag d_k, the plot changes."""
    work = _workdir(tmp_path)
    port = _free_port()
    args = [
        sys.executable, "-m", "voila", NOTEBOOK.name, "--no-browser", f"--port={port}",
        "--Voila.ip=127.0.0.1",
    ]  # fmt: skip
    log = tmp_path / "voila.log"
    _say(capsys, f"Voila on {_shown(NOTEBOOK)}")
    server = _start(args, work, {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}, log)
    page = None
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status", server, log)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        # The page asks a CDN for a stylesheet that never loads offline: do not wait for "load".
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
        _move_slider_and_check(page, shots, "voila", capsys)
    except Exception:
        if page is not None:
            page.screenshot(path=str(shots / "voila-failure.png"))
            _say(capsys, f"failure screenshot {shots / 'voila-failure.png'}; log {log}")
        raise
    finally:
        if page is not None:
            page.close()
        _stop(server)
