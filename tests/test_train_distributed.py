"""Training with torchrun: 2 processes with the gloo backend on the CPU stay in sync, rank 0
alone writes one run, and resuming continues exactly as the uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from napari_scalespace import checkpoint
from napari_scalespace.data.samples import sample_path


def torchrun(run, steps: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "napari_scalespace", "train", str(sample_path("he")), "--out", str(run),
           "--preset", "tiny", "--steps", str(steps), "--device", "cpu", "--seed", "3", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


def latest_state(run) -> tuple[dict, dict]:
    ckpt = checkpoint.latest_checkpoint(run)
    state = json.loads((ckpt / "state.json").read_text())
    return state, load_file(str(ckpt / "generator.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    # the fixed schedule: a planned run fits it to its --steps, so 4 then 6 would not be 6
    fixed = ("--set", "warmup_fraction=0", "--set", "skew_fraction=0")
    torchrun(root / "straight", 6, *fixed)
    first = torchrun(root / "resumed", 4, "--set", "checkpoint_every=2", *fixed)
    torchrun(root / "resumed", 6, "--resume")
    return root, first


def test_two_ranks_stay_in_sync_and_rank_0_alone_writes(runs):
    root, first = runs
    state, _ = latest_state(root / "straight")
    assert state["step"] == 6 and state["kimg"] == pytest.approx(6 * 8 / 1000)  # global batch
    ranks = state["metrics"]["ranks"]
    assert ranks["world"] == 2 and len(set(ranks["digests"])) == 1  # identical weights
    # one run directory, one progress bar (rank 0), checkpoints every 2 steps kept; rank 0
    # alone takes the run's lock (a second rank taking it would have failed the run)
    assert sorted(p.name for p in (root / "resumed").iterdir()) == [
        ".training.lock", "checkpoints", "config.json", "latest"]
    assert first.stderr.count("4/4") >= 1 and "trained 4 steps" in first.stdout
    assert first.stdout.count("trained 4 steps") == 1


def test_resume_continues_exactly_as_the_uninterrupted_run(runs):
    root, _ = runs
    straight_state, straight = latest_state(root / "straight")
    resumed_state, resumed = latest_state(root / "resumed")
    assert resumed_state["step"] == straight_state["step"] == 6
    assert len(set(resumed_state["metrics"]["ranks"]["digests"])) == 1
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0, msg=name)


def test_a_batch_that_does_not_split_is_refused(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "napari_scalespace", "train", str(sample_path("he")), "--out",
           str(tmp_path / "run"), "--preset", "tiny", "--steps", "1", "--batch", "5",
           "--device", "cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode != 0
    assert "must be a multiple of the number of processes (2)" in res.stderr
