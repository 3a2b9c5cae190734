"""Run grading jobs in worker processes, N at a time, each with a wall-clock limit.

The pool is pebble's ``ProcessPool``: a job is stopped by cancelling its future, which kills
its worker (the pool starts a new one), and a worker that dies (``os._exit`` in the grader, a
segfault) loses only its own job (``ProcessExpired``). What pebble does not do is kept here:

- the kernels a job started run in their own session (jupyter_client starts them so), so
  killing the worker does not kill them, nor what learner code started in them (ipykernel
  exits when its parent dies; a learner's ``subprocess`` does not). Each kernel appends its
  process id to a file in its job's folder (:data:`KERNEL_PIDS`). A job over the wall-clock
  limit is therefore timed here rather than by pebble: :func:`kill_kernels` kills its kernels
  and everything they started (psutil) while they can still be found, then the job's future
  is cancelled (pebble stops the worker);
- each job's stdout/stderr (nbgrader's log, the kernels' noise) go to the job's log file.

Workers come from a *forkserver* that has imported nbgrader, nbconvert and nbclient once
(importing them costs seconds, mostly jsonschema's format checkers), on Linux; elsewhere they
are spawned. A forkserver is a fresh single-threaded process, so nothing is forked from this
process, which runs pebble's threads: no "use of fork() may lead to deadlocks" on Python 3.12+,
and the start method Python 3.14 uses by default on Linux. Measured on the 2-core machine
(``python -m attention_grader.pool``, Python 3.11): the first job of a new pool 0.01 s with
fork, 2.3 s with the preloaded forkserver, 1.9 s with spawn; a job on a worker started after
a killed one 0.11 s with fork or the forkserver, 2.4 s with spawn. :func:`start` starts the
forkserver while nbgrader releases the batch's assignments, which hides its 2.3 s.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import TimeoutError as FutureTimeout  # for the measurement below
from dataclasses import dataclass
from pathlib import Path

from pebble import ProcessExpired, ProcessPool

#: Modules the forkserver imports once, so that workers start with them loaded.
PRELOAD = ["attention_grader.engine"]
#: Where, in a job's folder, the processes a job starts outside its own process tree (the
#: kernels) append their process ids: what :func:`kill_kernels` kills.
KERNEL_PIDS = Path("runtime") / "kernel-pids"


@dataclass
class Outcome:
    """How a job ended: its value, or why there is none."""

    value: object = None
    error: str | None = None  # the target raised, or the worker died
    killed: bool = False  # stopped at the wall-clock limit
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.killed


def start(method: str | None = None) -> None:
    """Start the forkserver now (it imports nbgrader, ~2 s), e.g. while nbgrader releases."""
    if (method or _default_method()) == "forkserver":
        from multiprocessing import forkserver

        context("forkserver")
        forkserver.ensure_running()


def _default_method() -> str:
    return "forkserver" if sys.platform.startswith("linux") else "spawn"


def context(method: str | None = None):
    """The start method of the workers: forkserver (preloaded) on Linux, spawn elsewhere."""
    method = method or _default_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(PRELOAD)
    return ctx


def _in_worker(target: Callable, task, log_path: str):
    """Run ``target(task)`` with stdout/stderr in the job's log file (in a worker)."""
    saved = os.dup(1), os.dup(2)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    try:
        return target(task)
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def kill_kernels(job_dir: Path) -> None:
    """Kill the kernels a job started, and everything they started."""
    pid_file = Path(job_dir) / KERNEL_PIDS
    try:
        pids = {int(line) for line in pid_file.read_text().split() if line.strip().isdigit()}
    except OSError:
        return
    import psutil

    family = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if "attention_grader.kernel" not in " ".join(proc.cmdline()):
                continue  # the kernel is gone and its process id was reused
            family += [proc, *proc.children(recursive=True)]
        except psutil.Error:
            continue
    for proc in family:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(family, timeout=5)


def run(
    tasks: list,
    target: Callable,
    *,
    workers: int,
    wall_timeout: float | None,
    on_done: Callable[[object, Outcome], None],
    job_dir: Callable[[object], Path],
    initializer: Callable | None = None,
    initargs: tuple = (),
    method: str | None = None,
) -> None:
    """Run ``target(task)`` for every task in a worker; report each through ``on_done``.

    ``job_dir(task)`` is the task's folder (created here; its ``job.log`` gets the output).
    ``on_done(task, outcome)`` is called in this process, in the order jobs finish.
    """
    if not tasks:
        return
    with ProcessPool(
        max_workers=max(1, min(int(workers), len(tasks))),
        initializer=initializer,
        initargs=initargs,
        context=context(method),
    ) as pool:
        pending, started = {}, {}
        for task in tasks:
            folder = Path(job_dir(task))
            folder.mkdir(parents=True, exist_ok=True)
            future = pool.schedule(_in_worker, args=(target, task, str(folder / "job.log")))
            pending[future] = (task, folder, time.monotonic())
        while pending:
            done, _ = wait(list(pending), timeout=0.2, return_when=FIRST_COMPLETED)
            for future in done:
                task, folder, queued = pending.pop(future)
                on_done(task, _outcome(future, folder, queued))
            now = time.monotonic()
            for future, (task, folder, _queued) in list(pending.items()):
                if future.running():
                    started.setdefault(future, now)
                if wall_timeout and now - started.get(future, now) > wall_timeout:
                    # The kernels first, while their parent (the worker) still runs and
                    # what they started can still be found; then pebble stops the worker.
                    kill_kernels(folder)
                    future.cancel()
                    del pending[future]
                    on_done(task, Outcome(killed=True, seconds=round(now - started[future], 1)))


def _outcome(future, folder: Path, queued: float) -> Outcome:
    seconds = round(time.monotonic() - queued, 1)  # queueing included
    try:
        return Outcome(value=future.result(), seconds=seconds)
    except ProcessExpired as exc:
        kill_kernels(folder)
        return Outcome(
            error=f"the grading process died (exit code {exc.exitcode}) before it could report",
            seconds=seconds,
        )
    except Exception as exc:  # noqa: BLE001 - the target raised: reported in the job's row
        kill_kernels(folder)
        return Outcome(error=f"{type(exc).__name__}: {exc}", seconds=seconds)


def _engine_pid(seconds: float = 0.0) -> int:
    import attention_grader.engine  # noqa: F401 - what every grading job needs loaded

    time.sleep(seconds)
    return os.getpid()


def _start_costs(method: str) -> tuple[float, float]:
    """Seconds to the first result of a new pool, and of a job after a worker was killed."""
    started = time.perf_counter()
    with ProcessPool(max_workers=1, context=context(method)) as pool:
        pool.schedule(_engine_pid).result()
        first = time.perf_counter() - started
        try:
            pool.schedule(_engine_pid, args=(60,), timeout=0.5).result()
        except FutureTimeout:
            pass
        started = time.perf_counter()
        pool.schedule(_engine_pid).result()
    return first, time.perf_counter() - started


if __name__ == "__main__":  # the start-method measurement quoted in the module docstring
    import attention_grader.engine  # noqa: F401 - the parent has nbgrader, as in a batch

    for name in ("fork", "forkserver", "spawn"):
        first, replaced = _start_costs(name)
        print(f"{name:10s} first job {first:.2f} s, job on a replaced worker {replaced:.2f} s")
