"""Run directories and checkpoints: round trips, atomicity, retention and clear errors."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import napari_scalespace
from napari_scalespace import checkpoint as ck
from napari_scalespace.checkpoint import (
    CheckpointError,
    capture_rng,
    create_run,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_generator,
    read_config,
    restore_rng,
    save_checkpoint,
)
from napari_scalespace.model.config import PRESETS

PRESET = PRESETS["tiny"]


class Net(nn.Module):
    """Parameters, BatchNorm buffers (float and int64), a custom and a non-persistent buffer."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, width)
        self.norm = nn.BatchNorm1d(width)
        self.fc2 = nn.Linear(width, 3)
        self.register_buffer("scale", torch.linspace(0.5, 1.5, 3))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.norm(self.fc1(x)))) * self.scale


def _nets(seed: int) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {"generator_ema": Net(), "generator": Net(), "discriminator": Net()}


def _adam(net: nn.Module) -> torch.optim.Adam:
    # two parameter groups, so that per-group hyper-parameters have to survive the round trip
    return torch.optim.Adam(
        [{"params": net.fc1.parameters()}, {"params": net.fc2.parameters(), "lr": 3e-3}],
        lr=1e-2, betas=(0.5, 0.9), weight_decay=1e-4,
    )


def _train(net: nn.Module, opt: torch.optim.Optimizer, steps: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 4, generator=gen)
        loss = (net(x) - 1.0).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return create_run(tmp_path / "run", PRESET, source={"images": [tmp_path / "a.tif"],
                                                        "value_range": (0, 255), "channels": 1})


@pytest.fixture
def saved(run: Path) -> Path:
    save_checkpoint(run, 10, 0.08, _nets(0), metrics={"fid": 12.5})
    return save_checkpoint(run, 20, 0.16, _nets(1), metrics={"fid": 11.0})


