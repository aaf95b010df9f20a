"""One trainer at a time per run folder (an OS lock, freed by a killed process), failed starts
leave nothing behind, and a resume is checked against what the run recorded."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

from napari_scalespace import checkpoint
from napari_scalespace.checkpoint import CheckpointError
from napari_scalespace.data import open_source
from napari_scalespace.model.config import get_preset
from napari_scalespace.run_lock import LOCK_FILE, RunBusyError, RunLock
from napari_scalespace.train.resume import resume_preset
from napari_scalespace.train.trainer import Trainer

PRESET = get_preset("tiny", octaves=1, batch=4, checkpoint_every=100)


def texture(size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size] / size
    base = np.sin(12 * x + 3 * y)[..., None] * np.linspace(0.5, 1, 3)
    return ((base + 0.3 * rng.standard_normal((size, size, 3))) * 60 + 128).clip(
        0, 255).astype(np.uint8)


def source():
    return open_source(texture())


def test_a_second_trainer_on_a_training_folder_is_refused_until_the_first_ends(tmp_path):
    run = tmp_path / "run"
    first = Trainer(run, [source()], PRESET, seed=0)
    for maker in (lambda: Trainer(run, [source()], resume=True),
                  lambda: Trainer(run, [source()], PRESET, seed=0)):
        with pytest.raises(RunBusyError, match=r"run folder .*run is being trained by another "
                                               r"trainer in this process") as e:
            maker()
        assert "\n" not in str(e.value)
    assert checkpoint.read_config(run)[0].train.batch == 4  # the first one's run is intact
    cancel = threading.Event()
    for _event in first.run(10, cancel=cancel):
        cancel.set()  # one step, then a checkpoint at step 1
    assert checkpoint.latest_checkpoint(run).name == "step-00000001"
    second = Trainer(run, [source()], resume=True)  # the run is free again
    assert second.step_count == 1
    # the first trainer, stale now, may not write over what the second one trains
    list(second.run(3))
    with pytest.raises(CheckpointError, match="was trained to step 3 by another process"):
        first.save()
    assert checkpoint.latest_checkpoint(run).name == "step-00000003"


def test_the_lock_is_an_os_lock_freed_when_its_process_is_killed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    code = ("import sys, time; from napari_scalespace.run_lock import RunLock; "
            "lock = RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RunBusyError, match=f"pid {proc.pid}"):
            RunLock(run).acquire()
    finally:
        proc.kill()
        proc.wait()
    with RunLock(run) as lock:  # a killed holder frees it: no stale lock
        assert lock.held
    assert not RunLock(run).held


def test_a_failed_first_step_removes_the_new_run_and_the_same_start_then_works(tmp_path):
    run = tmp_path / "deep" / "run"
    trainer = Trainer(run, [source()], PRESET, seed=0)
    assert (run / checkpoint.CONFIG).is_file() and (run / LOCK_FILE).exists()

    def broken(*a, **k):
        raise ValueError("cannot decode image (truncated)")

    trainer.dataset.draw = broken  # what a truncated image does in the first step
    with pytest.raises(ValueError, match="truncated"):
        list(trainer.run(5))
    assert not (tmp_path / "deep").exists()  # everything this start made is gone
    again = Trainer(run, [source()], PRESET, seed=0)
    assert [e.step for e in again.run(2)] == [1, 2]
    assert checkpoint.latest_checkpoint(run).name == "step-00000002"


def test_a_failed_start_in_an_existing_folder_removes_only_its_own_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    trainer = Trainer(run, [source()], PRESET, seed=0)
    trainer.dataset.draw = lambda *a, **k: 1 / 0
    with pytest.raises(ZeroDivisionError):
        list(trainer.run(5))
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]
    assert (run / "notes.txt").read_text() == "mine"


def test_a_killed_start_is_replaced_by_a_new_run_and_resumes_from_step_zero(tmp_path):
    run = tmp_path / "run"
    checkpoint.create_run(run, PRESET, {"images": ["x"]})  # config.json, no checkpoint
    fresh = Trainer(run, [source()], get_preset("tiny", octaves=1, batch=2), seed=0)
    assert any("never saved a checkpoint" in n for n in fresh.notes)
    assert checkpoint.read_config(run)[0].train.batch == 2
    fresh.close()
    assert list(run.iterdir()) == []  # closed before any checkpoint: a failed start
    checkpoint.create_run(run, PRESET, {"images": ["x"]})
    resumed = Trainer(run, [source()], resume=True)
    assert resumed.step_count == 0 and any("no checkpoint yet" in n for n in resumed.notes)
    assert [e.step for e in resumed.run(1)] == [1]
    # a trained run is never replaced by a new start
    with pytest.raises(CheckpointError, match="already holds a trained run"):
        Trainer(run, [source()], PRESET, seed=0)
    assert checkpoint.latest_checkpoint(run).name == "step-00000001"


def test_bad_data_or_config_fails_before_anything_is_written(tmp_path):
    run = tmp_path / "run"
    gray = open_source(texture()[..., 0])
    with pytest.raises(ValueError, match="channel"):
        Trainer(run, [gray], PRESET, seed=0)
    with pytest.raises(ValueError, match="mbstd_channels"):  # caught by the discriminator
        Trainer(run, [source()], get_preset("tiny", octaves=1, mbstd_channels=5), seed=0)
    assert not run.exists()


def test_resume_compares_given_settings_with_the_recorded_ones(tmp_path):
    run = tmp_path / "run"
    img = str(tmp_path / "a.png")
    checkpoint.create_run(run, get_preset("tiny", octaves=2, extra_octaves=1, positions="known"),
                          {"images": [img], "scenes": 1})
    same, notes = resume_preset(run, preset="tiny", overrides={"batch": 8, "positions": "auto",
                                                               "extra_octaves": 1},
                                data_octaves=1, images=[img])
    assert same == checkpoint.read_config(run)[0] and notes == []
    with pytest.raises(CheckpointError) as e:
        resume_preset(run, preset="small", overrides={"batch": 16, "g_lr": 0.001},
                      data_octaves=2, images=[str(tmp_path / "b.png")])
    msg = str(e.value)
    assert "\n" not in msg
    for part in ("preset: the run has tiny, given small", "batch: the run has 8, given 16",
                 "g_lr: the run has 0.002, given 0.001", "octaves: the run has 2, given 3",
                 f"trained on {img}, given {tmp_path / 'b.png'}"):
        assert part in msg
    assert msg.count("octaves: the run") == 1  # generator and discriminator share it
    with pytest.raises(ValueError, match=r"train\.g_lr must be a number"):
        resume_preset(run, overrides={"g_lr": "fast"})
    session, notes = resume_preset(run, overrides={"checkpoint_every": 7})
    assert session.train.checkpoint_every == 7 and "checkpoint_every" in notes[0]
    assert checkpoint.read_config(run)[0].train.checkpoint_every == 50  # the run's stays
    data = json.loads((run / checkpoint.CONFIG).read_text())
    assert data["train"]["checkpoint_every"] == 50
