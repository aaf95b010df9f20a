"""Coordinate conventions of napari-scalespace: the only module doing coordinate arithmetic.

Scene
    Axes are (y, x) = (array row, column), y down and x right, as in napari. The unit is the
    scene's *shorter side*: an H x W image with S = min(H, W) spans the scene box
    ``[0, H/S) x [0, W/S)`` (a square image is the unit square). Source pixel (r, c) covers
    ``[r/S, (r+1)/S) x [c/S, (c+1)/S)``.

View
    ``View(zoom, cy, cx)`` is the square of side ``2**-zoom`` centred on (cy, cx); zoom 0 is a
    view of side 1. Pixel j (0-based) of an R-pixel rendering sits at::

        y_j = cy + 2**-zoom * ((j + 0.5) / R - 0.5)      (same for x with cx)

    A sampling grid with sampling rate ``sr`` (samples per view side) and margin ``m`` uses the
    same formula with R = sr for j in ``[-m, sr + m)``: ``sr + 2m`` samples of spacing
    ``2**-zoom / sr``, the middle ``sr`` of which are the plain rendering.

Pyramid
    ``PyramidGrid(octaves, tile, extent)``: napari level i (0 = finest) shows zoom
    ``l = octaves - i``. At zoom l the scene is tiled by views of side ``2**-l``; tile (a, b) is
    ``View(l, (a + 0.5) / 2**l, (b + 0.5) / 2**l)`` and covers ``[a, a+1) x [b, b+1) * 2**-l``.
    There are ``ceil(ey * 2**l) x ceil(ex * 2**l)`` tiles (the last row/column may stick out of
    the scene), each rendered with ``tile`` pixels, so a level array has shape
    ``(ny * tile, nx * tile)``, one pixel is ``2**-l / tile`` scene units, and napari's scale of
    level i relative to level 0 is ``2**i``.

Source resolution
    A view at zoom l spans ``S * 2**-l`` source pixels; rendering it with R pixels matches the
    source one-to-one at the *native zoom* ``log2(S / R)``. Pixel j of an R-pixel rendering
    covers the *footprint* between source-pixel edges ``e_j`` and ``e_{j+1}``, where
    ``e_j = S * (c + 2**-l * (j / R - 0.5))``, j = 0..R (:func:`source_pixel_edges`).

Views inside the scene
    A view lies inside the scene box iff its centre is in
    ``[s/2, ey - s/2] x [s/2, ex - s/2]`` with ``s = 2**-zoom`` (:func:`inside_centre_range`).

Collections (several images of one scale space at different pixel sizes)
    Image i is H_i x W_i pixels of physical size p_i; its *field of view* is its shorter side
    in physical units, ``F_i = S_i * p_i``. The largest field of view F_0 is the collection's
    zoom 0, so a view at collection zoom l spans ``F_0 * 2**-l`` physical units. In image i's
    own scene that is zoom ``l - o_i`` (:func:`image_zoom`) with the *zoom offset*
    ``o_i = log2(F_0 / F_i)`` (:func:`zoom_offset`); image i has real patches for collection zooms
    ``[o_i, o_i + native_zoom(H_i, W_i, R)]`` (:func:`collection_zoom_range`): from views of its
    whole shorter side down to one source pixel per rendered pixel. Its zoom label is
    ``o_i + native_zoom``, ``log2`` of its pixel size against the zoom-0 view's.

Physical placement (napari world coordinates)
    The source image sits in the world with pixel r's centre at ``p * r`` (p its physical
    pixel size, 1 when it has none), so scene point y is at world ``U y - p/2`` with
    ``U = S p`` (:func:`scene_unit_length`, :func:`scene_to_world`); pyramid level i then has
    scale ``U q_i`` and translation ``(U q_i - p) / 2``, q_i its pixel size in scene units
    (:func:`level_world_transform`).

Nested views
    A view inside a concentric view ``f`` times larger (the scale-consistency loss's student and
    teacher) has its pixel edges at ``R/2 + (i - R/2) / f`` teacher pixels
    (:func:`nested_pixel_edges`).

Only numpy and torch are used here (no Qt, no napari).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

_EPS = 1e-9  # tolerance for float round-off (tile counts, tile identification)

__all__ = [
    "MAX_OCTAVES",
    "PyramidGrid",
    "TileSlice",
    "View",
    "canvas_edges",
    "canvas_offsets",
    "collection_zoom_range",
    "grid_position",
    "grid_source_edges",
    "image_zoom",
    "level_world_transform",
    "native_zoom",
    "nested_pixel_edges",
    "pixel_centers",
    "pixels_per_cell",
    "reduced_level_transform",
    "scene_extent",
    "scene_to_world",
    "scene_unit_length",
    "source_pixel_edges",
    "source_pixels_per_view",
    "view_to_source_box",
    "world_grid",
    "zoom_offset",
]


def _int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int >= ``minimum``, else ValueError naming ``name``."""
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def _finite(name: str, value: object) -> float:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a float, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


