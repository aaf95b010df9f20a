"""Summed-area table of a source: exact area averages of any box in O(1) per output pixel.

The source is piecewise constant (pixel (r, c) covers ``[r, r+1) x [c, c+1)``), so its
integral ``F(y, x) = ∫_0^y ∫_0^x v`` is, inside each pixel cell, the *bilinear interpolation*
of the summed-area table ``T[i, j] = sum_{r<i, c<j} v[r, c]`` (shape ``[H+1, W+1, C]``)::

    F(i + a, j + b) = (1-a)(1-b) T[i,j] + (1-a) b T[i,j+1] + a (1-b) T[i+1,j] + a b T[i+1,j+1]

The mean over a footprint ``[y0, y1) x [x0, x1)`` is then
``(F(y1,x1) - F(y1,x0) - F(y0,x1) + F(y0,x0)) / ((y1-y0)(x1-x0))`` -- the same value as the
separable overlap weights of :mod:`.patches` (up to float64 round-off, ~1e-16 * H * W / area),
at a cost independent of how many source pixels a footprint covers. The table is float64
and costs ``8 * C * (H+1) * (W+1)`` bytes; it is built once by streaming the source in strips.
It is stored channels-last so that one gather fetches a corner's channels together (the
gathers are memory-latency bound).

Boxes must lie inside the image (edges within ``[0, H] x [0, W]``, up to 1e-6 px of round-off,
which is clamped); for edge replication use :func:`.patches.cut_patch`.
"""

from __future__ import annotations

import numpy as np

from .sources import ImageSource

__all__ = ["IntegralImage"]

_TOLERANCE = 1e-6  # source pixels of round-off clamped silently at the image border
_STRIP_VALUES = 1 << 23


class IntegralImage:
    """Summed-area table ``[H+1, W+1, C]`` (float64) of an image in [0, 1]."""

    def __init__(self, table: np.ndarray) -> None:
        if table.ndim != 3 or table.shape[0] < 2 or table.shape[1] < 2:
            raise ValueError(f"table must be [H+1, W+1, C] with H, W >= 1, got {table.shape}")
        self.table = np.ascontiguousarray(table, dtype=np.float64)

    @staticmethod
    def nbytes_for(source: ImageSource) -> int:
        """Bytes the table of ``source`` takes."""
        return 8 * source.channels * (source.height + 1) * (source.width + 1)

    @classmethod
    def from_source(cls, source: ImageSource) -> IntegralImage:
        """Build the table by reading ``source`` in strips of rows."""
        h, w, c = source.height, source.width, source.channels
        table = np.zeros((h + 1, w + 1, c), dtype=np.float64)
        step = max(1, _STRIP_VALUES // (w * c))
        for a in range(0, h, step):
            b = min(h, a + step)
            strip = source.read(a, b, 0, w).transpose(1, 2, 0).astype(np.float64)
            np.cumsum(strip, axis=1, out=strip)
            np.cumsum(strip, axis=0, out=strip)
            np.add(strip, table[a, 1:], out=table[a + 1 : b + 1, 1:])
        return cls(table)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the image."""
        return self.table.shape[0] - 1, self.table.shape[1] - 1

    def box_means(self, ye: np.ndarray, xe: np.ndarray) -> np.ndarray:
        """Means over the footprints ``[ye[b, j], ye[b, j+1]) x [xe[b, k], xe[b, k+1])``.

        ``ye`` [B, Ry + 1] and ``xe`` [B, Rx + 1] are increasing edges in source pixels
        (:func:`geometry.source_pixel_edges`); returns float64 ``[B, C, Ry, Rx]``.
        """
        h, w = self.shape
        ye, xe = np.asarray(ye, dtype=np.float64), np.asarray(xe, dtype=np.float64)
        iy, fy = self._cells(ye, h, "ye")
        ix, fx = self._cells(xe, w, "xe")
        fy, fx = fy[:, :, None, None], fx[:, None, :, None]
        row = w + 1
        flat = self.table.reshape(-1, self.table.shape[2])
        idx = iy[:, :, None] * row + ix[:, None, :]  # [B, Ry+1, Rx+1] corner (iy, ix)
        top = flat.take(idx, axis=0)
        top += fx * (flat.take(idx + 1, axis=0) - top)
        bottom = flat.take(idx + row, axis=0)
        bottom += fx * (flat.take(idx + row + 1, axis=0) - bottom)
        f = top + fy * (bottom - top)  # F at the edge grid, [B, Ry+1, Rx+1, C]
        s = f[:, 1:, 1:] - f[:, 1:, :-1] - f[:, :-1, 1:] + f[:, :-1, :-1]
        area = np.diff(ye, axis=1)[:, :, None, None] * np.diff(xe, axis=1)[:, None, :, None]
        return (s / area).transpose(0, 3, 1, 2)

    @staticmethod
    def _cells(e: np.ndarray, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Cell index i in [0, n-1] and fraction in [0, 1] of each edge (clamped round-off)."""
        if e.ndim != 2 or e.shape[1] < 2:
            raise ValueError(f"{name} must be [B, R + 1] with R >= 1, got shape {e.shape}")
        if not np.all(np.diff(e, axis=1) > 0):
            raise ValueError(f"{name} must be strictly increasing along each row")
        if e.min() < -_TOLERANCE or e.max() > n + _TOLERANCE:
            raise ValueError(
                f"{name}: footprints reach [{e.min():.6g}, {e.max():.6g}], outside the image "
                f"[0, {n}]; use cut_patch for edge replication"
            )
        e = np.clip(e, 0.0, float(n))
        i = np.minimum(np.floor(e).astype(np.intp), n - 1)
        return i, e - i
