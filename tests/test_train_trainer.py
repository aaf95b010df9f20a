"""The trainer reports progress every step, stops on cancel with a checkpoint, and refuses
data that does not fit the preset before creating a run."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.data import open_source
from napari_scalespace.model.config import get_preset
from napari_scalespace.train.trainer import Trainer


def test_run_yields_every_step_and_cancel_stops_with_a_checkpoint(tmp_path):
    source = open_source(texture())
    preset = get_preset("tiny", octaves=1, batch=4, checkpoint_every=100)
    trainer = Trainer(tmp_path / "run", [source], preset, seed=0)
    cancel = threading.Event()
    events = []
    for event in trainer.run(50, cancel=cancel):
        events.append(event)
        if event.step == 3:
            cancel.set()
    assert [e.step for e in events] == [1, 2, 3]
    assert all(np.isclose(sum(e.octave_probabilities), 1) for e in events)
    assert {"D", "G"} <= set(events[0].losses) and events[0].images_per_s > 0
    assert events[0].total_steps == 50 and events[0].kimg == pytest.approx(0.004)
    latest = checkpoint.latest_checkpoint(tmp_path / "run")
    assert latest is not None and latest.name.endswith("00000003")
    resumed = Trainer(tmp_path / "run", [source], resume=True)
    assert resumed.step_count == 3 and resumed.kimg == pytest.approx(0.012)


def test_channel_mismatch_is_refused_before_a_run_is_created(tmp_path):
    gray = open_source(texture(channels=1)[..., 0])
    with pytest.raises(ValueError, match="channel"):
        Trainer(tmp_path / "run", [gray], get_preset("tiny", octaves=1), seed=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("rampup", [0.0, 0.05])
def test_the_ema_follows_the_generator_with_its_half_life_ramped_up_early(tmp_path, rampup):
    preset = get_preset("tiny", octaves=1, batch=4, ema_kimg=0.5, ema_rampup=rampup)
    trainer = Trainer(tmp_path / "run", [open_source(texture())], preset, seed=0)
    before = [p.detach().clone() for p in trainer.G_ema.parameters()]
    trainer.step()  # 4 images shown: half-life min(500, 4 * rampup) images
    half_life = 500 if rampup == 0 else 4 * rampup
    beta = 0.5 ** (4 / half_life)
    for old, ema, new in zip(before, trainer.G_ema.parameters(), trainer.G.parameters(),
                             strict=True):
        torch.testing.assert_close(ema, old * beta + new * (1 - beta))
    moved = sum((e - o).abs().sum() for e, o in zip(trainer.G_ema.parameters(), before,
                                                   strict=True))
    assert moved > 0
