"""The command line trains, resumes (also after kill -9), renders, and rejects bad inputs
with one clear line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_scalespace import checkpoint
from napari_scalespace.data import sample_path

HE = str(sample_path("he"))


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "napari_scalespace", *args],
                          capture_output=True, text=True, timeout=timeout)


def step_of(run: Path) -> int:
    latest = checkpoint.latest_checkpoint(run)
    return -1 if latest is None else json.loads((latest / "state.json").read_text())["step"]


@pytest.mark.slow
def test_train_then_resume_continues_the_step_count_and_render_writes_the_view(tmp_path):
    run = tmp_path / "run"
    res = cli("train", HE, "--out", str(run), "--preset", "tiny", "--steps", "6",
              "--set", "checkpoint_every=3")
    assert res.returncode == 0, res.stderr
    assert step_of(run) == 6
    res = cli("train", "--out", str(run), "--steps", "9", "--resume")
    assert res.returncode == 0, res.stderr
    assert step_of(run) == 9
    assert "trained 3 steps to step 9" in res.stdout
    out = tmp_path / "view.png"
    res = cli("render", str(run), "--zoom", "1.5", "--center", "0.5", "0.4", "--out", str(out))
    assert res.returncode == 0, res.stderr
    img = np.asarray(Image.open(out))
    assert img.shape == (32, 32, 3) and img.std() > 0


@pytest.mark.slow
def test_kill_9_during_training_then_resume_continues_from_the_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_scalespace", "train", HE, "--out", str(run),
         "--preset", "tiny", "--steps", "1000", "--set", "checkpoint_every=2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while step_of(run) < 6 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(0.37)  # land somewhere inside a later step or save
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = step_of(run)
    assert killed_at >= 6
    # every file of the latest checkpoint verifies (load raises on any corruption)
    from napari_scalespace.model.generator import Generator
    checkpoint.load_generator(run, lambda p: Generator(p.generator))
    res = cli("train", "--out", str(run), "--steps", str(killed_at + 2), "--resume",
              "--set", "checkpoint_every=2")
    assert res.returncode == 0, res.stderr
    assert f"trained 2 steps to step {killed_at + 2}" in res.stdout
    assert step_of(run) == killed_at + 2


def bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    small = tmp / "small.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(small)
    stack = tmp / "stack.tif"
    tifffile.imwrite(stack, np.zeros((2, 3, 64, 64, 3), np.uint8))
    nan = tmp / "nan.tif"
    tifffile.imwrite(nan, np.full((64, 64), np.nan, np.float32))
    broken = tmp / "broken.png"
    broken.write_text("not an image")
    return {
        "smaller than the view": ([str(small)], "smaller"),
        "4-D stack": ([str(stack)], "4-D"),
        "all-NaN image": ([str(nan)], "NaN"),
        "unreadable file": ([str(broken)], "broken.png"),
        "missing file": ([str(tmp / "nope.png")], "nope.png"),
        "octaves 0": ([HE, "--octaves", "0"], "octaves"),
    }


@pytest.mark.parametrize("case", ["smaller than the view", "4-D stack", "all-NaN image",
                                  "unreadable file", "missing file", "octaves 0"])
def test_bad_inputs_get_one_clear_error_line(tmp_path, case):
    args, needle = bad_inputs(tmp_path)[case]
    res = cli("train", *args, "--out", str(tmp_path / "run"), "--preset", "tiny", "--steps", "1")
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "error" in lines[0] and needle in lines[0], res.stderr


@pytest.mark.slow
def test_time_limit_stops_with_a_checkpoint_and_records_the_absolute_image_path(tmp_path):
    run = tmp_path / "run"
    t0 = time.monotonic()
    res = cli("train", os.path.relpath(HE), "--out", str(run), "--preset", "tiny", "--steps",
              "100000", "--time-limit", "0.001")  # 60 ms: stops after the first step
    assert res.returncode == 0, res.stderr
    assert "time limit of 0.001 min reached at step 1" in res.stderr
    assert step_of(run) == 1
    assert time.monotonic() - t0 < 300
    _, info = checkpoint.read_config(run)
    assert info["images"] == [str(Path(HE).resolve())]
    res = cli("train", HE, "--out", str(tmp_path / "x"), "--time-limit", "0")
    assert res.returncode == 2 and "--time-limit must be > 0" in res.stderr
