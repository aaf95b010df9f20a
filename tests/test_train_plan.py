"""A run of planned length fits its octave schedule to the plan and keeps it on resume; the
detail loss does not reward blur."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.data import OctaveSchedule, open_source
from napari_scalespace.model.config import get_preset
from napari_scalespace.train import trainer as trainer_module
from napari_scalespace.train.losses import detail, detail_energy, reconstruction
from napari_scalespace.train.trainer import Trainer, planned_steps


def test_a_short_plan_shortens_warmup_and_skew_and_a_long_one_keeps_them():
    s = OctaveSchedule(4, warmup_kimg=1.0, skew_kimg=4.0, boost_last=2.0)
    short = s.fitted(3.2, 0.1, 0.4)  # 400 steps of batch 8
    assert short.warmup_kimg == pytest.approx(0.32) and short.skew_kimg == pytest.approx(1.28)
    # the short run reaches the final skew before it ends; the fixed schedule never does
    end = 3.2
    assert short.probabilities(end)[-1] / short.probabilities(end)[0] == pytest.approx(2.0)
    assert s.probabilities(end)[-1] / s.probabilities(end)[0] < 1.6
    assert s.fitted(100.0, 0.1, 0.4) == s
    assert s.fitted(3.2, 0.0, 0.0) == s


def test_planned_steps_from_the_first_steps_speed():
    # 4 steps in 2 s of a 60 s limit: 4 + 58 / 0.5 = 120
    assert planned_steps(1000, at=4, timed=4, elapsed=2.0, time_limit=60.0) == 120
    assert planned_steps(50, at=4, timed=4, elapsed=2.0, time_limit=60.0) == 50
    # resumed at step 100: its own 4 steps time it
    assert planned_steps(10**6, at=104, timed=4, elapsed=4.0, time_limit=10.0) == 110


def _weights(run):
    return load_file(checkpoint.latest_checkpoint(run) / "generator.safetensors")


def test_the_plan_is_saved_and_a_resume_keeps_it_bit_identically(tmp_path):
    source = open_source(texture(128))
    preset = get_preset("tiny", octaves=2, batch=4, checkpoint_every=2)
    straight = Trainer(tmp_path / "a", [source], preset, seed=1)
    for _ in straight.run(4, plan=True):
        pass
    assert straight.planned_kimg == pytest.approx(0.016)
    assert straight.dataset.schedule.warmup_kimg == pytest.approx(0.0016)
    straight.close()
    first = Trainer(tmp_path / "b", [source], preset, seed=1)
    cancel = threading.Event()
    for event in first.run(4, cancel=cancel, plan=True):
        if event.step == 2:
            cancel.set()
    first.close()
    resumed = Trainer(tmp_path / "b", [source], resume=True)
    assert resumed.step_count == 2 and resumed.planned_kimg == pytest.approx(0.016)
    for _ in resumed.run(4, plan=True):  # already planned: the plan stays
        pass
    resumed.close()
    want, got = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(want[k], got[k]) for k in want)
    # a resume asking for more steps keeps the recorded plan too
    longer = Trainer(tmp_path / "b", [source], resume=True)
    for _ in longer.run(6, plan=True):
        pass
    assert longer.planned_kimg == pytest.approx(0.016)
    longer.close()


def test_an_unplanned_run_follows_the_fixed_schedule_and_a_time_limit_plans_it(tmp_path,
                                                                              monkeypatch):
    source = open_source(texture(128))
    preset = get_preset("tiny", octaves=2, batch=4, checkpoint_every=100)
    plain = Trainer(tmp_path / "a", [source], preset, seed=0)
    for _ in plain.run(2):
        pass
    assert plain.planned_kimg is None
    assert plain.dataset.schedule.warmup_kimg == preset.train.warmup_kimg
    plain.close()
    timed = Trainer(tmp_path / "b", [source], preset, seed=0)

    class Clock:  # one second per step
        @staticmethod
        def monotonic():
            return float(timed.step_count)

        perf_counter = staticmethod(time.perf_counter)

    monkeypatch.setattr(trainer_module, "time", Clock)
    steps = [e.step for e in timed.run(10**6, time_limit=10.5, plan=True)]
    timed.close()
    assert steps == list(range(1, 12))  # stopped once past the limit
    # planned after PLAN_AFTER = 4 steps in 4 s: 4 + 6.5 / 1 -> step 10
    assert timed.planned_kimg == pytest.approx(10 * 4 / 1000)
    with pytest.raises(ValueError, match="time_limit"):
        next(Trainer(tmp_path / "c", [source], preset).run(5, time_limit=0))


def _image(seed=0, size=64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g) * 2 - 1


def test_the_detail_loss_is_zero_for_the_patch_and_prefers_moved_detail_to_blur():
    real = _image()
    blur = F.avg_pool2d(F.pad(real, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    moved = torch.roll(real, shifts=(1, 1), dims=(2, 3))  # the right detail, a pixel off
    assert detail(real, real).item() == 0
    # a pixel loss prefers the blur; the detail loss prefers the detail
    assert reconstruction(blur, real) < reconstruction(moved, real)
    assert detail(moved, real) < 0.2 * detail(blur, real)
    bands = detail_energy(real)
    assert [tuple(b.shape) for b in bands] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]


def test_the_detail_loss_weights_samples_like_the_reconstruction():
    real, fake = _image(0), _image(1)
    w = torch.tensor([1.0, 0.0])
    assert detail(fake, real, w) == pytest.approx(detail(fake[:1], real[:1]).item())
    assert detail(fake, real, torch.zeros(2)).item() == 0


def test_the_rms_detail_energy_weighs_a_sparse_edge_as_gradient_energy_does():
    """Two renders with the same mean |band 0| over 8 x 8 blocks: one spread evenly, one a
    single strong pixel per block. Squares (gradient energy, RMS) tell them apart; the mean
    absolute energy does not."""
    spread = torch.zeros(1, 1, 16, 16)
    spread[..., ::2, :] = 0.1  # band 0 is +-0.05 everywhere
    v = 0.05 * 64 / 1.5  # band 0 of one pixel v in a 2 x 2 cell: 3v/4 and three times -v/4
    sparse = torch.zeros(1, 1, 16, 16)
    sparse[..., ::8, ::8] = v
    mean_abs = [detail_energy(x, levels=1, block=8)[0] for x in (spread, sparse)]
    rms = [detail_energy(x, levels=1, block=8, rms=True)[0] for x in (spread, sparse)]
    assert torch.allclose(mean_abs[0], mean_abs[1], rtol=1e-5)
    assert torch.allclose(rms[0], torch.tensor(0.05), rtol=1e-4)
    assert torch.allclose(rms[1], v * torch.tensor(0.75 / 64).sqrt(), rtol=1e-4)
    assert detail(spread, spread, rms=True).item() == 0


def test_training_with_the_detail_loss_reports_it(tmp_path):
    source = open_source(texture(128))
    preset = get_preset("tiny", octaves=2, batch=4, positions="known", detail_weight=5.0)
    trainer = Trainer(tmp_path / "run", [source], preset, seed=0)
    events = list(trainer.run(2))
    trainer.close()
    assert all(np.isfinite(e.losses["detail"]) and e.losses["detail"] > 0 for e in events)


def test_the_low_pass_reconstruction_compares_blocks_of_the_pooled_size():
    real, fake = _image(0), _image(1)
    pool = torch.tensor([1, 4])
    want = (reconstruction(fake[:1], real[:1])
            + reconstruction(F.avg_pool2d(fake[1:], 4), F.avg_pool2d(real[1:], 4))) / 2
    assert reconstruction(fake, real, pool=pool) == pytest.approx(want.item(), rel=1e-6)
    # a blur of the right local means costs nothing at the pooled size
    blocks = F.interpolate(F.avg_pool2d(real, 4), scale_factor=4, mode="nearest")
    assert reconstruction(blocks, real, pool=torch.tensor([4, 4])).item() < 1e-6


def test_the_pool_is_the_view_pixels_one_finest_memory_cell_covers(tmp_path):
    from test_train_memory import preset as memory_preset

    source = open_source(texture(128))
    trainer = Trainer(tmp_path / "run", [source],
                      memory_preset(reconstruction_lowpass=True), seed=0)
    # tiny: 32-px views; finest memory level 8 * 2**2 = 32 cells per scene unit -> a cell is
    # 32 * 2**k / 32 = 2**k view pixels at octave k
    assert trainer._rec_pool(torch.tensor([0, 1, 1])).tolist() == [1, 2, 2]
    trainer.close()
    plain = Trainer(tmp_path / "plain", [source], get_preset("tiny", octaves=2, batch=4,
                                                               reconstruction_lowpass=True))
    assert plain._rec_pool(torch.tensor([0, 1])) is None  # no memory: the full view
    plain.close()
