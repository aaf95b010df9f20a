"""Spatial memory: learnable feature grids in scene coordinates, read band-limited.

One scene with known positions must be reproduced where data exists, but convolutions are
shared across space and the Fourier features are a few hundred global sinusoids: a detail
that belongs to one place has nowhere to live. The memory gives it a place:

- levels ``k = 0 .. K-1``, level k a grid ``M_k`` of ``C`` channels with ``g 2^k`` cells per
  scene unit (cell n's value sits at its centre ``(n + 1/2) / (g 2^k)``), covering the scene's
  extent;
- each grid is read as the **bilinear surface** through its cell centres (constant beyond the
  outer centres), **averaged over each canvas sample's footprint**: sample j of a canvas is the
  mean of the surface over its pixel, the square of side ``s = 2^-l / rate`` around it. The
  read is therefore an exact area filter: rendering a canvas at twice the rate and averaging
  2 x 2 blocks gives the same values (up to round-off), so a level much finer than the
  footprint is averaged, never point-sampled, and zooming never aliases it; a level coarser
  than the footprint is read as its smooth bilinear surface.

The footprint average has a closed form. In one dimension, with ``t`` in cell units measured
from the first centre, the bilinear curve's antiderivative is

``A(t) = Q[k] + phi M[k] + phi^2 / 2 (M[k+1] - M[k])``, ``k = floor(t)``, ``phi = t - k``,

with ``Q[k] = sum_{n<k} (M[n] + M[n+1]) / 2`` (a cumulative sum of trapezoids) and the constant
extension adding ``min(t, 0) M[0] + max(t - (N-1), 0) M[N-1]``. The mean over ``[t_a, t_b]``
is ``(A(t_b) - A(t_a)) / (t_b - t_a)``. The surface is a tensor product, so the 2-D mean over a
pixel is the 1-D operator along y (each column), then along x (each resulting row), then a
difference of neighbouring edges in both directions. Per view this costs ``C (S + 1) N``
operations for an ``S``-sample canvas and an ``N``-cell level (a cumulative sum per row of the
y-integrated grid), far below one synthesis layer. It runs in float64: the antiderivative grows
with ``N`` while a deep zoom takes differences of nearly equal values.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..geometry import canvas_edges, grid_position


def _prefix(grid: torch.Tensor, dim: int) -> torch.Tensor:
    """``Q[k] = sum_{n<k} (M[n] + M[n+1]) / 2`` along ``dim`` (``Q[0] = 0``)."""
    n = grid.shape[dim]
    trapezoids = (grid.narrow(dim, 0, n - 1) + grid.narrow(dim, 1, n - 1)) * 0.5
    return torch.cat([torch.zeros_like(grid.narrow(dim, 0, 1)), trapezoids.cumsum(dim)], dim)


def _cell(t: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                             torch.Tensor, torch.Tensor]:
    """For positions ``t`` on an ``n``-cell curve: the interval ``k``, ``k + 1``, the fraction
    ``phi`` in it, and the distances below the first and above the last centre."""
    tc = t.clamp(0, n - 1)
    k = tc.floor().clamp(max=max(n - 2, 0))
    phi = tc - k
    k = k.long()
    return k, (k + 1).clamp(max=n - 1), phi, t.clamp(max=0), (t - (n - 1)).clamp(min=0)


def _antiderivative_rows(grid: torch.Tensor, q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``A(t)`` along dimension 1 of a shared ``grid [C, N, X]`` with prefix ``q`` (from
    :func:`_prefix`, or any table that differs from it by a function of x alone) at positions
    ``t [B, P]``: ``[C, B, P, X]``. Rows are picked with ``index_select`` (its backward is one
    ``index_add``, not a scatter into a per-view copy of the grid)."""
    C, n, X = grid.shape
    B, P = t.shape
    k, k1, phi, below, above = (v.reshape(-1) for v in _cell(t, n))
    m0 = grid.index_select(1, k)
    m1 = grid.index_select(1, k1)
    phi, below, above = (v[None, :, None] for v in (phi, below, above))
    out = (q.index_select(1, k) + phi * m0 + 0.5 * phi * phi * (m1 - m0)
           + below * grid[:, :1] + above * grid[:, -1:])
    return out.reshape(C, B, P, X)


