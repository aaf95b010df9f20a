"""Whole-slide reading: views read from the stored pyramid level that serves them, native tiles
decoded once into a cache under a byte budget, resampling in bounded strips."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from helpers import texture
from napari_scalespace.data import _area, open_source
from napari_scalespace.data.patches import area_grid, area_patch
from napari_scalespace.data.tiles import TileCache, read_tiled, tile_shape
from napari_scalespace.geometry import View, source_pixel_edges


def block_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """``image`` and its 2^k block means (float32, as a scanner's pyramid stores them)."""
    out = [image.astype(np.float32)]
    for _ in range(levels):
        a = out[-1]
        h, w = a.shape[0] // 2, a.shape[1] // 2
        out.append(a[:2 * h, :2 * w].reshape(h, 2, w, 2, -1).mean(axis=(1, 3)))
    return out


IMAGE = texture((512, 640))
PYRAMID = block_pyramid(IMAGE, 3)


def sources():
    return (open_source(PYRAMID[0], value_range=(0, 255)),
            open_source(PYRAMID, value_range=(0, 255)))


def test_the_level_is_the_coarsest_with_pixels_at_most_half_the_footprint():
    _, pyr = sources()
    assert [pyr.level_for(f) for f in (0.5, 1, 2, 3.9, 4, 7.9, 8, 16, 100)] == \
        [0, 0, 0, 0, 1, 1, 2, 3, 3]
    assert [pyr.level_shape(k) for k in range(4)] == [(512, 640), (256, 320), (128, 160),
                                                      (64, 80)]


@pytest.mark.parametrize(("zoom", "cy", "cx"), [(0.0, 0.5, 0.625), (0.6, 0.4, 0.7),
                                                (1.3, 0.3, 0.9), (1.9, 0.61, 0.55)])
def test_a_view_read_from_a_level_is_the_view_cut_from_level_0(zoom, cy, cx, monkeypatch):
    full, pyr = sources()
    view = View(zoom, cy, cx)
    levels = []
    read = pyr._read_level
    monkeypatch.setattr(pyr, "_read_level", lambda k, *box: levels.append(k) or read(k, *box))
    a, b = area_patch(full, view, 32), area_patch(pyr, view, 32)
    footprint = 512 * 2**-zoom / 32
    assert set(levels) == {pyr.level_for(footprint)} and levels[0] > 0
    # a coarser level's pixels are box means: resampled again they blur a fraction of a
    # pixel at the view's pixel edges, nothing more
    err = a - b
    assert np.sqrt(np.mean(err**2)) < 0.01 and np.abs(err).max() < 0.1


def test_whole_pixel_footprints_are_copies_and_block_means_of_the_level(monkeypatch):
    _, pyr = sources()
    monkeypatch.setattr(_area, "apply_area", None)  # the generic path would fail
    ye, xe = np.arange(40, 105, 2.0), np.arange(64, 257, 6.0)  # 2 x 6 px: level 0 (1 x 1)
    want = PYRAMID[0][40:104, 64:256].reshape(32, 2, 32, 6, 3).mean(axis=(1, 3)) / 255
    np.testing.assert_allclose(pyr.area(ye, xe), want.transpose(2, 0, 1), atol=1e-6)
    ye, xe = np.arange(0, 513, 8.0), np.arange(0, 641, 8.0)  # level 2: 2 x 2 blocks of it
    want = block_pyramid(PYRAMID[2], 1)[1] / 255
    np.testing.assert_allclose(pyr.area(ye, xe), want.transpose(2, 0, 1), atol=1e-6)


def test_large_reads_go_in_strips_with_the_same_values(monkeypatch):
    full, _ = sources()
    ye, xe = np.linspace(-3.5, 515.2, 71), np.linspace(10.3, 600.9, 53)
    whole = full.area(ye, xe)
    boxes = []
    read = full._read_level
    monkeypatch.setattr(full, "_read_level", lambda k, *box: boxes.append(box) or read(k, *box))
    monkeypatch.setattr(_area, "STRIP_BYTES", 4 * 3 * 600 * 40)  # about 40 source rows
    np.testing.assert_allclose(full.area(ye, xe), whole, atol=1e-6)
    assert len(boxes) > 10 and max(r1 - r0 for r0, r1, _, _ in boxes) <= 48
    assert boxes[0][0] == 0 and boxes[-1][1] == 512  # edge replication reads the edge rows


def test_the_memorys_start_reads_the_level_that_serves_its_cells(monkeypatch):
    full, pyr = sources()
    levels = []
    read = pyr._read_level
    monkeypatch.setattr(pyr, "_read_level", lambda k, *box: levels.append(k) or read(k, *box))
    a, b = area_grid(full, (16, 20), 16), area_grid(pyr, (16, 20), 16)  # 32-px cells
    assert set(levels) == {3}
    np.testing.assert_allclose(a, b, atol=0.02)


# --- the tile cache ----------------------------------------------------------------------------


@pytest.fixture
def tiled(tmp_path):
    a = texture((300, 410))
    z = zarr.create_array(store=str(tmp_path / "t.zarr"), shape=a.shape, chunks=(64, 64, 3),
                          dtype=a.dtype)
    z[:] = a
    return a, z


def test_reads_through_the_native_tiles_equal_direct_reads_and_decode_each_tile_once(tiled):
    a, z = tiled
    src = open_source(z)
    plane = src._levels[0]
    assert tile_shape(plane) == (64, 64)
    decoded = []
    read = plane.read
    object.__setattr__(plane, "read", lambda *box, **kw: decoded.append(box) or read(*box, **kw))
    np.testing.assert_allclose(src.read(10, 200, 30, 300), a[10:200, 30:300].transpose(2, 0, 1)
                               / 255, atol=1e-7)
    first = len(decoded)
    assert first == 4 * 5  # tile rows 0-3, columns 0-4
    src.read(70, 120, 100, 250)  # tile row 1, columns 1-3: decoded already
    assert len(decoded) == first and src.cache.hits == 3
    assert all(r1 - r0 <= 64 and c1 - c0 <= 64 for r0, r1, c0, c1 in decoded)


def test_the_cache_stays_under_its_budget_and_drops_the_least_recently_used(tiled):
    a, z = tiled
    tile = 64 * 64 * 3
    src = open_source(z)
    src.cache = TileCache(5 * tile)
    rng = np.random.default_rng(1)
    for _ in range(40):
        r, c = rng.integers(0, 236), rng.integers(0, 346)
        np.testing.assert_allclose(src.read(r, r + 64, c, c + 64),
                                   a[r:r + 64, c:c + 64].transpose(2, 0, 1) / 255, atol=1e-7)
        assert src.cache.nbytes <= 5 * tile  # (edge tiles are smaller)
    cache = TileCache(2 * tile)
    for key in "abc":
        cache.get(key, lambda: np.zeros(tile, np.uint8))
    assert list(cache._tiles) == ["b", "c"]
    cache.get("b", lambda: pytest.fail("b is cached"))
    cache.get("d", lambda: np.zeros(tile, np.uint8))
    assert list(cache._tiles) == ["b", "d"]


def test_tiles_larger_than_a_quarter_of_the_budget_are_read_directly(tiled):
    _, z = tiled
    plane = open_source(z)._levels[0]
    cache = TileCache(3 * 64 * 64 * 3)
    out = read_tiled(plane, 0, cache, 0, 10, 0, 10)
    assert out.shape == (10, 10, 3) and len(cache) == 0
    assert tile_shape(open_source(np.zeros((50, 60, 3), np.uint8))._levels[0]) is None


def test_a_pyramidal_tiff_serves_coarse_views_from_its_sub_resolutions(tmp_path):
    path = tmp_path / "slide.ome.tif"
    levels = [np.round(lv).astype(np.uint8) for lv in PYRAMID]
    with tifffile.TiffWriter(path) as w:
        w.write(levels[0], subifds=3, tile=(64, 64))
        for lv in levels[1:]:
            w.write(lv, subfiletype=1, tile=(64, 64))
    with open_source(path) as src:
        assert src.n_levels == 4
        ye, xe = source_pixel_edges(0.0, 0.5, 0.625, 16, 512, 640)  # 32-px footprints
        assert src.level_for(32.0) == 3
        want = open_source(IMAGE).area(ye, xe)
        got = src.area(ye, xe)
        assert np.abs(got - want).max() < 2 / 255  # block means of block means, rounded
        assert src.cache.misses == 2  # level 3 (64 x 80 px) is 1 x 2 tiles, read once
