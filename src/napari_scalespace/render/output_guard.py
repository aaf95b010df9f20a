"""Where an output store may be written: never over data that is not ours.

Every store this package writes (``export``, ``truth``, ``compare``, the cluster export, the
napari writer) is created through :func:`check_output` first (:func:`.export.create_pyramid`
calls it). The rule:

- a path that does not exist, or an empty folder: written;
- a store we wrote ourselves (its ``zarr.json`` carries our ``napari_scalespace`` and ``ome``
  attributes, and the folder holds nothing but the store's own entries): replaced only with
  ``overwrite=True`` (``--overwrite``);
- anything else (a file, a folder of other files, a foreign zarr store): refused;
- whatever the flags: never a run folder, a path inside one (except inside its ``compare/``
  folder, which holds no file of the run: ``RUN/compare/learned.zarr`` is where the compare
  widget and the demo put their pyramids) or a folder holding one, and never a protected path
  (the run being exported, the source image), a path inside one or a folder holding one.

Errors are one line (ValueError). Runs are recognised by their file layout only
(``config.json`` beside ``latest`` or ``checkpoints/``), without importing torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["check_output", "is_our_store", "is_run_folder"]

OURS = "napari_scalespace"
COMPARE = "compare"
"""The one folder of a run where outputs may go (the compare widget's and demo's default)."""


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a run folder (file layout only: ``config.json`` and a
    ``latest`` file or a ``checkpoints`` folder)."""
    p = Path(path)
    return (p / "config.json").is_file() and ((p / "latest").is_file()
                                              or (p / "checkpoints").is_dir())


def store_attributes(path: str | os.PathLike) -> dict | None:
    """The attributes of the zarr v3 group at ``path`` (its ``zarr.json``), or None when there
    is none or it cannot be read as a JSON object."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("node_type") != "group":
        return None
    attrs = meta.get("attributes")
    return attrs if isinstance(attrs, dict) else None


def is_our_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an OME-Zarr group this package wrote (our attributes and ``ome``)."""
    attrs = store_attributes(path)
    return attrs is not None and isinstance(attrs.get(OURS), dict) and "ome" in attrs


def _store_entries(path: Path) -> set[str]:
    """The entries a store of ours may hold: ``zarr.json`` and its datasets' folders."""
    attrs = store_attributes(path) or {}
    try:
        datasets = attrs["ome"]["multiscales"][0]["datasets"]
        paths = {str(d["path"]) for d in datasets}
    except (KeyError, IndexError, TypeError):
        paths = set()
    return {"zarr.json"} | paths


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.path.realpath(os.fspath(path))))


def _within(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def _in_compare(target: Path, run: Path) -> bool:
    """Whether ``target`` is strictly inside the run's ``compare/`` folder (no run file lives
    there: :mod:`..checkpoint` writes ``config.json``, ``latest`` and ``checkpoints/``)."""
    return _within(target, run / COMPARE) and target != run / COMPARE


def check_output(out: str | os.PathLike, overwrite: bool = False,
                 protect: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Check that a store may be created at ``out`` (see the module docstring); returns the
    resolved path. Raises ValueError (one line) otherwise. Nothing is written or deleted."""
    target = _resolved(out)
    for parent in (target, *target.parents):
        if is_run_folder(parent) and not _in_compare(target, parent):
            where = "a run folder" if parent == target else f"inside the run folder {parent}"
            raise ValueError(f"{out}: is {where}; write stores outside runs (or in its "
                             f"{COMPARE}/ folder)")
    for p in protect:
        if p is None or str(p) == "":
            continue
        guarded = _resolved(p)
        if is_run_folder(guarded) and _in_compare(target, guarded):
            continue
        if _within(target, guarded):
            raise ValueError(f"{out}: is {'' if target == guarded else 'inside '}{p}, which "
                             f"this command reads; choose another output folder")
        if _within(guarded, target):
            raise ValueError(f"{out}: holds {p}, which this command reads; choose another "
                             f"output folder")
    if not target.exists():
        if target.is_symlink():
            raise ValueError(f"{out}: is a broken link; choose another output folder")
        return target
    if not target.is_dir():
        raise ValueError(f"{out}: is a file; choose a new or empty folder")
    entries = os.listdir(target)
    if not entries:
        return target
    if not is_our_store(target):
        runs = [e for e in entries if is_run_folder(target / e)]
        what = f"the run folder {runs[0]}" if runs else f"{len(entries)} entries that are " \
            "not a napari-scalespace store"
        raise ValueError(f"{out}: holds {what}; choose a new or empty folder")
    foreign = sorted(set(entries) - _store_entries(target))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise ValueError(f"{out}: a napari-scalespace store that also holds other files "
                         f"({shown}); move them or choose another folder")
    if not overwrite:
        raise ValueError(f"{out}: a napari-scalespace store already exists; pass --overwrite "
                         f"to replace it")
    return target