def _antiderivative_last(curves: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``A(t)`` along the last dimension of per-view ``curves [C, B, P, N]`` at positions
    ``t [B, Q]``: ``[C, B, P, Q]``."""
    C, B, P, n = curves.shape
    q = _prefix(curves, -1)
    k, k1, phi, below, above = _cell(t, n)
    shape = (C, B, P, t.shape[1])
    idx, idx1 = (i[None, :, None].expand(shape) for i in (k, k1))
    m0 = curves.gather(-1, idx)
    m1 = curves.gather(-1, idx1)
    phi, below, above = (v[None, :, None] for v in (phi, below, above))
    return (q.gather(-1, idx) + phi * m0 + 0.5 * phi * phi * (m1 - m0)
            + below * curves[..., :1] + above * curves[..., -1:])


def _window(lo_t: float, hi_t: float, n: int) -> tuple[int, int]:
    """The cells ``[lo, hi)`` of an ``n``-cell curve that positions in ``[lo_t, hi_t]`` read:
    the intervals they fall in, at least two cells. Positions before ``lo`` or after
    ``hi - 1`` occur only when ``lo = 0`` or ``hi = n`` (the constant extension then applies as
    on the whole curve), and the antiderivative on the window differs from the whole curve's
    by a constant, which the differences at pixel edges cancel."""
    lo = min(max(math.floor(lo_t), 0), max(n - 2, 0))
    hi = max(min(math.ceil(hi_t) + 1, n), min(lo + 2, n))
    return lo, hi


def footprint_mean(grid: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor,
                   tables: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean of the bilinear surface through ``grid`` (``[C, Ny, Nx]``, values at cell centres,
    shared by the batch) over the pixels of a batch of canvases.

    ``ty``, ``tx``: ``[B, S + 1]`` pixel edges in cell units measured from the first centre
    (increasing). Returns ``[B, C, S_y, S_x]``: pixel (i, j) is the mean over
    ``[ty_i, ty_{i+1}] x [tx_j, tx_{j+1}]``. Only the window of cells the batch reads is
    touched (a zoomed-in view reads a few cells of a fine level, not the whole grid).
    ``tables``: the whole grid in float64 and its prefix along y (:class:`MemoryTables`), made
    once where the grid does not change (rendering); a window of them then serves, since the
    prefix of a window differs from the whole one's by a function of x, which the differences
    at pixel edges cancel."""
    y0, y1 = _window(ty.min().item(), ty.max().item(), grid.shape[1])
    x0, x1 = _window(tx.min().item(), tx.max().item(), grid.shape[2])
    if tables is None:
        window = grid[:, y0:y1, x0:x1].to(torch.float64)  # only the window, in float64
        q = _prefix(window, 1)
    else:
        window, q = (v[:, y0:y1, x0:x1] for v in tables)
    # the column integrals over each pixel row (differences first: the prefix's large values
    # cancel before they meet a small footprint), then their antiderivative along x
    ay = _antiderivative_rows(window, q, ty - y0).diff(dim=2)  # [C, B, Sy, nx]
    d = _antiderivative_last(ay, tx - x0).diff(dim=-1)  # [C, B, Sy, Sx]
    area = ty.diff(dim=-1)[:, :, None] * tx.diff(dim=-1)[:, None, :]
    return (d / area).transpose(0, 1)


class MemoryTables:
    """Every level's grid in float64 and its prefix along y, made once for rendering (the grids
    do not change there); :meth:`read` reads all levels from them: on the CPU with one compiled
    call per level and view (:mod:`._memory_kernel`), elsewhere with :func:`footprint_mean`
    on windows of them."""

    def __init__(self, grids: list[torch.Tensor], cells: list[int]) -> None:
        with torch.inference_mode(False), torch.no_grad():
            self.levels = [(g64, _prefix(g64, 1)) for g64 in
                           (g.detach().to(torch.float64) for g in grids)]
        self.cells = list(cells)
        self.kernel = _kernel() if self.levels[0][0].device.type == "cpu" else None

    def read(self, wy: torch.Tensor, wx: torch.Tensor, channels: int | None = None
             ) -> torch.Tensor:
        """The sum over levels of :func:`footprint_mean` for pixel edges at world positions
        ``wy, wx [B, S + 1]`` (float64): ``[B, C, S_y, S_x]``."""
        if self.kernel is not None:
            return self._read_compiled(wy, wx, channels)
        out = None
        for g, (grid, q) in zip(self.cells, self.levels, strict=True):
            grid, q = grid[:channels], q[:channels]
            v = footprint_mean(grid, grid_position(wy, g), grid_position(wx, g), (grid, q))
            out = v if out is None else out + v
        return out

    def _read_compiled(self, wy: torch.Tensor, wx: torch.Tensor, channels: int | None
                       ) -> torch.Tensor:
        wy, wx = wy.numpy(), wx.numpy()
        C = self.levels[0][0].shape[0] if channels is None else channels
        out = np.zeros((wy.shape[0], C, wy.shape[1] - 1, wx.shape[1] - 1))
        for g, (grid, q) in zip(self.cells, self.levels, strict=True):
            grid, q = grid[:C].numpy(), q[:C].numpy()
            for b in range(wy.shape[0]):
                ty, tx = grid_position(wy[b], g), grid_position(wx[b], g)
                x0, x1 = _window(float(tx.min()), float(tx.max()), grid.shape[2])
                self.kernel(grid, q, ty, tx, x0, x1, out[b])
        return torch.from_numpy(out)


def _kernel():
    """The compiled read (:func:`._memory_kernel.read_level`), or ``None`` without numba."""
    try:
        from ._memory_kernel import read_level
    except ImportError:  # numba missing or broken: the torch form serves
        return None
    return read_level


def warm_up() -> bool:
    """Compile the read now (the set-up script calls this, so that the first render does not
    wait); whether it is available."""
    kernel = _kernel()
    if kernel is None:
        return False
    out = np.zeros((1, 1, 1))
    kernel(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.array([0.0, 1.0]),
           np.array([0.0, 1.0]), 0, 2, out)
    return True


def spread(wx: torch.Tensor) -> bool:
    """Whether a batch's views (pixel edges ``wx [B, S + 1]`` along x, world units) are so far
    apart that reading them one by one costs less than reading them together: a read's work
    grows with (views) x (the columns of the window they share), and that window spans them
    all, so together costs ``B * union`` against ``sum(own)`` one by one (taken when under half,
    as each read has a fixed cost too)."""
    if wx.shape[0] < 2:
        return False
    own = (wx[:, -1] - wx[:, 0]).sum()
    union = wx[:, -1].max() - wx[:, 0].min()
    return bool(own < 0.5 * wx.shape[0] * union)


MIN_PIXEL = 1e-9
"""The narrowest pixel the memory reads, in cells of its coarsest level (float64 edges resolve
it to about 1e-4 of its width)."""


def _stamp(grid: torch.Tensor) -> tuple:
    """What identifies a grid's contents: its storage and version counter, or for an inference
    tensor (a model built under ``torch.inference_mode``, which has no version counter) its
    storage and two sums of its values."""
    if grid.is_inference():
        return grid.data_ptr(), grid.dtype, float(grid.sum()), float(grid.abs().sum())
    return grid.data_ptr(), grid.dtype, grid.device, grid._version


def level_shape(extent: tuple[float, float], cells_per_unit: float) -> tuple[int, int]:
    """Cells ``(Ny, Nx)`` of a level with ``cells_per_unit`` cells per scene unit covering a
    scene of ``extent`` (y, x) scene units."""
    return tuple(max(2, math.ceil(e * cells_per_unit - 1e-9)) for e in extent)


class SpatialMemory(nn.Module):
    """``levels`` grids of ``channels`` channels; level k has ``cells * 2**k`` cells per scene
    unit over the scene's ``extent``. ``forward(rate, margin, zoom, cy, cx)`` reads every
    level over the pixels of a batch of canvases (sample rate ``rate`` per view side, ``margin``
    samples outside the view per side) and returns their sum, ``[B, channels, S, S]``."""

    def __init__(self, channels: int, levels: int, cells: int,
                 extent: tuple[float, float] = (1.0, 1.0)) -> None:
        super().__init__()
        self.channels, self.cells, self.extent = channels, cells, tuple(extent)
        self.grids = nn.ParameterList(
            nn.Parameter(torch.zeros(channels, *level_shape(self.extent, cells * 2**k)))
            for k in range(levels))
        self._tables: tuple | None = None  # (grid versions, MemoryTables): rendering's

    @property
    def levels(self) -> int:
        return len(self.grids)

    def cells_per_unit(self, k: int) -> int:
        return self.cells * 2**k

    def forward(self, rate: int, margin: int, zoom: torch.Tensor, cy: torch.Tensor,
                cx: torch.Tensor, dtype: torch.dtype = torch.float32,
                channels: int | None = None) -> torch.Tensor:
        """The sum of every level read over the canvas pixels (``channels``: only the first
        ones)."""
        e = canvas_edges(rate, margin, dtype=torch.float64, device=zoom.device)
        # a pixel narrower than MIN_PIXEL of a coarsest cell is read as that wide: float64 edges
        # cannot resolve it (past zoom ~30 the memory holds still, a flat colour long before)
        side = torch.exp2(-zoom.to(torch.float64)).clamp(min=rate * MIN_PIXEL / self.cells)
        side = side[:, None]
        wy = cy.to(torch.float64)[:, None] + side * e  # [B, S + 1] world
        wx = cx.to(torch.float64)[:, None] + side * e
        return self.read(wy, wx, channels).to(dtype)

    def read(self, wy: torch.Tensor, wx: torch.Tensor, channels: int | None = None
             ) -> torch.Tensor:
        """Every level summed over the pixels with world edges ``wy, wx [B, S + 1]`` (float64).
        Where no gradient is wanted, from the stored tables, and views far apart
        (:func:`spread`) one by one."""
        tables = self.tables()
        if tables is not None:
            if spread(wx):
                return torch.cat([tables.read(wy[i:i + 1], wx[i:i + 1], channels)
                                  for i in range(wy.shape[0])])
            return tables.read(wy, wx, channels)
        out = None
        for k, grid in enumerate(self.grids):
            g = self.cells_per_unit(k)
            v = footprint_mean(grid[:channels], grid_position(wy, g), grid_position(wx, g))
            out = v if out is None else out + v
        return out

    def tables(self) -> MemoryTables | None:
        """The grids' :class:`MemoryTables`, kept while no grid changes (:func:`_stamp`: an
        optimiser step or a loaded checkpoint makes new ones), where no gradient is wanted
        (rendering); ``None`` where one is (training)."""
        if torch.is_grad_enabled() and any(g.requires_grad for g in self.grids):
            return None
        key = tuple(_stamp(g) for g in self.grids)
        if self._tables is None or self._tables[0] != key:
            self._tables = (key, MemoryTables(list(self.grids),
                                              [self.cells_per_unit(k)
                                               for k in range(self.levels)]))
        return self._tables[1]

    @torch.no_grad()
    def init_from(self, images: list[torch.Tensor], iterations: int = 12) -> None:
        """Start from an image pyramid: ``images[k]`` (``[c, Ny_k, Nx_k]``, the image averaged
        over level k's cells) goes into the first ``c`` channels as a Laplacian pyramid: level
        0 holds the coarsest image, level k what level k's image adds to the levels below it.

        The read averages the bilinear surface over a cell, which blurs the cell values (in one
        dimension ``(M[n-1] + 6 M[n] + M[n+1]) / 8`` inside the grid), so each level is solved
        for rather than copied: ``iterations`` Richardson steps ``M <- M + (r - read(M))`` make
        the read over level k's own cells equal its residual ``r`` (the operator's eigenvalues
        lie in [1/4, 1] in 2-D, so the error shrinks at least 4x every step). The memory's read
        then starts at the image, sharp at every level's resolution, and the generator has the
        layout from the first step; the remaining channels start at zero."""
        for k, (grid, image) in enumerate(zip(self.grids, images, strict=True)):
            c = min(self.channels, image.shape[0])
            if tuple(image.shape[1:]) != tuple(grid.shape[1:]):
                raise ValueError(f"memory level {k}: image of {tuple(image.shape[1:])} cells, "
                                 f"the grid has {tuple(grid.shape[1:])}")
            image = image.to(device=grid.device, dtype=torch.float64)
            g = self.cells_per_unit(k)
            ey, ex = ((torch.arange(n + 1, dtype=torch.float64, device=grid.device) / g)[None]
                      for n in grid.shape[1:])

            below = torch.zeros_like(image[:c])
            for j in range(k):
                below += self._read_cells(self.grids[j][:c].to(torch.float64), j, ey, ex)
            residual = image[:c] - below
            level = residual.clone()
            for _ in range(iterations):
                level += residual - self._read_cells(level, k, ey, ex)
            grid.zero_()
            grid[:c] = level.to(grid)

    def _read_cells(self, level: torch.Tensor, j: int, ey: torch.Tensor, ex: torch.Tensor
                    ) -> torch.Tensor:
        """Level ``j``'s values ``[C, Ny, Nx]`` read over pixels with world edges ``ey, ex``."""
        g = self.cells_per_unit(j)
        return footprint_mean(level, grid_position(ey, g), grid_position(ex, g))[0]

    def extra_repr(self) -> str:
        shapes = ", ".join("x".join(map(str, g.shape[1:])) for g in self.grids)
        return f"channels={self.channels}, levels={shapes}"
