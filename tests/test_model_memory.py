"""The spatial memory's read: an exact area filter of the bilinear surface through each grid,
so a view and the same view rendered through a 2x finer canvas then area-downsampled agree."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_scalespace.model.memory import SpatialMemory, footprint_mean

f64 = torch.float64


def bilinear(grid: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The surface at points ``y [P] x x [Q]`` (cell units from the first centre), constant
    beyond the outer centres: ``[C, P, Q]`` (the obvious formula, for comparison)."""
    _, ny, nx = grid.shape
    y, x = y.clamp(0, ny - 1), x.clamp(0, nx - 1)
    y0, x0 = y.floor().clamp(max=ny - 2).long(), x.floor().clamp(max=nx - 2).long()
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    g = lambda a, b: grid[:, a[:, None], b[None, :]]  # noqa: E731
    return ((1 - fy) * ((1 - fx) * g(y0, x0) + fx * g(y0, x0 + 1))
            + fy * ((1 - fx) * g(y0 + 1, x0) + fx * g(y0 + 1, x0 + 1)))


def edges(start: float, step: float, n: int) -> torch.Tensor:
    return start + step * torch.arange(n + 1, dtype=f64)


@settings(max_examples=25, deadline=None)
@given(ny=st.integers(2, 9), nx=st.integers(2, 9), y0=st.floats(-4, 8), x0=st.floats(-4, 8),
       step=st.floats(0.05, 3.0), n=st.integers(1, 6))
def test_footprint_mean_is_the_area_mean_of_the_bilinear_surface(ny, nx, y0, x0, step, n):
    g = torch.Generator().manual_seed(ny * 10 + nx)
    grid = torch.randn(2, ny, nx, generator=g, dtype=f64)
    got = footprint_mean(grid, edges(y0, step, n)[None], edges(x0, step, n)[None])[0]
    k = 64  # midpoint rule on a fine grid (the surface is piecewise bilinear: error ~ 1/k^2)
    ys = y0 + step * (torch.arange(n * k, dtype=f64) + 0.5) / k
    xs = x0 + step * (torch.arange(n * k, dtype=f64) + 0.5) / k
    want = F.avg_pool2d(bilinear(grid, ys, xs)[None], k)[0]
    assert torch.allclose(got, want, atol=2e-3 * grid.abs().max().item())


def test_a_footprint_inside_one_cell_reads_the_bilinear_value_at_its_centre():
    grid = torch.randn(3, 5, 6, dtype=f64)
    y, x, eps = 1.37, 3.81, 1e-2  # inside one cell: the mean of a bilinear patch over a
    # square is its value at the centre
    got = footprint_mean(grid, torch.tensor([[y, y + eps]], dtype=f64),
                         torch.tensor([[x, x + eps]], dtype=f64))[0, :, 0, 0]
    want = bilinear(grid, torch.tensor([y + eps / 2], dtype=f64),
                    torch.tensor([x + eps / 2], dtype=f64))[:, 0, 0]
    assert torch.allclose(got, want, atol=1e-9)


def test_a_view_equals_its_2x_finer_canvas_area_downsampled():
    """Band-limited read: every level, at any zoom (finer and coarser than its cells)."""
    torch.manual_seed(0)
    memory = SpatialMemory(channels=4, levels=4, cells=4, extent=(1.0, 1.5))
    for grid in memory.grids:
        torch.nn.init.normal_(grid)
    zoom = torch.tensor([0.0, 1.3, 2.5, 5.0, 7.9])
    cy = torch.tensor([0.5, 0.1, 0.77, 0.31, 0.999])
    cx = torch.tensor([0.75, 1.4, 0.05, 0.62, 0.5])
    with torch.no_grad():
        coarse = memory(16, 3, zoom, cy, cx)
        fine = memory(32, 6, zoom, cy, cx)
    assert coarse.shape == (5, 4, 22, 22)
    assert coarse.std() > 0.1
    assert torch.allclose(F.avg_pool2d(fine, 2), coarse, atol=1e-5)


def test_overlapping_views_read_the_same_values_where_they_overlap():
    """The read depends on world position and footprint only (seamless tiles)."""
    torch.manual_seed(1)
    memory = SpatialMemory(channels=2, levels=3, cells=8)
    for grid in memory.grids:
        torch.nn.init.normal_(grid)
    zoom = torch.tensor([3.0, 3.0])
    side = 2.0**-3
    with torch.no_grad():
        a, b = memory(16, 0, zoom, torch.tensor([0.4, 0.4]),
                      torch.tensor([0.3, 0.3 + side / 2]))
    assert torch.allclose(a[:, :, 8:], b[:, :, :8], atol=1e-6)