@dataclass(frozen=True)
class View:
    """The square of side ``2**-zoom`` centred on scene point (cy, cx)."""

    zoom: float
    cy: float
    cx: float

    def __post_init__(self) -> None:
        for name in ("zoom", "cy", "cx"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))

    @property
    def side(self) -> float:
        """Side length in scene units, ``2**-zoom``."""
        return 2.0**-self.zoom

    def moved(self, dy: float, dx: float) -> View:
        """The view at the same zoom with its centre moved by ``(dy, dx)`` view sides."""
        return View(self.zoom, self.cy + dy * self.side, self.cx + dx * self.side)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(y0, x0, y1, x1)`` of the half-open box ``[y0, y1) x [x0, x1)``."""
        h = self.side / 2
        return (self.cy - h, self.cx - h, self.cy + h, self.cx + h)


def pixel_centers(view: View, resolution: int, margin: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scene coordinates ``(ys, xs)`` (float64, length resolution + 2*margin) of the samples
    ``j in [-margin, resolution + margin)`` of an R = ``resolution`` pixel rendering of ``view``."""
    r = _int("resolution", resolution, 1)
    m = _int("margin", margin, 0)
    u = (np.arange(-m, r + m, dtype=np.float64) + 0.5) / r - 0.5
    return view.cy + view.side * u, view.cx + view.side * u


