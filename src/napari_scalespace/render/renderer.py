"""Tile renderer: pyramid tiles of a run's scale space, batched, cached and thread-safe.

A *tile key* is ``(zoom, a, b)``: tile (a, b) of the scene tiled by views of side ``2**-zoom``
(:class:`geometry.PyramidGrid`; ``zoom`` is an integer >= 0, not limited to the trained
octaves). A tile is rendered with the run's EMA generator, canvases widened by the preset's
``tile_margin`` so that neighbouring tiles join seamlessly, and converted with
:func:`.image.to_unit`: ``[R, R, C]`` uint8 for colour runs, ``[R, R]`` float32 in [0, 1] for
single-channel runs.

Concurrency (dask's threaded scheduler asks for one chunk = one tile per thread):

- **Coalescing.** Requests go into a shared *pending* queue. One thread at a time is the
  *leader*: it takes up to :attr:`Renderer.batch_size` pending keys (after waiting
  ``gather_s`` for more to arrive when the batch is not full), renders them in one generator
  call, publishes the results and repeats until its own keys are done; it then hands
  leadership to any waiting thread. Threads whose keys are pending or being rendered by
  someone else just wait, so requests arriving while the generator runs are served by the
  next call, together.
- **Cache.** An LRU of finished tiles keyed by ``(seed, zoom, a, b)``, bounded by ``cache_mb``
  (0 disables it). Cached arrays are read-only and shared: copy before writing.
- **Batch size.** Measured by default (:class:`.batching.BatchSizer`: the leader times its
  generator calls and doubles the batch until one is clearly slower per tile, then keeps the
  smallest size near the fastest), bounded by memory;
  ``max_batch=N`` fixes it.
- **Errors** in a generator call are raised in every thread waiting for one of its keys.

``Renderer.stats`` counts generator calls, rendered tiles and cache hits (:class:`RenderStats`).
No Qt, no napari.
"""

from __future__ import annotations

import operator
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..geometry import PyramidGrid, View, tile_code
from ..model.generator import Generator
from .batching import BatchSizer, batch_limit
from .image import load, scene_latent, to_unit

__all__ = ["RenderStats", "Renderer", "TileKey", "tile_dtype"]

TileKey = tuple[int, int, int]
"""``(zoom, a, b)``: tile (a, b) of the tiling of the scene at integer ``zoom``."""


@dataclass
class RenderStats:
    """Counters of a :class:`Renderer` (read them; :meth:`Renderer.reset_stats` zeroes them)."""

    generator_calls: int = 0
    """Calls of the generator (each renders one batch of tiles)."""
    tiles_rendered: int = 0
    """Tiles rendered by the generator (sum of the batch sizes)."""
    cache_hits: int = 0
    """Tiles requested and found in the cache."""
    requests: int = 0
    """Tiles requested (including cache hits and duplicates of pending ones)."""


class _Slot:
    """The future result of one tile render."""

    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: np.ndarray | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.value is not None or self.error is not None


