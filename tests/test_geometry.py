"""Property tests of the coordinate conventions in napari_scalespace.geometry."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_scalespace.geometry import (
    PyramidGrid,
    View,
    ancestor_region,
    inside_centre_range,
    native_zoom,
    pixel_centers,
    scene_extent,
    source_pixel_edges,
    source_pixels_per_view,
    tile_code,
    tile_span,
    view_to_source_box,
    world_grid,
)

zooms = st.floats(-4.0, 12.0)
centres = st.floats(-4.0, 4.0)
views = st.builds(View, zooms, centres, centres)
resolutions = st.integers(1, 64)
margins = st.integers(0, 8)


@st.composite
def extents(draw: st.DrawFn) -> tuple[float, float]:
    """Scene extents of plausible images: shorter side 1, aspect ratio up to 3."""
    short = draw(st.integers(1, 300))
    long = draw(st.integers(short, 3 * short))
    h, w = (long, short) if draw(st.booleans()) else (short, long)
    return scene_extent(h, w)


@st.composite
def grids(draw: st.DrawFn, max_octaves: int = 6, max_tile: int = 16) -> PyramidGrid:
    return PyramidGrid(
        draw(st.integers(0, max_octaves)), draw(st.integers(1, max_tile)), draw(extents())
    )


def all_tiles(grid: PyramidGrid, level: int) -> list[tuple[int, int]]:
    ny, nx = grid.n_tiles(level)
    return list(itertools.product(range(ny), range(nx)))


def tile_bounds(grid: PyramidGrid, level: int) -> np.ndarray:
    """[n_tiles, 4] array of (y0, x0, y1, x1), in the order of all_tiles."""
    return np.array([grid.tile_view(level, a, b).bounds for a, b in all_tiles(grid, level)])


# --- pixel centres and sampling grids ----------------------------------------------------------


@given(views, resolutions, margins)
def test_pixel_centres_match_formula(view, r, m):
    ys, xs = pixel_centers(view, r, m)
    assert ys.shape == xs.shape == (r + 2 * m,)
    for k, j in enumerate(range(-m, r + m)):
        assert ys[k] == pytest.approx(view.cy + 2.0**-view.zoom * ((j + 0.5) / r - 0.5))
        assert xs[k] == pytest.approx(view.cx + 2.0**-view.zoom * ((j + 0.5) / r - 0.5))


@given(views, resolutions, margins)
def test_margin_extends_grid_by_m_samples_each_side_at_same_spacing(view, r, m):
    plain = pixel_centers(view, r)
    padded = pixel_centers(view, r, m)
    spacing = view.side / r
    for p, q in zip(plain, padded, strict=True):
        np.testing.assert_allclose(q[m : m + r], p, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(np.diff(q), spacing, rtol=1e-9)
        np.testing.assert_allclose(q[0], p[0] - m * spacing, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(q[-1], p[-1] + m * spacing, rtol=1e-12, atol=1e-12)


@given(views, resolutions)
def test_grid_spacing_is_side_over_sampling_rate_and_grid_centred_in_view(view, r):
    ys, xs = pixel_centers(view, r)
    y0, x0, y1, x1 = view.bounds
    assert y1 - y0 == pytest.approx(view.side) and x1 - x0 == pytest.approx(view.side)
    np.testing.assert_allclose(np.diff(ys), view.side / r, rtol=1e-9)
    assert ys[0] - y0 == pytest.approx(view.side / (2 * r))
    assert x1 - xs[-1] == pytest.approx(view.side / (2 * r))
    assert ys.mean() == pytest.approx(view.cy, abs=1e-12)


@given(st.lists(views, min_size=1, max_size=6), resolutions, margins)
def test_world_grid_agrees_with_pixel_centers_for_a_batch_and_keeps_dtype(vs, r, m):
    z, cy, cx = (
        torch.tensor([getattr(v, f) for v in vs], dtype=torch.float64) for f in ("zoom", "cy", "cx")
    )
    ys, xs = world_grid(z, cy, cx, r, m)
    assert ys.dtype == xs.dtype == torch.float64
    assert ys.shape == xs.shape == (len(vs), r + 2 * m)
    for k, v in enumerate(vs):
        py, px = pixel_centers(v, r, m)
        np.testing.assert_allclose(ys[k].numpy(), py, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(xs[k].numpy(), px, rtol=1e-12, atol=1e-12)
    ys32, _ = world_grid(z.float(), cy.float(), cx.float(), r, m)
    assert ys32.dtype == torch.float32
    np.testing.assert_allclose(ys32.numpy(), ys.numpy(), rtol=1e-5, atol=1e-5)


def test_world_grid_accepts_python_floats_as_float32_batch_of_one():
    ys, xs = world_grid(1.0, 0.25, 0.75, 4, margin=1)
    assert ys.dtype == xs.dtype == torch.float32 and ys.shape == (1, 6)
    np.testing.assert_allclose(ys[0].numpy(), pixel_centers(View(1, 0.25, 0.75), 4, 1)[0])
    ys, _ = world_grid(torch.tensor([0.0, 1.0]), 0.5, 0.5, 2)  # scalars broadcast to the batch
    assert ys.shape == (2, 2)


# --- pyramid tiles -----------------------------------------------------------------------------


def test_tile_counts_are_exact_for_power_of_two_extents():
    grid = PyramidGrid(3, 8)
    assert grid.n_levels == 4
    assert [grid.n_tiles(i) for i in range(4)] == [(8, 8), (4, 4), (2, 2), (1, 1)]
    assert PyramidGrid(3, 8, (1.0, 1.5)).n_tiles(0) == (8, 12)
    assert PyramidGrid(3, 8, scene_extent(300, 1000)).n_tiles(0) == (8, 27)


@given(grids())
def test_level_of_zoom_inverts_zoom_of_level(grid):
    for i in range(grid.n_levels):
        assert grid.zoom_of_level(i) == grid.octaves - i
        assert grid.level_of_zoom(grid.zoom_of_level(i)) == i
        assert grid.level_of_zoom(float(grid.zoom_of_level(i))) == i


@given(grids(), st.data())
def test_tile_view_view_tile_round_trip(grid, data):
    level = data.draw(st.integers(0, grid.octaves))
    ny, nx = grid.n_tiles(level)
    a, b = data.draw(st.integers(0, ny - 1)), data.draw(st.integers(0, nx - 1))
    view = grid.tile_view(level, a, b)
    assert view.zoom == grid.zoom_of_level(level)
    assert grid.view_tile(view) == (level, a, b)
    nudged = View(view.zoom, view.cy * (1 + 1e-13), view.cx)  # float noise is tolerated
    assert grid.view_tile(nudged) == (level, a, b)


@given(grids(), st.data())
def test_view_tile_rejects_views_that_are_not_tiles(grid, data):
    level = data.draw(st.integers(0, grid.octaves))
    view = grid.tile_view(level, 0, 0)
    for bad in (
        View(view.zoom + 0.5, view.cy, view.cx),
        View(view.zoom, view.cy + view.side / 4, view.cx),
        View(view.zoom, view.cy, -view.cx),
        View(grid.octaves + 1, 0.5 * 2.0 ** -(grid.octaves + 1), view.cx),
    ):
        with pytest.raises(ValueError, match="view"):
            grid.view_tile(bad)


@settings(max_examples=40, deadline=None)
@given(grids(), st.integers(0, 2**32 - 1))
def test_tiles_of_a_level_cover_the_scene_exactly_once(grid, seed):
    rng = np.random.default_rng(seed)
    ey, ex = grid.extent
    for level in range(grid.n_levels):
        ny, nx = grid.n_tiles(level)
        s = 2.0 ** -grid.zoom_of_level(level)
        # The padded box [0, ny*s) x [0, nx*s) contains the scene, minimally.
        assert ny * s >= ey - 1e-12 and (ny - 1) * s < ey
        assert nx * s >= ex - 1e-12 and (nx - 1) * s < ex
        h, w = grid.level_shape(level)
        assert (h * grid.pixel_size(level), w * grid.pixel_size(level)) == (ny * s, nx * s)
        b = tile_bounds(grid, level)
        areas = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        assert areas.sum() == pytest.approx(ny * s * nx * s, rel=1e-12)
        # Every sampled point of the padded box (random, and on tile edges) is in exactly one
        # tile; with the area identity this means no overlap and no gap.
        edges_y = rng.integers(0, ny, 50) * s
        edges_x = rng.integers(0, nx, 50) * s
        py = np.concatenate([rng.uniform(0, ny * s, 200), edges_y, edges_y, [0.0, ey * 0.999]])
        px = np.concatenate(
            [rng.uniform(0, nx * s, 200), edges_x, rng.uniform(0, ex, 50), [0.0, ex * 0.999]]
        )
        inside = (
            (b[None, :, 0] <= py[:, None])
            & (py[:, None] < b[None, :, 2])
            & (b[None, :, 1] <= px[:, None])
            & (px[:, None] < b[None, :, 3])
        )
        assert (inside.sum(axis=1) == 1).all()


@settings(deadline=None)
@given(grids(max_octaves=5))
def test_tiles_nest_in_parent_and_parents_have_their_four_children(grid):
    for level in range(grid.octaves):
        children = Counter()
        for a, b in all_tiles(grid, level):
            plevel, pa, pb = grid.parent(level, a, b)
            assert plevel == level + 1
            cy0, cx0, cy1, cx1 = grid.tile_view(level, a, b).bounds
            py0, px0, py1, px1 = grid.tile_view(plevel, pa, pb).bounds
            assert py0 <= cy0 < cy1 <= py1 and px0 <= cx0 < cx1 <= px1
            children[pa, pb] += 1
        ny, nx = grid.n_tiles(level)
        expected = {
            (pa, pb): len(range(2 * pa, min(2 * pa + 2, ny)))
            * len(range(2 * pb, min(2 * pb + 2, nx)))
            for pa, pb in all_tiles(grid, level + 1)
        }
        assert children == expected  # every parent has children: 4 except at ragged edges
        interior = [(pa, pb) for pa, pb in expected if 2 * pa + 1 < ny and 2 * pb + 1 < nx]
        assert all(children[p] == 4 for p in interior)


coord = st.one_of(st.floats(-0.5, 3.5), st.integers(-4, 200).map(lambda k: k / 64))


@settings(deadline=None)
@given(grids(max_octaves=5), st.data(), coord, coord, coord, coord)
def test_tiles_covering_matches_brute_force(grid, data, y0, x0, y1, x1):
    level = data.draw(st.integers(0, grid.octaves))
    ra, rb = grid.tiles_covering(level, y0, x0, y1, x1)
    assert isinstance(ra, range) and isinstance(rb, range)
    brute = {
        (a, b)
        for a, b in all_tiles(grid, level)
        if (v := grid.tile_view(level, a, b).bounds)
        and max(v[0], y0) < min(v[2], y1)
        and max(v[1], x0) < min(v[3], x1)
    }
    assert set(itertools.product(ra, rb)) == brute


bound = st.one_of(st.none(), st.integers(-40, 200))


@settings(deadline=None)
@given(grids(max_octaves=3, max_tile=8), st.data(), bound, bound, bound, bound)
def test_pixel_slice_to_tiles_covers_requested_pixels_exactly_once(grid, data, r0, r1, c0, c1):
    level = data.draw(st.integers(0, grid.octaves))
    h, w = grid.level_shape(level)
    t = grid.tile
    level_array = np.arange(h * w).reshape(h, w)  # every pixel has a unique value
    rows, cols = slice(r0, r1), slice(c0, c1)
    block = level_array[rows, cols]
    out = np.full(block.shape, -1)
    count = np.zeros(block.shape, dtype=int)
    for p in grid.pixel_slice_to_tiles(level, rows, cols):
        tile = level_array[p.a * t : (p.a + 1) * t, p.b * t : (p.b + 1) * t]
        assert tile[p.rows, p.cols].size > 0  # only tiles actually touched
        out[p.out_rows, p.out_cols] = tile[p.rows, p.cols]
        count[p.out_rows, p.out_cols] += 1
    assert (count == 1).all()
    np.testing.assert_array_equal(out, block)


@given(grids())
def test_level_shapes_halve_per_level_and_pixel_size_doubles(grid):
    h0, w0 = grid.level_shape(0)
    for i in range(grid.n_levels):
        h, w = grid.level_shape(i)
        # Up to the ragged edge (less than one tile of level i), level i is level 0 / 2**i.
        assert 0 <= h * 2**i - h0 < grid.tile * 2**i and 0 <= w * 2**i - w0 < grid.tile * 2**i
        assert grid.scale(i) == 2**i
        assert grid.pixel_size(i) == 2.0 ** -(grid.octaves - i) / grid.tile
        assert grid.pixel_size(i) == grid.pixel_size(0) * grid.scale(i)
    if grid.extent == (1.0, 1.0):
        assert all(grid.level_shape(i)[0] * 2**i == h0 for i in range(grid.n_levels))


# --- source images -----------------------------------------------------------------------------

sizes = st.integers(1, 4096)


@given(sizes)
def test_zoom0_view_centred_on_square_image_is_whole_image(n):
    assert view_to_source_box(View(0, 0.5, 0.5), n, n) == (0, 0, n, n)
    assert scene_extent(n, n) == (1.0, 1.0)


@given(sizes, sizes, st.data())
def test_source_pixel_view_maps_to_that_source_pixel(h, w, data):
    s = min(h, w)
    r, c = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    box = view_to_source_box(View(math.log2(s), (r + 0.5) / s, (c + 0.5) / s), h, w)
    np.testing.assert_allclose(box, (r, c, r + 1, c + 1), atol=1e-9)
    ey, ex = scene_extent(h, w)
    assert min(ey, ex) == 1.0 and ey / ex == pytest.approx(h / w)


@given(views, sizes, sizes)
def test_source_boxes_halve_per_octave_around_the_same_centre(view, h, w):
    r0, c0, r1, c1 = view_to_source_box(view, h, w)
    q0, d0, q1, d1 = view_to_source_box(View(view.zoom + 1, view.cy, view.cx), h, w)
    assert q1 - q0 == pytest.approx((r1 - r0) / 2) and d1 - d0 == pytest.approx((c1 - c0) / 2)
    assert q0 + q1 == pytest.approx(r0 + r1) and d0 + d1 == pytest.approx(c0 + c1)
    assert r1 - r0 == pytest.approx(source_pixels_per_view(view.zoom, h, w))


@given(sizes, sizes, st.integers(1, 1024))
def test_native_zoom_gives_one_source_pixel_per_rendered_pixel(h, w, r):
    z = native_zoom(h, w, r)
    assert source_pixels_per_view(z, h, w) == pytest.approx(r)
    assert source_pixels_per_view(z + 1, h, w) == pytest.approx(r / 2)


# --- argument validation -----------------------------------------------------------------------

_g = PyramidGrid(2, 8, (1.0, 1.5))
BAD = {
    "octaves": [lambda: PyramidGrid(-1, 8), lambda: PyramidGrid(1.5, 8)],
    "tile": [lambda: PyramidGrid(2, 0)],
    "extent": [
        lambda: PyramidGrid(2, 8, (0.0, 1.0)),
        lambda: PyramidGrid(2, 8, (1.0,)),
        lambda: PyramidGrid(2, 8, (1.0, math.inf)),
    ],
    "level": [
        lambda: _g.zoom_of_level(3),
        lambda: _g.n_tiles(-1),
        lambda: _g.parent(2, 0, 0),
        lambda: _g.tiles_covering(7, 0, 0, 1, 1),
        lambda: _g.scale(3),
    ],
    "zoom": [
        lambda: _g.level_of_zoom(0.5),
        lambda: _g.level_of_zoom(3),
        lambda: View(math.nan, 0, 0),
        lambda: world_grid(torch.zeros(2, 2), 0.0, 0.0, 4),
    ],
    "cy": [lambda: View(0, "a", 0)],
    "a": [lambda: _g.tile_view(0, -1, 0)],
    "tile \\(a, b\\)": [lambda: _g.tile_view(0, 4, 0), lambda: _g.tile_view(0, 0, 6)],
    "view": [lambda: _g.view_tile(View(0.5, 0.5, 0.5))],
    "rows": [lambda: _g.pixel_slice_to_tiles(0, slice(0, 8, 2), slice(None))],
    "cols": [lambda: _g.pixel_slice_to_tiles(0, slice(None), 3)],
    "sampling_rate": [lambda: world_grid(0.0, 0.0, 0.0, 0)],
    "margin": [
        lambda: world_grid(0.0, 0.0, 0.0, 4, margin=-1),
        lambda: pixel_centers(View(0, 0, 0), 4, margin=-2),
    ],
    "resolution": [lambda: pixel_centers(View(0, 0, 0), 0), lambda: native_zoom(4, 4, 0)],
    "height": [lambda: scene_extent(0, 5), lambda: view_to_source_box(View(0, 0, 0), -1, 5)],
    "width": [lambda: source_pixels_per_view(0, 5, 0), lambda: native_zoom(4, 2.5, 4)],
}


@pytest.mark.parametrize(("name", "call"), [(n, c) for n, calls in BAD.items() for c in calls])
def test_bad_arguments_raise_value_error_naming_the_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


# --- footprints and views inside the scene ------------------------------------------------------


@given(views, resolutions, sizes, sizes)
def test_source_pixel_edges_span_the_view_box_with_pixel_centres_as_midpoints(view, r, h, w):
    ye, xe = source_pixel_edges(view.zoom, view.cy, view.cx, r, h, w)
    assert ye.shape == xe.shape == (r + 1,)
    r0, c0, r1, c1 = view_to_source_box(view, h, w)
    scale = min(h, w) * max(1.0, view.side, abs(view.cy), abs(view.cx))
    np.testing.assert_allclose([ye[0], xe[0], ye[-1], xe[-1]], [r0, c0, r1, c1], atol=1e-9 * scale)
    ys, xs = pixel_centers(view, r)
    s = min(h, w)
    np.testing.assert_allclose((ye[1:] + ye[:-1]) / 2, s * ys, atol=1e-9 * scale)
    np.testing.assert_allclose((xe[1:] + xe[:-1]) / 2, s * xs, atol=1e-9 * scale)
    np.testing.assert_allclose(np.diff(ye), source_pixels_per_view(view.zoom, h, w) / r, rtol=1e-9)


@given(st.lists(views, min_size=1, max_size=5), resolutions, sizes, sizes)
def test_source_pixel_edges_broadcast_over_a_batch_of_views(vs, r, h, w):
    z, cy, cx = (np.array([getattr(v, k) for v in vs]) for k in ("zoom", "cy", "cx"))
    ye, xe = source_pixel_edges(z, cy, cx, r, h, w)
    assert ye.shape == xe.shape == (len(vs), r + 1)
    for i, v in enumerate(vs):
        y1, x1 = source_pixel_edges(v.zoom, v.cy, v.cx, r, h, w)
        np.testing.assert_array_equal(ye[i], y1)
        np.testing.assert_array_equal(xe[i], x1)


@given(st.floats(0.0, 12.0), sizes, sizes, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_views_with_centres_in_inside_centre_range_lie_inside_the_scene(zoom, h, w, u, v):
    ey, ex = scene_extent(h, w)
    y_lo, y_hi, x_lo, x_hi = inside_centre_range(zoom, (ey, ex))
    assert y_lo <= y_hi and x_lo <= x_hi  # a view of zoom >= 0 fits in a scene of short side 1
    view = View(zoom, y_lo + u * (y_hi - y_lo), x_lo + v * (x_hi - x_lo))
    y0, x0, y1, x1 = view.bounds
    tol = 1e-12 * max(ey, ex)
    assert y0 >= -tol and x0 >= -tol and y1 <= ey + tol and x1 <= ex + tol
    # the range is tight: its ends put the view against the scene's edges
    assert View(zoom, y_lo, x_lo).bounds[:2] == pytest.approx((0.0, 0.0), abs=tol)
    assert View(zoom, y_hi, x_hi).bounds[2:] == pytest.approx((ey, ex), rel=1e-12)


def test_inside_centre_range_is_empty_for_a_view_larger_than_the_scene():
    y_lo, y_hi, _, _ = inside_centre_range(np.array([-1.0, 0.0]), (1.0, 2.0))
    np.testing.assert_allclose(y_lo, [1.0, 0.5])
    assert y_hi[0] < y_lo[0] and y_hi[1] == y_lo[1]


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("zoom", lambda: source_pixel_edges(math.inf, 0.0, 0.0, 4, 8, 8)),
        ("cx", lambda: source_pixel_edges(0.0, 0.0, np.array([0.0, math.nan]), 4, 8, 8)),
        ("resolution", lambda: source_pixel_edges(0.0, 0.0, 0.0, 0, 8, 8)),
        ("height", lambda: source_pixel_edges(0.0, 0.0, 0.0, 4, 0, 8)),
        ("zoom", lambda: inside_centre_range(math.nan, (1.0, 1.0))),
        ("extent", lambda: inside_centre_range(0.0, (1.0, -2.0))),
        ("extent", lambda: inside_centre_range(0.0, 3.0)),
    ],
)
def test_footprint_helpers_reject_bad_arguments_naming_them(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_level_world_transform_puts_pixel_centres_where_the_source_has_them():
    """Level pixel j's centre, scale * j + translate, is the world position of its scene
    centre (j + 1/2) q, U y - p/2: the same place as the source pixel covering it."""
    from napari_scalespace.geometry import (
        level_world_transform,
        scene_to_world,
        scene_unit_length,
    )

    S, p = 256, 0.5
    U = scene_unit_length(S, p)
    assert U == 128.0
    grid = PyramidGrid(5, 32, (1.0, 1.5))
    for level in range(grid.n_levels):
        scale, translate = level_world_transform(grid, level, U, p)
        q = grid.pixel_size(level)
        j = np.arange(7.0)
        assert np.allclose(scale * j + translate, scene_to_world((j + 0.5) * q, U, p))
    # at the native zoom (level pixel = source pixel) the level sits exactly on the source
    native = PyramidGrid(3, 32)
    assert level_world_transform(native, 0, U, p) == (0.5, 0.0)
    with pytest.raises(ValueError):
        scene_unit_length(256, 0.0)


@settings(deadline=None)
@given(grids(max_octaves=5), st.integers(1, 5))
def test_an_ancestor_region_is_where_the_tile_lies_in_its_ancestor(grid, k):
    """``ancestor_region``: the ancestor k levels coarser (k parents up) and the part of its
    pixels whose scene square is the tile's."""
    r = grid.tile
    for level in range(grid.octaves + 1 - k):
        for a, b in all_tiles(grid, level):
            lv, pa, pb = level, a, b
            for _ in range(k):
                lv, pa, pb = grid.parent(lv, pa, pb)
            got_a, got_b, y0, x0, size = ancestor_region(a, b, k, r)
            assert (got_a, got_b) == (pa, pb) and size == r >> k
            ty0, tx0, ty1, tx1 = grid.tile_view(level, a, b).bounds
            py0, px0, _, _ = grid.tile_view(lv, pa, pb).bounds
            pixel = grid.pixel_size(lv)
            if r % (1 << k) == 0:  # the ancestor pixels y0:y0+size cover the tile exactly
                assert y0 * pixel + py0 == pytest.approx(ty0, abs=1e-12)
                assert (y0 + size) * pixel + py0 == pytest.approx(ty1, abs=1e-12)
                assert x0 * pixel + px0 == pytest.approx(tx0, abs=1e-12)
                assert (x0 + size) * pixel + px0 == pytest.approx(tx1, abs=1e-12)


def test_tile_codes_are_distinct_and_keep_b_in_the_low_bits():
    keys = [(s, z, a, b) for s in range(3) for z in (0, 1, 7, 255) for a in (0, 1, 2**31)
            for b in (0, 5, 2**32 - 1)]
    codes = {tile_code(*k) for k in keys}
    assert len(codes) == len(keys)
    assert all(tile_code(s, z, a, 0) | b == tile_code(s, z, a, b) for s, z, a, b in keys)
    assert list(tile_span(0, 10, 4)) == [0, 1, 2] and list(tile_span(4, 8, 4)) == [1]
    assert list(tile_span(5, 5, 4)) == [] and list(tile_span(3, 5, 4)) == [0, 1]
