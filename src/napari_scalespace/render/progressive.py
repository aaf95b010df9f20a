"""Progressive pyramid levels: reading never waits for the generator.

napari slices multiscale layers on its UI thread (unless the user turns on its experimental
async slicing), so a level that renders missing tiles inside ``__getitem__`` freezes the viewer
for as long as the generator runs. A :class:`ProgressiveLevel` answers at once instead:

- tiles in the renderer's cache are used as they are;
- a missing tile is drawn from its nearest cached *ancestor* (the tile of a coarser level that
  contains it, :meth:`geometry.PyramidGrid.parent`), its quadrant enlarged by pixel repetition,
  or left at zero if no ancestor is cached;
- the missing tiles are handed to a :class:`TileScheduler`, whose one background thread renders
  them (batched, through :meth:`.renderer.Renderer.render_tiles`) and then calls its listeners,
  which ask napari to slice again (``_widgets/_progressive.py`` does that on the UI thread).

Newest requests first: a new read of a level replaces that level's pending tiles, and levels
are served most recently read first, so tiles of views the user has already left are dropped
instead of delaying the current one. No Qt, no napari.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import numpy as np

from ..geometry import PyramidGrid
from .pyramid import LevelArray
from .renderer import Renderer, TileKey

__all__ = ["ProgressiveLevel", "TileScheduler", "progressive_pyramid"]


class TileScheduler:
    """Renders requested tiles on one daemon thread, newest request first; calls each listener
    (from that thread) after every batch lands."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._cond = threading.Condition()
        self._wanted: dict[int, tuple[int, list[TileKey]]] = {}  # level -> (stamp, keys)
        self._stamps = itertools.count()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self.errors: list[BaseException] = []
        self.batches = 0

    def add_listener(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def request(self, level: int, keys: list[TileKey]) -> None:
        """Replace the pending tiles of ``level`` with ``keys`` (in the order given)."""
        with self._cond:
            if keys:
                self._wanted[level] = (next(self._stamps), list(keys))
            else:
                self._wanted.pop(level, None)
            if keys and self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="scalespace-tiles")
                self._thread.start()
            self._cond.notify_all()

    @property
    def idle(self) -> bool:
        """Nothing pending and nothing being rendered."""
        with self._cond:
            return not self._wanted and not self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._wanted and not self._busy, timeout)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._cond.notify_all()

    def _next_batch(self) -> list[TileKey]:
        """(lock held) Up to ``max_batch`` uncached keys of the most recently read level."""
        while self._wanted:
            level = max(self._wanted, key=lambda lv: self._wanted[lv][0])
            stamp, keys = self._wanted[level]
            todo = [k for k in keys if self.renderer.cached(k) is None]
            batch, rest = todo[:self.renderer.max_batch], todo[self.renderer.max_batch:]
            if rest:
                self._wanted[level] = (stamp, rest)
            else:
                del self._wanted[level]
            if batch:
                return batch
        return []

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._wanted or self._closed)
                if self._closed:
                    return
                batch = self._next_batch()
                self._busy = bool(batch)
            if not batch:
                continue
            try:
                self.renderer.render_tiles(batch)
            except Exception as exc:  # keep serving; the layer shows the fallback
                self.errors.append(exc)
                continue
            self.batches += 1
            for fn in list(self._listeners):
                fn()


class ProgressiveLevel(LevelArray):
    """A :class:`LevelArray` whose reads return at once (see the module docstring)."""

    def __init__(self, renderer: Renderer, grid: PyramidGrid, level: int,
                 scheduler: TileScheduler) -> None:
        super().__init__(renderer, grid, level)
        self.scheduler = scheduler

    def __repr__(self) -> str:
        return "Progressive" + super().__repr__()

    def _fallback(self, a: int, b: int) -> np.ndarray:
        """Tile (a, b) of this level from its nearest cached ancestor, or zeros."""
        r = self.grid.tile
        for k in range(1, self.grid.octaves - self.level + 1):
            size = r >> k
            if size < 1:
                break
            parent = self.renderer.cached((self.zoom - k, a >> k, b >> k))
            if parent is None:
                continue
            y0, x0 = (a % (1 << k)) * size, (b % (1 << k)) * size
            quad = parent[y0:y0 + size, x0:x0 + size]
            return np.repeat(np.repeat(quad, 1 << k, axis=0), 1 << k, axis=1)
        return np.zeros(self.renderer.tile_shape, self.dtype)

    def _block(self, rows: slice, cols: slice) -> np.ndarray:
        parts = self.grid.pixel_slice_to_tiles(self.level, rows, cols)
        out = np.empty((rows.stop - rows.start, cols.stop - cols.start, *self.shape[2:]),
                       dtype=self.dtype)
        missing = []
        for p in parts:
            key = (self.zoom, p.a, p.b)
            tile = self.renderer.cached(key)
            if tile is None:
                missing.append(key)
                tile = self._fallback(p.a, p.b)
            out[p.out_rows, p.out_cols] = tile[p.rows, p.cols]
        if missing:  # render the centre of the read first
            ca = np.mean([k[1] for k in missing])
            cb = np.mean([k[2] for k in missing])
            missing.sort(key=lambda k: (k[1] - ca) ** 2 + (k[2] - cb) ** 2)
        self.scheduler.request(self.level, missing)
        return out


def progressive_pyramid(renderer: Renderer, octaves: int | None = None,
                        scheduler: TileScheduler | None = None) -> list[ProgressiveLevel]:
    """The levels (finest first) of the progressive pyramid; they share one scheduler
    (``levels[0].scheduler``)."""
    grid = renderer.grid(octaves)
    scheduler = scheduler or TileScheduler(renderer)
    return [ProgressiveLevel(renderer, grid, level, scheduler)
            for level in range(grid.n_levels)]
