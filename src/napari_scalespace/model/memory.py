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


def _antiderivative_rows(grid: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``A(t)`` along dimension 1 of a shared ``grid [C, N, X]`` at positions ``t [B, P]``:
    ``[C, B, P, X]``. Rows are picked with ``index_select`` (its backward is one
    ``index_add``, not a scatter into a per-view copy of the grid)."""
    C, n, X = grid.shape
    B, P = t.shape
    q = _prefix(grid, 1)
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


def _window(t: torch.Tensor, n: int) -> tuple[int, int]:
    """The cells ``[lo, hi)`` of an ``n``-cell curve that positions ``t`` read: the intervals
    they fall in, at least two cells. Positions before ``lo`` or after ``hi - 1`` occur only
    when ``lo = 0`` or ``hi = n`` (the constant extension then applies as on the whole
    curve), and the antiderivative on the window differs from the whole curve's by a constant,
    which the differences at pixel edges cancel."""
    lo = min(max(math.floor(t.min().item()), 0), max(n - 2, 0))
    hi = max(min(math.ceil(t.max().item()) + 1, n), min(lo + 2, n))
    return lo, hi


def footprint_mean(grid: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
    """Mean of the bilinear surface through ``grid`` (``[C, Ny, Nx]``, values at cell centres,
    shared by the batch) over the pixels of a batch of canvases.

    ``ty``, ``tx``: ``[B, S + 1]`` pixel edges in cell units measured from the first centre
    (increasing). Returns ``[B, C, S_y, S_x]``: pixel (i, j) is the mean over
    ``[ty_i, ty_{i+1}] x [tx_j, tx_{j+1}]``. Only the window of cells the batch reads is
    touched (a zoomed-in view reads a few cells of a fine level, not the whole grid)."""
    y0, y1 = _window(ty, grid.shape[1])
    x0, x1 = _window(tx, grid.shape[2])
    grid = grid[:, y0:y1, x0:x1].to(torch.float64)  # only the window, in float64
    ay = _antiderivative_rows(grid, ty - y0)  # [C, B, Sy + 1, nx]
    axy = _antiderivative_last(ay, tx - x0)  # [C, B, Sy + 1, Sx + 1]
    d = axy.diff(dim=-1).diff(dim=-2)
    area = ty.diff(dim=-1)[:, :, None] * tx.diff(dim=-1)[:, None, :]
    return (d / area).transpose(0, 1)


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
        side = torch.exp2(-zoom.to(torch.float64))[:, None]
        wy = cy.to(torch.float64)[:, None] + side * e  # [B, S + 1] world
        wx = cx.to(torch.float64)[:, None] + side * e
        out = None
        for k, grid in enumerate(self.grids):
            g = self.cells_per_unit(k)
            if channels is not None:
                grid = grid[:channels]
            v = footprint_mean(grid, grid_position(wy, g),
                               grid_position(wx, g))
            out = v if out is None else out + v
        return out.to(dtype)

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
