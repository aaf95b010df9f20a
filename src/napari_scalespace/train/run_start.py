"""Starting a training run on disk: lock the folder, create or reopen the run, and undo a
start that fails before its first checkpoint.

A failed start must not leave a folder that neither a new run nor ``--resume`` accepts. So the
trainer checks the preset, the images and the networks before it writes anything; then
:class:`RunStart` creates the folder (if needed), takes its :class:`~..run_lock.RunLock` and
writes ``config.json``. Until the first checkpoint is saved the run is "unstarted": if training
fails (an image that cannot be decoded halfway, an error in the first step), :meth:`abandon`
removes exactly what this start created (``config.json``, an empty ``checkpoints/``, the lock
files, the folder if it made it) and nothing else. A config-only folder left by a start that was
killed is replaced by the next new run, and resumed from step 0 by ``--resume``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from .. import checkpoint
from ..checkpoint import CheckpointError
from ..data.collection import Collection
from ..model.config import Preset
from ..run_lock import LOCK_FILE, RunLock

__all__ = ["RunStart", "has_checkpoint", "probe_sources"]


def probe_sources(sources) -> None:
    """Read a pixel of every image, so that a file that opens but cannot be decoded (a
    truncated JPEG: Pillow reads the header lazily) fails before a run is created."""
    for source in sources.sources if isinstance(sources, Collection) else sources:
        source.read(0, 1, 0, 1)


def has_checkpoint(run: Path) -> bool:
    """Whether the run ever completed a checkpoint (``latest`` or a complete step folder)."""
    return (run / checkpoint.LATEST).exists() or bool(checkpoint.list_checkpoints(run))


class RunStart:
    """What one trainer did to its run folder (rank 0 only)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.lock = RunLock(self.run_dir)
        self._made: list[Path] = []  # folders this start created, outermost first
        self._lock_file_made = False
        self._checkpoints_made = False
        self._new = False  # this start wrote config.json and no checkpoint yet

    def _open_folder(self) -> None:
        run = self.run_dir
        if run.exists() and not run.is_dir():
            raise CheckpointError(f"{run}: exists and is not a folder")
        missing = [p for p in (run, *run.parents) if not p.exists()]
        run.mkdir(parents=True, exist_ok=True)
        self._made = missing[::-1]
        self._lock_file_made = not (run / LOCK_FILE).exists()
        self.lock.acquire()

    def create(self, preset: Preset, source: dict) -> list[str]:
        """Lock the folder and write a new run's ``config.json``; returns notes for the user."""
        notes = []
        self._open_folder()
        run, config = self.run_dir, self.run_dir / checkpoint.CONFIG
        if config.exists():
            if has_checkpoint(run):
                raise CheckpointError(f"run folder {run} already holds a trained run: continue "
                                      f"it (--resume) or train into another folder")
            config.unlink()
            notes.append(f"{run}: replaced the config.json of an earlier start that never "
                         f"saved a checkpoint")
        self._checkpoints_made = not (run / checkpoint.CHECKPOINTS).exists()
        checkpoint.create_run(run, preset, source)
        self._new = True
        return notes

    def resume(self) -> list[str]:
        """Lock the folder of an existing run."""
        if not (self.run_dir / checkpoint.CONFIG).is_file():
            raise CheckpointError(f"{self.run_dir / checkpoint.CONFIG}: missing file (no run "
                                  f"to resume there)")
        self._open_folder()
        return []

    def hold(self, step: int) -> None:
        """Make sure the lock is held before writing a checkpoint of ``step``; if it had been
        released, another process may have trained the run further meanwhile: refuse then."""
        if self.lock.held:
            return
        self.lock.acquire()
        latest = checkpoint.latest_checkpoint(self.run_dir)
        if latest is not None:
            done = int(latest.name.split("-")[-1])
            if done > step:
                self.lock.release()
                raise CheckpointError(f"run folder {self.run_dir} was trained to step {done} "
                                      f"by another process since this trainer was at step "
                                      f"{step}: resume it again")

    def saved(self) -> None:
        self._new = False

    def release(self) -> None:
        """Release the lock, keeping everything on disk."""
        self.lock.release()

    def abandon(self) -> None:
        """Release the folder; a new run that saved no checkpoint is removed (only what this
        start created)."""
        if self._new and self.lock.held:
            self._new = False
            run = self.run_dir
            with contextlib.suppress(OSError):
                (run / checkpoint.CONFIG).unlink()
            ckpts = run / checkpoint.CHECKPOINTS
            if self._checkpoints_made and ckpts.is_dir() and not has_checkpoint(run):
                for entry in ckpts.iterdir():  # unfinished saves only (.tmp-*)
                    if entry.name.startswith(".tmp-"):
                        _remove(entry)
                with contextlib.suppress(OSError):
                    ckpts.rmdir()
            self.lock.release()
            if self._lock_file_made:
                with contextlib.suppress(OSError):
                    (run / LOCK_FILE).unlink()
            for folder in reversed(self._made):  # innermost first; only if empty
                try:
                    folder.rmdir()
                except OSError:
                    break
            self._made = []
            return
        self.lock.release()


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.unlink(path)
