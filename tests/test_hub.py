"""SLOW: a class on a real JupyterHub, end to end (docs/instructors.md §3).

A JupyterHub (dummy authenticator, local "simple" spawner: every user's server runs in that
user's own folder) is started on 127.0.0.1 with an instructor, two learners and one hub user
who is not in the course. The nbgrader exchange is shared as the docs say: a global
``nbgrader_config.py`` (here in a folder on ``JUPYTER_CONFIG_PATH``) with ``Exchange.root``,
``path_includes_course`` and nbgrader's ``JupyterHubAuthPlugin``, and the hub groups
``nbgrader-<course_id>`` / ``formgrade-<course_id>``. Then, through the hub's proxy and each
user's own server's REST API (nbgrader's server extensions): the instructor's server as
Formgrader's Manage Assignments buttons call it (``/formgrader/api/assignment/<id>/assign``,
``.../release``, ``.../collect``, ``.../release_feedback``), each learner's server as the
JupyterLab Assignments tab calls it (``/assignments``, ``/assignments/fetch``,
``/assignments/submit``, ``/assignments/fetch_feedback``; notebooks edited through the
Contents API):

    instructor: Generate, Release                     (Formgrader, instructor's server)
    learners:   fetch -> edit (alice right, bob wrong) -> submit
    instructor: Collect (Formgrader) -> attention-grade (the batch grader, a command in the
                instructor's terminal) -> Release Feedback (Formgrader)
    learners:   fetch_feedback: each gets only their own

plus a Chromium screenshot of alice's Assignments tab, and ``attention-hub-check`` naming the
user who is not in the group. The hub is stopped by its pid (SIGTERM); the test checks that no
user server or proxy is left. Uses the small fixture course (tests/fixtures/grading).

Without jupyterhub, configurable-http-proxy, Chromium or Playwright the test is skipped with
the reason — except with ``CI`` set, where it fails.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import batch_submissions
import nbformat
import pytest

from attention_grader import CONFIG_FILE

BIN = Path(sys.executable).parent
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "grading" / "source"
ASSIGNMENT = "00_fixture_one"
COURSE_ID = "attention-from-scratch"
INSTRUCTOR, LEARNERS, OUTSIDER = "instructor", ("alice", "bob"), "mallory"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "hub-test-password"

pytestmark = pytest.mark.slow


def _unavailable() -> str | None:
    if not (BIN / "jupyterhub").exists():
        return "jupyterhub is not installed: pip install -e '.[test]'"
    if not shutil.which("configurable-http-proxy"):
        return "the hub's proxy is missing: npm install -g configurable-http-proxy"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed: pip install -e '.[test]'"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """Talk to the hub's REST API and, through its proxy, to users' servers."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def call(self, method: str, path: str, data: dict | None = None, timeout: float = 60):
        body = None if data is None else json.dumps(data).encode()
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            text = answer.read().decode()
        return json.loads(text) if text.strip() else None

    def assignments(self, user: str) -> list[dict]:
        answer = self.call("GET", f"/user/{user}/assignments?course_id={COURSE_ID}")
        assert answer["success"], answer
        return answer["value"]

    def action(self, user: str, action: str) -> list[dict]:
        """What the Assignments tab's Fetch / Submit / Fetch Feedback buttons post."""
        data = {"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}
        answer = self.call("POST", f"/user/{user}/assignments/{action}", data)
        assert answer["success"], f"{action} for {user}: {answer}"
        return answer["value"]

    def formgrader(self, user: str, action: str) -> str:
        """What Formgrader's Generate / Release / Collect / Release Feedback buttons post."""
        path = f"/user/{user}/formgrader/api/assignment/{ASSIGNMENT}/{action}"
        answer = self.call("POST", path, {}, timeout=120)
        assert answer["success"], f"{action}: {answer.get('error')}\n{answer.get('log')}"
        return answer.get("log") or ""


def _wait(what: str, ready, hub: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            pytest.fail(f"the hub exited with {hub.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if ready():
                return
        except (OSError, urllib.error.HTTPError):
            pass
        time.sleep(0.3)
    pytest.fail(f"{what}: not ready within {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def _run(args: list, cwd: Path, env: dict) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _hub_config(tmp: Path, ports: dict, token: str, etc: Path) -> str:
    """jupyterhub_config.py: the settings docs/instructors.md §3 lists, on free local ports."""
    users = [INSTRUCTOR, *LEARNERS, OUTSIDER]
    server_args = ["--allow-root"] if os.geteuid() == 0 else []
    return f"""\
c = get_config()  # noqa: F821
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {ports["hub"]}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {ports["api"]}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports["proxy_api"]}"
c.ConfigurableHTTPProxy.pid_file = {str(tmp / "proxy.pid")!r}
c.JupyterHub.db_url = "sqlite:///{tmp / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = {str(tmp / "cookie_secret")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allowed_users = {set(users)!r}
c.Authenticator.admin_users = {{{INSTRUCTOR!r}}}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(tmp / "home" / "{username}")!r}
c.Spawner.cmd = [{str(BIN / "jupyterhub-singleuser")!r}]
c.Spawner.args = {server_args!r}
c.Spawner.default_url = "/lab"
# answer the spawn request at once: the three servers start side by side
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}
# the global nbgrader_config.py (on a real hub: /etc/jupyter/nbgrader_config.py)
c.Spawner.environment = {{"JUPYTER_CONFIG_PATH": {str(etc)!r}}}
c.JupyterHub.load_groups = {{
    "nbgrader-{COURSE_ID}": {{"users": {list(LEARNERS)!r}}},
    "formgrade-{COURSE_ID}": {{"users": [{INSTRUCTOR!r}]}},
}}
c.JupyterHub.services = [{{"name": "course-test", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{
    "name": "course-test",
    "scopes": ["admin:users", "admin:servers", "admin:server_state", "access:servers"],
    "services": ["course-test"],
}}]
"""


def _answer(nb, answers: dict[str, str], wrong: bool) -> None:
    """Solve the fixture's exercises (``wrong``: the first one returns a wrong value)."""
    first = True
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
            if wrong and first:
                cell.source = batch_submissions.with_body(cell.source, "return 0.0 * x")
            first = False


def _learner_feedback(home: Path) -> list[Path]:
    return sorted(home.glob(f"**/{ASSIGNMENT}/feedback/*/*.html"))


def test_class_on_jupyterhub(tmp_path, capsys):
    reason = _unavailable()
    if reason:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"the hub test cannot run in CI: {reason}")
        pytest.skip(reason)
    start = time.monotonic()
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # docs §3: one folder every user can write
    etc = tmp_path / "etc-jupyter"
    etc.mkdir()
    (etc / "nbgrader_config.py").write_text(
        "from nbgrader.auth import JupyterHubAuthPlugin\n"
        "c = get_config()  # noqa: F821\n"
        f"c.Exchange.root = {str(exchange)!r}\n"
        "c.Exchange.path_includes_course = True\n"
        "c.Authenticator.plugin_class = JupyterHubAuthPlugin\n"
    )
    homes = {u: tmp_path / "home" / u for u in (INSTRUCTOR, *LEARNERS, OUTSIDER)}
    for user, home in homes.items():
        home.mkdir(parents=True)
        if user != INSTRUCTOR:
            # Every server here runs as one unix user (root), and nbgrader names a submission
            # after the unix user unless that is `jovyan`: name the learner (docs §3).
            (home / "nbgrader_config.py").write_text(
                f"c = get_config()  # noqa: F821\nc.CourseDirectory.student_id = {user!r}\n"
            )
    course = homes[INSTRUCTOR] / "course"
    course.mkdir()
    # The instructor's course folder: the course's own config (docs §2), fixture source, and
    # Release Feedback reading what attention-grade --out grading-output writes (docs §3).
    (course / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(CONFIG_FILE)!r})  # noqa: F821\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.CourseDirectory.source_directory = {str(FIXTURE)!r}\n"
        f"c.CourseDirectory.release_directory = {str(course / 'release')!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{course / 'gradebook.db'}'\n"
        "c.CourseDirectory.feedback_directory = 'grading-output/feedback'\n"
    )
    # Formgrader reads nbgrader_config.py from the folder the server starts in (the home).
    (homes[INSTRUCTOR] / "nbgrader_config.py").write_text(
        "c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(course / 'nbgrader_config.py')!r})  # noqa: F821\n"
    )

    ports = {name: _free_port() for name in ("hub", "api", "proxy_api")}
    token = secrets.token_hex(16)
    (tmp_path / "jupyterhub_config.py").write_text(_hub_config(tmp_path, ports, token, etc))
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    log = tmp_path / "jupyterhub.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [BIN / "jupyterhub", "-f", tmp_path / "jupyterhub_config.py"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(f"http://127.0.0.1:{ports['hub']}", token)
    servers: list[int] = []
    # The instructor's hub terminal, for attention-hub-check (docs §3).
    instructor_env = {
        **env,
        "JUPYTER_CONFIG_PATH": str(etc),
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{ports['api']}/hub/api",
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_USER": INSTRUCTOR,
    }
    try:
        # Each step as soon as what it needs is up: the servers start meanwhile.
        _wait("the hub", lambda: hub.call("GET", "/hub/api/") is not None, process, log)
        for user in (INSTRUCTOR, *LEARNERS, OUTSIDER):
            hub.call("POST", f"/hub/api/users/{user}/server")

        # Bad input: a hub user outside the course's group; the check says what to fix.
        check = subprocess.run(
            [BIN / "attention-hub-check", *LEARNERS, OUTSIDER, "ghost"],
            env=instructor_env,
            capture_output=True,
            text=True,
        )
        assert check.returncode == 1
        lines = check.stderr.strip().splitlines()
        assert len(lines) == 2, check.stderr  # one line per user to fix, none for the others
        assert f"'{OUTSIDER}' is not in the JupyterHub group 'nbgrader-{COURSE_ID}'" in lines[0]
        assert f"nbgrader db student add {OUTSIDER}" in lines[0]
        assert "'ghost' does not exist" in lines[1]
        ok = subprocess.run(
            [BIN / "attention-hub-check", *LEARNERS], env=instructor_env, capture_output=True
        )
        assert ok.returncode == 0, ok.stderr

        for user in (INSTRUCTOR, *LEARNERS, OUTSIDER):
            _wait(
                f"{user}'s server",
                lambda u=user: hub.call("GET", f"/hub/api/users/{u}")["servers"][""]["ready"],
                process,
                log,
            )
            model = hub.call("GET", f"/hub/api/users/{user}")
            servers.append(model["servers"][""]["state"]["pid"])
            if user == INSTRUCTOR:  # Formgrader: Generate, then Release
                hub.formgrader(INSTRUCTOR, "assign")
                hub.formgrader(INSTRUCTOR, "release")
        started = time.monotonic() - start
        # ... and nbgrader itself shows that user nothing (the group is what it enforces).
        assert hub.assignments(OUTSIDER) == []

        # Learners: fetch, answer through the Contents API, submit.
        solved = batch_submissions.Course(FIXTURE, course / "release")
        answers = solved.solved_sources(ASSIGNMENT)
        for learner in LEARNERS:
            listed = hub.assignments(learner)
            assert [(a["assignment_id"], a["status"]) for a in listed] == [(ASSIGNMENT, "released")]
            fetched = hub.action(learner, "fetch")
            # with Exchange.path_includes_course, nbgrader fetches into <course_id>/<assignment>
            path = next(a for a in fetched if a["status"] == "fetched")["notebooks"][0]["path"]
            assert path == f"{COURSE_ID}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb", path
            model = hub.call("GET", f"/user/{learner}/api/contents/{path}?content=1")
            nb = nbformat.from_dict(model["content"])
            _answer(nb, answers, wrong=learner == "bob")
            hub.call(
                "PUT",
                f"/user/{learner}/api/contents/{path}",
                {"type": "notebook", "format": "json", "content": nb},
            )
            listed = hub.action(learner, "submit")
            assert any(a["status"] == "submitted" for a in listed), listed
        inbound = exchange / COURSE_ID / "inbound"
        assert sorted(p.name.split("+")[0] for p in inbound.iterdir()) == sorted(LEARNERS)

        # Instructor: Collect (Formgrader), grade with the batch grader in a terminal in the
        # course folder, Release Feedback (Formgrader).
        collected = hub.formgrader(INSTRUCTOR, "collect")
        submitted = sorted(p.name for p in (course / "submitted").iterdir())
        assert submitted == sorted(LEARNERS), collected
        out = course / "grading-output"
        _run(
            [BIN / "attention-grade", "submitted", "--out", "grading-output", "--source", FIXTURE,
             "--assignment", ASSIGNMENT, "--no-progress"],
            course,
            env,
        )  # fmt: skip
        with open(out / "grades.csv", newline="") as handle:
            scores = {r["student_id"]: float(r["code_score"]) for r in csv.DictReader(handle)}
        full = solved.points(ASSIGNMENT)
        assert scores["alice"] == full and scores["bob"] < full, scores
        released = hub.formgrader(INSTRUCTOR, "release_feedback")
        assert released.count("Releasing feedback for student") == len(LEARNERS), released

        # Learners: each fetches feedback, and gets only their own.
        for learner in LEARNERS:
            hub.action(learner, "fetch_feedback")
        for learner, other in (LEARNERS, LEARNERS[::-1]):
            got = _learner_feedback(homes[learner])
            assert len(got) == 1, got
            mine = out / "feedback" / learner / ASSIGNMENT / f"{ASSIGNMENT}.html"
            theirs = out / "feedback" / other / ASSIGNMENT / f"{ASSIGNMENT}.html"
            assert got[0].read_bytes() == mine.read_bytes() != theirs.read_bytes()
        assert _learner_feedback(homes[OUTSIDER]) == []

        shot = _screenshot(hub, tmp_path)
        with capsys.disabled():
            print(f"\n    released, hub and 4 servers up after {started:.1f} s; {shot}", end="")
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    proxy_pid = tmp_path / "proxy.pid"
    for pid in servers + ([int(proxy_pid.read_text())] if proxy_pid.exists() else []):
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pid), f"process {pid} outlived the hub"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


