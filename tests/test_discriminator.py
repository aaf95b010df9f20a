"""The discriminator: shapes for every preset, gradients everywhere, the zoom conditioning and the
minibatch standard deviation do what they claim, the anti-aliased down-sampling has unit gain on
the right grid, and bad inputs are rejected with a message naming the argument."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from napari_scalespace.model.config import PRESETS, DiscriminatorConfig
from napari_scalespace.model.discriminator import Discriminator, channels_at, mbstd_group_size
from napari_scalespace.model.layers import EqualizedConv2d
from napari_scalespace.ops import bias_act, upfirdn2d
from napari_scalespace.ops.bias_act import ACTIVATIONS


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these small networks gain nothing from two, and on a busy machine
    two threads spin-wait on each other (10x slower forwards measured). Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cfg(**overrides) -> DiscriminatorConfig:
    return dataclasses.replace(PRESETS["tiny"].discriminator, **overrides)


def make(cfg: DiscriminatorConfig, seed: int = 0, **kwargs) -> Discriminator:
    torch.manual_seed(seed)
    return Discriminator(cfg, **kwargs)


def inputs(cfg: DiscriminatorConfig, batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(batch, cfg.channels, cfg.resolution, cfg.resolution, generator=g)
    zoom = torch.rand(batch, generator=g) * cfg.octaves
    return img, zoom


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- shapes, presets ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tiny", "small"])
def test_output_shape_is_batch_and_finite_for_small_presets(name):
    cfg = PRESETS[name].discriminator
    D = make(cfg)
    print(f"\n{name}: {n_params(D):,} discriminator parameters")
    img, zoom = inputs(cfg, 3)
    with torch.no_grad():
        out = D(img, zoom)
    assert out.shape == (3,)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["paper6", "paper8"])
def test_paper_presets_construct_count_parameters_and_run_at_256px(name):
    cfg = PRESETS[name].discriminator
    assert cfg.resolution == 256
    D = make(cfg)
    count = n_params(D)
    print(f"\n{name}: {count:,} discriminator parameters")
    assert 1_000_000 < count < 50_000_000
    img, zoom = inputs(cfg, 2)  # a few seconds at 256 px on two cores; always run
    with torch.no_grad():
        out = D(img, zoom)
    assert out.shape == (2,)
    assert torch.isfinite(out).all()


def test_channels_follow_base_over_resolution_capped_at_max():
    cfg = PRESETS["small"].discriminator  # base 2048, max 64
    assert [channels_at(cfg, r) for r in (64, 32, 16, 8, 4)] == [32, 64, 64, 64, 64]
    D = make(cfg)
    assert D.from_rgb.out_channels == 32
    assert len(D.blocks) == 4  # 64 -> 32 -> 16 -> 8 -> 4
    assert [b.conv1.out_channels for b in D.blocks] == [64, 64, 64, 64]


@pytest.mark.parametrize("resolution", [4, 8, 16])
def test_small_resolutions_work_down_to_4px(resolution):
    cfg = tiny_cfg(resolution=resolution)
    D = make(cfg)
    img, zoom = inputs(cfg, 2)
    assert D(img, zoom).shape == (2,)


# --- gradients ------------------------------------------------------------------------------

def test_gradients_reach_every_parameter_and_the_image():
    cfg = PRESETS["tiny"].discriminator
    D = make(cfg)
    img, zoom = inputs(cfg, PRESETS["tiny"].train.batch)
    img.requires_grad_(True)
    D(img, zoom).sum().backward()
    for name, p in D.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
        assert p.grad.abs().sum() > 0, f"{name} has an all-zero gradient"
    assert img.grad is not None and img.grad.abs().sum() > 0


def test_gradients_reach_every_parameter_without_conditioning_or_clamp():
    cfg = tiny_cfg(scale_conditioning=False, conv_clamp=None)
    D = make(cfg)
    img, _ = inputs(cfg, 4)
    D(img, None).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in D.parameters())


def test_r1_double_backward_reaches_every_weight():
    """The lazy R1 penalty differentiates ``||d logits / d img||^2`` with respect to the weights
    (double backward through every op, including the in-place residual sum). Biases reach it
    only through the piecewise-linear lrelu/clamp masks (derivative 0) and the output bias not
    at all; every weight must get a non-zero gradient."""
    cfg = PRESETS["tiny"].discriminator
    D = make(cfg)
    img, zoom = inputs(cfg, 4)
    img.requires_grad_(True)
    (grad,) = torch.autograd.grad(D(img, zoom).sum(), img, create_graph=True)
    grad.square().sum().backward()
    for name, p in D.named_parameters():
        if name == "epilogue.out.bias":
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name.endswith("weight"):
            assert p.grad.abs().sum() > 0, name


def test_fast_ops_match_the_reference_ops():
    cfg = PRESETS["tiny"].discriminator
    fast, ref = make(cfg, impl="fast"), make(cfg, impl="ref")
    ref.load_state_dict(fast.state_dict())
    img, zoom = inputs(cfg, 4)
    a, b = fast(img, zoom), ref(img, zoom)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_half_precision_autocast_on_cpu_gives_float32_logits_close_to_float32():
    cfg = PRESETS["tiny"].discriminator
    D = make(cfg)
    img, zoom = inputs(cfg, 4)
    with torch.no_grad():
        ref = D(img, zoom)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = D(img, zoom)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max() < 0.05 * ref.abs().max() + 1e-3


def test_a_float64_model_runs_in_float64_and_agrees_with_float32():
    cfg = PRESETS["tiny"].discriminator
    D = make(cfg)
    img, zoom = inputs(cfg, 4)
    with torch.no_grad():
        ref = D(img, zoom)
        out = D.double()(img.double(), zoom)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref.double(), rtol=1e-4, atol=1e-5)


# --- zoom conditioning ----------------------------------------------------------------------

def test_zoom_conditioning_changes_logits_when_enabled():
    cfg = tiny_cfg(scale_conditioning=True)
    D = make(cfg)
    img, _ = inputs(cfg, 4)
    with torch.no_grad():
        a = D(img, torch.zeros(4))
        b = D(img, torch.full((4,), float(cfg.octaves)))
        c = D(img, torch.full((4,), 0.5))
    assert (a - b).abs().min() > 1e-6
    assert (a - c).abs().min() > 1e-6


def test_zoom_does_not_change_logits_when_conditioning_disabled():
    cfg = tiny_cfg(scale_conditioning=False)
    D = make(cfg)
    img, _ = inputs(cfg, 4)
    with torch.no_grad():
        a = D(img, None)
        b = D(img, torch.zeros(4))
        c = D(img, torch.full((4,), float(cfg.octaves)))
    assert torch.equal(a, b) and torch.equal(a, c)


def test_zoom_accepts_integer_and_float64_tensors():
    cfg = PRESETS["tiny"].discriminator
    D = make(cfg)
    img, _ = inputs(cfg, 2)
    with torch.no_grad():
        a = D(img, torch.tensor([1, 2]))
        b = D(img, torch.tensor([1.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(a, b)


# --- minibatch standard deviation -----------------------------------------------------------

def test_minibatch_std_makes_a_logit_depend_on_the_other_samples_of_its_group():
    cfg = tiny_cfg(mbstd_group=4)
    D = make(cfg)
    img, zoom = inputs(cfg, 4)
    with torch.no_grad():
        before = D(img, zoom)
        img2 = img.clone()
        img2[1] += torch.randn_like(img2[1])
        after = D(img2, zoom)
    assert (after[0] - before[0]).abs() > 1e-6


def test_minibatch_std_groups_are_consecutive_samples():
    cfg = tiny_cfg(mbstd_group=4)
    D = make(cfg)
    img, zoom = inputs(cfg, 8)  # groups {0..3}, {4..7}
    with torch.no_grad():
        before = D(img, zoom)
        img2 = img.clone()
        img2[5] += torch.randn_like(img2[5])
        after = D(img2, zoom)
    assert torch.equal(after[:4], before[:4])
    assert (after[4] - before[4]).abs() > 1e-6


def test_without_minibatch_std_samples_are_independent():
    cfg = tiny_cfg(mbstd_channels=0)
    D = make(cfg)
    img, zoom = inputs(cfg, 4)
    with torch.no_grad():
        before = D(img, zoom)
        img2 = img.clone()
        img2[1] += 1.0
        after = D(img2, zoom)
    torch.testing.assert_close(after[[0, 2, 3]], before[[0, 2, 3]])


@pytest.mark.parametrize(("batch", "group", "expected"),
                         [(8, 4, 4), (6, 4, 3), (5, 4, 1), (7, 4, 1), (2, 4, 2), (1, 4, 1),
                          (12, 8, 6), (9, 4, 3)])
def test_mbstd_group_is_the_largest_divisor_of_the_batch_not_above_the_group(
        batch, group, expected):
    assert mbstd_group_size(batch, group) == expected


@pytest.mark.parametrize("batch", [1, 2, 3, 5, 6, 7])
def test_batches_not_divisible_by_the_group_work(batch):
    cfg = tiny_cfg(mbstd_group=4, mbstd_channels=2)
    D = make(cfg)
    img, zoom = inputs(cfg, batch)
    out = D(img, zoom)
    assert out.shape == (batch,) and torch.isfinite(out).all()


def test_mbstd_channels_must_divide_the_4x4_channels():
    with pytest.raises(ValueError, match="mbstd_channels"):
        Discriminator(tiny_cfg(mbstd_channels=5))  # 32 channels at 4x4


# --- anti-aliased down-sampling -------------------------------------------------------------

def _identity_conv(kernel_size: int) -> EqualizedConv2d:
    """A 1 -> 1 channel, linear, down-2 layer whose convolution is the identity (centre tap)."""
    conv = EqualizedConv2d(1, 1, kernel_size, bias=False, down=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, kernel_size // 2, kernel_size // 2] = 1 / conv.weight_gain
    return conv


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_antialiased_downsampling_of_a_constant_is_the_constant_in_the_interior(kernel_size):
    conv = _identity_conv(kernel_size)
    x = torch.full((1, 1, 16, 16), 2.5)
    with torch.no_grad():
        y = conv(x)
    assert y.shape == (1, 1, 8, 8)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.full((1, 1, 6, 6), 2.5))


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_downsampled_output_o_sits_between_input_pixels_2o_and_2o_plus_1(kernel_size):
    """A ramp ``x[j] = j`` comes out as ``2o + 0.5`` in the interior, for the 1x1 skip and the
    3x3 main branch alike: both branches of a residual block see the same grid."""
    conv = _identity_conv(kernel_size)
    ramp = torch.arange(16.0)
    x = ramp[None, None, None, :].expand(1, 1, 16, 16)
    with torch.no_grad():
        y = conv(x)
    expected = (2 * torch.arange(8.0) + 0.5)[1:-1]
    torch.testing.assert_close(y[0, 0, 4, 1:-1], expected)
    torch.testing.assert_close(conv(x.transpose(2, 3))[0, 0, 1:-1, 4], expected)


def test_equalized_conv_weights_are_unit_normal_scaled_by_fan_in():
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight_gain == pytest.approx(1 / math.sqrt(64 * 9))
    assert 0.9 < conv.weight.std().item() < 1.1
    x = torch.randn(4, 64, 16, 16)
    with torch.no_grad():
        y = conv(x)
    assert 0.8 < y.std().item() < 1.2  # unit variance in, about unit variance out


def test_conv_clamp_bounds_the_output_scaled_by_the_gain():
    conv = EqualizedConv2d(4, 4, 3, activation="lrelu", conv_clamp=0.5)
    x = 100 * torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        assert conv(x).abs().max() <= 0.5
        assert conv(x, gain=0.5).abs().max() <= 0.25


# --- bad inputs -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("img", "zoom", "name"),
    [
        (torch.randn(2, 1, 32, 32), torch.zeros(2), "img"),  # wrong channels
        (torch.randn(2, 3, 64, 64), torch.zeros(2), "img"),  # wrong resolution
        (torch.randn(2, 3, 32, 16), torch.zeros(2), "img"),  # not square
        (torch.randn(3, 32, 32), torch.zeros(3), "img"),  # 3-D
        (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2), "img"),  # integer
        (torch.zeros(0, 3, 32, 32), torch.zeros(0), "img"),  # empty batch
        ([[0.0]], torch.zeros(2), "img"),  # not a tensor
        (torch.randn(2, 3, 32, 32), None, "zoom"),  # conditioning needs it
        (torch.randn(2, 3, 32, 32), torch.zeros(3), "zoom"),  # wrong length
        (torch.randn(2, 3, 32, 32), torch.zeros(2, 1), "zoom"),  # wrong rank
        (torch.randn(2, 3, 32, 32), 1.0, "zoom"),  # not a tensor
        (torch.randn(2, 3, 32, 32), torch.zeros(2, dtype=torch.bool), "zoom"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(img, zoom, name):
    D = make(PRESETS["tiny"].discriminator)
    with pytest.raises(ValueError, match=name):
        D(img, zoom)


def test_bad_zoom_is_rejected_even_without_conditioning():
    D = make(tiny_cfg(scale_conditioning=False))
    with pytest.raises(ValueError, match="zoom"):
        D(torch.randn(2, 3, 32, 32), torch.zeros(5))


@pytest.mark.parametrize("resolution", [2, 48])
def test_resolution_must_be_a_power_of_two_of_at_least_4(resolution):
    with pytest.raises(ValueError, match="resolution"):
        Discriminator(tiny_cfg(resolution=resolution))


# --- EqualizedConv2d against its formula ----------------------------------------------------

@pytest.mark.parametrize(("kernel_size", "down", "activation", "gain"),
                         [(3, 1, "lrelu", 1.0), (3, 2, "lrelu", math.sqrt(0.5)),
                          (1, 2, "linear", math.sqrt(0.5)), (1, 1, "lrelu", 1.0),
                          (3, 2, "tanh", 0.7), (3, 1, "lrelu", -0.5)])
def test_equalized_conv_equals_its_unfused_formula(kernel_size, down, activation, gain):
    """``clamp(act(conv(lowpass(x), W / sqrt(fan_in)) + b) * act_gain * gain, +-clamp*|gain|)``,
    composed from the reference ops, equals the layer (which folds gains and fuses the bias)."""
    torch.manual_seed(3)
    conv = EqualizedConv2d(5, 6, kernel_size, activation=activation, down=down, conv_clamp=1.5)
    with torch.no_grad():
        conv.bias.normal_()
    x = torch.randn(2, 5, 12, 12, dtype=torch.float64)
    w = conv.weight.double() / math.sqrt(5 * kernel_size**2)
    if down == 2:
        f = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64) / 8
        p = 4 + kernel_size - 3  # centres output o on input 2o + 0.5
        z = upfirdn2d(x, f, padding=(p // 2, p - p // 2, p // 2, p - p // 2), impl="ref")
        z = torch.nn.functional.conv2d(z, w, stride=2)
    else:
        z = torch.nn.functional.conv2d(x, w, padding=kernel_size // 2)
    expected = bias_act(z, conv.bias.double(), act=activation,
                        gain=ACTIVATIONS[activation].gain * gain, clamp=1.5 * abs(gain),
                        impl="ref")
    with torch.no_grad():
        got = conv(x, gain=gain)
    assert got.shape == (2, 6, 12 // down, 12 // down)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
