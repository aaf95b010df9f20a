"""Building blocks with an equalised learning rate.

Weights are stored with unit variance and scaled at run time by ``gain / sqrt(fan_in)`` (He
initialisation applied dynamically), so Adam moves every layer at the same relative speed; the
learning-rate multiplier ``lr_mul`` slows a layer down by storing ``w / lr_mul`` and multiplying
it back (used by the mapping network).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import bias_act


class EqualizedLinear(nn.Module):
    """``act(x @ (W * weight_gain).T + b * lr_mul)`` with ``weight_gain = lr_mul / sqrt(in)``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        bias_init: float = 0.0,
        activation: str = "linear",
        lr_mul: float = 1.0,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.bias_gain = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = None if self.bias is None else self.bias * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act(x, b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class EqualizedConv2d(nn.Module):
    """Convolution with an equalised learning rate, optional bias, activation and clamp.

    ``y = clamp(act(conv(x, W * weight_gain) + b) * act_gain * gain, +-conv_clamp * |gain|)`` with
    ``weight_gain = 1 / sqrt(in_channels * kernel_size**2)`` and ``act_gain`` the activation's
    variance-preserving gain (``sqrt(2)`` for lrelu). ``gain`` (a forward argument) scales the
    output and the clamp, e.g. ``sqrt(0.5)`` for the two branches of a residual block.

    ``down = 2`` is anti-aliased down-sampling: low-pass with ``resample_filter`` (default the
    binomial ``[1, 3, 3, 1] / 8``, separable, DC gain 1), then keep every second sample. Output
    pixel ``o`` is centred between input pixels ``2o`` and ``2o + 1`` for every kernel size, so
    a 3x3 branch and a 1x1 skip branch of a residual block see the same grid. A ``k x k``
    convolution low-passes at the input rate and decimates with its stride; a 1x1 convolution
    commutes with the per-channel filter, so it filters and decimates first and convolves the
    4x smaller result.

    For the positively homogeneous activations (linear, relu, lrelu) and ``gain > 0`` the gains
    are folded into the weight and bias (``act(g * z) = g * act(z)`` for ``g > 0``), the bias
    goes into the convolution, and the activation and clamp run through
    :func:`~napari_scalespace.ops.bias_act` without further multiplies (a linear layer without
    clamp skips it); other activations take the general ``bias_act`` path. Parameters are
    stored in float32; under autocast the convolution runs in the autocast dtype, and a model
    cast to another dtype (``.double()``, ``.half()``) runs in that dtype.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        down: int = 1,
        resample_filter: torch.Tensor | None = None,
        conv_clamp: float | None = None,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        from ..ops.bias_act import ACTIVATIONS

        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got "
                             f"{activation!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.activation, self.down = kernel_size, activation, down
        self.conv_clamp = conv_clamp
        self.impl = impl
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].gain
        self._homogeneous = activation in _HOMOGENEOUS
        if resample_filter is None:
            resample_filter = torch.tensor([1.0, 3.0, 3.0, 1.0]) / 8
        self.register_buffer("resample_filter", resample_filter, persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        from ..ops import upfirdn2d

        k, d = self.kernel_size, self.down
        folded = self._homogeneous and gain > 0
        fold = self.act_gain * gain if folded else 1.0
        w = self.weight * (self.weight_gain * fold)
        b = self.bias
        if b is not None and fold != 1.0:
            b = b * fold
        if w.dtype != x.dtype and not _autocasting(x):
            w = w.to(x.dtype)
            b = None if b is None else b.to(x.dtype)
        if d == 1:
            x = F.conv2d(x, w, b, padding=k // 2)
        elif k == 1:
            # [N, C, H, W] -> [N, C, H/2, W/2]; output o at input 2o + 0.5 (pad 1 + 1).
            x = upfirdn2d(x, self.resample_filter, down=2, padding=_down_pad(self.resample_filter,
                                                                             k), impl=self.impl)
            x = F.conv2d(x, w, b)
        else:
            # filter to H + k - 2 samples, then a valid strided k x k convolution -> H/2
            x = upfirdn2d(x, self.resample_filter, padding=_down_pad(self.resample_filter, k),
                          impl=self.impl)
            x = F.conv2d(x, w, b, stride=2)
        clamp = None if self.conv_clamp is None else self.conv_clamp * abs(gain)
        if folded:
            if self.activation == "linear" and clamp is None:
                return x
            return bias_act(x, None, act=self.activation, gain=1.0, clamp=clamp, impl=self.impl)
        return bias_act(x, None, act=self.activation, gain=self.act_gain * gain, clamp=clamp,
                        impl=self.impl)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, "
                f"down={self.down}, act={self.activation}, clamp={self.conv_clamp}")


_HOMOGENEOUS = ("linear", "relu", "lrelu")


def _down_pad(f: torch.Tensor, k: int) -> tuple[int, int, int, int]:
    """Padding of the low-pass before a stride-2 ``k x k`` convolution (odd ``k``) that centres
    output ``o`` on input ``2o + 0.5``.

    The filtered sample ``i`` (taps ``T``, left pad ``p0``) sits at input position
    ``i - p0 + (T - 1) / 2``; the strided convolution centres output ``o`` on filtered sample
    ``2o + (k - 1) / 2``. Equating with ``2o + 0.5`` gives ``p0 = (T + k - 3) / 2``, and the
    total padding ``T + k - 3`` leaves ``H + k - 2`` filtered samples (``H/2`` outputs).
    """
    total = f.shape[-1] + k - 3
    p0 = (total + 1) // 2
    return (p0, total - p0, p0, total - p0)


def _autocasting(x: torch.Tensor) -> bool:
    return torch.is_autocast_enabled(x.device.type)
