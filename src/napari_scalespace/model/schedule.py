"""The layer schedule of the alias-free synthesis network, as plain functions of the config.

Layer i = 0 .. N (0 is the input canvas, N = ``num_layers``; ToRGB reuses layer N's canvas).
With ``e_i = min(i / (N - num_critical), 1)`` (0 at the input, 1 for the critical layers)::

    cutoff_i     = first_cutoff * (R/2 / first_cutoff) ** e_i            (geometric in i)
    stopband_i   = first_stopband * (R/2 * last_stopband_rel / first_stopband) ** e_i
    rate_i       = 2 ** ceil(log2(min(2 * stopband_i, R)))                (samples per view side)
    half_width_i = max(stopband_i, rate_i / 2) - cutoff_i                 (transition band)
    size_i       = rate_i + 2 * margin, except the last two: size = R     (canvas, samples)
    channels_i   = min(channel_base / 2 / cutoff_i, channel_max)

All frequencies are in cycles per view side and rates in samples per view side, so a canvas of
layer i covers the view plus ``margin`` samples of rate_i on each side, in world units
(``geometry.world_grid``). For R = 256 and 14 layers the sizes are 36, 36, 36, 52, 52, 84, 84,
148, 148, 148, 276, 276, 276, 256, 256, as in the published models.

Between layers i-1 and i the nonlinearity runs at ``tmp = max(rate_{i-1}, rate_i) * u`` with
``u = lrelu_upsampling`` (1 for ToRGB): ``up = tmp / rate_{i-1}``, ``down = tmp / rate_i``; the
up filter has ``filter_size * up`` taps (cutoff_{i-1}, half_width_{i-1}), the down filter
``filter_size * down`` taps (cutoff_i, half_width_i), one tap when the factor is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import GeneratorConfig


@dataclass(frozen=True)
class LayerSpec:
    """One canvas of the synthesis network (index 0 is the input)."""

    index: int
    cutoff: float
    stopband: float
    rate: int
    half_width: float
    size: int
    channels: int

    @property
    def margin(self) -> int:
        """Samples outside the view on each side (size = rate + 2 * margin)."""
        return (self.size - self.rate) // 2


@dataclass(frozen=True)
class Transition:
    """How layer ``index`` is computed from layer ``index - 1``."""

    index: int
    up: int
    down: int
    taps_up: int
    taps_down: int
    kernel: int
    padding: tuple[int, int, int, int]
    """filtered_lrelu padding (x0, x1, y0, y1) that keeps both canvases centred on the view."""
    radial_down: bool
    is_torgb: bool


def layer_specs(cfg: GeneratorConfig, extra: int = 0) -> list[LayerSpec]:
    """The canvases 0 .. num_layers (see the module docstring for the formulas).

    ``extra`` widens every canvas by at least ``extra`` output pixels of world extent on each
    side (``ceil(extra * rate_i / R)`` samples of layer i): the generator then renders an
    ``R + 2 extra`` image whose central R pixels have no border effects, so adjacent tiles meet
    without seams (the weights do not depend on canvas sizes).
    """
    n, R = cfg.num_layers, cfg.resolution
    last_cutoff = R / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    specs = []
    for i in range(n + 1):
        e = min(i / (n - cfg.num_critical), 1.0)
        cutoff = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** e
        stopband = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** e
        rate = int(2 ** math.ceil(math.log2(min(2 * stopband, R)) - 1e-9))
        half_width = max(stopband, rate / 2) - cutoff
        size = R if i >= n - 1 else rate + 2 * cfg.margin
        size += 2 * math.ceil(extra * rate / R)
        channels = round(min(cfg.channel_base / 2 / cutoff, cfg.channel_max))
        specs.append(LayerSpec(i, cutoff, stopband, rate, half_width, size, channels))
    return specs


def transitions(cfg: GeneratorConfig, extra: int = 0) -> list[Transition]:
    """Layers 1 .. num_layers and ToRGB (index num_layers + 1, same canvas as the last)."""
    specs = layer_specs(cfg, extra)
    out = []
    for i in range(1, len(specs) + 1):
        is_torgb = i == len(specs)
        prev = specs[i - 1]
        cur = specs[-1] if is_torgb else specs[i]
        u = 1 if is_torgb else cfg.lrelu_upsampling
        tmp = max(prev.rate, cur.rate) * u
        up, down = tmp // prev.rate, tmp // cur.rate
        taps_up = cfg.filter_size * up if up > 1 else 1
        taps_down = cfg.filter_size * down if down > 1 else 1
        kernel = 1 if is_torgb else cfg.conv_kernel
        padding = centred_padding(prev.size - kernel + 1, cur.size, up, down, taps_up, taps_down)
        radial = cfg.radial_filters and not is_torgb and i > cfg.num_layers - cfg.num_critical
        out.append(Transition(i, up, down, taps_up, taps_down, kernel, padding, radial, is_torgb))
    return out


def centred_padding(
    size_in: int, size_out: int, up: int, down: int, taps_up: int, taps_down: int
) -> tuple[int, int, int, int]:
    """filtered_lrelu padding that maps a centred canvas of ``size_in`` samples onto a centred
    canvas of ``size_out`` samples.

    In units of the up-sampled rate, input sample n sits at ``n*up - up*(size_in-1)/2`` from the
    centre; after padding p0 and the two FIR filters (delays (taps-1)/2 each), output sample r
    sits at ``r*down + (tu-1)/2 + (td-1)/2 - p0 - up*(size_in-1)/2``. Asking for
    ``r*down - down*(size_out-1)/2`` gives::

        p0 = ((tu-1) + (td-1) - up*(size_in-1) + down*(size_out-1)) / 2
        p0 + p1 = size_out*down - size_in*up + (tu-1) + (td-1) - (down-1)

    The first must be an integer: the tap counts are chosen so (it raises otherwise).
    """
    twice_p0 = (taps_up - 1) + (taps_down - 1) - up * (size_in - 1) + down * (size_out - 1)
    if twice_p0 % 2:
        raise ValueError(
            f"canvases of {size_in} and {size_out} samples cannot be centred with {taps_up} and "
            f"{taps_down} taps (up {up}, down {down}): a half-sample shift would remain"
        )
    p0 = twice_p0 // 2
    total = size_out * down - size_in * up + (taps_up - 1) + (taps_down - 1) - (down - 1)
    p1 = total - p0
    return (p0, p1, p0, p1)
