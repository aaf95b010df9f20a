"""An exclusive lock on a run folder while one process trains into it.

Two trainers writing one run would interleave checkpoints (``latest`` going backwards, one
deleting the other's temporary files). The trainer therefore takes :class:`RunLock` before it
writes anything into the run folder (a new run's ``config.json``, or the first checkpoint of a
resumed one) and holds it until training ends. It is an operating-system lock (``flock`` on
POSIX, a Windows file lock there, through the ``filelock`` package) on ``RUN/.training.lock``:
a process that exits, crashes or is killed frees it, so a stale lock never blocks a run. The
holder's process id and host are written next to it (``RUN/.training.owner``) for the error
message of whoever finds the run taken.

Readers (rendering, evaluation, the napari reader) take no lock: they only read complete
checkpoints, which ``latest`` names atomically (:mod:`.checkpoint`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from pathlib import Path

from .checkpoint import CheckpointError

__all__ = ["LOCK_FILE", "OWNER_FILE", "RunBusyError", "RunLock"]

LOCK_FILE = ".training.lock"
OWNER_FILE = ".training.owner"


class RunBusyError(CheckpointError):
    """The run folder is being trained by another process."""


class RunLock:
    """The training lock of ``run_dir`` (which must exist): :meth:`acquire`, :meth:`release`,
    or ``with RunLock(run) as lock:``. Not re-entrant: a second lock on the same folder, in
    this process or another, fails with :class:`RunBusyError` instead of waiting."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self._lock = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> RunLock:
        from filelock import FileLock, Timeout

        if self._lock is not None:
            return self
        lock = FileLock(str(self.run_dir / LOCK_FILE), timeout=0, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            owner = self._owner()
            who = ("another trainer in this process (close it first)"
                   if owner == f" (pid {os.getpid()})" else f"another process{owner}")
            raise RunBusyError(f"run folder {self.run_dir} is being trained by {who}; wait "
                               f"for it to finish or stop it") from None
        self._lock = lock
        owner = {"pid": os.getpid(), "host": socket.gethostname()}
        with contextlib.suppress(OSError):  # only for messages: never fatal
            (self.run_dir / OWNER_FILE).write_text(json.dumps(owner) + "\n")
        return self

    def release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is None:
            return
        with contextlib.suppress(OSError):
            (self.run_dir / OWNER_FILE).unlink()
        lock.release()

    def _owner(self) -> str:
        try:
            owner = json.loads((self.run_dir / OWNER_FILE).read_text())
            pid, host = int(owner["pid"]), str(owner["host"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""
        return f" (pid {pid})" if host == socket.gethostname() else f" (pid {pid} on {host})"

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
