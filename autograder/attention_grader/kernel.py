"""Start a grading kernel: resource limits, the optional sandbox, then an ordinary ipykernel.

The batch grader points the ``python3`` kernelspec of each grading job at this module (see
``engine.write_kernelspec``); its settings arrive as JSON in ``ATTENTION_GRADER_KERNEL``:

- ``memory_mb``: address-space limit (``RLIMIT_AS``) of the kernel, so a learner who allocates
  too much gets a ``MemoryError`` (or a dead kernel) alone instead of the machine swapping;
- ``file_mb``: largest file the kernel may write (``RLIMIT_FSIZE``), so nobody fills the disk;
- ``sandbox``: re-execute this module inside bubblewrap (``sandbox.command``) first;
- ``pid_file``: where the kernel appends its process id, so the grader can kill the kernels
  of a job it stopped (jupyter_client starts them in their own session).

Usage (by jupyter_client): ``python -m attention_grader.kernel -f {connection_file}``.
"""

from __future__ import annotations

import json
import os
import sys

INSIDE = "--inside-sandbox"


def _limit(resource_name: str, megabytes) -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits
        return
    if not megabytes:
        return
    which = getattr(resource, resource_name)
    soft, hard = resource.getrlimit(which)
    value = int(megabytes) * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))  # hard limit too: learner code cannot raise it


def _record_pid(settings: dict) -> None:
    if settings.get("pid_file"):
        try:
            with open(settings["pid_file"], "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")
        except OSError:
            pass


def main() -> None:
    settings = json.loads(os.environ.get("ATTENTION_GRADER_KERNEL") or "{}")
    args = sys.argv[1:]
    if settings.get("sandbox") and args[:1] != [INSIDE]:
        _record_pid(settings)  # bwrap keeps this process id (execv)
        from attention_grader import sandbox

        connection = args[args.index("-f") + 1] if "-f" in args[:-1] else None
        jail = sandbox.command(
            cwd=os.getcwd(),
            writable=settings.get("writable", []),
            masks=settings.get("masks", []),
            home=settings["home"],
            readable=[connection] if connection else [],
        )
        os.execv(jail[0], [*jail, sys.executable, "-m", __spec__.name, INSIDE, *args])
    if args[:1] == [INSIDE]:
        args = args[1:]
    _limit("RLIMIT_AS", settings.get("memory_mb"))
    _limit("RLIMIT_FSIZE", settings.get("file_mb"))
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing kernel leaves no core file
    except (ImportError, ValueError, OSError):
        pass
    _record_pid(settings)  # inside the jail too: the kernel itself (bwrap keeps it a child)
    os.environ.pop("ATTENTION_GRADER_KERNEL", None)
    sys.argv = [sys.argv[0], *args]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