def _memory_budget(device: torch.device) -> int:
    """Bytes of activations a batch may take: 1 GiB on the CPU, a quarter of the free memory
    of a GPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] // 4
    return 1 << 30


def _pick_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)



def tile_dtype(channels: int) -> np.dtype:
    """How tiles (and the pyramids written from them) store samples: uint8 for colour images,
    float32 in [0, 1] for single-channel ones."""
    return np.dtype(np.float32 if channels == 1 else np.uint8)

class Renderer:
    """Renders, batches and caches pyramid tiles of a run (see the module docstring).

    ``Renderer(run_dir, device="auto", seed=None, cache_mb=256, max_batch=None)``; ``seed``
    picks the scale space of a multi-image run (``None``: the fixed latent of a single-image
    run, seed 0 otherwise); ``max_batch`` fixes the tiles per generator call (``None``: measured,
    see the module docstring). :meth:`from_generator` wraps a generator already in memory.
    """

    def __init__(
        self,
        run_dir: str | Path,
        device: str = "auto",
        seed: int | None = None,
        cache_mb: float = 256,
        max_batch: int | None = None,
        gather_s: float = 0.002,
    ) -> None:
        G, info = load(run_dir, str(_pick_device(device)))
        self._setup(G, info, seed, cache_mb, max_batch, gather_s)
        self.run_dir: Path | None = Path(run_dir)

    @classmethod
    def from_generator(
        cls,
        G: Generator,
        info: dict | None = None,
        seed: int | None = None,
        cache_mb: float = 256,
        max_batch: int | None = None,
        gather_s: float = 0.002,
    ) -> Renderer:
        """A renderer of ``G`` (used as is: its device, eval mode) with source ``info``."""
        self = cls.__new__(cls)
        G.eval().requires_grad_(False)
        self._setup(G, dict(info or {}), seed, cache_mb, max_batch, gather_s)
        self.run_dir = None
        return self

    def _setup(self, G: Generator, info: dict, seed: int | None, cache_mb: float,
               max_batch: int | None, gather_s: float) -> None:
        if not cache_mb >= 0:
            raise ValueError(f"cache_mb must be >= 0, got {cache_mb!r}")
        if max_batch is not None and operator.index(max_batch) < 1:
            raise ValueError(f"max_batch must be >= 1 or None (measured), got {max_batch!r}")
        if not gather_s >= 0:
            raise ValueError(f"gather_s must be >= 0, got {gather_s!r}")
        self.G = G
        self.info = info
        self.device = G.input_weight.device
        if max_batch is None:
            limit = batch_limit(G.view_bytes(G.cfg.tile_margin), _memory_budget(self.device))
            self.sizer = BatchSizer(limit=limit)
        else:
            self.sizer = BatchSizer(fixed=int(max_batch))
        # the most tiles one generator call may take (fixed, or the measured size's bound)
        self.max_batch = self.sizer.fixed or self.sizer.limit
        self.gather_s = float(gather_s)
        self.cache_bytes = int(cache_mb * 2**20)
        cfg = G.cfg
        self.tile_size: int = cfg.resolution
        self.channels: int = cfg.channels
        self.octaves: int = cfg.octaves
        extent = info.get("extent") or (1.0, 1.0)
        self.extent: tuple[float, float] = (float(extent[0]), float(extent[1]))
        self.dtype = tile_dtype(self.channels)
        r = self.tile_size
        self.tile_shape: tuple[int, ...] = (r, r) if self.channels == 1 else (r, r, self.channels)
        self.stats = RenderStats()
        self._cond = threading.Condition(threading.Lock())
        # keyed by one int per (seed, zoom, a, b) (:meth:`_ck`): reading hundreds of tiles per
        # napari slice then allocates no tuples, which keeps Python's garbage collector (whose
        # full passes over napari's heap take 100-400 ms) from being triggered by our reads
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._seed_codes: dict[int | None, int] = {}
        self._cached_bytes = 0
        self._pending: OrderedDict[tuple, _Slot] = OrderedDict()
        self._inflight: dict[tuple, _Slot] = {}
        self._leader = False
        self._grids: dict[int, PyramidGrid] = {}
        self._seed = seed
        self._z = scene_latent(G, info, seed)

    # --- configuration ------------------------------------------------------------------------

    @property
    def seed(self) -> int | None:
        return self._seed

    @seed.setter
    def seed(self, seed: int | None) -> None:
        """Switch scale space; tiles of other seeds stay cached under their own keys."""
        z = scene_latent(self.G, self.info, seed)
        with self._cond:
            self._seed, self._z = seed, z

    def grid(self, octaves: int | None = None) -> PyramidGrid:
        """The pyramid grid of this run: ``octaves`` (default the preset's), tile R, extent."""
        return PyramidGrid(self.octaves if octaves is None else octaves, self.tile_size,
                           self.extent)

    def view(self, key: TileKey) -> View:
        """The view of tile key ``(zoom, a, b)`` (ValueError if not a tile of the scene)."""
        zoom, a, b = key
        zoom = operator.index(zoom)
        grid = self._grids.get(zoom)
        if grid is None:  # level 0 of a grid with `zoom` octaves is zoom `zoom`
            grid = self._grids.setdefault(zoom, PyramidGrid(zoom, self.tile_size, self.extent))
        return grid.tile_view(0, a, b)

    def reset_stats(self) -> None:
        with self._cond:
            self.stats = RenderStats()

    @property
    def cached_tiles(self) -> int:
        return len(self._cache)

    @property
    def cached_bytes(self) -> int:
        return self._cached_bytes

    # --- rendering ----------------------------------------------------------------------------

    def _ck(self, seed: int | None, zoom: int, a: int, b: int) -> int:
        """(lock held) The cache's int key of tile ``(zoom, a, b)`` of scale space ``seed``."""
        return tile_code(self._seed_codes.setdefault(seed, len(self._seed_codes)), zoom, a, b)

    def cached(self, key: TileKey) -> np.ndarray | None:
        """The cached tile of ``key`` for the current seed, or ``None``; never renders and does
        not count as a request (it does refresh the tile's place in the LRU)."""
        with self._cond:
            ck = self._ck(self._seed, *key)
            hit = self._cache.get(ck)
            if hit is not None:
                self._cache.move_to_end(ck)
            return hit

    def cached_mask(self, keys: np.ndarray) -> np.ndarray:
        """Which of the tile keys ``keys`` (int array ``[n, 3]`` of zoom, a, b) are cached."""
        zs, as_, bs = (keys[:, i].tolist() for i in range(3))
        with self._cond:
            seed, cache, ck = self._seed, self._cache, self._ck
            hits = [ck(seed, z, a, b) in cache for z, a, b in zip(zs, as_, bs, strict=True)]
        return np.asarray(hits, dtype=bool)

    def cached_block(self, zoom: int, a0: int, a1: int, b0: int, b1: int
                     ) -> list[np.ndarray | None]:
        """The cached tiles ``(zoom, a, b)``, ``a0 <= a < a1``, ``b0 <= b < b1``, row by row
        (``None`` where not cached); one lock, no per-tile allocation."""
        out: list[np.ndarray | None] = []
        with self._cond:
            cache = self._cache
            for a in range(a0, a1):
                row = self._ck(self._seed, zoom, a, 0)  # tile (zoom, a, b): row | b
                for b in range(b0, b1):
                    ck = row | b
                    hit = cache.get(ck)
                    if hit is not None:
                        cache.move_to_end(ck)
                    out.append(hit)
        return out

    @property
    def batch_size(self) -> int:
        """Tiles per generator call now (measured unless ``max_batch`` was given)."""
        return self.sizer.size

    @torch.inference_mode()
    def render_views(self, views: Sequence[View], batch: int | None = None) -> np.ndarray:
        """Any views (not only tiles) of the current scale space as float32 ``[N, C, R, R]``
        in [0, 1], in generator calls of ``batch`` views (default :attr:`batch_size`);
        nothing is cached."""
        out = np.empty((len(views), self.channels, self.tile_size, self.tile_size), np.float32)
        with self._cond:
            z = self._z
        i = 0
        while i < len(views):
            part = list(views[i: i + (batch or self.batch_size)])
            t0 = time.perf_counter()
            img = self.G.render(part, z=z, extra=self.G.cfg.tile_margin)
            out[i: i + len(part)] = to_unit(img.float()).cpu().numpy()
            self.sizer.record(len(part), time.perf_counter() - t0)
            i += len(part)
        return out

    def tile(self, zoom: int, a: int, b: int) -> np.ndarray:
        """One tile (read-only, possibly shared with the cache)."""
        key = (zoom, a, b)
        return self.render_tiles([key])[key]

    def render_tiles(self, keys: Iterable[TileKey]) -> dict[TileKey, np.ndarray]:
        """``{key: tile}`` for tile keys ``(zoom, a, b)``; cached, batched with concurrent
        requests from other threads, at most :attr:`batch_size` tiles per generator call."""
        keys = [tuple(operator.index(v) for v in k) for k in keys]
        for k in keys:  # validate before queueing anything
            self.view(k)
        out: dict[TileKey, np.ndarray] = {}
        mine: dict[TileKey, _Slot] = {}
        with self._cond:
            seed = self._seed
            for k in keys:
                if k in out or k in mine:
                    continue
                ck = (seed, *k)
                self.stats.requests += 1
                ick = self._ck(*ck)
                hit = self._cache.get(ick)
                if hit is not None:
                    self._cache.move_to_end(ick)
                    self.stats.cache_hits += 1
                    out[k] = hit
                    continue
                slot = self._pending.get(ck) or self._inflight.get(ck)
                if slot is None:
                    slot = self._pending[ck] = _Slot()
                    self._cond.notify_all()  # a gathering leader may take it at once
                mine[k] = slot
            while not all(s.done for s in mine.values()):
                if self._leader:
                    self._cond.wait()
                    continue
                self._leader = True
                try:
                    self._lead(mine)
                finally:
                    self._leader = False
                    self._cond.notify_all()
        for k, slot in mine.items():
            if slot.error is not None:
                raise slot.error
            out[k] = slot.value
        return out

    def _lead(self, mine: dict[TileKey, _Slot]) -> None:
        """As the leader (lock held on entry and exit): render pending batches until the
        caller's slots are done."""
        while not all(s.done for s in mine.values()) and self._pending:
            size = self.sizer.size
            if self.gather_s and len(self._pending) < size:
                deadline = time.monotonic() + self.gather_s
                while len(self._pending) < size:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            batch = []
            while self._pending and len(batch) < size:
                ck, slot = self._pending.popitem(last=False)
                self._inflight[ck] = slot
                batch.append((ck, slot))
            z = self._z if all(ck[0] == self._seed for ck, _ in batch) else None
            self._cond.release()
            try:
                try:
                    t0 = time.perf_counter()
                    tiles = self._render([ck for ck, _ in batch], z)
                    self.sizer.record(len(batch), time.perf_counter() - t0)
                    error = None
                except Exception as exc:  # delivered to every waiter of the batch
                    tiles, error = None, exc
            finally:
                self._cond.acquire()
            for i, (ck, slot) in enumerate(batch):
                del self._inflight[ck]
                if error is not None:
                    slot.error = error
                    continue
                slot.value = tiles[i]
                self._store(ck, tiles[i])
            if error is None:
                self.stats.generator_calls += 1
                self.stats.tiles_rendered += len(batch)
            self._cond.notify_all()

    def _store(self, ck: tuple, tile: np.ndarray) -> None:
        if tile.nbytes > self.cache_bytes:
            return
        ick = self._ck(*ck)
        old = self._cache.pop(ick, None)
        if old is not None:
            self._cached_bytes -= old.nbytes
        self._cache[ick] = tile
        self._cached_bytes += tile.nbytes
        while self._cached_bytes > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes

    @torch.inference_mode()
    def _render(self, cache_keys: list[tuple], z: torch.Tensor | None) -> list[np.ndarray]:
        """Render tiles ``(seed, zoom, a, b)`` (no lock held) in one generator call."""
        G = self.G
        if z is None:  # a batch mixing seeds (the seed changed meanwhile): one latent per tile
            zs = torch.stack([scene_latent(G, self.info, ck[0]) for ck in cache_keys])
        else:
            zs = z.reshape(1, -1).expand(len(cache_keys), -1)
        views = [self.view(ck[1:]) for ck in cache_keys]
        dev = self.device
        zoom = torch.tensor([v.zoom for v in views], device=dev)
        cy = torch.tensor([v.cy for v in views], device=dev)
        cx = torch.tensor([v.cx for v in views], device=dev)
        img = to_unit(G(zs, zoom, cy, cx, extra=G.cfg.tile_margin).float())
        if self.channels == 1:
            arr = img[:, 0].cpu().numpy().astype(np.float32, copy=False)
        else:
            arr = (img * 255).round_().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        tiles = []
        for t in arr:
            t = np.ascontiguousarray(t)
            t.setflags(write=False)
            tiles.append(t)
        return tiles
