"""Progressive levels answer at once (cache, else an enlarged quadrant of a cached ancestor,
else zeros), render what is missing in the background, newest read first."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_run
from napari_scalespace.render.progressive import TileScheduler, progressive_pyramid
from napari_scalespace.render.renderer import Renderer


@pytest.fixture(scope="module")
def run_dir():
    return tiny_run()


@pytest.fixture
def renderer(run_dir):
    return Renderer(run_dir, device="cpu", cache_mb=64, max_batch=16)


def test_first_read_is_immediate_then_tiles_arrive(renderer):
    levels = progressive_pyramid(renderer, octaves=3)
    lv = levels[1]  # zoom 2: 4 x 6 tiles of 32 px
    landed = threading.Event()
    lv.scheduler.add_listener(landed.set)
    first = lv[0:64, 32:96]  # 2 x 2 tiles, none cached, no ancestor cached
    assert first.shape == (64, 64, 3) and not first.any()
    assert landed.wait(60) and lv.scheduler.wait_idle(60)
    assert renderer.stats.generator_calls == 1 and renderer.stats.tiles_rendered == 4
    again = lv[0:64, 32:96]
    expect = np.concatenate([np.concatenate([renderer.tile(2, a, b) for b in (1, 2)], axis=1)
                             for a in (0, 1)])
    assert np.array_equal(again, expect)
    assert renderer.stats.generator_calls == 1  # the second read rendered nothing
    assert lv.scheduler.idle and not lv.scheduler.errors


def test_missing_tiles_show_their_ancestors_quadrant(renderer):
    levels = progressive_pyramid(renderer, octaves=3)
    parent = renderer.tile(1, 1, 2)  # zoom 1 tile (1, 2) contains zoom 3 tiles (4..7, 8..11)
    # zoom 3, tile (5, 10): 2 levels finer; quadrant rows 8..16, cols 16..24 of the parent
    got = levels[0][5 * 32:6 * 32, 10 * 32:11 * 32]
    quad = parent[8:16, 16:24]
    assert np.array_equal(got, np.repeat(np.repeat(quad, 4, axis=0), 4, axis=1))
    levels[0].scheduler.wait_idle(60)
    assert np.array_equal(levels[0][5 * 32:6 * 32, 10 * 32:11 * 32], renderer.tile(3, 5, 10))


def test_newest_read_is_served_first_and_stale_tiles_are_dropped(renderer):
    scheduler = TileScheduler(renderer)
    levels = progressive_pyramid(renderer, octaves=3, scheduler=scheduler)
    gate = threading.Event()
    order = []
    real = renderer.render_tiles

    def slow(keys):
        gate.wait(30)
        order.append(sorted(keys))
        return real(keys)

    renderer.render_tiles = slow
    levels[0][0:32, 0:32]            # zoom 3 (0, 0): taken at once by the worker, held at the gate
    time.sleep(0.2)
    levels[0][32:64, 0:32]           # zoom 3 (1, 0): replaced by the next read of level 0
    levels[0][64:96, 0:32]           # zoom 3 (2, 0)
    levels[2][0:32, 0:32]            # zoom 1 (0, 0): the newest read
    gate.set()
    assert scheduler.wait_idle(60)
    assert order == [[(3, 0, 0)], [(1, 0, 0)], [(3, 2, 0)]]
    scheduler.close()


def test_centre_tiles_are_requested_first(renderer):
    levels = progressive_pyramid(renderer, octaves=3)
    seen = []
    levels[0].scheduler.request = lambda level, keys: seen.append(keys)
    levels[0][0:5 * 32, 0:5 * 32]
    keys = [tuple(k) for k in seen[0].tolist()]
    assert keys[0] == (3, 2, 2) and len(keys) == 25
    d = [(a - 2) ** 2 + (b - 2) ** 2 for _, a, b in keys]
    assert d == sorted(d)


def test_render_errors_are_kept_and_the_worker_goes_on(renderer):
    levels = progressive_pyramid(renderer, octaves=3)
    calls = []
    real = renderer.render_tiles

    def flaky(keys):
        calls.append(keys)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return real(keys)

    renderer.render_tiles = flaky
    levels[0][0:32, 0:32]
    assert levels[0].scheduler.wait_idle(60)
    assert [str(e) for e in levels[0].scheduler.errors] == ["out of memory"]
    levels[0][0:32, 0:32]
    assert levels[0].scheduler.wait_idle(60)
    assert renderer.cached((3, 0, 0)) is not None


EXIT_WHILE_RENDERING = """
import sys, time, weakref
from napari_scalespace.render import progressive
from napari_scalespace.render.renderer import Renderer
levels = progressive.progressive_pyramid(Renderer(sys.argv[1], device="cpu"))
scheduler = levels[0].scheduler
zoom = len(levels) - 1
scheduler.request(0, [(zoom, a, b) for a in range(2**zoom) for b in range(2**zoom)])
time.sleep(0.5)
assert not scheduler.idle, "the scheduler should still be rendering"
if sys.argv[2] == "unguarded":  # what an exit without the guard does
    progressive._OPEN = weakref.WeakSet()
"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A 1-step `small` run: its tiles go through the fused kernel's OpenMP threads."""
    from napari_scalespace.data import open_source
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.train.trainer import Trainer
    from test_train_trainer import texture

    root = tmp_path_factory.mktemp("small")
    trainer = Trainer(root / "run", [open_source(texture(256))],
                      get_preset("small", octaves=2, batch=2, memory_channels=0), seed=0)
    for _ in trainer.run(1):
        pass
    return root / "run"


def test_exiting_while_tiles_render_ends_cleanly(small_run, tmp_path):
    """The interpreter exits while the scheduler's daemon thread is inside the generator: the
    scheduler is closed first, so the process ends with status 0 (without that, the thread is
    torn down inside native code and the process aborts)."""
    script = tmp_path / "exit.py"
    script.write_text(EXIT_WHILE_RENDERING)
    done = subprocess.run([sys.executable, str(script), str(small_run), "guarded"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr
