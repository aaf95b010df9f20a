"""Lazy multiscale pyramids of a learned scale space (napari level 0 = finest).

:class:`LevelArray` is an array-like view of one pyramid level (:class:`geometry.PyramidGrid`)
whose pixels are rendered on demand, tile by tile, by a :class:`.renderer.Renderer`: any slice
is mapped onto the tiles it touches with :meth:`PyramidGrid.pixel_slice_to_tiles` and assembled
from them (all missing tiles of one slice are rendered in batched generator calls).
:func:`dask_pyramid` wraps each level in a dask array whose chunks are exactly the tiles, so
computing one chunk renders one tile (one view). No Qt, no napari.
"""

from __future__ import annotations

import itertools
import operator

import dask.array as da
import numpy as np

from ..geometry import PyramidGrid
from .renderer import Renderer

__all__ = ["LevelArray", "dask_pyramid"]

_names = itertools.count()


def _norm_index(key: object, shape: tuple[int, ...]) -> tuple[list[slice], list[int]]:
    """Index ``key`` (ints, slices, one Ellipsis) -> (a slice per axis, axes to squeeze)."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        fill = (slice(None),) * (len(shape) - len(key) + 1)
        key = key[:i] + fill + key[i + 1:]
    if len(key) > len(shape):
        raise IndexError(f"too many indices ({len(key)}) for an array of {len(shape)} axes")
    key = key + (slice(None),) * (len(shape) - len(key))
    slices, squeeze = [], []
    for axis, (k, n) in enumerate(zip(key, shape, strict=True)):
        if isinstance(k, slice):
            slices.append(k)
            continue
        try:
            i = operator.index(k)
        except TypeError:
            raise TypeError(f"LevelArray supports ints and slices, got {k!r}") from None
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for axis {axis} of size {n}")
        i %= n
        slices.append(slice(i, i + 1))
        squeeze.append(axis)
    return slices, squeeze


class LevelArray:
    """Level ``level`` of ``grid`` rendered by ``renderer``: shape ``grid.level_shape(level)``
    plus a trailing channel axis for colour runs; dtype the renderer's (uint8 or float32)."""

    def __init__(self, renderer: Renderer, grid: PyramidGrid, level: int) -> None:
        if grid.tile != renderer.tile_size:
            raise ValueError(f"grid tile {grid.tile} != the renderer's tile size "
                             f"{renderer.tile_size}")
        self.renderer = renderer
        self.grid = grid
        self.level = int(level)
        self.zoom = grid.zoom_of_level(level)
        self.shape: tuple[int, ...] = grid.level_shape(level) + renderer.tile_shape[2:]
        self.dtype = renderer.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return (f"LevelArray(level={self.level}, zoom={self.zoom}, shape={self.shape}, "
                f"dtype={self.dtype})")

    def __getitem__(self, key: object) -> np.ndarray:
        slices, squeeze = _norm_index(key, self.shape)
        # render the step-1 bounding box, then pick rows/columns for other steps
        bound, picks = [], []
        for sl, n in zip(slices[:2], self.shape[:2], strict=True):
            idx = range(*sl.indices(n))
            if len(idx) == 0:
                bound.append(slice(0, 0))
                picks.append(None)
                continue
            lo, hi = min(idx[0], idx[-1]), max(idx[0], idx[-1]) + 1
            bound.append(slice(lo, hi))
            picks.append(None if idx.step == 1 else np.asarray(idx) - lo)
        block = self._block(bound[0], bound[1])
        if picks[0] is not None:
            block = block[picks[0]]
        if picks[1] is not None:
            block = block[:, picks[1]]
        if self.ndim == 3:
            block = block[:, :, slices[2]]
        if squeeze:
            block = block.reshape([n for i, n in enumerate(block.shape) if i not in squeeze])
        return block

    def _block(self, rows: slice, cols: slice) -> np.ndarray:
        parts = self.grid.pixel_slice_to_tiles(self.level, rows, cols)
        out = np.empty((rows.stop - rows.start, cols.stop - cols.start, *self.shape[2:]),
                       dtype=self.dtype)
        if not parts:
            return out
        tiles = self.renderer.render_tiles([(self.zoom, p.a, p.b) for p in parts])
        for p in parts:
            out[p.out_rows, p.out_cols] = tiles[(self.zoom, p.a, p.b)][p.rows, p.cols]
        return out

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)


def dask_pyramid(renderer: Renderer, octaves: int | None = None) -> list[da.Array]:
    """One lazy dask array per level, level 0 the finest (zoom ``octaves``, default the run's);
    chunks are single tiles (``R x R`` (``x C``)), so computing a chunk renders that tile."""
    grid = renderer.grid(octaves)
    r = grid.tile
    uid = next(_names)
    levels = []
    for level in range(grid.n_levels):
        arr = LevelArray(renderer, grid, level)
        chunks = (r, r, *arr.shape[2:])
        name = (f"scalespace-{id(renderer):x}-{uid}-seed{renderer.seed}-oct{grid.octaves}"
                f"-level{level}")
        levels.append(da.from_array(arr, chunks=chunks, name=name, asarray=False, lock=False,
                                    fancy=False, meta=np.empty((0,) * arr.ndim, arr.dtype)))
    return levels