def _screenshot(hub: Hub, tmp_path: Path) -> Path:
    """Log in as alice in Chromium and open the Assignments tab."""
    from playwright.sync_api import sync_playwright

    shot = tmp_path / "alice-assignments.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{hub.url}/hub/login", wait_until="domcontentloaded")
            page.fill("#username_input", "alice")
            page.fill("#password_input", PASSWORD)
            page.click("#login_submit")
            page.wait_for_url("**/user/alice/lab**", timeout=60_000)
            page.locator(".jp-LauncherCard, .jp-Launcher").first.wait_for(timeout=60_000)
            page.get_by_role("menuitem", name="Nbgrader").click()
            page.get_by_text("Assignment List").click()
            panel = page.locator("#nbgrader-assignment-list, .nbgrader-AssignmentList").first
            panel.get_by_text(ASSIGNMENT).first.wait_for(timeout=30_000)
            page.screenshot(path=str(shot))
            assert ASSIGNMENT in panel.inner_text()
        finally:
            browser.close()
    return shot


def test_hub_check_without_a_hub():
    """No hub at that address: one line saying so, exit 2 (nothing is checked)."""
    env = {**os.environ, "JUPYTERHUB_API_URL": f"http://127.0.0.1:{_free_port()}/hub/api",
           "JUPYTERHUB_API_TOKEN": "not-a-token"}  # fmt: skip
    done = subprocess.run(
        [BIN / "attention-hub-check", "alice"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no answer from the hub at" in done.stderr