@pytest.fixture
def no_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every pickle-based loader/saver explode, to prove that none is used."""

    def boom(*args, **kwargs):
        raise AssertionError("pickle-based serialisation was used")

    for obj, name in ((torch, "load"), (torch, "save"), (pickle, "load"), (pickle, "loads"),
                      (pickle, "dump"), (pickle, "dumps")):
        monkeypatch.setattr(obj, name, boom)


def _one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# --------------------------------------------------------------------------------------------
# config.json


def test_config_round_trip_and_metadata(run: Path) -> None:
    preset, source = read_config(run)
    assert preset == PRESET
    assert source == {"images": [str(run.parent / "a.tif")], "value_range": [0, 255],
                      "channels": 1}
    data = json.loads((run / "config.json").read_text())
    assert data["format"] == "napari-scalespace/1"
    assert data["package_version"] == napari_scalespace.__version__
    assert data["created"].startswith("20")
    assert data["generator"]["resolution"] == PRESET.generator.resolution


def test_create_run_existing_run_checks_the_preset(run: Path) -> None:
    with pytest.raises(CheckpointError) as excinfo:
        create_run(run, PRESET)
    _one_line_error(excinfo, "config.json", "already exists")

    assert create_run(run, PRESET, exist_ok=True) == run
    other = dataclasses.replace(
        PRESET, generator=dataclasses.replace(PRESET.generator, margin=7),
        train=dataclasses.replace(PRESET.train, batch=4),
    )
    with pytest.raises(CheckpointError) as excinfo:
        create_run(run, other, exist_ok=True)
    _one_line_error(excinfo, "config.json", "generator.margin", "train.batch")


# --------------------------------------------------------------------------------------------
# round trips


def test_round_trip_restores_buffers_and_adam_continues_identically(
    run: Path, no_pickle: None
) -> None:
    torch.manual_seed(0)
    net = Net()
    opt = _adam(net)
    _train(net, opt, steps=5, seed=1)
    save_checkpoint(run, 5, 0.08, {"generator": net}, {"g_opt": opt}, metrics={"loss": 0.5})

    torch.manual_seed(123)  # a different initialisation, a fresh optimizer
    net2 = Net()
    opt2 = _adam(net2)
    opt2.param_groups[1]["lr"] = 0.5  # overwritten by the checkpoint
    state = load_checkpoint(run, {"generator": net2}, {"g_opt": opt2})

    assert state["step"] == 5 and state["kimg"] == 0.08 and state["metrics"] == {"loss": 0.5}
    sd, sd2 = net.state_dict(), net2.state_dict()
    assert sd.keys() == sd2.keys()
    assert "norm.running_mean" in sd and "norm.num_batches_tracked" in sd and "scale" in sd
    assert "scratch" not in sd
    for k in sd:
        assert sd[k].dtype == sd2[k].dtype and torch.equal(sd[k], sd2[k]), k
    assert opt2.param_groups[1]["lr"] == 3e-3
    assert opt2.param_groups[0]["betas"] == (0.5, 0.9)
    assert isinstance(opt2.param_groups[0]["betas"], tuple)

    _train(net, opt, steps=2, seed=2)
    _train(net2, opt2, steps=2, seed=2)
    for (k, a), (_, b) in zip(net.state_dict().items(), net2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64, torch.uint8,
          torch.bool]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dtype=st.sampled_from(DTYPES),
    shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_round_trip_keeps_dtypes_shapes_tied_and_strided_tensors(dtype, shape, seed) -> None:
    gen = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=gen, dtype=torch.float64) * 10
    tensor = values.to(dtype) if dtype != torch.bool else values > 0

    class Holder(nn.Module):
        def __init__(self, t: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("value", t.clone())
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 3)
            self.b.weight = self.a.weight  # tied: two names, one storage
            self.register_buffer("strided", torch.arange(12.0).reshape(3, 4).t())

    with tempfile.TemporaryDirectory() as tmp:
        run = create_run(Path(tmp) / "run", PRESET)
        original = Holder(tensor)
        save_checkpoint(run, 1, 0.0, {"generator": original})
        copy = Holder(torch.zeros_like(tensor))
        nn.init.zeros_(copy.a.weight)
        load_checkpoint(run, {"generator": copy})
    assert copy.value.dtype == dtype and copy.value.shape == tensor.shape
    assert torch.equal(copy.value, tensor)
    assert torch.equal(copy.a.weight, original.a.weight)
    assert copy.b.weight is copy.a.weight
    assert torch.equal(copy.strided, original.strided)


def test_rng_round_trip_gives_the_same_next_random_numbers(run: Path) -> None:
    torch.manual_seed(5)
    random.seed(6)
    np_rng = np.random.default_rng(7)
    np_mt = np.random.Generator(np.random.MT19937(8))  # a state holding an array
    _ = torch.rand(3), random.random(), np_rng.random(3)  # move away from the seeds

    save_checkpoint(run, 1, 0.0, {"generator": Net()}, rng=capture_rng(np_rng))
    expected = (torch.rand(5), [random.random() for _ in range(5)], np_rng.random(5))
    mt_state = capture_rng(np_mt)
    mt_expected = np_mt.random(5)

    torch.manual_seed(99)
    random.seed(99)
    np_rng.random(11)
    state = load_checkpoint(run, {"generator": Net()})
    assert state["rng"]["torch"].dtype == torch.uint8
    assert restore_rng(state, np_rng) is np_rng
    assert torch.equal(torch.rand(5), expected[0])
    assert [random.random() for _ in range(5)] == expected[1]
    np.testing.assert_array_equal(np_rng.random(5), expected[2])

    fresh = restore_rng(state)  # without a generator: a new one of the stored kind
    assert type(fresh.bit_generator) is np.random.PCG64
    np.testing.assert_array_equal(fresh.random(5), expected[2])

    save_checkpoint(run, 2, 0.0, {"generator": Net()}, rng=mt_state)  # a state with an array
    fresh_mt = restore_rng(load_checkpoint(run, {"generator": Net()}))
    assert type(fresh_mt.bit_generator) is np.random.MT19937
    np.testing.assert_array_equal(fresh_mt.random(5), mt_expected)


# --------------------------------------------------------------------------------------------
# atomicity


def test_atomicity_crash_during_directory_rename_keeps_previous(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = saved.parent.parent
    real_replace = os.replace

    def crash(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".tmp-step-"):
            raise OSError("simulated crash during rename")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(run, 30, 0.24, _nets(2))
    monkeypatch.setattr(ck.os, "replace", real_replace)

    assert latest_checkpoint(run) == saved
    assert not (run / "checkpoints" / "step-00000030").exists()
    nets = _nets(9)
    assert load_checkpoint(run, nets)["step"] == 20
    assert torch.equal(nets["generator"].fc1.weight, _nets(1)["generator"].fc1.weight)


def test_atomicity_crash_before_latest_is_rewritten_keeps_previous(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = saved.parent.parent
    real_replace = os.replace

    def crash(src, dst, *args, **kwargs):
        if Path(dst).name == "latest":
            raise OSError("simulated crash before the commit")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(ck.os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save_checkpoint(run, 30, 0.24, _nets(2))
    monkeypatch.setattr(ck.os, "replace", real_replace)

    assert latest_checkpoint(run) == saved
    assert load_checkpoint(run, _nets(9))["step"] == 20
    save_checkpoint(run, 40, 0.32, _nets(3))  # the run goes on
    assert latest_checkpoint(run).name == "step-00000040"
    assert not list((run / "checkpoints").glob(".tmp-*")) and not list(run.glob(".tmp-*"))


CHILD = textwrap.dedent(
    """
    import sys, time, torch
    from torch import nn
    from napari_scalespace.checkpoint import create_run, latest_checkpoint, save_checkpoint
    from napari_scalespace.model.config import PRESETS

    run = create_run(sys.argv[1], PRESETS["tiny"], exist_ok=True)
    last = latest_checkpoint(run)
    step = int(last.name.split("-")[1]) + 1 if last else 0
    big = nn.Module()
    big.register_buffer("w", torch.empty(2_000_000))
    big.register_buffer("v", torch.empty(500_000, dtype=torch.float16))
    while True:
        big.w.fill_(step)
        big.v.fill_(step % 1000)
        t = time.perf_counter()
        save_checkpoint(run, step, step / 1000, {"generator_ema": big, "generator": big},
                        metrics={"step": step}, keep=2)
        print(time.perf_counter() - t, flush=True)
        step += 1
    """
)


def _big() -> nn.Module:
    big = nn.Module()
    big.register_buffer("w", torch.empty(2_000_000))
    big.register_buffer("v", torch.empty(500_000, dtype=torch.float16))
    return big


def test_atomicity_sigkill_while_saving_leaves_a_loadable_latest(tmp_path: Path) -> None:
    """A child saves ~20 MB checkpoints in a loop and is SIGKILLed at different moments."""
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(napari_scalespace.__file__).parents[1]))
    # One kill, in the middle of a save (the monkeypatched crashes above cover the renames);
    # every extra round costs a child that imports torch.
    for fraction in (0.5,):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(run)], env=env,
                                 stdout=subprocess.PIPE, text=True)
        try:
            durations = []
            for _ in range(2):  # two complete saves of this process, then kill during the third
                line = child.stdout.readline()
                assert line, "the child died"
                durations.append(float(line))
            time.sleep(fraction * min(durations))
            child.kill()  # SIGKILL on POSIX
        finally:
            child.kill()
            child.wait(timeout=30)
            child.stdout.close()

        ckpt = latest_checkpoint(run)
        assert ckpt is not None
        for complete in list_checkpoints(run):  # every complete checkpoint verifies and loads
            big = _big()
            state = load_checkpoint(complete, {"generator_ema": big, "generator": big})
            step = state["step"]
            assert complete.name == f"step-{step:08d}" and state["metrics"] == {"step": step}
            assert torch.all(big.w == step) and torch.all(big.v == step % 1000)
        assert ckpt in list_checkpoints(run)
    assert latest_checkpoint(run).name >= "step-00000001"
    save_checkpoint(run, 10**6, 1000.0, {"generator": Net()})  # the next save cleans up
    assert not list((run / "checkpoints").glob(".tmp-*"))


def test_retention_keep_two_keeps_the_last_two(run: Path) -> None:
    for step in range(1, 6):
        save_checkpoint(run, step * 10, step, {"generator": Net()}, keep=2)
    assert [p.name for p in list_checkpoints(run)] == ["step-00000040", "step-00000050"]
    assert latest_checkpoint(run).name == "step-00000050"
    save_checkpoint(run, 60, 6, {"generator": Net()})  # default keep=3
    save_checkpoint(run, 70, 7, {"generator": Net()})
    assert [p.name for p in list_checkpoints(run)] == [
        "step-00000050", "step-00000060", "step-00000070"]


def test_resaving_a_step_replaces_it(run: Path) -> None:
    save_checkpoint(run, 10, 1, {"generator": Net()}, metrics={"v": 1})
    save_checkpoint(run, 20, 2, {"generator": Net()}, metrics={"v": 2})
    save_checkpoint(run, 20, 2, {"generator": Net()}, metrics={"v": 3})  # resumed from 10
    assert [p.name for p in list_checkpoints(run)] == ["step-00000010", "step-00000020"]
    assert load_checkpoint(run, {"generator": Net()})["metrics"] == {"v": 3}


def test_metrics_are_strict_json(run: Path) -> None:
    save_checkpoint(run, 1, 0.0, {"generator": Net()},
                    metrics={"loss": float("nan"), "fid": np.float32(2.5), "n": torch.tensor(3)})
    text = (latest_checkpoint(run) / "state.json").read_text()
    assert json.loads(text)["metrics"] == {"loss": None, "fid": 2.5, "n": 3}


# --------------------------------------------------------------------------------------------
# errors: one line, naming the file


def test_truncated_file_is_a_checkpoint_error(saved: Path) -> None:
    path = saved / "generator_ema.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, _nets(0))
    _one_line_error(excinfo, "generator_ema.safetensors", "truncated")

    # also when state.json agrees with the truncated file: safetensors' own error is wrapped
    state = json.loads((saved / "state.json").read_text())
    state["files"]["generator_ema.safetensors"] = {
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size}
    (saved / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, _nets(0))
    _one_line_error(excinfo, "generator_ema.safetensors", "not a readable safetensors file")


def test_flipped_byte_is_a_checkpoint_error(saved: Path) -> None:
    path = saved / "generator.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved.parent.parent, _nets(0))
    _one_line_error(excinfo, "generator.safetensors", "sha256")


def test_missing_file_is_a_checkpoint_error(saved: Path) -> None:
    (saved / "discriminator.safetensors").unlink()
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, {"generator_ema": Net()})  # every listed file is verified
    _one_line_error(excinfo, "discriminator.safetensors", "missing file")

    (saved / "state.json").unlink()
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, {"generator_ema": Net()})
    _one_line_error(excinfo, "state.json", "missing")


def test_module_not_in_checkpoint_is_a_checkpoint_error(saved: Path) -> None:
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, {"mapping": Net()})
    _one_line_error(excinfo, "mapping.safetensors", "not part of this checkpoint")
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, {"generator": Net()}, {"g_opt": _adam(Net())})
    _one_line_error(excinfo, "optimizers.safetensors")


def test_shape_mismatch_is_a_checkpoint_error_naming_the_parameter(saved: Path) -> None:
    nets = {"generator": Net(), "generator_ema": Net(width=16)}
    before = {k: v.clone() for k, v in nets["generator"].state_dict().items()}
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, nets)
    _one_line_error(
        excinfo, "generator_ema.safetensors",
        "parameter fc1.weight has shape [8, 4] in the file but [16, 4] in the model",
        "and ",  # more mismatches than shown
    )
    # nothing was loaded, not even the module that matched
    for k, v in nets["generator"].state_dict().items():
        assert torch.equal(v, before[k]), k


def test_missing_and_unexpected_keys_are_listed(saved: Path) -> None:
    class Other(Net):
        def __init__(self) -> None:
            super().__init__()
            self.extra = nn.Linear(2, 2)
            del self.fc2

    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(saved, {"generator": Other()})
    _one_line_error(excinfo, "generator.safetensors", "missing from the file: extra.weight",
                    "unexpected in the file: fc2.bias, fc2.weight")
    # non-strict: the keys that exist are loaded
    other = Other()
    load_checkpoint(saved, {"generator": other}, strict=False)
    assert torch.equal(other.fc1.weight, _nets(1)["generator"].fc1.weight)


def test_unknown_format_is_a_checkpoint_error(saved: Path) -> None:
    run = saved.parent.parent
    data = json.loads((run / "config.json").read_text())
    data["format"] = "stylegan/9"
    (run / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError) as excinfo:
        read_config(run)
    _one_line_error(excinfo, "config.json", "unknown format 'stylegan/9'")
    with pytest.raises(CheckpointError) as excinfo:
        load_generator(run, lambda preset: Net())
    _one_line_error(excinfo, "config.json", "unknown format")

    data["format"] = "napari-scalespace/1"
    data["generator"]["future_field"] = 1
    (run / "config.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError) as excinfo:
        read_config(run)
    _one_line_error(excinfo, "config.json", "future_field")


def test_stale_tmp_dir_is_ignored_and_cleaned(saved: Path) -> None:
    run = saved.parent.parent
    stale = run / "checkpoints" / ".tmp-step-00000999-deadbeef"
    stale.mkdir()
    (stale / "generator.safetensors").write_bytes(b"half a file")
    (stale / "state.json").write_text("{")
    half = run / "checkpoints" / "step-00000500"  # no state.json: not a checkpoint
    half.mkdir()
    assert latest_checkpoint(run) == saved
    assert list_checkpoints(run)[-1] == saved
    assert load_checkpoint(run, _nets(0))["step"] == 20
    save_checkpoint(run, 30, 0.24, _nets(2))
    assert not stale.exists()
    assert latest_checkpoint(run).name == "step-00000030"


def test_latest_pointing_to_a_missing_directory_is_a_checkpoint_error(saved: Path) -> None:
    run = saved.parent.parent
    (run / "latest").write_text("step-00000777\n")
    with pytest.raises(CheckpointError) as excinfo:
        latest_checkpoint(run)
    _one_line_error(excinfo, "latest", "step-00000777", "missing")
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(run, _nets(0))
    _one_line_error(excinfo, "latest")
    (run / "latest").write_text("../../etc\n")
    with pytest.raises(CheckpointError) as excinfo:
        latest_checkpoint(run)
    _one_line_error(excinfo, "latest", "not a checkpoint directory name")


def test_run_without_checkpoint(run: Path) -> None:
    assert latest_checkpoint(run) is None
    with pytest.raises(CheckpointError) as excinfo:
        load_checkpoint(run, {"generator": Net()})
    _one_line_error(excinfo, "latest", "no checkpoint")


# --------------------------------------------------------------------------------------------
# rendering


def test_load_generator_reads_only_the_ema_file(saved: Path, no_pickle: None) -> None:
    run = saved.parent.parent
    (saved / "discriminator.safetensors").unlink()  # not needed for rendering
    built = []

    def build(preset):
        built.append(preset)
        return Net()

    module, preset, state = load_generator(run, build)
    assert built == [PRESET] and preset == PRESET and state["step"] == 20
    assert not module.training
    assert not any(p.requires_grad for p in module.parameters())
    assert torch.equal(module.fc1.weight, _nets(1)["generator_ema"].fc1.weight)

    module, _, _ = load_generator(list_checkpoints(run)[0], lambda p: Net(), which="generator")
    assert torch.equal(module.fc1.weight, _nets(0)["generator"].fc1.weight)

    with pytest.raises(CheckpointError) as excinfo:
        load_generator(run, lambda p: Net(width=4))
    _one_line_error(excinfo, "generator_ema.safetensors", "in the file but")


def test_checkpoint_source_has_no_pickle_torch_load_or_train_import() -> None:
    tree = ast.parse(inspect.getsource(ck))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any("pickle" in n or "dill" in n for n in names), names
            assert not any(n == "train" or n.startswith("train.") or ".train" in n
                           for n in names), names
        if isinstance(node, ast.Attribute) and node.attr in {"load", "save"}:
            assert not (isinstance(node.value, ast.Name) and node.value.id == "torch"), node.attr
        if isinstance(node, ast.Name):
            assert node.id not in {"pickle", "dill"}, node.id
    code = "\n".join(line for line in inspect.getsource(ck).splitlines()
                     if not line.lstrip().startswith("#"))
    assert "torch.load(" not in code and "torch.save(" not in code and "weights_only" not in code
