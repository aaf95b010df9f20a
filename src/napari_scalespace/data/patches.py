"""Real patches: a view of a source cut out with exact area (anti-aliased) resampling.

Pixel j of an R-pixel patch of ``View(l, cy, cx)`` covers the footprint ``[e_j, e_{j+1})``
in source pixels, ``e_j = S * (c + 2**-l * (j / R - 0.5))`` (:func:`geometry.source_pixel_edges`;
S = the shorter side). Its value is the mean of the source over the footprint (rows x cols),
computed separably with one weight matrix per axis::

    W[j, p] = |[e_j, e_{j+1}) ∩ [p, p + 1)| / (e_{j+1} - e_j)
    patch[c] = Wy @ source[c, rows, cols] @ Wx^T

so fractional overlaps are weighted exactly (see :mod:`._area`; the matrices are sparse).
Only the source pixels under the view are read, from the stored pyramid level that serves the
view's footprint (:meth:`ImageSource.area`: its pixels at most half the view's).

- **Beyond native resolution** (footprint shorter than a source pixel) the same formula
  degenerates to piecewise-constant sampling: each patch pixel takes the value of the source
  pixel it falls in (or the overlap-weighted mean of two where it straddles an edge).
- **Views sticking out of the source** are filled by *edge replication*: a footprint's part
  outside the image takes the value of the nearest edge pixel. (The training dataset never
  draws such views.)

Patches are float32 tensors in [-1, 1]: ``2 * v - 1`` for source values v in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..geometry import View, grid_source_edges, source_pixel_edges
from .sources import ImageSource

__all__ = ["area_grid", "area_patch", "cut_patch", "cut_patches"]


def area_patch(source: ImageSource, view: View, resolution: int) -> np.ndarray:
    """The area-resampled view as float32 ``[C, R, R]`` in [0, 1] (see the module docstring)."""
    ye, xe = source_pixel_edges(
        view.zoom, view.cy, view.cx, resolution, source.height, source.width
    )
    return source.area(ye, xe)


def cut_patch(source: ImageSource, view: View, resolution: int) -> torch.Tensor:
    """The view as a float32 tensor ``[C, R, R]`` in [-1, 1] (see the module docstring)."""
    v = area_patch(source, view, resolution)
    return torch.from_numpy(v * np.float32(2.0) - np.float32(1.0))


def cut_patches(source: ImageSource, views: Sequence[View], resolution: int) -> torch.Tensor:
    """:func:`cut_patch` for each view: float32 ``[B, C, R, R]`` in [-1, 1]."""
    out = np.empty((len(views), source.channels, resolution, resolution), dtype=np.float32)
    for i, view in enumerate(views):
        out[i] = area_patch(source, view, resolution)
    return torch.from_numpy(out * np.float32(2.0) - np.float32(1.0))


def area_grid(source: ImageSource, shape: tuple[int, int], cells_per_unit: float) -> torch.Tensor:
    """The source area-averaged over the cells of a scene-coordinate grid of ``shape`` cells
    (``cells_per_unit`` per scene unit, from the scene's origin; cells past the image edge
    replicate it): float32 ``[C, Ny, Nx]`` in [-1, 1]. Reads the whole image, from the stored
    level that serves the cells, in strips."""
    ye = grid_source_edges(shape[0], cells_per_unit, source.height, source.width)
    xe = grid_source_edges(shape[1], cells_per_unit, source.height, source.width)
    v = source.area(ye, xe)
    return torch.from_numpy(v * np.float32(2.0) - np.float32(1.0))
