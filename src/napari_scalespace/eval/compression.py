"""How much smaller the learned scale space is than the pyramid it stands for.

- the model: the rendering generator's tensors (``generator_ema`` of a checkpoint: parameters
  and buffers) stored as float16 and as float32;
- the truth: the ground-truth pyramid of the image on the run's grid over the octaves the data
  covers, uncompressed (tiles of uint8 RGB or float32 single-channel samples, as the exports
  write them) and as written by the OME-Zarr export (:func:`..render.export.truth_steps`, its
  default compression), measured on disk.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..data.dataset import max_octaves
from ..geometry import PyramidGrid
from ..render.budget import estimate
from ..render.renderer import tile_dtype

__all__ = ["compression", "generator_bytes", "pyramid_bytes", "store_bytes"]


def generator_bytes(G: torch.nn.Module) -> dict[str, int]:
    """Bytes of ``G``'s floating-point tensors stored as float16 and as float32."""
    n = sum(t.numel() for t in G.state_dict().values() if t.is_floating_point())
    return {"float16": 2 * n, "float32": 4 * n}


def pyramid_bytes(grid: PyramidGrid, channels: int) -> int:
    """Uncompressed bytes of every level of ``grid`` (whole tiles, as stored)."""
    return estimate(grid, channels, tile_dtype(channels), batch=1).store_bytes


def store_bytes(path: str | Path) -> int:
    """Bytes of all files under ``path`` (a zarr store on disk)."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def compression(G: torch.nn.Module, source, extent: tuple[float, float], octaves: int
                ) -> dict:
    """The sizes and ratios of the report (see the module docstring): the truth pyramid has
    ``min(octaves, octaves the image resolves)`` octaves on the run's grid."""
    from ..render.export import truth_steps

    tile = G.cfg.resolution
    covered = min(int(octaves), max_octaves(source.height, source.width, tile))
    grid = PyramidGrid(covered, tile, extent)
    model = generator_bytes(G)
    out = {"octaves": covered, "generator_float16": model["float16"],
           "generator_float32": model["float32"],
           "truth_uncompressed": pyramid_bytes(grid, source.channels)}
    with tempfile.TemporaryDirectory(prefix="scalespace-truth-") as tmp:
        store = Path(tmp) / "truth.zarr"
        for _ in truth_steps(source, store, grid):
            pass
        out["truth_zarr"] = store_bytes(store)
    for name in ("uncompressed", "zarr"):
        out[f"ratio_{name}_float16"] = round(out[f"truth_{name}"] / model["float16"], 3)
    out["ratio_uncompressed_float32"] = round(out["truth_uncompressed"] / model["float32"], 3)
    return out
