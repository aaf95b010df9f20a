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
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["apply_area", "area_matrix"]


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
