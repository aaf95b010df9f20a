"""The discriminator: a residual network of R x R patches, optionally conditioned on the zoom.

Architecture (``ch(r) = min(channel_base // r, channel_max)`` channels at resolution ``r``)::

    img [B, C, R, R]
      FromRGB       1x1 conv, lrelu                              -> ch(R)  at R
      block(r), r = R, R/2, ..., 8:
        main        3x3 conv, lrelu -> 3x3 conv, lrelu, down 2   -> ch(r/2) at r/2
        skip        1x1 conv (no bias, linear), down 2           -> ch(r/2) at r/2
        out         (main + skip) * sqrt(0.5)
      epilogue at 4x4:
        minibatch standard deviation                             -> ch(4) + mbstd_channels
        3x3 conv, lrelu                                          -> ch(4)
        flatten, fully connected, lrelu                          -> ch(4)
        output      linear -> 1 logit, or the zoom projection (below)

Every layer has an equalised learning rate (unit-variance weights scaled at run time by
``1 / sqrt(fan_in)``); lrelu has slope 0.2 and gain sqrt(2) (:func:`~napari_scalespace.ops.
bias_act`) and the convolutions clamp their pre-activations to ``+-conv_clamp`` (scaled with the
branch gain). Down-sampling is anti-aliased: a low-pass with the binomial filter ``[1, 3, 3, 1]
/ 8`` (:func:`~napari_scalespace.ops.upfirdn2d`, DC gain 1) before the decimation.

**Minibatch standard deviation.** The batch is cut into consecutive groups of ``G`` samples,
``G`` the largest divisor of ``B`` that is at most ``mbstd_group`` (so any batch size works:
a prime batch larger than the group falls back to groups of 1, where the statistic is 0).
Per group, the standard deviation over the group of every feature, averaged over
``channels / mbstd_channels`` channels and all pixels, gives ``mbstd_channels`` numbers that are
appended as constant feature maps to every member of the group. A sample's logit therefore
depends on the other members of its group, which lets the discriminator see a lack of variety.

**Scale conditioning (projection).** With ``scale_conditioning`` the logit is
``<phi(x), e(t)> / sqrt(cmap_dim)``: ``phi(x)`` a linear map of the image features to
``cmap_dim = ch(4)`` dimensions and ``e(t)`` an embedding of the normalised zoom
``t = zoom / octaves``: Fourier features ``[sin, cos](2^k pi t), k < 4`` followed by a two-layer
MLP (lrelu, then linear). Real and generated patches are both drawn at known zooms, so the
discriminator judges "is this a plausible patch *at this zoom*".
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import DiscriminatorConfig
from .layers import EqualizedConv2d, EqualizedLinear

ZOOM_FREQUENCIES = 4
"""Fourier features of the zoom embedding: ``[sin, cos](2^k pi t)`` for ``k < 4``."""


def channels_at(cfg: DiscriminatorConfig, res: int) -> int:
    """Feature channels at resolution ``res``: ``min(channel_base // res, channel_max)``."""
    return max(1, min(cfg.channel_base // res, cfg.channel_max))


def mbstd_group_size(batch: int, group: int) -> int:
    """The largest divisor of ``batch`` that is at most ``group`` (at least 1)."""
    for g in range(min(group, batch), 1, -1):
        if batch % g == 0:
            return g
    return 1


class DiscriminatorBlock(nn.Module):
    """Residual block ``r -> r/2``: conv3x3 -> conv3x3 (down 2) plus a 1x1 skip (down 2)."""

    def __init__(self, in_channels: int, out_channels: int, conv_clamp: float | None,
                 impl: str = "auto") -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, activation="lrelu",
                                     conv_clamp=conv_clamp, impl=impl)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activation="lrelu", down=2,
                                     conv_clamp=conv_clamp, impl=impl)
        self.skip = EqualizedConv2d(in_channels, out_channels, 1, bias=False, down=2, impl=impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = math.sqrt(0.5)  # applied to both branches inside the layers (folded into weights)
        y = self.skip(x, gain=g)
        x = self.conv1(self.conv0(x), gain=g)
        # in place into the skip's convolution output: autograd keeps a convolution's inputs,
        # never its output (the activation's output may be kept, so it is not overwritten)
        return y.add_(x)


class MinibatchStd(nn.Module):
    """Append the group standard deviation of the features as ``num_channels`` feature maps."""

    def __init__(self, group_size: int, num_channels: int = 1) -> None:
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        G, F = mbstd_group_size(B, self.group_size), self.num_channels
        # [B, C, H, W] -> [B/G, G, F, C/F, H, W]: consecutive samples form a group.
        # statistics in float32 at least (half precision under autocast), float64 stays
        y = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        y = y.reshape(B // G, G, F, C // F, H, W)
        y = y.var(dim=1, unbiased=False).add(1e-8).sqrt()  # [B/G, F, C/F, H, W]
        y = y.mean(dim=(2, 3, 4))  # [B/G, F]
        y = y.to(x.dtype).repeat_interleave(G, dim=0)  # [B, F]
        y = y[:, :, None, None].expand(B, F, H, W)
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}"


class ZoomEmbedding(nn.Module):
    """``t = zoom / octaves`` -> Fourier features -> MLP -> ``[B, dim]``."""

    def __init__(self, octaves: int, dim: int, frequencies: int = ZOOM_FREQUENCIES) -> None:
        super().__init__()
        self.octaves = octaves
        self.register_buffer(
            "freqs", math.pi * 2.0 ** torch.arange(frequencies, dtype=torch.float32),
            persistent=False)
        self.fc0 = EqualizedLinear(2 * frequencies, dim, activation="lrelu")
        self.fc1 = EqualizedLinear(dim, dim)

    def forward(self, zoom: torch.Tensor) -> torch.Tensor:
        t = zoom.float() / self.octaves
        phase = t[:, None] * self.freqs  # [B, K]
        features = torch.cat([phase.sin(), phase.cos()], dim=1).to(self.fc0.weight.dtype)
        return self.fc1(self.fc0(features))


class DiscriminatorEpilogue(nn.Module):
    """4x4 features -> minibatch std -> conv -> fc -> logit (optionally projected on the zoom)."""

    def __init__(self, cfg: DiscriminatorConfig, channels: int, impl: str = "auto") -> None:
        super().__init__()
        self.mbstd = (MinibatchStd(cfg.mbstd_group, cfg.mbstd_channels)
                      if cfg.mbstd_channels > 0 else None)
        self.conv = EqualizedConv2d(channels + max(cfg.mbstd_channels, 0), channels, 3,
                                    activation="lrelu", conv_clamp=cfg.conv_clamp, impl=impl)
        self.fc = EqualizedLinear(channels * 16, channels, activation="lrelu")
        self.cmap_dim = channels if cfg.scale_conditioning else 0
        self.out = EqualizedLinear(channels, self.cmap_dim if cfg.scale_conditioning else 1)
        self.embed = ZoomEmbedding(cfg.octaves, channels) if cfg.scale_conditioning else None

    def forward(self, x: torch.Tensor, zoom: torch.Tensor | None) -> torch.Tensor:
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.embed is None:
            return x[:, 0]
        assert zoom is not None
        cmap = self.embed(zoom)
        return (x * cmap.to(x.dtype)).sum(dim=1) * (1 / math.sqrt(self.cmap_dim))


class Discriminator(nn.Module):
    """``forward(img [B, C, R, R], zoom [B] or None) -> logits [B]`` (see the module docstring).

    ``zoom`` is the view's zoom level ``l`` (0 = whole scene, up to ``cfg.octaves``); it is
    required with ``cfg.scale_conditioning`` and ignored (but still checked) without.
    ``impl`` selects the ops' implementation (``"auto"``, ``"fast"``, ``"ref"``).
    """

    def __init__(self, cfg: DiscriminatorConfig, impl: str = "auto") -> None:
        super().__init__()
        R = cfg.resolution
        if R < 4 or R & (R - 1):
            raise ValueError(f"resolution must be a power of two >= 4, got {R}")
        if cfg.mbstd_channels < 0:
            raise ValueError(f"mbstd_channels must be >= 0, got {cfg.mbstd_channels}")
        c4 = channels_at(cfg, 4)
        if cfg.mbstd_channels > 0 and c4 % cfg.mbstd_channels:
            raise ValueError(f"mbstd_channels ({cfg.mbstd_channels}) must divide the channels "
                             f"at 4x4 ({c4})")
        self.cfg = cfg
        self.from_rgb = EqualizedConv2d(cfg.channels, channels_at(cfg, R), 1, activation="lrelu",
                                        conv_clamp=cfg.conv_clamp, impl=impl)
        blocks = []
        res = R
        while res > 4:
            blocks.append(DiscriminatorBlock(channels_at(cfg, res), channels_at(cfg, res // 2),
                                             cfg.conv_clamp, impl))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        self.epilogue = DiscriminatorEpilogue(cfg, c4, impl)

    def forward(self, img: torch.Tensor, zoom: torch.Tensor | None = None) -> torch.Tensor:
        zoom = self._check_inputs(img, zoom)
        # channels-last: oneDNN's convolutions and the fast FIR ops are fastest in it on CPU
        x = self.from_rgb(img.contiguous(memory_format=torch.channels_last))
        for block in self.blocks:
            x = block(x)
        logits = self.epilogue(x, zoom)
        # half-precision logits (autocast) go to float32 for the losses; float64 stays
        return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()

    def _check_inputs(self, img: object, zoom: object) -> torch.Tensor | None:
        cfg = self.cfg
        if not isinstance(img, torch.Tensor) or not img.is_floating_point():
            raise ValueError(f"img must be a floating-point torch.Tensor, got "
                             f"{_describe(img)}")
        expected = (cfg.channels, cfg.resolution, cfg.resolution)
        if img.ndim != 4 or tuple(img.shape[1:]) != expected or img.shape[0] == 0:
            raise ValueError(f"img must have shape [B, {cfg.channels}, {cfg.resolution}, "
                             f"{cfg.resolution}] with B >= 1, got {tuple(img.shape)}")
        if zoom is None:
            if cfg.scale_conditioning:
                raise ValueError("zoom is required: this discriminator is scale-conditioned "
                                 "(pass zoom [B], the zoom level of every patch)")
            return None
        if not isinstance(zoom, torch.Tensor) or zoom.is_complex() or zoom.dtype == torch.bool:
            raise ValueError(f"zoom must be a real torch.Tensor of shape [B], got "
                             f"{_describe(zoom)}")
        if tuple(zoom.shape) != (img.shape[0],):
            raise ValueError(f"zoom must have shape [B] = [{img.shape[0]}] (one zoom per img), "
                             f"got {tuple(zoom.shape)}")
        return zoom.to(device=img.device, dtype=torch.float32)


def _describe(x: object) -> str:
    return f"{x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__


__all__ = ["Discriminator", "channels_at", "mbstd_group_size"]
