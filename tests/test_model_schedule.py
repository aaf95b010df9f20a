"""The layer schedule and the Fourier feature distribution are the documented formulas."""

from __future__ import annotations

import itertools
import math

import pytest

from napari_scalespace.model.config import (
    PRESETS,
    GeneratorConfig,
    Preset,
    from_dict,
    get_preset,
    to_dict,
)
from napari_scalespace.model.fourier import FourierFeatures, feature_split
from napari_scalespace.model.schedule import layer_specs, transitions


def test_paper8_has_the_published_layer_sizes():
    sizes = [s.size for s in layer_specs(PRESETS["paper8"].generator)]
    assert sizes == [36, 36, 36, 52, 52, 84, 84, 148, 148, 148, 276, 276, 276, 256, 256]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_transition_lands_centred_on_the_next_canvas(name):
    cfg = PRESETS[name].generator
    specs = layer_specs(cfg)
    for t in transitions(cfg):
        prev, cur = specs[t.index - 1], specs[min(t.index, len(specs) - 1)]
        size_in = prev.size - t.kernel + 1
        p0, p1 = t.padding[:2]
        mid = size_in * t.up + p0 + p1 - (t.taps_up - 1)
        assert (mid - (t.taps_down - 1) + t.down - 1) // t.down == cur.size
        # centre of output sample r (units of the up-sampled rate) = centre of the canvas
        offset = (t.taps_up - 1) / 2 + (t.taps_down - 1) / 2 - p0 - t.up * (size_in - 1) / 2
        assert offset == pytest.approx(-t.down * (cur.size - 1) / 2)
        assert t.up * prev.rate == t.down * cur.rate  # both divide the nonlinearity's rate


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_rates_represent_stopbands_and_cutoffs_rise_geometrically(name):
    cfg = PRESETS[name].generator
    specs = layer_specs(cfg)
    for s in specs:
        assert s.rate >= min(2 * s.stopband, cfg.resolution) - 1e-9
        assert s.cutoff <= s.rate / 2 + 1e-9
    ratios = [b.cutoff / a.cutoff for a, b in itertools.pairwise(specs)
              if b.index <= cfg.num_layers - cfg.num_critical]
    assert max(ratios) == pytest.approx(min(ratios))
    assert specs[-1].cutoff == pytest.approx(cfg.resolution / 2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_features_go_to_the_first_canvas_that_represents_them_on_the_diagonal(name):
    cfg = PRESETS[name].generator
    specs = layer_specs(cfg)
    ff = FourierFeatures(cfg, specs)
    radii = ff.freqs.norm(dim=1)
    for r, layer in zip(radii.tolist(), ff.layer.tolist(), strict=True):
        assert r <= specs[layer].rate / (2 * math.sqrt(2)) + 1e-9
        if layer > 0:
            assert r > specs[layer - 1].rate / (2 * math.sqrt(2))
    assert sum(ff.counts) == cfg.num_features
    assert sorted(ff.bins.tolist()) == sorted(i % cfg.num_bins for i in range(cfg.num_features))


def test_paper_feature_split_is_documented():
    split = feature_split(PRESETS["paper8"].generator, layer_specs(PRESETS["paper8"].generator))
    print("paper8 feature split by canvas size:", {k: round(v, 3) for k, v in split.items()})
    # radii uniform up to 0.6 * R / (2 sqrt 2): the canvas limits are 1/16, 1/8, 1/4, 1/2, 1
    # of R / (2 sqrt 2), so the shares are (1/16) / 0.6, ... and 1 - (1/2) / 0.6 at the last
    assert split[36] == pytest.approx(1 / 16 / 0.6, abs=2e-3)
    assert split[148] == pytest.approx(1 / 4 / 0.6, abs=2e-3)
    assert split[276] == pytest.approx(1 - 1 / 2 / 0.6, abs=2e-3)


def test_paper_parameter_counts_are_within_25_percent_of_the_published_models():
    from napari_scalespace.model.generator import Generator

    for name, target in (("paper6", 9e6), ("paper8", 15e6)):
        n = sum(p.numel() for p in Generator(PRESETS[name].generator).parameters())
        print(f"{name}: {n / 1e6:.2f}M generator parameters (published about {target / 1e6}M)")
        assert abs(n - target) / target < 0.25


def test_configs_round_trip_through_json_and_reject_unknown_fields():
    p = get_preset("small", octaves=3, batch=4)
    assert p.generator.octaves == 3 and p.discriminator.octaves == 3 and p.train.batch == 4
    assert from_dict(Preset, to_dict(p)) == p
    with pytest.raises(ValueError, match="colour"):
        from_dict(GeneratorConfig, {"colour": 1})
    with pytest.raises(ValueError, match="bogus"):
        get_preset("tiny", bogus=1)
    with pytest.raises(ValueError, match="octaves"):
        get_preset("tiny", octaves=0)
