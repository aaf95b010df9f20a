"""Exact area (box-filter) resampling along one axis, as a sparse weight matrix.

A source axis of ``n`` pixels is piecewise constant: pixel ``p`` covers ``[p, p + 1)``. An
output sample with footprint ``[a, b)`` (in source pixel coordinates) is the mean of the
source over the footprint::

    out = sum_p W[p] * x[p],   W[p] = |[a, b) ∩ [p, p + 1)| / (b - a)

(fractional overlaps weighted exactly; the weights sum to 1). For footprints shorter than a
pixel this degenerates to piecewise-constant (nearest) sampling: a footprint inside pixel p
has ``W[p] = 1``. Parts of a footprint outside ``[0, n)`` are *edge-replicated*: their weight
goes to pixel 0 or n - 1. A degenerate footprint (``b <= a``) samples the pixel holding ``a``.

Applied separably, ``patch = Wy @ crop @ Wx^T`` per channel is the exact 2-D area average.
The matrices are sparse (each row touches ``ceil(b - a) + 1`` pixels at most) so applying one
costs O(pixels read), not O(R * pixels read).

:func:`area_read` applies them to an image read by regions, in strips of output rows that
read at most ``STRIP_BYTES`` of source at a time (any output size in bounded memory); where
the footprints are whole pixels on the source's grid (integer edges, one integer spacing,
inside the image) it copies (spacing 1) or block-averages instead, which gives the same
values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

__all__ = ["STRIP_BYTES", "apply_area", "area_matrix", "area_read"]

STRIP_BYTES = 64 << 20
"""Source bytes (float32) :func:`area_read` reads at a time."""


def area_matrix(
    edges: np.ndarray, size: int, dtype: type[np.floating] = np.float32
) -> tuple[int, int, sp.csr_array]:
    """Weights of the footprints ``[edges[j], edges[j+1])`` over an axis of ``size`` pixels.

    Returns ``(lo, hi, W)``: ``W`` is a CSR matrix of shape ``[len(edges) - 1, hi - lo]`` such
    that ``out = W @ x[lo:hi]`` (``[lo, hi)`` = the source pixels the footprints touch, clamped
    to the axis; never empty). See the module docstring for the formula.
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or size < 1:
        raise ValueError(f"need 1-D edges (>= 2) and size >= 1, got {e.shape} and {size}")
    a, b = e[:-1], e[1:]
    first = np.floor(a).astype(np.int64)
    count = np.maximum(np.ceil(b).astype(np.int64) - first, 1)
    rows = np.repeat(np.arange(a.size), count)
    starts = np.repeat(np.cumsum(count) - count, count)
    pix = np.repeat(first, count) + (np.arange(rows.size) - starts)
    lo_r, hi_r, len_r = a[rows], b[rows], (b - a)[rows]
    overlap = np.minimum(hi_r, pix + 1.0) - np.maximum(lo_r, pix.astype(np.float64))
    degenerate = len_r <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(degenerate, (pix == np.floor(lo_r)).astype(np.float64), overlap / len_r)
    w = np.clip(w, 0.0, None)
    col = np.clip(pix, 0, size - 1)
    lo = int(col.min())
    hi = int(col.max()) + 1
    mat = sp.csr_array((w.astype(dtype), (rows, col - lo)), shape=(a.size, hi - lo))
    mat.sum_duplicates()  # edge replication folds several columns onto pixel 0 / n - 1
    mat.eliminate_zeros()
    return lo, hi, mat


def apply_area(wy: sp.csr_array, x: np.ndarray, wx: sp.csr_array) -> np.ndarray:
    """``wy @ x[c] @ wx^T`` for each channel c of ``x`` ([C, n_rows, n_cols]) -> [C, R_y, R_x]."""
    out = np.empty((x.shape[0], wy.shape[0], wx.shape[0]), dtype=np.result_type(x, wy.dtype))
    wxt = wx.T.tocsc()
    for c in range(x.shape[0]):
        rows = wy @ x[c]  # [R_y, n_cols]: the big pass, O(pixels read) with the sparse rows
        out[c] = rows @ wxt  # [R_y, R_x]
    return out


def _whole_pixels(edges: np.ndarray, size: int) -> tuple[int, int] | None:
    """``(first, step)`` where ``edges`` are integers ``first + j * step`` (``step >= 1``)
    inside ``[0, size]``, else ``None``."""
    r = np.round(edges)
    if np.abs(edges - r).max() > 1e-9 * max(1.0, float(np.abs(r).max())):
        return None
    d = np.diff(r)
    if d[0] < 1 or (d != d[0]).any() or r[0] < 0 or r[-1] > size:
        return None
    return int(r[0]), int(d[0])


def area_read(read: Callable[[int, int, int, int], np.ndarray], height: int, width: int,
              ye: np.ndarray, xe: np.ndarray) -> np.ndarray:
    """Area means of an image of ``height x width`` pixels over the footprints
    ``[ye_j, ye_{j+1}) x [xe_k, xe_{k+1})`` (source pixels, increasing; parts outside the
    image edge-replicated): float32 ``[C, Ry, Rx]``. ``read(r0, r1, c0, c1)`` returns the
    source's rows ``[r0, r1)`` and columns ``[c0, c1)`` as float32 ``[C, h, w]``."""
    ye, xe = np.asarray(ye, np.float64), np.asarray(xe, np.float64)
    ny, nx = ye.size - 1, xe.size - 1
    grid_y, grid_x = _whole_pixels(ye, height), _whole_pixels(xe, width)
    if grid_y is not None and grid_x is not None:
        (y0, fy), (x0, fx) = grid_y, grid_x
        per = max(1, STRIP_BYTES // (4 * fy * nx * fx * 3))
        parts = []
        for j in range(0, ny, per):
            k = min(ny, j + per)
            crop = read(y0 + j * fy, y0 + k * fy, x0, x0 + nx * fx)
            if fy > 1 or fx > 1:
                c = crop.shape[0]
                crop = crop.reshape(c, k - j, fy, nx, fx).mean(axis=(2, 4), dtype=np.float32)
            parts.append(crop)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
    lo_y, _, wy = area_matrix(ye, height)
    lo_x, hi_x, wx = area_matrix(xe, width)
    rows_per_out = max(1.0, (ye[-1] - ye[0]) / ny)
    per = max(1, int(STRIP_BYTES // (4 * 3 * (hi_x - lo_x) * (rows_per_out + 2))))
    parts = []
    for j in range(0, ny, per):
        block = wy[j:min(ny, j + per)]
        cols = block.indices
        a, b = (int(cols.min()), int(cols.max()) + 1) if cols.size else (0, 1)
        crop = read(lo_y + a, lo_y + b, lo_x, hi_x)
        parts.append(apply_area(block[:, a:b], crop, wx))
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
