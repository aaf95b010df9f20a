"""Three ways to look at a scene through a view, for comparing them view by view.

Each provider has ``resolution``, ``channels``, ``extent`` and ``render(views)`` returning
float32 ``[N, C, R, R]`` in [0, 1]:

- :class:`LearnedViews`: the learned scale space (:meth:`Renderer.render_views`).
- :class:`TruthViews`: the ground truth: the source cut with exact area resampling
  (:func:`data.patches.area_patch`), as the training patches are.
- :class:`BicubicViews`: the baseline a user has without a model: the *coarsest* ground-truth
  view (the whole scene at the resolution of a zoom-0 view, R pixels per scene unit) zoomed with
  bicubic interpolation (Keys, a = -0.75, borders replicated). It knows nothing finer than zoom 0.
- :class:`SourceZoomViews`: what zooming into an image in a viewer shows: the source
  area-resampled down to its native zoom, bicubic-interpolated past it (the baseline of a
  collection: the low-magnification overview zoomed in).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data import ImageSource
from ..data.patches import area_patch
from ..geometry import (
    View,
    raster_coords,
    raster_shape,
    raster_source_edges,
    scene_extent,
    source_pixel_edges,
    view_to_source_box,
)
from ..render.renderer import Renderer

__all__ = ["BicubicViews", "LearnedViews", "SourceZoomViews", "TruthViews"]


class LearnedViews:
    """The renderer's scale space, rendered ``BATCH`` views per generator call whatever the
    renderer measured: float round-off depends on the batch, and a report must not depend on
    timing."""

    BATCH = 8

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.resolution = renderer.tile_size
        self.channels = renderer.channels
        self.extent = renderer.extent

    def render(self, views: Sequence[View]) -> np.ndarray:
        return self.renderer.render_views(views, batch=self.BATCH)


class TruthViews:
    """Area-resampled views of an image source."""

    def __init__(self, source: ImageSource, resolution: int) -> None:
        self.source = source
        self.resolution = int(resolution)
        self.channels = source.channels
        self.extent = scene_extent(source.height, source.width)

    def render(self, views: Sequence[View]) -> np.ndarray:
        out = np.empty((len(views), self.channels, self.resolution, self.resolution),
                       np.float32)
        for i, v in enumerate(views):
            out[i] = area_patch(self.source, v, self.resolution)
        return out


class BicubicViews:
    """Bicubic zoom of the coarsest ground-truth view of ``source``."""

    def __init__(self, source: ImageSource, resolution: int) -> None:
        self.resolution = int(resolution)
        self.channels = source.channels
        self.extent = scene_extent(source.height, source.width)
        ye, xe = raster_source_edges(self.extent, self.resolution, source.height, source.width)
        coarse = source.area(ye, xe)  # from the stored level that serves it
        assert coarse.shape[1:] == raster_shape(self.extent, self.resolution)
        self.coarse = torch.from_numpy(np.ascontiguousarray(coarse, dtype=np.float32))

    def render(self, views: Sequence[View]) -> np.ndarray:
        if not views:
            return np.empty((0, self.channels, self.resolution, self.resolution), np.float32)
        _, h, w = self.coarse.shape
        grids = []
        for v in views:
            ys, xs = raster_coords(v, self.resolution, self.resolution)
            # grid_sample (align_corners=False) puts raster pixel i's centre at (2i + 1)/n - 1
            gy = torch.from_numpy((2 * ys + 1) / h - 1).float()
            gx = torch.from_numpy((2 * xs + 1) / w - 1).float()
            yy, xx = torch.meshgrid(gy, gx, indexing="ij")
            grids.append(torch.stack([xx, yy], dim=-1))
        src = self.coarse[None].expand(len(views), -1, -1, -1)
        out = F.grid_sample(src, torch.stack(grids), mode="bicubic", padding_mode="border",
                            align_corners=False)
        return out.clamp_(0, 1).numpy()


class SourceZoomViews:
    """``source`` as a viewer shows it: exact area resampling where a view spans at least
    ``resolution`` source pixels, bicubic interpolation of the source pixels past that (Keys,
    a = -0.75, borders replicated): it knows nothing finer than the source's own pixels."""

    _MARGIN = 3  # source pixels read around a view: the bicubic kernel's reach, and round-off

    def __init__(self, source: ImageSource, resolution: int) -> None:
        self.source = source
        self.resolution = int(resolution)
        self.channels = source.channels
        self.extent = scene_extent(source.height, source.width)
        self._area = TruthViews(source, resolution)

    def render(self, views: Sequence[View]) -> np.ndarray:
        out = np.empty((len(views), self.channels, self.resolution, self.resolution),
                       np.float32)
        for i, v in enumerate(views):
            out[i] = self._render(v)
        return out

    def _render(self, v: View) -> np.ndarray:
        h, w, r = self.source.height, self.source.width, self.resolution
        r0, c0, r1, c1 = view_to_source_box(v, h, w)
        if r1 - r0 >= r - 1e-9:  # at least one source pixel per rendered pixel
            return self._area.render([v])[0]
        m = self._MARGIN
        a0, a1 = max(0, int(np.floor(r0)) - m), min(h, int(np.ceil(r1)) + m)
        b0, b1 = max(0, int(np.floor(c0)) - m), min(w, int(np.ceil(c1)) + m)
        region = torch.from_numpy(np.ascontiguousarray(self.source.read(a0, a1, b0, b1)))
        ye, xe = source_pixel_edges(v.zoom, v.cy, v.cx, r, h, w)
        yc, xc = (ye[1:] + ye[:-1]) / 2, (xe[1:] + xe[:-1]) / 2  # pixel centres, source px
        # source pixel p's centre is p + 0.5; grid_sample (align_corners=False) puts region
        # pixel i's centre at (2i + 1) / n - 1
        gy = torch.from_numpy(2 * (yc - a0) / (a1 - a0) - 1).float()
        gx = torch.from_numpy(2 * (xc - b0) / (b1 - b0) - 1).float()
        yy, xx = torch.meshgrid(gy, gx, indexing="ij")
        out = F.grid_sample(region[None], torch.stack([xx, yy], dim=-1)[None], mode="bicubic",
                            padding_mode="border", align_corners=False)
        return out[0].clamp_(0, 1).numpy()