def world_grid(
    zoom: torch.Tensor | float,
    cy: torch.Tensor | float,
    cx: torch.Tensor | float,
    sampling_rate: int,
    margin: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched :func:`pixel_centers`: ``(ys, xs)``, each ``[B, sampling_rate + 2*margin]``.

    ``zoom``, ``cy``, ``cx`` are 1-D tensors of shape [B] (or scalars / python floats, broadcast
    against each other). The result takes the dtype and device of the first floating-point
    tensor argument (float32 on the CPU when there is none) and is differentiable in the inputs.
    """
    sr = _int("sampling_rate", sampling_rate, 1)
    m = _int("margin", margin, 0)
    tensors = [t for t in (zoom, cy, cx) if isinstance(t, torch.Tensor)]
    floats = [t for t in tensors if t.is_floating_point()]
    dtype = floats[0].dtype if floats else torch.float32
    device = tensors[0].device if tensors else None
    cols = []
    for name, v in (("zoom", zoom), ("cy", cy), ("cx", cx)):
        t = torch.as_tensor(v, dtype=dtype, device=device)
        if t.dim() > 1:
            raise ValueError(
                f"{name} must be a scalar or 1-D [B] tensor, got shape {tuple(t.shape)}"
            )
        cols.append(t.reshape(-1, 1))
    z, y, x = torch.broadcast_tensors(*cols)
    u = canvas_offsets(sr, m, dtype=dtype, device=device)
    side = torch.exp2(-z)
    return y + side * u, x + side * u


def zoomed_out(zoom: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The view a fraction ``u`` of the zoom out from zoom ``l``, same centre: its zoom
    ``l - u l`` and how many times larger it is, ``f = 2**(u l)`` (the scale-consistency
    loss's teacher)."""
    zoom, u = np.asarray(zoom, dtype=np.float64), np.asarray(u, dtype=np.float64)
    return zoom - u * zoom, np.exp2(u * zoom)


def nested_pixel_edges(factor: torch.Tensor, resolution: int) -> torch.Tensor:
    """Pixel edges of a view inside a concentric view ``factor`` times larger, both rendered
    with R = ``resolution`` pixels, in units of the larger view's pixels: ``[B, R + 1]``,
    ``e_i = R/2 + (i - R/2) / factor`` (the scale-consistency loss compares such pairs)."""
    r = _int("resolution", resolution, 1)
    i = torch.arange(r + 1, dtype=factor.dtype, device=factor.device)
    return r / 2 + (i[None] - r / 2) / factor.reshape(-1, 1)


def canvas_offsets(
    sampling_rate: int,
    margin: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sample positions of a canvas relative to the view centre, in units of the view side:
    ``u_j = (j + 0.5)/sr - 0.5`` for j in ``[-margin, sr + margin)`` (world = c + 2**-zoom * u).
    """
    sr = _int("sampling_rate", sampling_rate, 1)
    m = _int("margin", margin, 0)
    return (torch.arange(-m, sr + m, dtype=dtype, device=device) + 0.5) / sr - 0.5


def canvas_edges(
    sampling_rate: int,
    margin: int = 0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Pixel edges of a canvas relative to the view centre, in units of the view side:
    ``e_j = j/sr - 0.5`` for j in ``[-margin, sr + margin]`` (one more than the samples of
    :func:`canvas_offsets`; sample j spans ``[e_j, e_{j+1}]``)."""
    sr = _int("sampling_rate", sampling_rate, 1)
    m = _int("margin", margin, 0)
    return torch.arange(-m, sr + m + 1, dtype=dtype, device=device) / sr - 0.5


def grid_source_edges(cells: int, cells_per_unit: float, height: int, width: int) -> np.ndarray:
    """Edges of the cells of a scene-coordinate grid (cell n spans
    ``[n / g, (n + 1) / g]`` scene units, g = ``cells_per_unit``) in source pixel coordinates
    of an H x W image: ``S n / g`` for n = 0..cells, S = min(H, W)."""
    s = _shorter_side(height, width)
    return s * np.arange(_int("cells", cells, 1) + 1, dtype=np.float64) / cells_per_unit


def pixels_per_cell(octave: int | np.ndarray, resolution: int, cells_per_unit: float
                    ) -> np.ndarray:
    """View pixels per cell of a grid with ``cells_per_unit`` cells per scene unit, at zoom
    ``octave`` (a view spans ``2^-octave`` scene units in ``resolution`` pixels):
    ``resolution * 2^octave / cells_per_unit``."""
    return resolution * np.exp2(np.asarray(octave, dtype=np.float64)) / cells_per_unit


def grid_position(world: torch.Tensor, cells_per_unit: float) -> torch.Tensor:
    """World coordinates (scene units) -> position on a grid of ``cells_per_unit`` cells per
    scene unit whose cell n is centred at ``(n + 1/2) / cells_per_unit``: ``t = p g - 1/2``
    (cell units, 0 at the first centre)."""
    return world * cells_per_unit - 0.5


class TileSlice(NamedTuple):
    """One tile's share of a level-array slice: ``block[out_rows, out_cols] =
    tile(a, b)[rows, cols]`` where ``block`` is the requested slice of the level array."""

    a: int
    b: int
    rows: slice
    cols: slice
    out_rows: slice
    out_cols: slice


def tile_span(start: int, stop: int, tile: int) -> range:
    """The tiles of side ``tile`` that pixels ``start:stop`` of an axis touch:
    ``floor(start / tile) .. ceil(stop / tile) - 1`` (none for an empty slice)."""
    return range(start // tile, -(-stop // tile)) if stop > start else range(0)


def tile_code(space: int, zoom: int, a: int, b: int) -> int:
    """One int for tile (zoom, a, b) of scale space number ``space`` (a key without a tuple):
    ``((space * 2**8 + zoom) * 2**32 + a) * 2**32 + b`` for zoom < 2**8 and a, b < 2**32, so
    ``tile_code(s, z, a, 0) | b`` is the code of tile (z, a, b)."""
    return (((space << 8 | zoom) << 32 | a) << 32) | b


def ancestor_region(a: int, b: int, k: int, tile: int) -> tuple[int, int, int, int, int]:
    """Tile (a, b)'s ancestor ``k`` levels coarser and the square of its pixels that covers
    the tile: ``(a >> k, b >> k, y0, x0, size)`` with ``size = tile >> k`` and
    ``y0 = (a mod 2**k) size``, ``x0 = (b mod 2**k) size`` (the tile is that square enlarged
    ``2**k`` times; exactly so when ``2**k`` divides ``tile``)."""
    size = tile >> k
    f = 1 << k
    return a >> k, b >> k, (a % f) * size, (b % f) * size, size


def _split(name: str, sl: slice, length: int, tile: int) -> list[tuple[int, slice, slice]]:
    """Cut a step-1 slice of an axis of ``length`` into (tile index, in-tile, in-output) parts."""
    if not isinstance(sl, slice):
        raise ValueError(f"{name} must be a slice, got {sl!r}")
    start, stop, step = sl.indices(length)
    if step != 1:
        raise ValueError(f"{name} must have step 1, got {sl!r}")
    parts = []
    for t in tile_span(start, stop, tile):
        lo, hi = max(start, t * tile), min(stop, (t + 1) * tile)
        parts.append((t, slice(lo - t * tile, hi - t * tile), slice(lo - start, hi - start)))
    return parts


@dataclass(frozen=True)
class PyramidGrid:
    """napari multiscale pyramid: ``octaves + 1`` levels; level i shows zoom ``octaves - i``,
    tiled by views of side ``2**-(octaves - i)`` rendered with ``tile`` pixels each.
    ``extent = (ey, ex)`` is the scene box (see :func:`scene_extent`)."""

    octaves: int
    tile: int
    extent: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "octaves", _int("octaves", self.octaves, 0))
        object.__setattr__(self, "tile", _int("tile", self.tile, 1))
        try:
            ey, ex = (float(e) for e in self.extent)
        except (TypeError, ValueError):
            raise ValueError(f"extent must be a pair of floats, got {self.extent!r}") from None
        if not all(math.isfinite(e) and e > 0 for e in (ey, ex)):
            raise ValueError(f"extent must be positive and finite, got {self.extent!r}")
        object.__setattr__(self, "extent", (ey, ex))

    @property
    def n_levels(self) -> int:
        return self.octaves + 1

    def _level(self, level: int) -> int:
        lv = _int("level", level, 0)
        if lv > self.octaves:
            raise ValueError(f"level must be <= octaves={self.octaves}, got {lv}")
        return lv

    def zoom_of_level(self, level: int) -> int:
        return self.octaves - self._level(level)

    def level_of_zoom(self, zoom: float) -> int:
        """Inverse of :meth:`zoom_of_level`; ``zoom`` must be an integer in [0, octaves]."""
        z = round(zoom)
        if abs(zoom - z) > _EPS or not 0 <= z <= self.octaves:
            raise ValueError(f"zoom must be an integer in [0, {self.octaves}], got {zoom!r}")
        return self.octaves - z

    def n_tiles(self, level: int) -> tuple[int, int]:
        """``(ny, nx) = ceil(extent * 2**zoom)`` (round-off below 1e-9 ignored)."""
        k = 2.0 ** self.zoom_of_level(level)
        ny, nx = (max(1, math.ceil(e * k - _EPS)) for e in self.extent)
        return ny, nx

    def level_shape(self, level: int) -> tuple[int, int]:
        ny, nx = self.n_tiles(level)
        return ny * self.tile, nx * self.tile

    def scale(self, level: int) -> float:
        """napari's scale of ``level`` relative to level 0: ``2**level``."""
        return 2.0 ** self._level(level)

    def pixel_size(self, level: int) -> float:
        """Side of one level pixel in scene units: ``2**-zoom / tile``."""
        return 2.0 ** -self.zoom_of_level(level) / self.tile

    def _tile_index(self, level: int, a: int, b: int) -> tuple[int, int, int]:
        lv = self._level(level)
        ny, nx = self.n_tiles(lv)
        a, b = _int("a", a, 0), _int("b", b, 0)
        if a >= ny or b >= nx:
            raise ValueError(f"tile (a, b)=({a}, {b}) outside the {ny} x {nx} tiles of level {lv}")
        return lv, a, b

    def tile_view(self, level: int, a: int, b: int) -> View:
        lv, a, b = self._tile_index(level, a, b)
        z = self.zoom_of_level(lv)
        k = 2.0**z
        return View(z, (a + 0.5) / k, (b + 0.5) / k)

    def view_tile(self, view: View) -> tuple[int, int, int]:
        """``(level, a, b)`` of the tile equal to ``view`` (within ~1e-9 relative)."""
        try:
            level = self.level_of_zoom(view.zoom)
        except ValueError as e:
            raise ValueError(f"view is not a tile of this grid: {e}") from None
        k = 2.0 ** self.zoom_of_level(level)
        idx = []
        for name, c, n in zip(("cy", "cx"), (view.cy, view.cx), self.n_tiles(level), strict=True):
            u = c * k - 0.5
            i = round(u)
            if abs(u - i) > _EPS * max(1.0, abs(u)) or not 0 <= i < n:
                raise ValueError(f"view is not a tile of this grid: {name}={c} at zoom {view.zoom}")
            idx.append(i)
        return level, idx[0], idx[1]

    def tiles_covering(
        self, level: int, y0: float, x0: float, y1: float, x1: float
    ) -> tuple[range, range]:
        """Tile rows and columns of ``level`` intersecting the scene region [y0,y1) x [x0,x1)."""
        lv = self._level(level)
        s = 2.0 ** -self.zoom_of_level(lv)

        def span(lo: float, hi: float, n: int) -> range:
            lo, hi = min(max(lo, 0.0), n * s), min(max(hi, 0.0), n * s)
            if not hi > lo:
                return range(0)
            return range(math.floor(lo / s), math.ceil(hi / s))

        ny, nx = self.n_tiles(lv)
        return span(y0, y1, ny), span(x0, x1, nx)

    def pixel_slice_to_tiles(self, level: int, rows: slice, cols: slice) -> list[TileSlice]:
        """Tiles touched by ``level_array[rows, cols]`` (step-1 slices, numpy semantics) and
        where each one's part comes from and goes to (see :class:`TileSlice`)."""
        h, w = self.level_shape(level)
        rr = _split("rows", rows, h, self.tile)
        cc = _split("cols", cols, w, self.tile)
        return [TileSlice(a, b, ra, cb, oa, ob) for a, ra, oa in rr for b, cb, ob in cc]

    def parent(self, level: int, a: int, b: int) -> tuple[int, int, int]:
        """The tile of the next coarser level (``level + 1``) containing tile (a, b)."""
        lv, a, b = self._tile_index(level, a, b)
        if lv == self.octaves:
            raise ValueError(f"level {lv} is the coarsest level and has no parent")
        return lv + 1, a // 2, b // 2


def _shorter_side(height: int, width: int) -> int:
    return min(_int("height", height, 1), _int("width", width, 1))


def scene_extent(height: int, width: int) -> tuple[float, float]:
    """Scene box ``(ey, ex) = (H/S, W/S)`` of an H x W image, S = min(H, W)."""
    s = _shorter_side(height, width)
    return height / s, width / s


def view_to_source_box(view: View, height: int, width: int) -> tuple[float, float, float, float]:
    """``(r0, c0, r1, c1)``: the view's box in source pixel coordinates (scene * S)."""
    s = _shorter_side(height, width)
    y0, x0, y1, x1 = view.bounds
    return y0 * s, x0 * s, y1 * s, x1 * s


def source_pixels_per_view(zoom: float, height: int, width: int) -> float:
    """Source pixels across a view at ``zoom``: ``S * 2**-zoom``."""
    return _shorter_side(height, width) * 2.0 ** -_finite("zoom", zoom)


def native_zoom(height: int, width: int, resolution: int) -> float:
    """Zoom at which a ``resolution``-pixel view shows one source pixel per pixel:
    ``log2(S / resolution)``."""
    return math.log2(_shorter_side(height, width) / _int("resolution", resolution, 1))


def zoom_offset(field_of_view: float, largest: float) -> float:
    """Collection zoom at which a view spans an image's whole field of view (its shorter side
    in physical units): ``log2(largest / field_of_view)``, >= 0 (see "Collections")."""
    f, f0 = _finite("field_of_view", field_of_view), _finite("largest", largest)
    if not (f > 0 and f0 > 0):
        raise ValueError(f"fields of view must be > 0, got {field_of_view!r}, {largest!r}")
    return math.log2(f0 / f)


def image_zoom(zoom: np.ndarray | float, offset: np.ndarray | float) -> np.ndarray:
    """Collection zooms in the own scene of images with zoom offsets ``offset`` (float64,
    broadcast): ``max(zoom - offset, 0)`` (0 = a view of the image's whole shorter side)."""
    return np.maximum(np.asarray(zoom, dtype=np.float64) - offset, 0.0)


def collection_zoom_range(offset: float, height: int, width: int, resolution: int
                          ) -> tuple[float, float]:
    """Collection zooms an H x W image with zoom offset ``offset`` has real ``resolution``-px
    patches for: ``(offset, offset + native_zoom(H, W, R))`` (empty if the image is smaller
    than R)."""
    o = _finite("offset", offset)
    return o, o + native_zoom(height, width, resolution)


def source_pixel_edges(
    zoom: np.ndarray | float,
    cy: np.ndarray | float,
    cx: np.ndarray | float,
    resolution: int,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Footprint edges of an R = ``resolution`` pixel rendering in source pixel coordinates.

    ``(ye, xe)``, float64 arrays of shape ``[..., R + 1]`` (``...`` = the broadcast shape of
    ``zoom``, ``cy``, ``cx``)::

        e_j = S * (c + 2**-zoom * (j / R - 0.5)),   j = 0..R,   S = min(H, W)

    Rendered pixel j covers ``[e_j, e_{j+1})``: ``e_0`` and ``e_R`` are the view's box
    (:func:`view_to_source_box`), the midpoints are ``S *`` :func:`pixel_centers`.
    """
    r = _int("resolution", resolution, 1)
    s = _shorter_side(height, width)
    z, y, x = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (zoom, cy, cx)))
    for name, v in (("zoom", z), ("cy", y), ("cx", x)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} must be finite, got {v!r}")
    u = np.arange(r + 1, dtype=np.float64) / r - 0.5
    side = np.exp2(-z)[..., None]
    return s * (y[..., None] + side * u), s * (x[..., None] + side * u)


def inside_centre_range(
    zoom: np.ndarray | float, extent: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(y_lo, y_hi, x_lo, x_hi)``: the centres for which a view at ``zoom`` lies inside the
    scene box ``[0, ey) x [0, ex)``: ``c in [s/2, e - s/2]`` per axis, ``s = 2**-zoom``.

    Arrays (float64) of the shape of ``zoom``; the range is empty (``lo > hi``) on an axis
    shorter than the view.
    """
    z = np.asarray(zoom, dtype=np.float64)
    if not np.all(np.isfinite(z)):
        raise ValueError(f"zoom must be finite, got {zoom!r}")
    try:
        ey, ex = (float(e) for e in extent)
    except (TypeError, ValueError):
        raise ValueError(f"extent must be a pair of floats, got {extent!r}") from None
    if not all(math.isfinite(e) and e > 0 for e in (ey, ex)):
        raise ValueError(f"extent must be positive and finite, got {extent!r}")
    half = np.exp2(-z) / 2
    return half, ey - half, half.copy(), ex - half


def random_centres(
    zoom: float, extent: tuple[float, float], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` centres ``(cy, cx)`` drawn uniformly among those that keep a view at ``zoom``
    inside the scene box (:func:`inside_centre_range`); on an axis shorter than the view the
    centre is the middle of the axis."""
    y_lo, y_hi, x_lo, x_hi = (float(v) for v in inside_centre_range(zoom, extent))
    out = []
    for lo, hi, e in ((y_lo, y_hi, extent[0]), (x_lo, x_hi, extent[1])):
        out.append(rng.uniform(lo, hi, n) if hi > lo else np.full(n, float(e) / 2))
    return out[0], out[1]


def raster_shape(extent: tuple[float, float], pixels_per_unit: int) -> tuple[int, int]:
    """Shape of a raster of the scene box at ``pixels_per_unit`` pixels per scene unit (the
    last row/column may stick out of the box): ``ceil(extent * pixels_per_unit)``."""
    p = _int("pixels_per_unit", pixels_per_unit, 1)
    return tuple(max(1, math.ceil(float(e) * p - _EPS)) for e in extent)


def raster_source_edges(
    extent: tuple[float, float], pixels_per_unit: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Footprint edges (source pixel coordinates, as :func:`source_pixel_edges`) of the pixels
    of :func:`raster_shape`: raster pixel i covers scene ``[i, i + 1) / pixels_per_unit``."""
    s = _shorter_side(height, width)
    ny, nx = raster_shape(extent, pixels_per_unit)
    return (s * np.arange(ny + 1, dtype=np.float64) / pixels_per_unit,
            s * np.arange(nx + 1, dtype=np.float64) / pixels_per_unit)


def raster_coords(view: View, resolution: int, pixels_per_unit: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Continuous raster coordinates (raster pixel i's centre at i) of the pixel centres of an
    R = ``resolution`` pixel rendering of ``view`` (what an interpolating zoom samples)."""
    ys, xs = pixel_centers(view, resolution)
    p = _int("pixels_per_unit", pixels_per_unit, 1)
    return ys * p - 0.5, xs * p - 0.5


def clamped_centre(zoom: float, extent: tuple[float, float], cy: float, cx: float
                   ) -> tuple[float, float]:
    """The centre nearest to ``(cy, cx)`` that keeps a view at ``zoom`` inside the scene box
    (the middle of an axis shorter than the view). Views of one point clamped at successive
    zooms still nest: each lies inside the next coarser one."""
    y_lo, y_hi, x_lo, x_hi = (float(v) for v in inside_centre_range(zoom, extent))
    out = []
    for c, lo, hi, e in ((cy, y_lo, y_hi, extent[0]), (cx, x_lo, x_hi, extent[1])):
        out.append(min(max(float(c), lo), hi) if hi >= lo else float(e) / 2)
    return out[0], out[1]


# --- physical placement (napari world coordinates) ------------------------------------------

MAX_OCTAVES = 8
"""The zoom range a scale space spans at most: 8 octaves (256x; the design's limit). Exports
and evaluations refuse more."""


def scene_unit_length(shorter_side: int, pixel_size: float) -> float:
    """Length of one scene unit in physical units: ``S * p`` (the scene unit is the source's
    shorter side S, in pixels of physical size p)."""
    s = _int("shorter_side", shorter_side, 1)
    p = _finite("pixel_size", pixel_size)
    if not p > 0:
        raise ValueError(f"pixel_size must be > 0, got {pixel_size!r}")
    return s * p


def level_world_transform(grid: PyramidGrid, level: int, scene_unit: float,
                          source_pixel: float) -> tuple[float, float]:
    """``(scale, translate)`` placing pixel j of pyramid ``level`` in world coordinates where
    the source image sits with pixel r's centre at ``source_pixel * r`` (napari's convention:
    pixel centres at scale * index + translate)::

        scale     = U * q
        translate = (U * q - p) / 2

    with U = ``scene_unit`` (:func:`scene_unit_length`), q = :meth:`PyramidGrid.pixel_size`
    of the level (scene units) and p = ``source_pixel``. Derivation: level pixel j covers scene
    ``[j q, (j+1) q)``, centre ``(j + 1/2) q``; scene point y is source pixel coordinate
    ``y U / p`` with source pixel r covering ``[r, r+1)``, whose centre is at world
    ``p r``, so world = ``U y - p/2``."""
    u = _finite("scene_unit", scene_unit)
    p = _finite("source_pixel", source_pixel)
    if not (u > 0 and p > 0):
        raise ValueError(f"scene_unit and source_pixel must be > 0, got {scene_unit!r}, "
                         f"{source_pixel!r}")
    scale = u * grid.pixel_size(level)
    return scale, (scale - p) / 2


def reduced_level_transform(scale: float, translate: float, factor: float
                            ) -> tuple[float, float]:
    """``(scale, translate)`` of a level reduced ``factor`` times from one with ``scale`` and
    ``translate`` (pixel centres at scale * index + translate; reduced pixel j covers fine
    pixels ``[j f, (j+1) f)``, centre fine index ``j f + (f - 1)/2``)::

        scale'     = scale * f
        translate' = translate + scale * (f - 1) / 2
    """
    return scale * factor, translate + scale * (factor - 1) / 2


def scene_to_world(y: np.ndarray | float, scene_unit: float, source_pixel: float
                   ) -> np.ndarray:
    """World coordinates of scene coordinates ``y`` (float64) where the source sits with
    pixel r's centre at ``source_pixel * r``: ``U y - p / 2`` (see
    :func:`level_world_transform`); a view of side ``2**-zoom`` spans ``U 2**-zoom`` world
    units."""
    u, p = _finite("scene_unit", scene_unit), _finite("source_pixel", source_pixel)
    return np.asarray(y, dtype=np.float64) * u - p / 2