def test_gradients_reach_every_level_that_a_view_covers():
    memory = SpatialMemory(channels=2, levels=3, cells=4)
    out = memory(16, 2, torch.tensor([1.0]), torch.tensor([0.5]), torch.tensor([0.5]))
    (out * torch.randn_like(out)).sum().backward()
    for grid in memory.grids:
        assert grid.grad is not None and grid.grad.abs().sum() > 0


def test_gradcheck_float64():
    grid = torch.randn(2, 4, 5, dtype=f64, requires_grad=True)
    ty = torch.tensor([[-0.7, 0.4, 1.9, 3.5]], dtype=f64)
    tx = torch.tensor([[0.2, 1.1, 2.0, 5.2]], dtype=f64)
    assert torch.autograd.gradcheck(lambda g: footprint_mean(g, ty, tx), (grid,))


def test_rendering_reads_through_stored_tables_that_follow_the_grid():
    """Rendering (inference mode, or grids that need no gradient: the EMA generator) makes the
    float64 grids and their prefixes once and reuses them (each view read from windows of the
    whole grids' tables): the read equals the training read of the batch, near the scene's
    edges too, and an update of a grid (an optimiser step, a loaded checkpoint) is seen by the
    next read. Training's passes without gradients make none."""
    torch.manual_seed(2)
    memory = SpatialMemory(channels=3, levels=3, cells=4, extent=(1.0, 1.25))
    for grid in memory.grids:
        torch.nn.init.normal_(grid)
    zoom = torch.tensor([0.0, 2.2, 4.5, 3.0])
    cy, cx = torch.tensor([0.5, 0.3, 0.93, 0.01]), torch.tensor([0.6, 1.1, 0.02, 1.24])
    trained = memory(16, 4, zoom, cy, cx).detach()  # gradients wanted: no tables
    assert memory._tables is None
    with torch.inference_mode():
        rendered = memory(16, 4, zoom, cy, cx)
    tables = memory._tables[1]
    assert torch.allclose(rendered, trained, atol=1e-6)
    with torch.no_grad():
        assert memory.tables() is None  # a training model's no-grad pass: the torch read
        memory.requires_grad_(False)  # a model that only renders
        assert memory.tables() is tables  # kept
        memory.grids[2].mul_(-1)
        again = memory(16, 4, zoom, cy, cx, channels=2)
        assert memory.tables() is not tables
    memory.requires_grad_(True)
    expected = memory(16, 4, zoom, cy, cx, channels=2).detach()  # the training read
    assert memory.tables() is None and torch.allclose(again, expected, atol=1e-6)
    assert not torch.allclose(again, rendered[:, :2], atol=1e-3)


