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

The footprint average has a closed form. The surface is ``sum_n M[n] h_n(t)`` with cell n's
tent ``h_n(t) = max(0, 1 - |t - n|)`` (``t`` in cell units from the first centre; the first
tent is 1 below its centre and the last 1 above its centre: the constant extension), so in one
dimension pixel ``i`` reads ``sum_n w[i, n] M[n]`` with ``w[i, n]`` the mean of ``h_n`` over
``[t_i, t_{i+1}]``, a difference of the tent's antiderivative at the two edges. The surface is
a tensor product, so the 2-D mean over a pixel is ``W_y M W_x^T`` per channel: two small
matrix products per view and level over the window of cells the view covers. Gradients are
those of the products (the weights do not depend on the grid). The weights are made in
float64 (a deep zoom takes differences of nearly equal values) and the products run in the
grid's precision: float32 in training, float64 from the rendering tables.

Rendering on the CPU reads the same surface through a compiled kernel
(:mod:`._memory_kernel`) from prefix tables: the antiderivative along y is
``A(t) = Q[k] + phi M[k] + phi^2 / 2 (M[k+1] - M[k])``, ``k = floor(t)``, ``phi = t - k``,
``Q[k] = sum_{n<k} (M[n] + M[n+1]) / 2``, plus ``min(t, 0) M[0] + max(t - (N-1), 0) M[N-1]``,
then along x of the pixel rows' column integrals, then differences at the pixel edges
(``C (S + 1) N`` operations per view for an ``S``-sample canvas and an ``N``-cell level).
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


def _window(lo_t: float, hi_t: float, n: int) -> tuple[int, int]:
    """The cells ``[lo, hi)`` of an ``n``-cell curve that positions in ``[lo_t, hi_t]`` read:
    the intervals they fall in, at least two cells. Positions before ``lo`` or after
    ``hi - 1`` occur only when ``lo = 0`` or ``hi = n`` (the constant extension then applies as
    on the whole curve). For the prefix tables: the antiderivative on the window differs from
    the whole curve's by a constant, which the differences at pixel edges cancel."""
    lo = min(max(math.floor(lo_t), 0), max(n - 2, 0))
    hi = max(min(math.ceil(hi_t) + 1, n), min(lo + 2, n))
    return lo, hi


