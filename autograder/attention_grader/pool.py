"""Run grading jobs in child processes, N at a time, each with a wall-clock limit.

Why not ``concurrent.futures``: a job must be *killable* on its own (an infinite loop that
ignores interrupts, a kernel that never answers) without losing the pool, and a job that dies
(``os._exit`` in the grader, a segfault) must only lose its own result. So every job is a fresh
child process:

- on Linux it is *forked* from the parent, which has already imported nbgrader, nbconvert and
  nbclient (importing them costs seconds, mostly jsonschema's format checkers), so a job starts
  in milliseconds; elsewhere (macOS, Windows) it is spawned;
- its result travels as a JSON file written atomically by the child; no result file means the
  child died, and the parent says so in that job's row;
- the child's stdout/stderr (nbgrader's log, the kernels' noise) go to the job's log file;
- on timeout the parent kills the child and all its descendants (the kernels, which
  jupyter_client starts in their own session) with psutil; without psutil the kernels notice
  that their parent is gone (ipykernel's parent poller) and exit.

The parent stays single-threaded until every child has been started (fork safety).
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable
from pathlib import Path


def _context():
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    return multiprocessing.get_context(method)


def _child(target: Callable, task: dict, result_path: str, log_path: str) -> None:
    try:
        os.setsid()  # own process group: the parent can signal the whole job
    except OSError:
        pass
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False)  # noqa: SIM115
    try:
        payload = {"ok": True, "value": target(task)}
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, never raised there
        traceback.print_exc()
        payload = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
    tmp = result_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)
    os.replace(tmp, result_path)
    sys.stdout.flush()
    sys.stderr.flush()


def kill_tree(pid: int) -> None:
    """Kill a job process and everything it started (kernels live in their own sessions)."""
    try:
        import psutil

        try:
            parent = psutil.Process(pid)
            family = parent.children(recursive=True) + [parent]
        except psutil.NoSuchProcess:
            family = []
        for proc in family:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=5)
    except ImportError:
        pass
    try:
        os.killpg(pid, signal.SIGKILL)  # the job's own process group (it called setsid)
    except OSError:
        pass


def run(
    tasks: list[dict],
    target: Callable[[dict], dict],
    *,
    workers: int,
    wall_timeout: float | None,
    on_done: Callable[[dict, dict], None],
    on_start: Callable[[dict], None] | None = None,
) -> None:
    """Run ``target(task)`` for every task in a child process; report through ``on_done``.

    Each task needs ``job_dir`` (created here). ``on_done(task, outcome)`` is called in the
    parent with ``{"ok": True, "value": ...}``, ``{"ok": False, "error": ...}`` (the target
    raised), ``{"ok": False, "killed": "time limit"}`` or ``{"ok": False, "error": "the
    grading process died ..."}``.
    """
    ctx = _context()
    pending = deque(tasks)
    running: dict[int, tuple] = {}
    workers = max(1, int(workers))
    while pending or running:
        while pending and len(running) < workers:
            task = pending.popleft()
            job_dir = Path(task["job_dir"])
            job_dir.mkdir(parents=True, exist_ok=True)
            result_path, log_path = str(job_dir / "result.json"), str(job_dir / "job.log")
            proc = ctx.Process(
                target=_child, args=(target, task, result_path, log_path), daemon=False
            )
            proc.start()
            running[proc.sentinel] = (proc, task, time.monotonic(), result_path)
            if on_start:
                on_start(task)
        ready = multiprocessing.connection.wait(list(running), timeout=0.5)
        now = time.monotonic()
        for sentinel in list(running):
            proc, task, started, result_path = running[sentinel]
            if sentinel in ready:
                proc.join()
                del running[sentinel]
                on_done(task, _read(result_path, proc.exitcode))
            elif wall_timeout and now - started > wall_timeout:
                kill_tree(proc.pid)
                proc.join()
                del running[sentinel]
                on_done(
                    task, {"ok": False, "killed": "time limit", "seconds": round(now - started, 1)}
                )


def _read(result_path: str, exitcode) -> dict:
    try:
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {
            "ok": False,
            "error": f"the grading process died (exit code {exitcode}) before it could report",
        }


def run_one(target: Callable[[dict], dict], task: dict, timeout: float | None = None) -> dict:
    """One task in a child process; returns its value or raises RuntimeError with its error."""
    box = {}
    run(
        [task],
        target,
        workers=1,
        wall_timeout=timeout,
        on_done=lambda t, outcome: box.update(outcome),
    )
    if not box.get("ok"):
        detail = box.get("traceback") or box.get("error") or box.get("killed")
        raise RuntimeError(detail)
    return box["value"]
