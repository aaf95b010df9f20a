"""Decoded tiles of chunked images, kept under a byte budget.

A tiled TIFF, an OME-Zarr or a dask array decodes whole chunks: a 64-px patch of a 512-px
tile costs the whole tile, and the next patch in that tile costs it again. Reads of such a
plane therefore go through its **native tile grid**: each tile the region touches is fetched
once, decoded, kept in a :class:`TileCache` and copied from. The cache holds at most
``budget`` bytes (least recently used tiles leave first) and is shared by the levels of one
image; a tile larger than a quarter of the budget is read around the cache (a plain array's
single chunk, a strip TIFF's whole-width strips).

Thread-safe: the training prefetch and the evaluation read the same source concurrently.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

from ._plane import Plane

__all__ = ["DEFAULT_BUDGET", "TileCache", "read_tiled"]

DEFAULT_BUDGET = 256 << 20
"""Bytes of decoded tiles an image keeps (a 512 x 512 RGB uint8 tile is 0.75 MiB)."""


class TileCache:
    """Least-recently-used decoded tiles under ``budget`` bytes; counts hits and misses."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        if budget < 0:
            raise ValueError(f"budget must be >= 0 bytes, got {budget}")
        self.budget = int(budget)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._tiles: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tiles)

    def get(self, key: Hashable, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The tile ``key``, loaded by ``load()`` on a miss (outside the lock: two threads
        may both decode a tile the first time, never block each other on a decode)."""
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
                self.hits += 1
                return tile
            self.misses += 1
        tile = load()
        tile.setflags(write=False)
        with self._lock:
            if key not in self._tiles:
                self._tiles[key] = tile
                self.nbytes += tile.nbytes
                while self.nbytes > self.budget and self._tiles:
                    _, old = self._tiles.popitem(last=False)
                    self.nbytes -= old.nbytes
        return tile

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self.nbytes = 0


def tile_shape(plane: Plane) -> tuple[int, int] | None:
    """The plane's native tile ``(rows, cols)``: its array's chunk shape (zarr ``chunks``,
    dask ``chunksize``), or ``None`` for an array read in one piece (numpy, a decoded
    image) or a tile as large as the plane."""
    chunks = getattr(plane.data, "chunksize", None) or getattr(plane.data, "chunks", None)
    if not isinstance(chunks, tuple) or len(chunks) != len(plane.axes):
        return None
    try:
        rows, cols = int(chunks[plane.axes.index("y")]), int(chunks[plane.axes.index("x")])
    except (TypeError, ValueError):  # dask's chunks is a tuple of tuples
        return None
    if rows >= plane.height and cols >= plane.width:
        return None
    return rows, cols


def read_tiled(plane: Plane, key: Hashable, cache: TileCache | None, r0: int, r1: int,
               c0: int, c1: int) -> np.ndarray:
    """``plane.read(r0, r1, c0, c1)`` assembled from the plane's cached native tiles (``key``
    names the plane in ``cache``); a direct read where the plane is not tiled, there is no
    cache or its tiles do not fit a quarter of the budget."""
    tile = tile_shape(plane)
    if tile is None or cache is None:
        return plane.read(r0, r1, c0, c1)
    th, tw = tile
    if th * tw * plane.raw_channels * plane.dtype.itemsize * 4 > cache.budget:
        return plane.read(r0, r1, c0, c1)
    out = np.empty((r1 - r0, c1 - c0, plane.raw_channels), plane.dtype)
    for ty in range(r0 // th, -(-r1 // th)):
        y0, y1 = ty * th, min((ty + 1) * th, plane.height)
        for tx in range(c0 // tw, -(-c1 // tw)):
            x0, x1 = tx * tw, min((tx + 1) * tw, plane.width)
            data = cache.get((key, ty, tx), lambda y0=y0, y1=y1, x0=x0, x1=x1:
                             np.ascontiguousarray(plane.read(y0, y1, x0, x1)))
            a, b = max(r0, y0), min(r1, y1)
            c, d = max(c0, x0), min(c1, x1)
            out[a - r0:b - r0, c - c0:d - c0] = data[a - y0:b - y0, c - x0:d - x0]
    return out
