"""What a resumed run may change: settings given with ``--resume`` (or the Train widget's
"resume") are checked against what the run recorded instead of being ignored.

A run's ``config.json`` fixes its networks, its losses and its data. Resuming with a different
preset, octaves, batch, learning rate... or image would silently train something else than the
user asked for, so each explicitly given value is compared with the recorded one:

- equal: fine;
- a *session* setting (:data:`SESSION_FIELDS`, e.g. ``checkpoint_every``): applied to this
  session and reported (the run's ``config.json`` keeps its value);
- anything else: one ``CheckpointError`` line listing every difference.

The total number of steps, the time limit, the threads and the device are not part of the
run's config: they are this session's anyway.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import checkpoint
from ..checkpoint import CheckpointError
from ..model.config import Preset, to_dict, with_overrides

__all__ = ["SESSION_FIELDS", "preset_changes", "resume_preset"]

SESSION_FIELDS = frozenset({"checkpoint_every"})
"""Train-config fields that change only this session's bookkeeping, never what is learned."""

_SECTIONS = ("generator", "discriminator", "train")


def preset_changes(recorded: Preset, requested: Preset) -> tuple[list[str], list[str]]:
    """``(refused, session)``: the fields where ``requested`` differs from ``recorded``, as
    ``"batch: the run has 8, given 16"`` lines, split into those a resume may not change and
    those it applies for the session (:data:`SESSION_FIELDS`). A field that several configs
    share (``octaves``, ``resolution``...) is listed once."""
    refused: dict[str, str] = {}
    session: dict[str, str] = {}
    if requested.name != recorded.name:
        refused["preset"] = f"preset: the run has {recorded.name}, given {requested.name}"
    a, b = to_dict(recorded), to_dict(requested)
    for section in _SECTIONS:
        for name, old in a[section].items():
            new = b[section][name]
            if new != old and name not in refused and name not in session:
                line = f"{name}: the run has {_show(old)}, given {_show(new)}"
                (session if section == "train" and name in SESSION_FIELDS else refused)[
                    name] = line
    return list(refused.values()), list(session.values())


def _show(value: Any) -> str:
    return "[" + ", ".join(map(_show, value)) + "]" if isinstance(value, list) else repr(value)


def _same_path(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def resume_preset(
    run_dir: str | os.PathLike[str],
    *,
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    data_octaves: int | None = None,
    images: Sequence[str] | None = None,
) -> tuple[Preset, list[str]]:
    """The preset to resume ``run_dir`` with, and notes (one line each) on what it applies.

    Give only what the user chose explicitly: ``preset`` (a preset name), ``overrides``
    (config fields by name as for :func:`..model.config.get_preset`; ``octaves`` is the
    generator's total), ``data_octaves`` (octaves with data: the total minus
    ``extra_octaves``, what ``train --octaves`` means) and ``images`` (paths, or the names the
    run recorded). Values equal to the run's are accepted; :data:`SESSION_FIELDS` are applied
    to the returned preset (pass it to :class:`.Trainer` with ``resume=True``); anything else
    that differs, including other images, raises one ``CheckpointError`` line naming each
    difference. Invalid values raise the config's own ``ValueError``."""
    run = Path(run_dir)
    recorded, source = checkpoint.read_config(run)
    where = f"--resume of {run}"
    given = dict(overrides or {})
    if data_octaves is not None:
        extra = given.get("extra_octaves", recorded.train.extra_octaves)
        if isinstance(extra, int) and isinstance(data_octaves, int):
            given["octaves"] = data_octaves + extra
    if given.get("positions") == "auto":  # as resolved when the run was created
        one_image = source.get("scenes") == 1 and "collection" not in source
        given["positions"] = "known" if one_image else "unknown"
    requested = with_overrides(recorded, **given)
    if preset is not None:
        requested = dataclasses.replace(requested, name=str(preset))
    refused, session = preset_changes(recorded, requested)
    if images is not None:
        had = [str(i) for i in source.get("images", [])]
        now = [str(i) for i in images]
        if len(had) != len(now) or not all(map(_same_path, had, now)):
            refused.append(f"images: the run was trained on {', '.join(had) or 'nothing'}, "
                           f"given {', '.join(now)}")
    if refused:
        raise CheckpointError(f"{where}: given settings differ from the run's ("
                              + "; ".join(refused) + "): leave them out to continue the run "
                              "as it was, or train a new run into another folder")
    out = recorded
    notes = []
    if session:
        out = with_overrides(recorded, **{k: getattr(requested.train, k) for k in
                                          SESSION_FIELDS if getattr(requested.train, k)
                                          != getattr(recorded.train, k)})
        notes = [f"{where}: for this session {line} (config.json keeps the run's value)"
                 for line in session]
    return out, notes
