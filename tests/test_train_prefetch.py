"""The next step's patches are read in the background, and nothing else changes: the same
batches as drawing them at the step, the same random stream after them, and a run stopped
with a batch read ahead resumes bit-identically."""

from __future__ import annotations

import threading

import numpy as np
import torch
from safetensors.torch import load_file

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.data import PatchDataset, open_source
from napari_scalespace.model.config import get_preset
from napari_scalespace.train.prefetch import Prefetch
from napari_scalespace.train.trainer import Trainer


def dataset(rng: np.random.Generator) -> PatchDataset:
    return PatchDataset([open_source(texture(128))], octaves=2, resolution=16, seed=rng)


def test_prefetched_batches_and_the_draws_after_them_are_those_drawn_at_the_step():
    plain_rng, ahead_rng = np.random.default_rng(5), np.random.default_rng(5)
    plain, ahead = dataset(plain_rng), dataset(ahead_rng)
    prefetch = Prefetch(ahead, ahead_rng)
    threads = set()
    batch_of = ahead.batch_of
    ahead.batch_of = lambda v: threads.add(threading.current_thread().name) or batch_of(v)
    try:
        for step in range(4):
            kimg = step * 0.004
            want = plain.draw(4, kimg)
            got = prefetch.take(4, kimg) or ahead.draw(4, kimg)
            assert all(torch.equal(a, b) for a, b in zip(want, got, strict=True))
            # the step's own draws (e.g. the consistency loss's) follow the batch's
            assert plain_rng.random() == ahead_rng.random()
            prefetch.start(4, kimg + 0.004)
    finally:
        prefetch.close()
    assert any(name.startswith("patches") for name in threads)


def test_a_dropped_prefetch_leaves_the_generator_as_it_was():
    rng = np.random.default_rng(2)
    prefetch = Prefetch(dataset(rng), rng)
    before = rng.bit_generator.state
    prefetch.start(4, 0.0)
    assert rng.bit_generator.state != before and prefetch.rng_state() == before
    assert prefetch.take(4, 0.5) is None  # another step's progress: not this batch
    assert rng.bit_generator.state == before
    prefetch.start(4, 0.0)
    prefetch.close()
    assert rng.bit_generator.state == before


def test_a_run_stopped_with_a_batch_read_ahead_resumes_bit_identically(tmp_path):
    source = open_source(texture(128))
    preset = get_preset("tiny", octaves=2, batch=4, checkpoint_every=10)
    straight = Trainer(tmp_path / "a", [source], preset, seed=1)
    for _ in straight.run(5):
        pass
    straight.close()
    cancel = threading.Event()
    first = Trainer(tmp_path / "b", [source], preset, seed=1)
    for event in first.run(5, cancel=cancel):
        if event.step == 2:  # step 3's batch is being read: the stop drops it
            assert first.prefetch._pending is not None
            cancel.set()
    first.close()
    assert checkpoint.latest_checkpoint(tmp_path / "b").name.endswith("2")
    resumed = Trainer(tmp_path / "b", [source], resume=True)
    for _ in resumed.run(5):
        pass
    resumed.close()
    a = checkpoint.latest_checkpoint(tmp_path / "a") / "generator.safetensors"
    b = checkpoint.latest_checkpoint(tmp_path / "b") / "generator.safetensors"
    want, got = load_file(a), load_file(b)
    assert all(torch.equal(want[k], got[k]) for k in want)
