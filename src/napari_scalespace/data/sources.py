"""Image sources: a read-only 2-D image with channels, read by regions as float32 in [0, 1].

:func:`open_source` accepts a file path (PNG/JPEG and other Pillow formats; TIFF, OME-TIFF,
SVS; a ``.zarr`` directory, OME-Zarr multiscales included), a numpy, dask or zarr array, a zarr
group, or a list of arrays (a napari multiscale: full resolution first). Nothing is read at
open time beyond headers and, for the formats below whose value range must be estimated, one
strided sample. See :mod:`._formats` for what each format reads lazily.

Pyramids
    A stored pyramid (OME-Zarr datasets, the sub-resolutions of a pyramidal TIFF / SVS /
    NDPI, a napari multiscale list) serves reads of large footprints: :meth:`ImageSource.area`
    (patches, truth tiles, evaluation views, the memory's start) reads from the coarsest
    level whose pixels are at most half the narrowest footprint (level ``k`` pixel =
    ``H / H_k`` by ``W / W_k`` full-resolution pixels), then area-resamples from there, so a
    coarse view of a 100,000-px slide reads a few thousand pixels of a small level, not the
    slide. Tiled levels are read through their native tiles, decoded once into a
    :class:`.tiles.TileCache` (``cache_bytes``, 256 MiB by default) shared by the levels.

Layouts
    ``(H, W)`` gray -> 1 channel; ``(H, W, 3)`` RGB -> 3; ``(H, W, 4)`` RGBA -> 3 channels,
    **composited over white**: ``v = rgb * alpha + (1 - alpha)`` (transparent areas become
    white, like brightfield background or a page; an opaque alpha changes nothing). A gray +
    alpha file (Pillow mode LA) is composited the same way to 1 channel. Leading length-1 axes
    and OME's singleton t/z axes are dropped; any other stack is an error.

Values (``value_range = (lo, hi)``, ``v = clip((x - lo) / (hi - lo), 0, 1)``)
    bool -> (0, 1); uint8 -> (0, 255); uint16 -> (0, 65535); every other numeric dtype (float,
    signed or 32/64-bit integers) -> estimated robustly as the 0.1 and 99.9 percentiles of the
    finite colour values of a strided (nearest-neighbour) sample of at most 1024 x 1024 pixels
    (a nearest sample keeps the per-pixel distribution, which area averaging would narrow),
    taken from the smallest stored pyramid level that still has 1024 pixels on its longer
    side. If the percentiles coincide the sample's min and max are used, and a constant image
    gets ``(x - 0.5, x + 0.5)`` (it reads as 0.5). NaN reads as 0 (lo), +-inf clip to 1 / 0.
    Alpha: bool as is, uint8 / 255, uint16 / 65535, other integers / their maximum, floats
    clipped to [0, 1] (NaN = opaque). Pass ``value_range=`` to :func:`open_source` to override
    (e.g. 12-bit data stored as uint16); renders map back with ``x = lo + v * (hi - lo)``.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._area import apply_area, area_matrix, area_read
from ._formats import open_array, open_levels, open_path, open_zarr
from ._plane import Plane
from .tiles import DEFAULT_BUDGET, TileCache, read_tiled

__all__ = ["ImageSource", "open_source"]

_FIXED_RANGES = {("b", 1): (0.0, 1.0), ("u", 1): (0.0, 255.0), ("u", 2): (0.0, 65535.0)}
_SAMPLE_SIDE = 1024
_STRIP_VALUES = 1 << 24  # values per strip when streaming a whole level (thumbnails)


def _colour_channels(raw: int) -> int:
    return {1: 1, 2: 1, 3: 3, 4: 3}[raw]


class ImageSource:
    """A read-only 2-D image with 1 (gray) or 3 (RGB) channels; see the module docstring.

    Made by :func:`open_source`. ``levels`` are the stored planes, full resolution first
    (lower-resolution pyramid levels serve :meth:`area` and :meth:`thumbnail`);
    ``cache_bytes`` bounds the decoded tiles kept (:mod:`.tiles`).
    """

    def __init__(
        self,
        levels: list[Plane],
        name: str,
        value_range: tuple[float, float] | None = None,
        close: Callable[[], None] | None = None,
        cache_bytes: int = DEFAULT_BUDGET,
    ) -> None:
        if not levels:
            raise ValueError(f"{name}: no image data")
        base = levels[0]
        for lv in levels[1:]:
            if lv.raw_channels != base.raw_channels or lv.dtype != base.dtype:
                raise ValueError(f"{name}: pyramid levels differ in channels or dtype")
            if lv.height > base.height or lv.width > base.width:
                raise ValueError(f"{name}: pyramid levels must not be larger than level 0")
        kind = base.dtype.kind
        if kind not in "biuf":
            raise ValueError(f"{name}: unsupported dtype {base.dtype} (need bool, int or float)")
        self._levels = levels
        self.cache = TileCache(cache_bytes)
        self._name = name
        self._close = close
        self._has_alpha = base.raw_channels in (2, 4)
        self._channels = _colour_channels(base.raw_channels)
        if value_range is None:
            value_range = _FIXED_RANGES.get((kind, base.dtype.itemsize)) or self._estimate_range()
        try:
            lo, hi = (float(v) for v in value_range)
        except (TypeError, ValueError):
            lo = hi = math.nan
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ValueError(
                f"{name}: value_range must be two finite numbers lo < hi, got {value_range!r}"
            )
        self._range = (lo, hi)

    # --- properties -----------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._levels[0].height

    @property
    def width(self) -> int:
        return self._levels[0].width

    @property
    def channels(self) -> int:
        """1 (gray) or 3 (RGB); alpha is composited away."""
        return self._channels

    @property
    def name(self) -> str:
        return self._name

    @property
    def value_range(self) -> tuple[float, float]:
        """``(lo, hi)``: stored value ``x`` reads as ``clip((x - lo) / (hi - lo), 0, 1)``."""
        return self._range

    @property
    def dtype(self) -> np.dtype:
        """The stored dtype."""
        return self._levels[0].dtype

    @property
    def n_levels(self) -> int:
        return len(self._levels)

    def __repr__(self) -> str:
        return (
            f"ImageSource({self._name!r}, {self.height}x{self.width}, channels={self.channels}, "
            f"dtype={self.dtype}, value_range={self._range}, levels={self.n_levels})"
        )

    def close(self) -> None:
        """Release an open file (TIFF); reads afterwards fail."""
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------------

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows ``[r0, r1)`` and columns ``[c0, c1)``: float32 ``[channels, r1-r0, c1-c0]`` in
        [0, 1] (``0 <= r0 <= r1 <= height``, same for columns)."""
        box = []
        for name, v in (("r0", r0), ("r1", r1), ("c0", c0), ("c1", c1)):
            try:
                box.append(operator.index(v))
            except TypeError:
                raise ValueError(f"{self._name}: {name} must be an integer, got {v!r}") from None
        r0, r1, c0, c1 = box
        if not (0 <= r0 <= r1 <= self.height and 0 <= c0 <= c1 <= self.width):
            raise ValueError(
                f"{self._name}: read box rows [{r0}, {r1}) cols [{c0}, {c1}) is outside the "
                f"{self.height}x{self.width} image"
            )
        return self._read_level(0, r0, r1, c0, c1)

    def _read_level(self, level: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        raw = read_tiled(self._levels[level], level, self.cache, r0, r1, c0, c1)
        return self._normalise(raw)

    def level_shape(self, level: int) -> tuple[int, int]:
        """``(height, width)`` of stored level ``level`` (0 = full resolution)."""
        return self._levels[level].height, self._levels[level].width

    def level_for(self, footprint: float) -> int:
        """The coarsest stored level whose pixels are at most ``footprint / 2`` full-resolution
        pixels on both axes (0 if none is)."""
        best = 0
        for k, lv in enumerate(self._levels[1:], 1):
            if max(self.height / lv.height, self.width / lv.width) <= footprint / 2:
                best = k
        return best

    def area(self, ye: np.ndarray, xe: np.ndarray) -> np.ndarray:
        """Means over the footprints ``[ye_j, ye_{j+1}) x [xe_k, xe_{k+1})`` (full-resolution
        pixels, increasing; outside the image edge-replicated): float32 ``[channels, Ry, Rx]``
        in [0, 1], read from :meth:`level_for` the narrowest footprint (see the module
        docstring) in strips of bounded size."""
        ye, xe = np.asarray(ye, np.float64), np.asarray(xe, np.float64)
        level = self.level_for(min(np.diff(ye).min(), np.diff(xe).min()))
        h, w = self.level_shape(level)
        out = area_read(lambda r0, r1, c0, c1: self._read_level(level, r0, r1, c0, c1),
                        h, w, ye * (h / self.height), xe * (w / self.width))
        return np.clip(out, 0.0, 1.0, out=out)

    def _normalise(self, raw: np.ndarray) -> np.ndarray:
        """Raw ``(h, w, raw channels)`` -> float32 ``[channels, h, w]`` in [0, 1]."""
        colour = raw[..., : self._channels].transpose(2, 0, 1)
        out = np.empty(colour.shape, dtype=np.float32)
        lo, hi = self._range
        if lo == 0.0:
            np.multiply(colour, np.float32(1.0 / hi), out=out, casting="unsafe")
        else:
            np.subtract(colour, lo, out=out, casting="unsafe")
            out *= np.float32(1.0 / (hi - lo))
        if colour.dtype.kind == "f":
            np.nan_to_num(out, copy=False, nan=0.0)
        np.clip(out, 0.0, 1.0, out=out)
        if self._has_alpha:
            a = _alpha(raw[..., -1])[None]
            out *= a
            out += 1.0 - a
        return out

    def thumbnail(self, max_side: int) -> np.ndarray:
        """The image area-averaged to fit ``max_side`` (never up-sampled): float32
        ``[channels, h, w]`` with ``max(h, w) = min(max_side, max(H, W))`` and the aspect
        ratio kept (sides rounded, >= 1). Reads the smallest stored pyramid level with at
        least ``max_side`` pixels on its longer side, streaming it in strips of rows."""
        try:
            m = operator.index(max_side)
        except TypeError:
            raise ValueError(f"max_side must be an integer, got {max_side!r}") from None
        if m < 1:
            raise ValueError(f"max_side must be >= 1, got {m}")
        longer = max(self.height, self.width)
        f = max(longer / m, 1.0)
        h, w = max(1, round(self.height / f)), max(1, round(self.width / f))
        level = self._level_for(m)
        lh, lw = self._levels[level].height, self._levels[level].width
        _, _, wy = area_matrix(np.linspace(0.0, lh, h + 1), lh, np.float64)
        _, _, wx = area_matrix(np.linspace(0.0, lw, w + 1), lw, np.float64)
        out = np.zeros((self.channels, h, w), dtype=np.float64)
        step = max(1, _STRIP_VALUES // (lw * max(1, self._levels[level].raw_channels)))
        for a in range(0, lh, step):
            b = min(lh, a + step)
            strip = self._read_level(level, a, b, 0, lw)
            out += apply_area(wy[:, a:b], strip, wx)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def _level_for(self, side: int) -> int:
        """The smallest level whose longer side is >= ``side`` (level 0 if none is)."""
        sides = [max(lv.height, lv.width) for lv in self._levels]
        big_enough = [i for i, n in enumerate(sides) if n >= side]
        return min(big_enough, key=sides.__getitem__) if big_enough else 0

    def _estimate_range(self) -> tuple[float, float]:
        plane = self._levels[self._level_for(_SAMPLE_SIDE)]
        k = max(1, math.ceil(max(plane.height, plane.width) / _SAMPLE_SIDE))
        sample = plane.read(0, plane.height, 0, plane.width, step=k)[..., : self._channels]
        vals = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
        if vals.size == 0:
            where = "" if k == 1 else f" in a {sample.shape[0]}x{sample.shape[1]} sample"
            raise ValueError(f"{self._name}: image is all NaN (no finite value{where})")
        vals = vals.astype(np.float64)
        lo, hi = np.percentile(vals, [0.1, 99.9])
        if not hi > lo:
            lo, hi = float(vals.min()), float(vals.max())
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5
        return float(lo), float(hi)


def _alpha(a: np.ndarray) -> np.ndarray:
    """Alpha as float32 in [0, 1] (see the module docstring)."""
    if a.dtype.kind == "b":
        return a.astype(np.float32)
    if a.dtype.kind in "iu":
        top = float(np.iinfo(a.dtype).max)  # 255 for uint8, 65535 for uint16
        return np.clip(a.astype(np.float32) / np.float32(top), 0.0, 1.0)
    return np.clip(np.nan_to_num(a.astype(np.float32), nan=1.0), 0.0, 1.0)


def open_source(
    obj: Any, *, name: str | None = None, value_range: tuple[float, float] | None = None
) -> ImageSource:
    """Open ``obj`` lazily as an :class:`ImageSource` (see the module docstring).

    ``obj``: a path (str or os.PathLike), a numpy / dask / zarr array (or anything with
    ``shape``, ``dtype`` and numpy slicing), a zarr group, a list or tuple of arrays (one
    multiscale image, full resolution first), or an ImageSource (returned as is; then ``name``
    and ``value_range`` must be None). ``name``
    defaults to the file name or ``"array"``. Raises ValueError (one line naming the file or
    argument) for unreadable files and unsupported layouts.
    """
    if isinstance(obj, ImageSource):
        if name is not None or value_range is not None:
            raise ValueError(f"{obj.name}: already open; name and value_range cannot change")
        return obj
    close = None
    if isinstance(obj, str | os.PathLike):
        label = name or os.path.basename(os.fspath(obj).rstrip("/\\")) or os.fspath(obj)
        levels, close = open_path(obj)
    elif isinstance(obj, list | tuple):
        if not obj:
            raise ValueError("obj: empty list of pyramid levels")
        label = name or "array"
        levels = open_levels(obj, label)
    elif _is_zarr(obj):
        label = name or "zarr"
        levels = open_zarr(obj, label)
    elif hasattr(obj, "shape") and hasattr(obj, "dtype") and hasattr(obj, "__getitem__"):
        label = name or "array"
        levels = [open_array(obj, label)]
    else:
        raise ValueError(
            f"obj: cannot open {type(obj).__name__} as an image "
            "(expected a path, an array, a zarr group or a list of arrays)"
        )
    try:
        return ImageSource(levels, label, value_range=value_range, close=close)
    except Exception:
        if close is not None:
            close()
        raise


def _is_zarr(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("zarr.")
