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

import atexit
import itertools
import threading
import weakref
from collections.abc import Callable

import numpy as np

from ..geometry import PyramidGrid, ancestor_region, tile_code, tile_span
from .pyramid import LevelArray
from .renderer import Renderer, TileKey

__all__ = ["ProgressiveLevel", "TileScheduler", "progressive_pyramid"]


_OPEN: weakref.WeakSet[TileScheduler] = weakref.WeakSet()


@atexit.register
def _close_open_schedulers() -> None:
    for scheduler in list(_OPEN):
        scheduler.close()


class TileScheduler:
    """Renders requested tiles on one daemon thread, newest request first; calls each listener
    (from that thread) after every batch lands.

    :meth:`close` stops the thread after its current batch and waits for it. Every scheduler
    still open is closed when the interpreter exits: a daemon thread left inside torch's or
    numba's native code while the interpreter tears down aborts the process ("terminate
    called without an active exception")."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._cond = threading.Condition()
        # level -> (stamp, keys as an int array [n, 3]): arrays, not tuples, so that pending
        # requests add no objects for Python's garbage collector to scan
        self._wanted: dict[int, tuple[int, np.ndarray]] = {}
        self._stamps = itertools.count()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[], None]] = []
        self.errors: list[BaseException] = []
        self.batches = 0
        self.keep_reads = 3
        _OPEN.add(self)

    def add_listener(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def request(self, level: int, keys) -> None:
        """Replace the pending tiles of ``level`` with ``keys`` (tile keys, or an int array
        ``[n, 3]`` of them), to be rendered in the order given."""
        keys = np.asarray(keys, dtype=np.int64).reshape(-1, 3)
        with self._cond:
            stamp = next(self._stamps)
            if len(keys):
                self._wanted[level] = (stamp, keys)
            else:
                self._wanted.pop(level, None)
            # a level not read in the last few reads is no longer on screen: drop its tiles
            for lv in [lv for lv, (st, _) in self._wanted.items() if st < stamp - self.keep_reads]:
                del self._wanted[lv]
            if len(keys) and self._thread is None and not self._closed:
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

    def close(self, timeout: float | None = 60.0) -> None:
        """Stop rendering: pending tiles are dropped, the batch being rendered finishes and the
        thread ends (waited for up to ``timeout`` seconds, unless called from that thread)."""
        with self._cond:
            self._closed = True
            self._wanted.clear()
            self._cond.notify_all()
            thread = self._thread
        _OPEN.discard(self)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _next_batch(self) -> list[TileKey]:
        """(lock held) Up to ``batch_size`` uncached keys of the most recently read level."""
        while self._wanted:
            level = max(self._wanted, key=lambda lv: self._wanted[lv][0])
            stamp, keys = self._wanted[level]
            todo = keys[~self.renderer.cached_mask(keys)]
            n = self.renderer.batch_size
            if len(todo) > n:
                self._wanted[level] = (stamp, todo[n:])
            else:
                del self._wanted[level]
            if len(todo):
                return [tuple(k) for k in todo[:n].tolist()]
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
        self._zeros = np.zeros(renderer.tile_shape, self.dtype)

    def __repr__(self) -> str:
        return "Progressive" + super().__repr__()

    def _fallback(self, a: int, b: int, ancestors: dict) -> np.ndarray:
        """Tile (a, b) of this level from its nearest cached ancestor, or zeros. ``ancestors``
        memoises the cache lookups of one read (neighbouring tiles share ancestors)."""
        r = self.grid.tile
        for k in range(1, self.grid.octaves - self.level + 1):
            pa, pb, y0, x0, size = ancestor_region(a, b, k, r)
            if size < 1:
                break
            key = tile_code(0, k, pa, pb)
            if key not in ancestors:
                ancestors[key] = self.renderer.cached((self.zoom - k, pa, pb))
            parent = ancestors[key]
            if parent is None:
                continue
            f = 1 << k
            quad = parent[y0:y0 + size, x0:x0 + size]
            # enlarge by pixel repetition in one copy: [s, 1, s, 1, ...] -> [s, f, s, f, ...]
            big = np.broadcast_to(quad[:, None, :, None],
                                  (size, f, size, f, *quad.shape[2:]))
            return big.reshape(r, r, *quad.shape[2:])
        return self._zeros

    def _block(self, rows: slice, cols: slice) -> np.ndarray:
        r = self.grid.tile
        h, w = rows.stop - rows.start, cols.stop - cols.start
        if h <= 0 or w <= 0:
            return np.empty((max(h, 0), max(w, 0), *self.shape[2:]), dtype=self.dtype)
        # the tiles touched (a level is exactly n_tiles * r pixels: no partial tiles)
        ta, tb = tile_span(rows.start, rows.stop, r), tile_span(cols.start, cols.stop, r)
        a0, a1, b0, b1 = ta.start, ta.stop, tb.start, tb.stop
        na, nb = a1 - a0, b1 - b0
        mosaic = self.renderer.cached_block(self.zoom, a0, a1, b0, b1)  # row by row
        missing = [i for i, tile in enumerate(mosaic) if tile is None]
        ancestors: dict = {}
        for i in missing:
            mosaic[i] = self._fallback(a0 + i // nb, b0 + i % nb, ancestors)
        # one stacked copy, then the tiles laid out row by row: [na, r, nb, r, ...]
        stack = np.stack(mosaic).reshape(na, nb, r, r, *self.shape[2:])
        block = stack.swapaxes(1, 2).reshape(na * r, nb * r, *self.shape[2:])
        y0, x0 = rows.start - a0 * r, cols.start - b0 * r
        idx = np.asarray(missing, dtype=np.int64)
        a, b = a0 + idx // nb, b0 + idx % nb
        keys = np.stack([np.full_like(a, self.zoom), a, b], axis=1)
        if len(keys):  # render the centre of the read first
            d = (a - a.mean()) ** 2 + (b - b.mean()) ** 2
            keys = keys[np.argsort(d, kind="stable")]
        self.scheduler.request(self.level, keys)
        return block[y0:y0 + h, x0:x0 + w]


def progressive_pyramid(renderer: Renderer, octaves: int | None = None,
                        scheduler: TileScheduler | None = None) -> list[ProgressiveLevel]:
    """The levels (finest first) of the progressive pyramid; they share one scheduler
    (``levels[0].scheduler``)."""
    grid = renderer.grid(octaves)
    scheduler = scheduler or TileScheduler(renderer)
    return [ProgressiveLevel(renderer, grid, level, scheduler)
            for level in range(grid.n_levels)]
