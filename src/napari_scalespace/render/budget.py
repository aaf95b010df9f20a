"""What an export will cost, checked before anything is written.

For a pyramid on a :class:`geometry.PyramidGrid` with C channels of ``itemsize`` bytes:

- tiles: ``sum over levels of ny_i * nx_i`` (:meth:`PyramidGrid.n_tiles`);
- store bytes (uncompressed, an upper bound): ``tiles * C * R**2 * itemsize``;
- memory per band (one unit of writing, :func:`.export.bands`): its tiles times the tile
  bytes, the largest band of the pyramid;
- time: tiles / rate, the rate (tiles per second) measured on a few tiles (:func:`measure_rate`).

:func:`check_budget` refuses (one-line ValueError with the numbers) more octaves than
:data:`geometry.MAX_OCTAVES`, a store larger than the free disk space of the output's file
system, or a band larger than the available memory.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..geometry import MAX_OCTAVES, PyramidGrid

__all__ = ["Budget", "available_memory", "band_size", "check_budget", "estimate", "free_disk",
           "measure_rate"]


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def _duration(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


@dataclass(frozen=True)
class Budget:
    """The cost of writing one pyramid (see the module docstring)."""

    octaves: int
    levels: int
    tiles: int
    tile_bytes: int
    store_bytes: int
    band_bytes: int
    rate: float | None = None
    """Tiles per second (None: not measured)."""

    @property
    def seconds(self) -> float | None:
        return None if not self.rate else self.tiles / self.rate

    def describe(self, name: str = "pyramid") -> str:
        """One line: ``name: 4 levels, 1,360 tiles, 4.2 MB at most, about 12 s (110 tiles/s)``."""
        text = (f"{name}: {self.levels} levels, {self.tiles:,} tiles, "
                f"{_size(self.store_bytes)} at most, {_size(self.band_bytes)} of memory per band")
        if self.seconds is not None:
            text += f", about {_duration(self.seconds)} ({self.rate:.3g} tiles/s)"
        return text


def band_size(ny: int, nx: int, batch: int) -> tuple[int, int]:
    """``(rows, cols)`` of tiles in one band of a level of ``ny x nx`` tiles written about
    ``batch`` tiles at a time: whole rows (``batch // nx`` of them) when a row holds at most
    ``batch`` tiles, else ``batch`` tiles of one row."""
    batch = max(1, int(batch))
    if nx <= batch:
        return min(ny, max(1, batch // nx)), nx
    return 1, batch


def estimate(grid: PyramidGrid, channels: int, dtype, batch: int,
             rate: float | None = None) -> Budget:
    """The :class:`Budget` of a pyramid on ``grid`` written in bands of about ``batch`` tiles
    (:func:`band_size`). Arithmetic only: fast for any number of octaves."""
    tile_bytes = int(channels) * grid.tile ** 2 * np.dtype(dtype).itemsize
    # Python ints: 4**octaves tiles overflow nothing
    counts = [grid.n_tiles(lv) for lv in range(grid.n_levels)]
    tiles = sum(ny * nx for ny, nx in counts)
    largest = max(r * c for r, c in (band_size(ny, nx, batch) for ny, nx in counts))
    return Budget(grid.octaves, grid.n_levels, tiles, tile_bytes, tiles * tile_bytes,
                  largest * tile_bytes, rate)


def free_disk(path: str | os.PathLike) -> int:
    """Free bytes on the file system that ``path`` (or its nearest existing parent) is on."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``, else the free
    physical pages), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_budget(budget: Budget, out: str | os.PathLike, name: str = "pyramid") -> None:
    """Refuse (ValueError, one line with the numbers) a pyramid beyond sane limits: more than
    :data:`MAX_OCTAVES` octaves, a store larger than the free disk space at ``out``, a band
    larger than the available memory."""
    if budget.octaves > MAX_OCTAVES:
        raise ValueError(f"{name}: {budget.octaves} octaves is more than the {MAX_OCTAVES} a "
                         f"scale space spans ({budget.tiles:,} tiles, "
                         f"{_size(budget.store_bytes)}); use --octaves {MAX_OCTAVES} or fewer")
    free = free_disk(out)
    if budget.store_bytes > free:
        raise ValueError(f"{name}: needs up to {_size(budget.store_bytes)} "
                         f"({budget.tiles:,} tiles) but {_size(free)} is free at {out}; "
                         f"use fewer octaves or another disk")
    memory = available_memory()
    if memory is not None and budget.band_bytes > memory:
        raise ValueError(f"{name}: one band of tiles needs {_size(budget.band_bytes)} of "
                         f"memory but {_size(memory)} is available; use fewer octaves")


def measure_rate(tiles: Callable[[Sequence[tuple[int, int, int]]], dict],
                 keys: Sequence[tuple[int, int, int]]) -> float:
    """Tiles per second of ``tiles(keys)`` (one call; the first call of a renderer includes
    its warm-up, so the rate is a lower bound)."""
    t0 = time.perf_counter()
    tiles(list(keys))
    return len(keys) / max(time.perf_counter() - t0, 1e-6)
