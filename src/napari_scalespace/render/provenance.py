"""Which checkpoint a learned pyramid was rendered from.

A learned store records ``{"step": N, "generator_sha256": HEX}``: the step of the checkpoint
whose EMA generator rendered it and the content hash of that generator's weights file
(``generator_ema.safetensors``), as the checkpoint's ``state.json`` lists it (read here, never
written). A stored pyramid is reused only if its record equals the run's current one
(:func:`same_checkpoint`).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["checkpoint_identity", "same_checkpoint"]

WEIGHTS = "generator_ema.safetensors"


def checkpoint_identity(run_dir: str | Path) -> dict | None:
    """``{"step", "generator_sha256"}`` of the checkpoint a renderer of ``run_dir`` loads (the
    run's latest, or ``run_dir`` itself when it is a checkpoint folder); None when there is
    none or its ``state.json`` lacks the record."""
    from ..checkpoint import CheckpointError, latest_checkpoint

    path = Path(run_dir)
    try:
        ckpt = path if (path / "state.json").is_file() else latest_checkpoint(path)
    except (CheckpointError, OSError):
        return None
    if ckpt is None:
        return None
    try:
        state = json.loads((ckpt / "state.json").read_text(encoding="utf-8"))
        step, sha = state["step"], state["files"][WEIGHTS]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(step, int) or not isinstance(sha, str):
        return None
    return {"step": step, "generator_sha256": sha}


def same_checkpoint(recorded: object, current: dict | None) -> bool:
    """Whether a store's recorded identity is ``current`` (both known and equal)."""
    return (current is not None and isinstance(recorded, dict)
            and recorded.get("step") == current["step"]
            and recorded.get("generator_sha256") == current["generator_sha256"])
