"""Every config field is checked (type and range) when a config is made and when a run's
config.json is read: one ValueError line naming the field, the allowed values and the value."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from napari_scalespace import checkpoint
from napari_scalespace.checkpoint import CheckpointError
from napari_scalespace.model.config import PRESETS, Preset, from_dict, get_preset, to_dict

BASE = get_preset("tiny")
SECTIONS = {"generator": BASE.generator, "discriminator": BASE.discriminator,
            "train": BASE.train}


def bad_values(default):
    """Values of the wrong type or far out of range for a field with this default."""
    if isinstance(default, bool):
        return ["x", 1, None]
    if isinstance(default, int):
        return ["x", -1, True, 2.5, 10**12, None]
    if isinstance(default, float):
        return ["x", -1.0, True, math.inf, math.nan, 1e12, [1.0]]
    if isinstance(default, tuple):
        return ["x", 5, [-1.0, "a"], [[1, 2]]]
    if isinstance(default, str):
        return [5, "not-a-choice"]
    raise AssertionError(f"no bad values for {default!r}")


CASES = [(section, f.name, value)
         for section, cfg in SECTIONS.items() for f in dataclasses.fields(cfg)
         if getattr(cfg, f.name) is not None  # conv_clamp may be null: checked below
         for value in bad_values(getattr(cfg, f.name))]


def test_every_field_has_cases():
    named = {(s, n) for s, n, _ in CASES}
    for section, cfg in SECTIONS.items():
        for f in dataclasses.fields(cfg):
            assert (section, f.name) in named or getattr(cfg, f.name) is None, f.name


@pytest.mark.parametrize("section, name, value", CASES,
                         ids=[f"{s}.{n}={v!r}" for s, n, v in CASES])
def test_a_bad_value_is_refused_in_one_line_naming_field_range_and_value(section, name,
                                                                         value):
    cfg = SECTIONS[section]
    with pytest.raises(ValueError) as e:
        dataclasses.replace(cfg, **{name: value})
    msg = str(e.value)
    assert "\n" not in msg and "must be" in msg, msg
    assert f"{section}.{name} must be" in msg and msg.endswith(f"got {value!r}"), msg


def test_conv_clamp_may_be_null_but_not_anything_else():
    for section in ("generator", "discriminator"):
        cfg = SECTIONS[section]
        assert dataclasses.replace(cfg, conv_clamp=None).conv_clamp is None
        for value in ("x", 0, -1.0):
            with pytest.raises(ValueError, match=rf"{section}\.conv_clamp must be a number"):
                dataclasses.replace(cfg, conv_clamp=value)


def test_cross_field_rules_and_the_preset_itself():
    with pytest.raises(ValueError,
                       match=r"generator\.num_critical must be an integer in \[0, 5\]"):
        get_preset("tiny", num_critical=6)
    with pytest.raises(ValueError, match=r"generator\.first_stopband must be a number in"):
        get_preset("tiny", first_stopband=1.0)  # below first_cutoff
    with pytest.raises(ValueError, match=r"generator\.resolution must be a power of two"):
        get_preset("tiny", resolution=48)
    with pytest.raises(ValueError, match=r"generator.resolution \(32\) and "
                                         r"discriminator.resolution \(64\) must be equal"):
        dataclasses.replace(BASE, discriminator=dataclasses.replace(BASE.discriminator,
                                                                    resolution=64))
    for name in ("name", "ms_per_view"):
        with pytest.raises(ValueError, match=f"preset {name} must be a str"):
            dataclasses.replace(BASE, **{name: 5})


def test_numbers_are_normalised_and_presets_round_trip():
    p = get_preset("tiny", batch=8.0, g_lr=1, betas=[0, 0.9])
    assert p.train.batch == 8 and isinstance(p.train.batch, int)
    assert p.train.g_lr == 1.0 and isinstance(p.train.g_lr, float)
    assert p.train.betas == (0.0, 0.9)
    for preset in PRESETS.values():
        assert from_dict(Preset, to_dict(preset)) == preset


@pytest.mark.parametrize("section, name, value", [
    (s, n, v) for s, n, v in CASES if isinstance(v, str | int | list) and v != [[1, 2]]
][::3])
def test_a_hand_edited_config_json_is_refused_on_load(tmp_path, section, name, value):
    run = checkpoint.create_run(tmp_path / "run", BASE, {})
    path = run / checkpoint.CONFIG
    data = json.loads(path.read_text())
    data[section][name] = value
    path.write_text(json.dumps(data))
    with pytest.raises(CheckpointError) as e:
        checkpoint.read_config(run)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg, msg
    assert f"{section}.{name} must be" in msg and "got " in msg, msg  # (lists: tuples)
