"""How much smaller the learned scale space is than the pyramid it stands for.

- the model: the rendering generator's tensors (``generator_ema`` of a checkpoint: parameters
  and buffers) stored as float16 and as float32;
- the truth: the ground-truth pyramid of the image on the run's grid over the octaves the data
  covers, uncompressed (tiles of uint8 RGB or float32 single-channel samples, as the exports
  write them) and as written by the OME-Zarr export (:func:`..render.export.truth_steps`, its
  default compression), measured on disk. A pyramid of more than ``SAMPLE_TILES`` tiles (a
  whole slide: 87,381 tiles at 8 octaves) is not written: its OME-Zarr bytes are estimated
  from ``SAMPLE_TILES`` tiles drawn at random from every level in proportion to its tiles,
  each compressed with the export's codec (zarr v3's default, zstd), scaled by the tile count
  (``truth_zarr_sampled`` says how many were compressed).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..data.dataset import max_octaves
from ..geometry import PyramidGrid
from ..render.budget import estimate
from ..render.renderer import tile_dtype

__all__ = ["SAMPLE_TILES", "compression", "generator_bytes", "pyramid_bytes",
           "sampled_zarr_bytes", "store_bytes"]

SAMPLE_TILES = 4096
"""Largest truth pyramid written whole to measure it; larger ones are sampled."""


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
    tiles = estimate(grid, source.channels, tile_dtype(source.channels), batch=1).tiles
    if tiles > SAMPLE_TILES:
        out["truth_zarr"] = sampled_zarr_bytes(source, grid, SAMPLE_TILES)
        out["truth_zarr_sampled"] = SAMPLE_TILES
    else:
        with tempfile.TemporaryDirectory(prefix="scalespace-truth-") as tmp:
            store = Path(tmp) / "truth.zarr"
            for _ in truth_steps(source, store, grid):
                pass
            out["truth_zarr"] = store_bytes(store)
    for name in ("uncompressed", "zarr"):
        out[f"ratio_{name}_float16"] = round(out[f"truth_{name}"] / model["float16"], 3)
    out["ratio_uncompressed_float32"] = round(out["truth_uncompressed"] / model["float32"], 3)
    return out


def sampled_zarr_bytes(source, grid: PyramidGrid, samples: int, seed: int = 0) -> int:
    """The OME-Zarr bytes of the truth pyramid of ``source`` on ``grid``, estimated from
    ``samples`` random tiles (see the module docstring)."""
    import numcodecs
    import numpy as np

    from ..render.export import truth_tiles

    codec = numcodecs.Zstd(level=0)
    tiles = truth_tiles(source, grid)
    counts = [grid.n_tiles(lv) for lv in range(grid.n_levels)]
    total = sum(ny * nx for ny, nx in counts)
    rng = np.random.default_rng(seed)
    out = 0.0
    for level, (ny, nx) in enumerate(counts):
        n = ny * nx
        k = min(n, max(1, round(samples * n / total)))
        picks = rng.choice(n, size=k, replace=False)
        zoom = grid.zoom_of_level(level)
        keys = [(zoom, int(i // nx), int(i % nx)) for i in picks]
        got = tiles(keys)
        sizes = [len(codec.encode(np.ascontiguousarray(_chw(got[key])))) for key in keys]
        out += float(np.mean(sizes)) * n
    return round(out)


def _chw(tile):
    """A tile as the export stores it: ``[C, R, R]``."""
    return tile[None] if tile.ndim == 2 else tile.transpose(2, 0, 1)
