"""The optional sandbox for learner code: a bubblewrap (``bwrap``) jail around the kernel.

Only the kernel — the process that runs learner code — is jailed; nbgrader itself (which only
reads the notebook as data) runs outside. Inside the jail:

- no network: a private network namespace (``--unshare-net``) with only its own loopback, so
  the learner cannot reach the internet *or* services of the grading machine on 127.0.0.1;
  the kernel talks to nbgrader over unix sockets (``KernelManager.transport = "ipc"``) in a
  folder shared with the jail;
- the whole file system is read-only, ``/tmp`` is a private empty tmpfs, and the folders that
  hold secrets or other learners' work — the grader's home, the hidden tests (the source
  folder), the submissions, the grading output and the other jobs' folders — are hidden
  behind empty tmpfs mounts (only what the kernel needs to run, the Python installation, the
  ``attention_course`` package and this folder, is bound back read-only);
- the only writable folders are the learner's own notebook folder (the kernel's working
  directory) and the job's private home and runtime folders;
- ``--die-with-parent`` and ``--new-session``: the jail dies with the grader and cannot reach
  its terminal.

Requires Linux with unprivileged user namespaces (or root) and ``apt-get install bubblewrap``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bwrap() -> str | None:
    return shutil.which("bwrap")


def problem() -> str | None:
    """None if the sandbox works on this machine, else a sentence saying why not."""
    exe = bwrap()
    if exe is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
             "--proc", "/proc", "--tmpfs", "/tmp", "true"]  # fmt: skip
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not be started: {exc}"
    if done.returncode != 0:
        return (
            "bubblewrap cannot create namespaces here (unprivileged user namespaces may be "
            f"disabled): {done.stderr.strip() or done.returncode}"
        )
    return None


def _needed_read_paths() -> list[Path]:
    """What a kernel needs to read: Python, the venv, the course package, this package."""
    paths = {
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.executable).resolve().parent.parent,
        Path(sys.exec_prefix),
        HERE,
    }
    spec = importlib.util.find_spec("attention_course")
    if spec is not None and spec.submodule_search_locations:
        paths.add(Path(next(iter(spec.submodule_search_locations))).resolve().parent)
    return sorted({p.resolve() for p in paths if p.exists()})


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def command(
    *, cwd: Path, writable: list[Path], masks: list[Path], home: Path, readable: list[Path] = ()
) -> list[str]:
    """The bwrap command line (without the program to run) for a kernel started in ``cwd``."""
    exe = bwrap()
    if exe is None:
        raise RuntimeError(problem())
    masks = sorted(
        {Path(m).resolve() for m in masks if Path(m).exists() and Path(m).resolve() != Path("/")},
        key=lambda p: len(p.parts),
    )
    masks_and_tmp = [Path("/tmp"), *masks]
    args = [
        exe,
        "--die-with-parent",
        "--new-session",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--ro-bind",
        "/",
        "/",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
    ]
    for mask in masks:
        args += ["--tmpfs", str(mask)]
    rebound = []
    for path in _needed_read_paths():
        if any(_under(path, m) for m in masks_and_tmp):
            args += ["--ro-bind", str(path), str(path)]
            rebound.append(path)
    for mask in masks:  # a secret inside something bound back (solutions/ inside the repo)
        if any(_under(mask, r) and mask != r for r in rebound):
            args += ["--tmpfs", str(mask)]
    for path in sorted({Path(p).resolve() for p in [*writable, cwd]}, key=lambda p: len(p.parts)):
        args += ["--bind", str(path), str(path)]
    for path in readable:  # e.g. the kernel's connection file, wherever jupyter_client put it
        args += ["--ro-bind", str(Path(path).resolve()), str(Path(path).resolve())]
    args += ["--setenv", "HOME", str(home), "--setenv", "TMPDIR", "/tmp", "--chdir", str(cwd)]
    return args


def default_masks(*extra: Path) -> list[Path]:
    """Folders hidden from the kernel: the grader's home, plus the batch's own folders."""
    masks = [Path(p) for p in extra if p]
    home = os.environ.get("HOME")
    if home and Path(home).resolve() != Path("/"):
        masks.append(Path(home))
    return masks
