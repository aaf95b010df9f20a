"""Tile renderer and lazy dask pyramid: tiles are the generator's seamless views, cached,
coalesced across threads, and a dask chunk is exactly one tile."""

from __future__ import annotations

import threading
from pathlib import Path

import dask
import numpy as np
import pytest
import torch

from helpers import tiny_run
from napari_scalespace.geometry import PyramidGrid
from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator
from napari_scalespace.render.image import load, scene_latent, to_unit
from napari_scalespace.render.pyramid import LevelArray, dask_pyramid
from napari_scalespace.render.renderer import Renderer


@pytest.fixture(scope="module")
def run_dir() -> Path:
    return tiny_run()


@pytest.fixture
def renderer(run_dir) -> Renderer:
    return Renderer(run_dir, device="cpu", max_batch=16)


def test_tiles_are_the_generators_views(renderer, run_dir):
    assert renderer.extent == (1.0, 1.5) and renderer.tile_shape == (32, 32, 3)
    G, info = load(run_dir, "cpu")
    grid = renderer.grid()
    keys = [(3, 0, 0), (3, 7, 11), (1, 1, 2), (0, 0, 1)]
    tiles = renderer.render_tiles(keys)
    views = [grid.tile_view(grid.level_of_zoom(z), a, b) for z, a, b in keys]
    ref = to_unit(G.render(views, z=scene_latent(G, info, None), extra=G.cfg.tile_margin))
    ref = (ref * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for i, k in enumerate(keys):
        t = tiles[k]
        assert t.shape == (32, 32, 3) and t.dtype == np.uint8 and not t.flags.writeable
        assert np.abs(t.astype(int) - ref[i]).max() <= 1
    assert renderer.stats.generator_calls == 1 and renderer.stats.tiles_rendered == 4
    again = renderer.render_tiles(keys[:2])
    assert renderer.stats.generator_calls == 1 and renderer.stats.cache_hits == 2
    assert again[keys[0]] is tiles[keys[0]]
    with pytest.raises(ValueError):
        renderer.tile(3, 8, 0)  # 8 x 12 tiles at zoom 3
    with pytest.raises(ValueError):
        renderer.tile(-1, 0, 0)


def test_concurrent_requests_are_coalesced(renderer):
    keys = [(3, a, b) for a in range(2) for b in range(4)]
    barrier = threading.Barrier(len(keys))
    got = {}

    def work(k):
        barrier.wait()
        got[k] = renderer.tile(*k)

    threads = [threading.Thread(target=work, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(got) == set(keys)
    assert renderer.stats.tiles_rendered == len(keys)
    assert renderer.stats.generator_calls < len(keys)


def test_cache_is_bounded_lru_and_keyed_by_seed(run_dir):
    tile_bytes = 32 * 32 * 3
    r = Renderer(run_dir, device="cpu", cache_mb=3.5 * tile_bytes / 2**20, max_batch=4)
    r.render_tiles([(2, 0, a) for a in range(6)])
    assert r.cached_tiles == 3 and r.cached_bytes <= 3.5 * tile_bytes
    calls = r.stats.generator_calls
    r.tile(2, 0, 5)  # most recent: cached
    assert r.stats.generator_calls == calls
    r.tile(2, 0, 0)  # evicted: rendered again
    assert r.stats.generator_calls == calls + 1
    first = r.tile(1, 0, 0)
    r.seed = 7
    other = r.tile(1, 0, 0)
    assert r.stats.generator_calls == calls + 3 and not np.array_equal(first, other)
    none = Renderer(run_dir, device="cpu", cache_mb=0, max_batch=16)
    none.tile(0, 0, 0)
    none.tile(0, 0, 0)
    assert none.stats.generator_calls == 2 and none.cached_tiles == 0


def test_single_channel_tiles_are_float():
    torch.manual_seed(0)
    G = Generator(get_preset("tiny", octaves=2, channels=1).generator)
    r = Renderer.from_generator(G, {"scenes": 1})
    t = r.tile(2, 1, 3)
    assert t.shape == (32, 32) and t.dtype == np.float32 and 0 <= t.min() <= t.max() <= 1
    lv = dask_pyramid(r)[0]
    assert lv.dtype == np.float32 and lv.chunksize == (32, 32) and lv.shape == (128, 128)
    np.testing.assert_array_equal(lv[32:64, 96:128].compute(scheduler="sync"), t)


def test_dask_pyramid_levels_follow_the_grid(renderer):
    pyr = dask_pyramid(renderer)
    grid = PyramidGrid(3, 32, (1.0, 1.5))
    assert len(pyr) == 4
    for level, arr in enumerate(pyr):
        assert arr.shape == (*grid.level_shape(level), 3)
        assert arr.chunksize == (32, 32, 3) and arr.dtype == np.uint8
    assert [a.shape[:2] for a in dask_pyramid(renderer, octaves=1)] == [(64, 96), (32, 64)]
    assert renderer.stats.generator_calls == 0  # nothing rendered while building


def test_one_chunk_is_one_generator_call_of_one_tile(renderer):
    pyr = dask_pyramid(renderer)
    block = pyr[0].blocks[2, 5].compute(scheduler="threads")
    assert renderer.stats.generator_calls == 1 and renderer.stats.tiles_rendered == 1
    np.testing.assert_array_equal(block, renderer.tile(3, 2, 5))


def test_block_of_chunks_coalesced_seamless_and_cached(renderer, run_dir):
    pyr = dask_pyramid(renderer)
    region = pyr[0][64:128, 96:160]  # 2 x 2 tiles (2..3, 3..4)
    with dask.config.set(scheduler="threads", num_workers=4):
        block = region.compute()
    assert renderer.stats.tiles_rendered == 4
    assert renderer.stats.generator_calls < 4
    single = Renderer(run_dir, device="cpu")
    for a in range(2):
        for b in range(2):
            t = single.tile(3, 2 + a, 3 + b)
            got = block[32 * a: 32 * a + 32, 32 * b: 32 * b + 32]
            assert np.abs(got.astype(int) - t).max() <= 1
    # seamless: the step across a tile border is like a step inside a tile
    f = block.astype(float)
    across = np.abs(f[:, 32] - f[:, 31]).mean() + np.abs(f[32] - f[31]).mean()
    cols = [np.abs(f[:, j + 1] - f[:, j]).mean() for j in range(64 - 1) if j != 31]
    rows = [np.abs(f[j + 1] - f[j]).mean() for j in range(64 - 1) if j != 31]
    inside = np.mean(cols) + np.mean(rows)
    assert across < 2 * inside
    calls = renderer.stats.generator_calls
    with dask.config.set(scheduler="threads", num_workers=4):
        again = region.compute()
    assert renderer.stats.generator_calls == calls
    np.testing.assert_array_equal(again, block)


def test_level_array_indexing_matches_the_assembled_level(renderer):
    grid = renderer.grid()
    arr = LevelArray(renderer, grid, 2)  # zoom 1: 2 x 3 tiles
    assert arr.shape == (64, 96, 3) and arr.ndim == 3 and arr.size == 64 * 96 * 3
    full = np.zeros(arr.shape, np.uint8)
    for a in range(2):
        for b in range(3):
            full[32 * a: 32 * a + 32, 32 * b: 32 * b + 32] = renderer.tile(1, a, b)
    np.testing.assert_array_equal(arr[:], full)
    for key in [(slice(5, 40), slice(20, 90)), (slice(None, None, 3), slice(95, 0, -7), 1),
                (10, slice(30, 70)), (Ellipsis, 2), (slice(40, 40),), (-1, -1)]:
        np.testing.assert_array_equal(arr[key], full[key])
    np.testing.assert_array_equal(np.asarray(arr), full)
