"""``upfirdn2d``: up-sample, pad, FIR-filter and down-sample a batch of images, per channel.

For each channel of ``x [N, C, H, W]``: insert ``up - 1`` zeros after every sample, pad by
``padding`` (negative values crop), convolve with the FIR filter ``f`` (a 1-D filter is applied
separably along x and then y, a 2-D ``[fh, fw]`` filter as is; ``flip_filter=True``
correlates instead of convolving), multiply by ``gain`` and keep every ``down``-th sample.
Output size per axis::

    (in * up + pad0 + pad1 - taps + down) // down
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import dispatch
from ._args import (
    Pad4,
    check_filter,
    check_input,
    filter_taps,
    output_size,
    pad_or_crop,
    parse_padding,
    parse_scaling,
)
from ._polyphase import fir_stage, to_channels_last


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | tuple[int, int] = 1,
    down: int | tuple[int, int] = 1,
    padding: int | tuple[int, ...] = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    impl: str = "auto",
) -> torch.Tensor:
    """Up-sample, pad, FIR-filter and down-sample ``x`` (see the module docstring)."""
    x = check_input(x)
    f = check_filter(f, x)
    up2, down2 = parse_scaling(up, "up"), parse_scaling(down, "down")
    pad = parse_padding(padding)
    check_geometry(x, f, up2, down2, pad)
    which = dispatch.resolve(impl, x, "upfirdn2d")
    if which == "ref":
        return upfirdn2d_ref(x, f, up2, down2, pad, flip_filter, gain)
    if which == "triton":
        from ._triton_fir import upfirdn2d_triton

        return upfirdn2d_triton(x, f, up2, down2, pad, flip_filter, gain)
    return fir_stage(to_channels_last(x), f, up2, down2, pad, flip_filter, gain)


def check_geometry(
    x: torch.Tensor, f: torch.Tensor, up: tuple[int, int], down: tuple[int, int], pad: Pad4
) -> tuple[int, int]:
    """Validate that the filter fits the padded input; return the output (height, width)."""
    tx, ty = filter_taps(f)
    out_w = output_size(x.shape[3], up[0], down[0], pad[0], pad[1], tx, "x (width)")
    out_h = output_size(x.shape[2], up[1], down[1], pad[2], pad[3], ty, "y (height)")
    return out_h, out_w


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    pad: Pad4,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """The specification: the obvious composition of zero-insertion, padding, FIR, decimation."""
    N, C, H, W = x.shape
    (ux, uy), (dx, dy) = up, down
    x = x.reshape(N, C, H, 1, W, 1)
    x = F.pad(x, [0, ux - 1, 0, 0, 0, uy - 1])  # zero-insert
    x = x.reshape(N, C, H * uy, W * ux)
    x = pad_or_crop(x, pad)  # negative values crop
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))  # conv2d correlates: flip to convolve
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(C, 1, 1, 1), groups=C)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(C, 1, 1, 1), groups=C)
        x = F.conv2d(x, f[None, None, :, None].repeat(C, 1, 1, 1), groups=C)
    return x[:, :, ::dy, ::dx] * gain
