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


# --- settings validated, failed starts leave nothing, resume checked, one trainer ---

def tiny_texture(path: Path, size: int = 128) -> Path:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size] / size
    base = np.sin(12 * x + 3 * y)[..., None] * np.linspace(0.5, 1, 3)
    img = ((base + 0.3 * rng.standard_normal((size, size, 3))) * 60 + 128).clip(0, 255)
    Image.fromarray(img.astype(np.uint8)).save(path, quality=95)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("napari-scalespace train: error: "), err
    return lines[0]


@pytest.mark.parametrize("args, needle", [
    (["--batch", "0"], "train.batch must be an integer in [1, 65536], got 0"),
    (["--set", "g_lr=fast"], "train.g_lr must be a number in (0, 1], got 'fast'"),
    (["--set", "betas=5"], "train.betas must be two numbers in [0, 1)"),
    (["--set", "checkpoint_every=0"], "train.checkpoint_every must be an integer in [1, "),
    (["--set", "radial_filters=maybe"], "generator.radial_filters must be true or false"),
])
def test_bad_settings_fail_in_one_line_before_a_run_folder_exists(tmp_path, capsys, args,
                                                                   needle):
    from napari_scalespace.cli import main

    img = tiny_texture(tmp_path / "t.png")
    run = tmp_path / "run"
    assert main(["train", str(img), "--out", str(run), "--preset", "tiny", "--octaves", "1",
                 "--steps", "1", *args]) == 2
    assert needle in one_error_line(capsys)
    assert not run.exists()


def test_a_hand_edited_config_is_refused_in_one_line_on_resume(tmp_path, capsys):
    from napari_scalespace.cli import main

    img = tiny_texture(tmp_path / "t.png")
    run = tmp_path / "run"
    assert main(["train", str(img), "--out", str(run), "--preset", "tiny", "--octaves", "1",
                 "--batch", "4", "--steps", "1", "--threads", "1"]) == 0
    capsys.readouterr()
    config = run / checkpoint.CONFIG
    good = config.read_text()
    for field, value in (("checkpoint_every", 0), ("g_lr", "fast"), ("betas", 5),
                         ("batch", 0)):
        data = json.loads(good)
        data["train"][field] = value
        config.write_text(json.dumps(data))
        assert main(["train", "--out", str(run), "--resume", "--steps", "2"]) == 2
        line = one_error_line(capsys)
        assert str(config) in line and f"train.{field} must be" in line and repr(value) in line
    config.write_text(good)
    assert step_of(run) == 1  # nothing was written meanwhile


def test_a_truncated_image_leaves_nothing_and_the_same_start_then_works(tmp_path, capsys):
    from napari_scalespace.cli import main

    good = tiny_texture(tmp_path / "good.jpg", 256)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    run = tmp_path / "run"
    common = ["--out", str(run), "--preset", "tiny", "--octaves", "2", "--batch", "4",
              "--steps", "1", "--threads", "1"]
    assert main(["train", str(truncated), *common]) == 2
    assert "truncated.jpg: cannot decode image" in one_error_line(capsys)
    assert not run.exists()
    assert main(["train", str(good), *common]) == 0
    assert step_of(run) == 1


def test_resume_refuses_other_settings_and_images_and_applies_session_ones(tmp_path, capsys):
    from napari_scalespace.cli import main

    img = tiny_texture(tmp_path / "t.png")
    other = tiny_texture(tmp_path / "other.png", 96)
    run = tmp_path / "run"
    assert main(["train", str(img), "--out", str(run), "--preset", "tiny", "--octaves", "1",
                 "--batch", "4", "--steps", "1", "--threads", "1"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--steps", "2", "--preset", "small",
                 "--octaves", "2", "--batch", "8", "--set", "g_lr=0.001"]) == 2
    line = one_error_line(capsys)
    for part in ("preset: the run has tiny, given small", "octaves: the run has 1, given 2",
                 "batch: the run has 4, given 8", "g_lr: the run has 0.002, given 0.001"):
        assert part in line
    assert main(["train", str(other), "--out", str(run), "--resume", "--steps", "2"]) == 2
    line = one_error_line(capsys)
    assert f"trained on {img}, given {other}" in line
    assert step_of(run) == 1
    # the same values, and session settings, are fine
    assert main(["train", str(img), "--out", str(run), "--resume", "--steps", "3",
                 "--preset", "tiny", "--octaves", "1", "--batch", "4", "--threads", "1",
                 "--set", "checkpoint_every=1"]) == 0
    err = capsys.readouterr().err
    assert "for this session checkpoint_every: the run has 50, given 1" in err
    assert [p.name for p in checkpoint.list_checkpoints(run)] == [
        "step-00000001", "step-00000002", "step-00000003"]  # saved every step this session
    assert checkpoint.read_config(run)[0].train.checkpoint_every == 50


@pytest.mark.slow
def test_a_second_process_cannot_train_into_a_run_being_trained(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_scalespace", "train", HE, "--out", str(run),
         "--preset", "tiny", "--steps", "100000", "--set", "checkpoint_every=2",
         "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while step_of(run) < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert step_of(run) >= 2
        for args in (["--resume"], [HE, "--preset", "tiny"]):
            res = cli("train", *args, "--out", str(run), "--steps", "100000")
            assert res.returncode == 2
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            assert lines == [f"napari-scalespace train: error: run folder {run} is being "
                             f"trained by another process (pid {proc.pid}); wait for it to "
                             f"finish or stop it"], res.stderr
        assert proc.poll() is None  # the first one trains on, undisturbed
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_at = step_of(run)
    res = cli("train", "--out", str(run), "--resume", "--steps", str(killed_at + 1),
              "--threads", "1")  # the OS freed the killed process's lock
    assert res.returncode == 0, res.stderr
    assert step_of(run) == killed_at + 1