def _band(t: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nonzero tent means of pixels ``[t[..., i], t[..., i+1]]`` (``t [..., S + 1]``
    increasing, cell units) on an ``n``-cell curve: ``(pixel, cell, weight)``, ``pixel`` the
    flat index over ``[..., S]``. A pixel meets only the tents of cells ``ceil(t_i) - 1 ..
    floor(t_{i+1}) + 1`` (clamped to the curve), so the cost is the cells and pixels, not
    their product. The first cell's tent is 1 below its centre and the last cell's 1 above
    its centre (the constant extension)."""
    a, b = t[..., :-1].reshape(-1), t[..., 1:].reshape(-1)
    lo = np.clip(np.ceil(a - 1), 0, n - 1).astype(np.int64)
    hi = np.clip(np.floor(b + 1), 0, n - 1).astype(np.int64)
    count = hi - lo + 1
    pixel = np.repeat(np.arange(a.size), count)
    cell = lo[pixel] + np.arange(pixel.size) - np.repeat(np.cumsum(count) - count, count)

    def integral(edge: np.ndarray) -> np.ndarray:  # the tent's integral from -inf to edge
        u = edge - cell
        rise, fall = (np.clip(u, -1, 0) + 1), np.clip(u, 0, 1)
        rise, fall = 0.5 * rise * rise, fall - 0.5 * fall * fall
        rise = np.where(cell == 0, np.minimum(u, 0), rise)
        fall = np.where(cell == n - 1, np.maximum(u, 0), fall)
        return rise + fall

    weight = (integral(b[pixel]) - integral(a[pixel])) / (b - a)[pixel]
    return pixel, cell, weight


def window_weights(t: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For a batch of pixel edges ``t [B, S + 1]`` (float64, cell units) on an ``n``-cell
    curve: each view's window of cells (``lo [B]``, :func:`_window`: at least two cells) and
    its tent-mean weights over it, ``w [B, S, width]`` (zero past each view's own width
    ``hi - lo``; ``width`` the widest), so that ``w[b, :, :hi_b - lo_b] @ M[lo_b:hi_b]`` is
    the pixels' mean of the curve through ``M``. One vectorised pass for the batch."""
    B, S = t.shape[0], t.shape[1] - 1
    lo = np.clip(np.floor(t.min(axis=1)), 0, max(n - 2, 0)).astype(np.int64)
    hi = np.maximum(np.minimum(np.ceil(t.max(axis=1)).astype(np.int64) + 1, n),
                    np.minimum(lo + 2, n))
    pixel, cell, weight = _band(t, n)
    view = pixel // S
    keep = (cell >= lo[view]) & (cell < hi[view])  # the band's outermost tents weigh 0 there
    pixel, cell, weight, view = pixel[keep], cell[keep], weight[keep], view[keep]
    out = np.zeros((B, S, int((hi - lo).max())))
    out[view, pixel % S, cell - lo[view]] = weight
    return lo, hi, out


def area_weights(t: torch.Tensor, lo: int, hi: int, n: int) -> torch.Tensor:
    """``w [S, hi - lo]``: the mean over ``[t_i, t_{i+1}]`` of the tent of each cell ``lo ..
    hi-1`` of an ``n``-cell curve (``t [S + 1]`` increasing pixel edges in cell units from
    the first centre; float64), so that ``w @ M[lo:hi]`` is the pixels' mean of the curve
    through ``M`` when ``[lo, hi)`` holds every cell the pixels meet (:func:`_band`)."""
    pixel, cell, weight = _band(t.detach().to("cpu", torch.float64).numpy(), n)
    keep = (cell >= lo) & (cell < hi)
    out = np.zeros((t.shape[0] - 1, hi - lo))
    out[pixel[keep], cell[keep] - lo] = weight[keep]
    return torch.from_numpy(out).to(t.device)


def sparse_area_weights(t: np.ndarray, n: int):
    """:func:`area_weights` over all ``n`` cells as a sparse matrix ``[S, n]`` (scipy CSR,
    float64): a read of a whole level costs its cells, not their square (the memory's start
    reads every level over every finer level's cells)."""
    import scipy.sparse as sp

    t = np.asarray(t, np.float64)
    pixel, cell, weight = _band(t, n)
    return sp.csr_array((weight, (pixel, cell)), shape=(t.size - 1, n))


def footprint_mean(grid: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
    """Mean of the bilinear surface through ``grid`` (``[C, Ny, Nx]``, values at cell centres,
    shared by the batch) over the pixels of a batch of canvases, in the grid's precision.

    ``ty``, ``tx``: ``[B, S + 1]`` pixel edges in cell units measured from the first centre
    (increasing). Returns ``[B, C, S_y, S_x]``: pixel (i, j) is the mean over
    ``[ty_i, ty_{i+1}] x [tx_j, tx_{j+1}]``, ``W_y M W_x^T`` (:func:`window_weights`) over the
    window of cells each view covers (a zoomed-in view reads a few cells of a fine level, not
    the whole grid, and views far apart do not share a window). The gradient
    (:class:`_WindowMeans`) adds every view's ``W_y^T G W_x`` into one gradient of the grid."""
    _, ny, nx = grid.shape
    y0, y1, wy = window_weights(ty.detach().to("cpu", torch.float64).numpy(), ny)
    x0, x1, wx = window_weights(tx.detach().to("cpu", torch.float64).numpy(), nx)
    wy = torch.from_numpy(wy).to(grid.device, grid.dtype)
    wx = torch.from_numpy(wx).to(grid.device, grid.dtype)
    views = [(int(y0[b]), int(y1[b]), int(x0[b]), int(x1[b]),
              wy[b, :, :y1[b] - y0[b]], wx[b, :, :x1[b] - x0[b]]) for b in range(len(y0))]
    return _WindowMeans.apply(grid, views)


class _WindowMeans(torch.autograd.Function):
    """``out[b] = W_y[b] M[:, window b] W_x[b]^T``; the backward makes one zero gradient of
    ``M`` and adds each view's ``W_y^T G_b W_x`` into its window (autograd's slices would
    make a zero gradient of the whole grid per view: for a whole slide's memory, tens of
    millions of values per view and level)."""

    @staticmethod
    def forward(grid: torch.Tensor, views: list) -> torch.Tensor:
        return torch.stack([wy @ grid[:, y0:y1, x0:x1] @ wx.T
                            for y0, y1, x0, x1, wy, wx in views])

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        grid, views = inputs
        ctx.views, ctx.shape = views, grid.shape

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        out = grad.new_zeros(ctx.shape)
        for b, (y0, y1, x0, x1, wy, wx) in enumerate(ctx.views):
            out[:, y0:y1, x0:x1] += wy.T @ grad[b] @ wx
        return out, None


def read_levels(grids: list[torch.Tensor], cells: list[int], wy: torch.Tensor,
                wx: torch.Tensor) -> torch.Tensor:
    """The sum over levels of :func:`footprint_mean` of ``grids[k]`` (``cells[k]`` cells per
    scene unit) for pixel edges at world positions ``wy, wx [B, S + 1]`` (float64); a level
    with fewer channels than the first adds into the first of them."""
    out = None
    for grid, g in zip(grids, cells, strict=True):
        v = footprint_mean(grid, grid_position(wy, g), grid_position(wx, g))
        if out is None:
            out = v
        elif v.shape[1] == out.shape[1]:
            out = out + v
        else:
            c = v.shape[1]
            out = torch.cat([out[:, :c] + v, out[:, c:]], 1)
    return out


class MemoryTables:
    """Every level's grid in float64 (and on the CPU its prefix along y), made once for
    rendering (the grids do not change there); :meth:`read` reads all levels from them: on the
    CPU with one compiled call per level and view (:mod:`._memory_kernel`), elsewhere with
    :func:`footprint_mean` in float64."""

    def __init__(self, grids: list[torch.Tensor], cells: list[int]) -> None:
        self.kernel = _kernel() if grids[0].device.type == "cpu" else None
        with torch.inference_mode(False), torch.no_grad():
            self.levels = [(g64, _prefix(g64, 1) if self.kernel is not None else None)
                           for g64 in (g.detach().to(torch.float64) for g in grids)]
        self.cells = list(cells)

    def read(self, wy: torch.Tensor, wx: torch.Tensor, channels: int | None = None
             ) -> torch.Tensor:
        """The sum over levels of :func:`footprint_mean` for pixel edges at world positions
        ``wy, wx [B, S + 1]`` (float64): ``[B, C, S_y, S_x]``."""
        if self.kernel is not None:
            return self._read_compiled(wy, wx, channels)
        return read_levels([grid[:channels] for grid, _ in self.levels], self.cells, wy, wx)

    def _read_compiled(self, wy: torch.Tensor, wx: torch.Tensor, channels: int | None
                       ) -> torch.Tensor:
        wy, wx = wy.numpy(), wx.numpy()
        C = self.levels[0][0].shape[0] if channels is None else channels
        out = np.zeros((wy.shape[0], C, wy.shape[1] - 1, wx.shape[1] - 1))
        serial, parallel = self.kernel
        threads = torch.get_num_threads()
        for g, (grid, q) in zip(self.cells, self.levels, strict=True):
            grid, q = grid[:C].numpy(), q[:C].numpy()
            c = grid.shape[0]  # a fine level adds into the first channels
            for b in range(wy.shape[0]):
                ty, tx = grid_position(wy[b], g), grid_position(wx[b], g)
                x0, x1 = _window(float(tx.min()), float(tx.max()), grid.shape[2])
                work = c * ty.shape[0] * (x1 - x0)
                if threads > 1 and c > 1 and work > PARALLEL_WORK:
                    use_threads(threads)
                    parallel(grid, q, ty, tx, x0, x1, out[b, :c])
                else:
                    serial(grid, q, ty, tx, x0, x1, out[b, :c])
        return torch.from_numpy(out)


PARALLEL_WORK = 20_000
"""A read of more than this many cell-rows (channels x canvas edges x window columns) runs its
channels in parallel (:data:`._memory_kernel.read_level_parallel`)."""


def _kernel():
    """The compiled reads (:mod:`._memory_kernel`: one thread, parallel channels), or ``None``
    without numba."""
    try:
        from ._memory_kernel import read_level, read_level_parallel
    except ImportError:  # numba missing or broken: the torch form serves
        return None
    return read_level, read_level_parallel


def use_threads(n: int) -> None:
    """Run the parallel read on ``n`` threads (at most numba's pool)."""
    import numba

    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def warm_up() -> bool:
    """Compile the read now (the set-up script calls this, so that the first render does not
    wait); whether it is available."""
    kernels = _kernel()
    if kernels is None:
        return False
    out = np.zeros((1, 1, 1))
    for kernel in kernels:
        kernel(np.zeros((1, 2, 2)), np.zeros((1, 2, 2)), np.array([0.0, 1.0]),
               np.array([0.0, 1.0]), 0, 2, out)
    return True


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
    """``levels`` grids of ``channels`` channels, then ``fine_levels`` grids of
    ``fine_channels`` channels; level k has ``cells * 2**k`` cells per scene unit over the
    scene's ``extent``. ``forward(rate, margin, zoom, cy, cx)`` reads every level over the
    pixels of a batch of canvases (sample rate ``rate`` per view side, ``margin`` samples outside
    the view per side) and returns their sum, ``[B, channels, S, S]`` (a fine level adds into
    the first ``fine_channels`` channels)."""

    def __init__(self, channels: int, levels: int, cells: int,
                 extent: tuple[float, float] = (1.0, 1.0), fine_levels: int = 0,
                 fine_channels: int = 0) -> None:
        super().__init__()
        if fine_levels and not 0 < fine_channels <= channels:
            raise ValueError(f"fine levels need 1 to {channels} channels, got {fine_channels}")
        self.channels, self.cells, self.extent = channels, cells, tuple(extent)
        widths = [channels] * levels + [fine_channels] * fine_levels
        self.grids = nn.ParameterList(
            nn.Parameter(torch.zeros(c, *level_shape(self.extent, cells * 2**k)))
            for k, c in enumerate(widths))
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
        Where no gradient is wanted, from the stored tables."""
        tables = self.tables()
        if tables is not None:
            return tables.read(wy, wx, channels)
        return read_levels([grid[:channels] for grid in self.grids],
                           [self.cells_per_unit(k) for k in range(self.levels)], wy, wx)

    def tables(self) -> MemoryTables | None:
        """The grids' :class:`MemoryTables`, kept while no grid changes (:func:`_stamp`: an
        optimiser step or a loaded checkpoint makes new ones), for rendering: a model whose
        grids need no gradient (the EMA generator) or any model under ``inference_mode``.
        ``None`` in training, also in its passes without gradients (the discriminator's fakes,
        the consistency teacher): the grids change every step there, and the tables of a whole
        slide's memory (float64 copies and prefixes of tens of millions of values) would cost
        more than the windows the views read."""
        if (any(g.requires_grad for g in self.grids)
                and not torch.is_inference_mode_enabled()):
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
        layout from the first step; the remaining channels start at zero (a fine level with
        fewer channels holds its first ones)."""
        for k, (grid, image) in enumerate(zip(self.grids, images, strict=True)):
            c = min(grid.shape[0], image.shape[0])
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
        """Level ``j``'s values ``[C, Ny, Nx]`` (float64) read over pixels with world edges
        ``ey, ex [1, N + 1]``, through :func:`sparse_area_weights`."""
        g = self.cells_per_unit(j)
        wy = sparse_area_weights(grid_position(ey[0], g).cpu().numpy(), level.shape[1])
        wx = sparse_area_weights(grid_position(ex[0], g).cpu().numpy(), level.shape[2])
        m = level.cpu().numpy()
        out = np.stack([(wx @ (wy @ m[c]).T).T for c in range(m.shape[0])])  # Wy M Wx^T
        return torch.from_numpy(out).to(level.device)

    def extra_repr(self) -> str:
        shapes = ", ".join("x".join(map(str, g.shape[1:])) + ("" if g.shape[0] == self.channels
                                                             else f" ({g.shape[0]} channels)")
                           for g in self.grids)
        return f"channels={self.channels}, levels={shapes}"
