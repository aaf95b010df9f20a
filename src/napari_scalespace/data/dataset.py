"""Training views: random real patches over octaves, scenes and positions.

One :meth:`PatchDataset.draw` of B patches:

1. octave ``k`` from the progressive schedule (:mod:`.sampler`) at training progress kimg;
2. zoom ``l`` uniform in ``[k, k + 1)``;
3. scene uniform over the sources (one source = pseudo-reconstruction of one scale space,
   many = generation mode, a scene per image);
4. centre uniform over the centres for which the whole view lies inside that scene
   (:func:`geometry.inside_centre_range`; a zoom-0 view fits the shorter side exactly);
5. the patch, area-resampled (:mod:`.patches`).

Octaves beyond the data (``extra_octaves`` E): the schedule draws from all ``octaves``
n, but only the first ``n - E`` have real patches. A sample drawn at zoom ``l = k + f`` in an
extra octave ``k >= n - E`` is a pair: the generator renders the view ``(l, cy, cx)``
(``render_zoom``), and the real patch is the same fraction ``f`` of the finest data octave,
``zoom = n - E - 1 + f``, at the same centre (inside the scene at the coarser zoom, so also at
the finer one): the discriminator compares the invented detail with real detail of the finest
octave, and the consistency loss ties the zoom to what the data shows above it.

A :class:`.Collection` (images at different pixel sizes, positions unknown) is one
scene: after step 2 the image is drawn uniformly among those with real patches at zoom ``l``
(:meth:`.Collection.covering`), the patch is cut at a uniform position of that image at its
own zoom ``l - o_i`` (``Batch.source``), and the view the generator renders is drawn
uniformly inside the collection's scene box (the zoom-0 image's), unrelated to the patch's
position. Without a collection the patch is cut at the rendered view itself.

The views are rounded to float32 (the dtype of the returned tensors) *before* cutting, so
``images[i]`` is exactly the view ``(zoom[i], cy[i], cx[i])``.

Speed: a coarse view covers up to S x S source pixels, so cutting it directly reads them all.
The dataset therefore keeps a summed-area table (:class:`.IntegralImage`, float64,
``8 * C * (H+1) * (W+1)`` bytes) per source while their total fits ``table_bytes``
(default 1 GiB: one RGB image up to about 6,500 x 6,500), built on the scene's first draw;
a patch then costs O(R^2) whatever its zoom, with the same values as :func:`.cut_patch`. Sources
beyond the budget are cut directly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch

from ..geometry import (
    View,
    image_zoom,
    inside_centre_range,
    native_zoom,
    scene_extent,
    source_pixel_edges,
)
from .collection import Collection
from .integral import IntegralImage
from .patches import area_patch
from .sampler import OctaveSampler, OctaveSchedule
from .sources import ImageSource, open_source

__all__ = ["Batch", "PatchDataset", "Views"]

_OCTAVE_TOLERANCE = 1e-6


class Batch(NamedTuple):
    """A batch of real patches and their views."""

    images: torch.Tensor  # [B, C, R, R] float32 in [-1, 1]
    zoom: torch.Tensor  # [B] float32, the real patch's zoom (below the data's last octave)
    cy: torch.Tensor  # [B] float32, scene units
    cx: torch.Tensor  # [B] float32
    scene: torch.Tensor  # [B] int64, index into the dataset's sources
    octave: torch.Tensor  # [B] int64, floor(render_zoom): the drawn octave
    render_zoom: torch.Tensor  # [B] float32, the zoom the generator renders: ``zoom`` on data
    #   octaves, the drawn zoom in [octave, octave + 1) on extra octaves (no real patch there)
    source: torch.Tensor | None = None  # [B] int64, the image each patch was cut from (index
    #   into the dataset's sources: the scene, or a collection's image)

    @property
    def has_truth(self) -> torch.Tensor:
        """[B] bool: the real patch is the rendered view (``render_zoom == zoom``)."""
        return self.render_zoom == self.zoom


class Views(NamedTuple):
    """Drawn views (numpy): the first six as in :class:`Batch`; then where each real patch is
    cut: ``source`` image, at ``source_zoom`` and centre ``(sy, sx)`` in that image's own
    scene (the rendered view itself, except in a collection)."""

    zoom: np.ndarray
    cy: np.ndarray
    cx: np.ndarray
    scene: np.ndarray
    octave: np.ndarray
    render_zoom: np.ndarray
    source: np.ndarray
    source_zoom: np.ndarray
    sy: np.ndarray
    sx: np.ndarray


def max_octaves(height: int, width: int, resolution: int) -> int:
    """The most octaves an H x W image resolves at ``resolution`` px: the finest view
    (zoom = octaves) must still span >= resolution source pixels,
    ``octaves <= native_zoom(H, W, R)`` (+ 1e-6 round-off)."""
    return math.floor(native_zoom(height, width, resolution) + _OCTAVE_TOLERANCE)


class PatchDataset:
    """Random training views of ``sources`` (see the module docstring).

    ``sources``: ImageSources (or anything :func:`open_source` opens), all with the same
    number of channels, one scene each; or a :class:`.Collection` (one scene). ``octaves``
    >= 1, ``resolution`` R >= 1 px, ``seed`` for the random generators (or a
    ``np.random.Generator`` to draw everything from), ``schedule`` (default
    ``OctaveSchedule(octaves)``), ``table_bytes`` the memory budget of the summed-area tables
    (0 = always cut directly), ``extra_octaves`` the finest octaves without data (see the
    module docstring).
    """

    def __init__(
        self,
        sources: Sequence[ImageSource | Any],
        octaves: int,
        resolution: int,
        seed: int | np.random.Generator | None = None,
        schedule: OctaveSchedule | None = None,
        table_bytes: int = 1 << 30,
        extra_octaves: int = 0,
    ) -> None:
        if isinstance(octaves, bool) or not isinstance(octaves, int | np.integer):
            raise ValueError(f"octaves must be an integer, got {octaves!r}")
        if octaves < 1:
            raise ValueError(f"octaves must be >= 1, got {octaves}")
        if isinstance(resolution, bool) or not isinstance(resolution, int | np.integer):
            raise ValueError(f"resolution must be an integer, got {resolution!r}")
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        self.collection = sources if isinstance(sources, Collection) else None
        if self.collection is None and (isinstance(sources, ImageSource | str)
                                        or not isinstance(sources, Sequence)):
            raise ValueError("sources must be a list of images (one per scene) or a Collection")
        if len(sources) == 0:
            raise ValueError("sources must not be empty")
        self.sources = (self.collection.sources if self.collection is not None
                        else [open_source(s) for s in sources])
        self.scenes = 1 if self.collection is not None else len(self.sources)
        if (isinstance(extra_octaves, bool) or not isinstance(extra_octaves, int | np.integer)
                or not 0 <= extra_octaves < octaves):
            raise ValueError(f"extra_octaves must be an integer in [0, octaves), got "
                             f"{extra_octaves!r}")
        self.octaves, self.resolution = int(octaves), int(resolution)
        self.data_octaves = self.octaves - int(extra_octaves)
        self._validate()
        self.schedule = schedule if schedule is not None else OctaveSchedule(self.octaves)
        if self.schedule.octaves != self.octaves:
            raise ValueError(
                f"schedule has {self.schedule.octaves} octaves, the dataset {self.octaves}"
            )
        if isinstance(seed, np.random.Generator):  # the caller owns (and checkpoints) the rng
            self.rng = seed
            self.sampler = OctaveSampler(self.schedule, seed)
        else:
            octave_seed, view_seed = np.random.SeedSequence(seed).spawn(2)
            self.sampler = OctaveSampler(self.schedule, np.random.default_rng(octave_seed))
            self.rng = np.random.default_rng(view_seed)
        self._extents = np.array([scene_extent(s.height, s.width) for s in self.sources])
        self._scene_extents = (np.array([self.collection.extent]) if self.collection is not None
                               else self._extents)
        self._tables: list[IntegralImage | None] = [None] * len(self.sources)
        self._table_lock = threading.Lock()
        self._use_table = self._plan_tables(int(table_bytes))

    @property
    def channels(self) -> int:
        return self.sources[0].channels

    def _validate(self) -> None:
        r, n = self.resolution, self.data_octaves
        if self.collection is not None:
            self.collection.check(n, r)
            return
        channels = {s.channels for s in self.sources}
        if len(channels) > 1:
            desc = ", ".join(f"{s.name}: {s.channels}" for s in self.sources)
            raise ValueError(f"sources have different channel counts ({desc})")
        for s in self.sources:
            if min(s.height, s.width) < r:
                raise ValueError(
                    f"image {s.name} is {s.height}x{s.width}, smaller than the {r}-px view "
                    "at zoom 0"
                )
            most = max_octaves(s.height, s.width, r)
            if n > most:
                raise ValueError(
                    f"image {s.name} is {s.height}x{s.width}: at {r} px it supports at most "
                    f"{most} octaves (native zoom log2({min(s.height, s.width)}/{r}) = "
                    f"{native_zoom(s.height, s.width, r):.3f}), got {n} octaves with data"
                )

    def _plan_tables(self, budget: int) -> list[bool]:
        use = []
        for s in self.sources:
            need = IntegralImage.nbytes_for(s)
            use.append(need <= budget)
            budget -= need if need <= budget else 0
        return use

    def _table(self, scene: int) -> IntegralImage:
        with self._table_lock:  # built once, also when a background cut gets there first
            table = self._tables[scene]
            if table is None:
                table = self._tables[scene] = IntegralImage.from_source(self.sources[scene])
        return table

    def set_schedule(self, schedule: OctaveSchedule) -> None:
        """Draw octaves from ``schedule`` from now on (same octaves, same random stream)."""
        if schedule.octaves != self.octaves:
            raise ValueError(f"schedule has {schedule.octaves} octaves, the dataset "
                             f"{self.octaves}")
        self.schedule = self.sampler.schedule = schedule

    def draw_views(self, batch: int, kimg: float) -> Views:
        """:class:`Views` of ``batch`` random views (see :class:`Batch`); zooms and centres
        are float32 (rounded to lie inside the scene), indices int64."""
        octave = self.sampler.draw(batch, kimg)
        below = np.nextafter((octave + 1).astype(np.float32), np.float32(0))
        render_zoom = np.minimum((octave + self.rng.random(batch)).astype(np.float32), below)
        shift = np.maximum(octave - (self.data_octaves - 1), 0).astype(np.float32)
        zoom = np.where(shift > 0, render_zoom - shift, render_zoom)  # exact in float32
        scene = self.rng.integers(0, self.scenes, size=batch).astype(np.int64)
        cy, cx = self._centres(zoom, scene, self._scene_extents)
        if self.collection is None:
            return Views(zoom, cy, cx, scene, octave, render_zoom, scene, zoom, cy, cx)
        source = self._pick_images(zoom)
        offsets = np.array(self.collection.offsets)[source]
        source_zoom = image_zoom(zoom.astype(np.float64), offsets).astype(np.float32)
        sy, sx = self._centres(source_zoom, source, self._extents)
        return Views(zoom, cy, cx, scene, octave, render_zoom, source, source_zoom, sy, sx)

    def _centres(self, zoom: np.ndarray, index: np.ndarray, extents: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform centres keeping views at ``zoom`` inside box ``extents[index]``."""
        u = self.rng.random((2, len(zoom)))
        cy, cx = np.empty(len(zoom), np.float32), np.empty(len(zoom), np.float32)
        for k in np.unique(index):
            idx = np.flatnonzero(index == k)
            y_lo, y_hi, x_lo, x_hi = inside_centre_range(zoom[idx], tuple(extents[k]))
            cy[idx] = _float32_in(y_lo + u[0, idx] * (y_hi - y_lo), y_lo, y_hi)
            cx[idx] = _float32_in(x_lo + u[1, idx] * (x_hi - x_lo), x_lo, x_hi)
        return cy, cx

    def _pick_images(self, zoom: np.ndarray) -> np.ndarray:
        """Per collection zoom, one image uniformly among those with patches there."""
        cover = self.collection.covering(zoom, self.resolution)
        counts = cover.sum(axis=1)
        if not counts.all():  # check() rules this out; a guard against round-off
            raise ValueError(f"no image covers zoom {float(zoom[counts == 0][0]):.4f}")
        pick = np.floor(self.rng.random(len(zoom)) * counts).astype(np.int64)
        return np.argmax(np.cumsum(cover, axis=1) > pick[:, None], axis=1).astype(np.int64)

    def cut(
        self, zoom: np.ndarray, cy: np.ndarray, cx: np.ndarray, scene: np.ndarray
    ) -> np.ndarray:
        """Patches of the views (``scene``: index into ``sources``, the views in that image's
        own scene) as float32 ``[B, C, R, R]`` in [0, 1]."""
        r = self.resolution
        out = np.empty((len(zoom), self.channels, r, r), dtype=np.float32)
        for k in np.unique(scene):
            idx = np.flatnonzero(scene == k)
            src = self.sources[k]
            if self._use_table[k]:
                ye, xe = source_pixel_edges(zoom[idx], cy[idx], cx[idx], r, src.height, src.width)
                out[idx] = np.clip(self._table(k).box_means(ye, xe), 0.0, 1.0)
            else:
                for i in idx:
                    out[i] = area_patch(src, View(zoom[i], cy[i], cx[i]), r)
        return out

    def draw(self, batch: int, kimg: float = 0.0) -> Batch:
        """``batch`` random real patches at training progress ``kimg`` (see :class:`Batch`):
        :meth:`draw_views` (the random draws) then :meth:`batch_of` (the reading; the trainer
        runs it in the background, see :mod:`..train.prefetch`)."""
        return self.batch_of(self.draw_views(batch, kimg))

    def batch_of(self, v: Views) -> Batch:
        """The :class:`Batch` of drawn views: their real patches cut (no randomness: safe to
        run in another thread while the next views are drawn)."""
        images = self.cut(v.source_zoom, v.sy, v.sx, v.source) * np.float32(2.0) - np.float32(1.0)
        return Batch(
            torch.from_numpy(images),
            torch.from_numpy(v.zoom),
            torch.from_numpy(v.cy),
            torch.from_numpy(v.cx),
            torch.from_numpy(v.scene),
            torch.from_numpy(v.octave),
            torch.from_numpy(v.render_zoom),
            torch.from_numpy(v.source),
        )


def _float32_in(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``v`` rounded to float32, nudged by one ulp where rounding left ``[lo, hi]``."""
    c = v.astype(np.float32)
    c = np.where(c < lo, np.nextafter(c, np.float32(np.inf)), c)
    return np.where(c > hi, np.nextafter(c, np.float32(-np.inf)), c)