def test_views_far_apart_read_their_own_windows_with_the_values_of_one_view_each():
    """Each view reads only the window of cells it covers (views far apart share none): a
    batch reads what each of its views reads alone, in training and rendering."""
    torch.manual_seed(3)
    memory = SpatialMemory(channels=2, levels=3, cells=8)
    for grid in memory.grids:
        torch.nn.init.normal_(grid)
    zoom = torch.tensor([4.0, 4.0, 3.5])
    cy, cx = torch.tensor([0.1, 0.9, 0.5]), torch.tensor([0.05, 0.95, 0.5])
    together = memory(16, 2, zoom, cy, cx).detach()
    alone = torch.cat([memory(16, 2, zoom[i:i + 1], cy[i:i + 1], cx[i:i + 1]).detach()
                       for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(memory(16, 2, zoom, cy, cx), together, atol=1e-6)


def test_a_memory_built_under_inference_mode_reads_and_sees_changes():
    """Rendering builds the model under ``torch.inference_mode`` (its parameters then have no
    version counter): the stored tables follow the grids' contents instead."""
    with torch.inference_mode():
        torch.manual_seed(4)
        memory = SpatialMemory(channels=2, levels=2, cells=4)
        for grid in memory.grids:
            torch.nn.init.normal_(grid)
        args = (16, 2, torch.tensor([1.5]), torch.tensor([0.4]), torch.tensor([0.6]))
        first = memory(*args)
        assert memory(*args).equal(first)
        memory.grids[1].mul_(2)
        second = memory(*args)
    with torch.no_grad():
        plain = SpatialMemory(channels=2, levels=2, cells=4)
        for mine, theirs in zip(plain.grids, memory.grids, strict=True):
            mine.copy_(theirs.clone())
    expected = plain(*args).detach()
    assert not torch.allclose(first, second, atol=1e-3)
    assert torch.allclose(second, expected, atol=1e-6)


@pytest.mark.parametrize("parallel", [False, True])
def test_the_compiled_read_is_the_closed_form(parallel):
    """:func:`._memory_kernel.read_level` (rendering on the CPU; its parallel form runs the
    channels on several threads) against :func:`footprint_mean` (training's torch form) on
    random grids, footprints finer and coarser than the cells, views over the edges."""
    import numpy as np

    from napari_scalespace.model import _memory_kernel
    from napari_scalespace.model.memory import _prefix, _window, use_threads

    read_level = (_memory_kernel.read_level_parallel if parallel else _memory_kernel.read_level)
    use_threads(2)

    g = torch.Generator().manual_seed(5)
    for _ in range(40):
        ny, nx, s = (int(v) for v in torch.randint(2, 30, (3,), generator=g))
        grid = torch.randn(3, ny, nx, dtype=f64, generator=g)
        step = float(torch.rand((), generator=g)) * 3 + 0.01
        y0, x0 = (float(v) for v in torch.rand(2, generator=g) * (max(ny, nx) + 4) - 3)
        ty, tx = edges(y0, step, s), edges(x0, step, s)
        want = footprint_mean(grid, ty[None], tx[None])[0].numpy()
        out = np.zeros((3, s, s))
        read_level(grid.numpy(), _prefix(grid, 1).numpy(), ty.numpy(), tx.numpy(),
                   *_window(tx.min().item(), tx.max().item(), nx), out)
        assert np.allclose(out, want, rtol=1e-9, atol=1e-9)


def test_a_view_past_float64s_resolution_reads_the_surface_at_its_centre():
    """At zoom 100 a pixel's edges coincide in float64; the read holds still at a pixel of
    ``MIN_PIXEL`` coarsest cells instead of dividing zero by zero."""
    from napari_scalespace.model.memory import MIN_PIXEL

    torch.manual_seed(6)
    memory = SpatialMemory(channels=2, levels=3, cells=4)
    for grid in memory.grids:
        torch.nn.init.normal_(grid)
    centre = (torch.tensor([0.37]), torch.tensor([0.61]))
    with torch.no_grad():
        deep = memory(16, 2, torch.tensor([100.0]), *centre)
        still = memory(16, 2, torch.tensor([-math.log2(16 * MIN_PIXEL / 4)]),
                       *centre)
    assert torch.isfinite(deep).all()
    assert torch.allclose(deep, still, atol=1e-6)
    want = sum(bilinear(g.detach().double(), torch.tensor([0.37 * 4 * 2**k - 0.5], dtype=f64),
                        torch.tensor([0.61 * 4 * 2**k - 0.5], dtype=f64))[:, 0, 0]
               for k, g in enumerate(memory.grids))
    assert torch.allclose(deep[0, :, 10, 10].double(), want, atol=1e-4)


def test_fine_levels_add_into_the_first_channels_band_limited_in_training_and_rendering():
    """Levels with fewer channels (``fine_levels``) add their read into the first channels
    only; the read stays an exact area filter, the compiled read equals the training read,
    and gradients reach the fine grids."""
    torch.manual_seed(6)
    full = SpatialMemory(channels=4, levels=2, cells=4)
    fine = SpatialMemory(channels=4, levels=2, cells=4, fine_levels=2, fine_channels=3)
    assert [tuple(g.shape) for g in fine.grids][2:] == [(3, 16, 16), (3, 32, 32)]
    for grid in fine.grids:
        torch.nn.init.normal_(grid)
    with torch.no_grad():
        for mine, theirs in zip(full.grids, fine.grids, strict=False):
            mine.copy_(theirs)
    zoom = torch.tensor([0.0, 1.7, 4.2])
    cy, cx = torch.tensor([0.5, 0.2, 0.9]), torch.tensor([0.5, 0.7, 0.1])
    trained = fine(16, 3, zoom, cy, cx)
    without = full(16, 3, zoom, cy, cx).detach()
    assert trained.shape == without.shape == (3, 4, 22, 22)
    assert torch.equal(trained[:, 3:].detach(), without[:, 3:])
    assert (trained[:, :3].detach() - without[:, :3]).abs().mean() > 0.1
    trained.square().sum().backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in fine.grids)
    with torch.no_grad():
        rendered = fine(16, 3, zoom, cy, cx)
        doubled = fine(32, 6, zoom, cy, cx)
    assert torch.allclose(rendered, trained.detach(), atol=1e-5)
    assert torch.allclose(F.avg_pool2d(doubled, 2), rendered, atol=1e-5)
    assert "(3 channels)" in repr(fine)
    with pytest.raises(ValueError, match="fine levels"):
        SpatialMemory(channels=2, levels=1, cells=4, fine_levels=1, fine_channels=3)
