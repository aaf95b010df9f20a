"""Tile batches sized by measurement (render/batching.py) and the renderer that uses them."""

import time

import numpy as np
import pytest
import torch

from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator
from napari_scalespace.render.batching import BatchSizer, batch_limit
from napari_scalespace.render.renderer import Renderer


def drive(sizer: BatchSizer, cost, calls: int = 60) -> list[int]:
    """Feed ``calls`` full generator calls timed by ``cost(n)``; the sizes asked for."""
    asked = []
    for _ in range(calls):
        n = sizer.size
        asked.append(n)
        sizer.record(n, cost(n))
    return asked


def test_grows_while_batching_pays_and_stops_at_the_limit():
    sizer = BatchSizer(limit=16)
    asked = drive(sizer, lambda n: 0.010 + 0.001 * n)  # a fixed cost per call: batch
    assert sizer.settled and sizer.size == 16
    assert asked[:3] == [1, 1, 1]  # a warm-up call and two probes per size
    assert sorted(set(asked)) == [1, 2, 4, 8, 16]
    per = sizer.per_tile()
    assert per[1] == pytest.approx(0.011) and per[16] == pytest.approx(0.010 / 16 + 0.001)


def test_settles_on_the_fastest_size_when_larger_batches_get_slower():
    # per tile: 10 ms at 1, 6 at 2, 5 at 4, 9 at 8 (page faults of large temporaries)
    table = {1: 0.010, 2: 0.006, 4: 0.005, 8: 0.009, 16: 0.004}
    sizer = BatchSizer(limit=32)
    asked = drive(sizer, lambda n: table[n] * n)
    assert sizer.size == 4
    assert 16 not in asked  # never tried past the first size clearly slower than the best


def test_a_gain_under_the_threshold_does_not_grow_the_batch():
    sizer = BatchSizer(limit=32, gain=0.05)
    drive(sizer, lambda n: n * (0.010 if n == 1 else 0.0098))  # 2 % better: not worth it
    assert sizer.settled and sizer.size == 1


def test_a_size_that_does_not_help_yet_does_not_end_the_search():
    # measured on a `small` generator (mmap-free): 2 no better than 1, 16 much better
    table = {1: 0.058, 2: 0.056, 4: 0.047, 8: 0.042, 16: 0.040}
    sizer = BatchSizer(limit=16)
    drive(sizer, lambda n: table[n] * n)
    assert sizer.settled and sizer.size == 8  # the smallest within 5 % of the fastest


def test_requests_too_small_for_the_size_tried_settle_on_the_best_so_far():
    sizer = BatchSizer(limit=32, stall=4)
    for _ in range(3):
        sizer.record(1, 0.010)
    for _ in range(3):
        sizer.record(2, 0.012)
    assert sizer.size == 4 and not sizer.settled
    for _ in range(3):
        sizer.record(3, 0.015)  # a viewer asking for 3 tiles at a time
    assert not sizer.settled
    sizer.record(3, 0.015)
    assert sizer.settled and sizer.size == 2


def test_the_warm_up_call_is_not_counted_and_partial_batches_are_ignored():
    sizer = BatchSizer(limit=4)
    sizer.record(1, 5.0)  # first call at size 1: warm-up (oneDNN planning)
    sizer.record(3, 0.001)  # not the size asked for
    assert sizer.per_tile() == {}
    sizer.record(1, 0.010)
    assert sizer.per_tile() == {1: 0.010}


def test_neighbours_are_measured_again_after_recheck_calls():
    load = {"slow": False}

    def cost(n):  # batching pays until the machine changes, then it hurts
        return n * (0.010 / n + 0.001) if not load["slow"] else n * 0.001 * n

    sizer = BatchSizer(limit=8, recheck=20)
    drive(sizer, cost, calls=4 * 3 + 5)  # sizes 1, 2, 4, 8, then 5 calls at 8
    assert sizer.settled and sizer.size == 8
    load["slow"] = True
    drive(sizer, cost, calls=30)  # 15 calls until the recheck, then 1 is measured against 2
    assert sizer.settled and sizer.size == 1


def test_fixed_size_and_bad_arguments():
    sizer = BatchSizer(fixed=8)
    drive(sizer, lambda n: 1.0, calls=5)
    assert sizer.size == 8 and sizer.settled and sizer.per_tile() == {}
    with pytest.raises(ValueError, match="batch size"):
        BatchSizer(fixed=0)
    with pytest.raises(ValueError, match="limit"):
        BatchSizer(limit=0)


def test_batch_limit_keeps_a_batch_in_the_memory_budget():
    assert batch_limit(100 << 20, budget_bytes=1 << 30) == 8  # 8 x 100 MiB <= 1 GiB < 16 x
    assert batch_limit(2 << 30, budget_bytes=1 << 30) == 1  # one view always renders
    assert batch_limit(1 << 10, budget_bytes=1 << 30, cap=32) == 32
    G = Generator(get_preset("small").generator)
    # the estimate grows with the canvases: a tile margin adds work
    assert G.view_bytes(16) > G.view_bytes(0) > 0


class SlowPerCall(torch.nn.Module):
    """A generator whose calls cost 20 ms plus 1 ms per view: batching pays."""

    def __init__(self, G: Generator) -> None:
        super().__init__()
        self.G = G
        self.cfg = G.cfg
        self.input_weight = G.input_weight

    def forward(self, z, zoom, cy, cx, extra=0):
        time.sleep(0.020 + 0.001 * z.shape[0])
        return self.G(z, zoom, cy, cx, extra=extra)

    def view_bytes(self, extra=0):
        return self.G.view_bytes(extra)


def test_the_renderer_learns_its_batch_from_its_own_calls():
    torch.manual_seed(0)
    G = Generator(get_preset("tiny", octaves=4).generator)
    r = Renderer.from_generator(SlowPerCall(G), {"scenes": 1}, cache_mb=0)
    assert r.batch_size == 1 and not r.sizer.settled and r.max_batch == r.sizer.limit >= 8
    grid = r.grid()
    keys = [(4, a, b) for a in range(grid.n_tiles(0)[0]) for b in range(grid.n_tiles(0)[1])]
    for i in range(0, len(keys), 8):  # a viewer asking for 8 tiles at a time
        tiles = r.render_tiles(keys[i:i + 8])
        assert len(tiles) == len(keys[i:i + 8])
    assert r.batch_size == 8  # as large as the requests allow
    assert r.stats.tiles_rendered == len(keys)
    assert r.stats.generator_calls < len(keys) / 2
    # same tiles as a renderer with a fixed batch (up to float round-off of the batch size)
    fixed = Renderer.from_generator(G, {"scenes": 1}, cache_mb=0, max_batch=4)
    got = r.render_tiles(keys[:4])
    for k in keys[:4]:
        assert np.abs(got[k].astype(int) - fixed.tile(*k)).max() <= 1
