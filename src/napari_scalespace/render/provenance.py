"""Which checkpoint a learned pyramid was rendered from.

A learned store records ``{"step": N, "generator_sha256": HEX}``: the step of the checkpoint
whose EMA generator rendered it and the content hash of that generator's weights file
(``generator_ema.safetensors``), as the checkpoint's ``state.json`` lists it
(:func:`..checkpoint.read_state`). A stored pyramid is reused only if its record equals the
run's current one (:func:`same_checkpoint`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["checkpoint_identity", "same_checkpoint"]

WEIGHTS = "generator_ema.safetensors"


def checkpoint_identity(run_dir: str | Path) -> dict | None:
    """``{"step", "generator_sha256"}`` of the checkpoint a renderer of ``run_dir`` loads (the
    run's latest, or ``run_dir`` itself when it is a checkpoint folder); None when there is
    none or its ``state.json`` lacks the record."""
    from ..checkpoint import STATE, CheckpointError, latest_checkpoint, read_state

    path = Path(run_dir)
    try:
        ckpt = path if (path / STATE).is_file() else latest_checkpoint(path)
        state = None if ckpt is None else read_state(ckpt)
    except (CheckpointError, OSError):
        return None
    record = None if state is None else state["files"].get(WEIGHTS)
    if record is None:
        return None
    return {"step": state["step"], "generator_sha256": record["sha256"]}


def same_checkpoint(recorded: object, current: dict | None) -> bool:
    """Whether a store's recorded identity is ``current`` (both known and equal)."""
    return (current is not None and isinstance(recorded, dict)
            and recorded.get("step") == current["step"]
            and recorded.get("generator_sha256") == current["generator_sha256"])
