"""The alias-free synthesis network: canvases of world coordinates, from coarse to fine.

Layer i takes canvas i-1 (``size_{i-1}`` samples at ``rate_{i-1}``), applies a modulated
convolution (weights scaled per input channel by the style ``s = affine(w)`` and demodulated
per output channel, ``d_o = 1 / sqrt(sum_{i,k} (W_oik s_i)^2)``) and the filtered leaky ReLU of
its :class:`~.schedule.Transition`, which lands exactly on canvas i (both centred on the view).
The Fourier features assigned to canvas i are then appended as extra channels. ToRGB is a
modulated 1x1 convolution without demodulation.

The modulated convolution uses the form that is cheapest for the batch: at batch 1 the style
and demodulation are folded into the weights (one plain convolution); for larger batches the
input is scaled per sample, convolved with the shared weights and the output scaled (the same
maths without per-sample weights).
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import record_function

from ..ops import filtered_lrelu, lowpass_filter
from ..ops._polyphase import flat_view
from .config import GeneratorConfig
from .layers import EqualizedLinear
from .schedule import LayerSpec, Transition

CONV_FORMS = ("auto", "grouped")


def stage(name: str) -> contextlib.AbstractContextManager:
    """A ``torch.profiler`` label for a stage of the forward (``benchmarks/bench_generator.py``
    reports time per stage), free when nobody profiles: a ``record_function`` costs tens of
    microseconds, about 1 ms of a batch-1 forward with its 22 labels."""
    if torch.compiler.is_compiling() or not torch.autograd.profiler._is_profiler_enabled:
        return contextlib.nullcontext()
    return record_function(name)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    input_gain: torch.Tensor | None = None,
    form: str = "auto",
) -> torch.Tensor:
    """Convolve ``x [B, I, H, W]`` with ``weight [O, I, k, k]`` modulated by ``styles [B, I]``,
    demodulated per output channel, and scaled by ``input_gain`` (as if applied to ``x``).

    ``form="auto"`` picks the cheapest equivalent form (see the module docstring);
    ``"grouped"`` is the published formulation, one grouped convolution with a modulated weight
    per sample (kept as the reference the benchmarks compare against)."""
    if form == "grouped":
        B, O = x.shape[0], weight.shape[0]
        out_scale = _out_scale(weight, styles, demodulate, input_gain)
        _, I, k, _ = weight.shape
        w = weight[None] * styles.reshape(B, 1, -1, 1, 1) * out_scale.reshape(B, O, 1, 1, 1)
        y = F.conv2d(x.contiguous().reshape(1, B * I, *x.shape[2:]), w.reshape(B * O, I, k, k),
                     groups=B)
        return y.reshape(B, O, *y.shape[2:])
    if form != "auto":
        raise ValueError(f"form must be one of {CONV_FORMS}, got {form!r}")
    return Modulation(weight, styles, demodulate, input_gain)(x)


def _out_scale(weight, styles, demodulate, input_gain) -> torch.Tensor:
    """``[B, O]``: demodulation ``1 / sqrt(sum_{i,k} (W_oik s_i)^2)`` times ``input_gain``."""
    B, O = styles.shape[0], weight.shape[0]
    if demodulate:
        out_scale = (weight.square().sum([2, 3]) @ styles.square().T + 1e-8).rsqrt().T
    else:
        out_scale = torch.ones(B, O, dtype=styles.dtype, device=styles.device)
    return out_scale if input_gain is None else out_scale * input_gain


class Modulation:
    """A modulated convolution prepared for one batch of styles: at batch 1 the weights with
    the style and demodulation folded in, else the shared weights with the input and output
    scales. Everything here depends on the styles only, not on the views, so a renderer that
    draws tile after tile of one scene prepares it once (:class:`SynthesisLayer`)."""

    def __init__(self, weight, styles, demodulate, input_gain) -> None:
        self.B = styles.shape[0]
        out_scale = _out_scale(weight, styles, demodulate, input_gain)
        if self.B == 1:
            self.weight = weight * styles.reshape(1, -1, 1, 1) * out_scale.reshape(-1, 1, 1, 1)
        else:
            self.weight = weight
            self.in_scale = styles.reshape(self.B, -1, 1, 1)
            self.out_scale = out_scale.reshape(self.B, -1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.B == 1:
            return F.conv2d(x, self.weight)
        return F.conv2d(x * self.in_scale, self.weight) * self.out_scale


class SynthesisLayer(nn.Module):
    def __init__(self, cfg: GeneratorConfig, prev: LayerSpec, cur: LayerSpec, t: Transition,
                 in_channels: int, impl: str = "auto") -> None:
        super().__init__()
        self.t, self.impl, self.conv_clamp = t, impl, cfg.conv_clamp
        self.conv_form = "auto"  # "grouped": the published formulation (benchmarks)
        out_channels = cfg.channels if t.is_torgb else cur.channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.affine = EqualizedLinear(cfg.w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, t.kernel, t.kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        tmp = prev.rate * t.up
        fu = _design(t.taps_up, prev.cutoff, prev.half_width, tmp)
        fd = _design(t.taps_down, cur.cutoff, cur.half_width, tmp, radial=t.radial_down)
        self.register_buffer("fu", fu, persistent=False)
        self.register_buffer("fd", fd, persistent=False)
        self.weight_gain = 1 / math.sqrt(in_channels * t.kernel**2)
        self._prepared: tuple | None = None  # (key, w, Modulation) while rendering

    def forward(self, x: torch.Tensor, w: torch.Tensor, padding: tuple[int, int, int, int],
                update_emas: bool = False):
        if update_emas:
            with torch.no_grad():
                magnitude = flat_view(x.detach()).float().square().mean()
                self.magnitude_ema.lerp_(magnitude, 1 - 0.999)
        with stage("modulated_conv"):
            if self.conv_form == "auto":
                x = self._modulation(w)(x)
            else:
                x = modulated_conv2d(x, self.weight, self._styles(w),
                                     demodulate=not self.t.is_torgb,
                                     input_gain=self.magnitude_ema.rsqrt(), form=self.conv_form)
        t = self.t
        gain, slope = (1.0, 1.0) if t.is_torgb else (math.sqrt(2), 0.2)
        with stage("filtered_lrelu"):
            return filtered_lrelu(x, self.fu, self.fd, self.bias.to(x.dtype), up=t.up,
                                  down=t.down, padding=padding, gain=gain, slope=slope,
                                  clamp=self.conv_clamp, impl=self.impl)

    def _styles(self, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        return styles * self.weight_gain if self.t.is_torgb else styles

    def _modulation(self, w: torch.Tensor) -> Modulation:
        """The prepared modulation for ``w``. Without autograd it is kept and reused while
        ``w`` and the layer's weights stay the same (a renderer's tiles of one scene share
        ``w``; preparing it cost ~2.3 ms of a 35-50 ms `small` forward at batch 1)."""
        tensors = (self.weight, self.affine.weight, self.affine.bias, self.magnitude_ema)
        reuse = not (torch.compiler.is_compiling() or torch.is_grad_enabled()
                     or any(t.is_inference() for t in tensors))
        if reuse:
            key = (tuple((id(t), t._version) for t in tensors),
                   torch.is_inference_mode_enabled(), w.shape, w.dtype, w.device)
            hit = self._prepared
            if hit is not None and hit[0] == key and torch.equal(hit[1], w):
                return hit[2]
        m = Modulation(self.weight, self._styles(w), not self.t.is_torgb,
                       self.magnitude_ema.rsqrt())
        if reuse:
            self._prepared = (key, w.clone(), m)
        return m

    def extra_repr(self) -> str:
        t = self.t
        return (f"in={self.in_channels}, out={self.out_channels}, k={t.kernel}, up={t.up}, "
                f"down={t.down}, taps={t.taps_up}/{t.taps_down}")


def _design(taps: int, cutoff: float, half_width: float, fs: float,
            radial: bool = False) -> torch.Tensor | None:
    if taps == 1:
        return None
    return lowpass_filter(taps, cutoff=cutoff, width=half_width * 2, fs=fs, radial=radial)
