"""``filtered_lrelu``: the alias-free nonlinearity of the generator.

For each channel: add the bias ``b``, up-sample by ``up`` with the FIR filter ``fu`` (gain
``up**2`` so that the signal keeps its amplitude), pad by ``padding``, apply the leaky ReLU
``lrelu(v) = v if v >= 0 else slope * v`` times ``gain``, clamp to ``[-clamp, clamp]``, filter
with ``fd`` and keep every ``down``-th sample::

    y = downfir(clamp(gain * lrelu(upfir(x + b, fu, up, padding)), clamp), fd, down)

The nonlinearity runs at the higher rate so that the harmonics it creates stay below the new
Nyquist frequency, where ``fd`` removes them before decimation. Output size per axis::

    (in * up + pad0 + pad1 - (taps_u - 1) - (taps_d - 1) + (down - 1)) // down
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import _fused_cpu, dispatch
from ._args import (
    check_bias,
    check_filter,
    check_input,
    filter_taps,
    output_size,
    parse_padding,
    parse_scaling,
)
from ._polyphase import (
    CHANNELS_LAST,
    FirStage,
    fir_stage,
    flat_view,
    pad_channels_last,
    to_channels_last,
)
from .bias_act import LeakyReLUClamp, bias_act
from .upfirdn2d import upfirdn2d_ref


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int | tuple[int, ...] = 0,
    gain: float = math.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
    impl: str = "auto",
) -> torch.Tensor:
    """Bias, up-FIR, leaky ReLU with gain and clamp, down-FIR (see the module docstring)."""
    x = check_input(x)
    fu = check_filter(fu, x, "fu")
    fd = check_filter(fd, x, "fd")
    b = check_bias(b, x)
    up2, down2 = parse_scaling(up, "up"), parse_scaling(down, "down")
    pad = parse_padding(padding)
    if clamp is not None and not clamp >= 0:
        raise ValueError(f"clamp must be None or >= 0, got {clamp!r}")
    (tux, tuy), (tdx, tdy) = filter_taps(fu), filter_taps(fd)
    mid_w = output_size(x.shape[3], up2[0], 1, pad[0], pad[1], tux, "x (width)", "fu")
    mid_h = output_size(x.shape[2], up2[1], 1, pad[2], pad[3], tuy, "y (height)", "fu")
    output_size(mid_w, 1, down2[0], 0, 0, tdx, "x (width)", "fd")
    output_size(mid_h, 1, down2[1], 0, 0, tdy, "y (height)", "fd")
    args = (x, fu, fd, b, up2, down2, pad, float(gain), float(slope), clamp, flip_filter)
    which = dispatch.resolve(impl, x, "filtered_lrelu")
    if which == "ref":
        return filtered_lrelu_ref(*args)
    if which == "triton":
        return filtered_lrelu_triton(*args)
    return filtered_lrelu_fast(*args)


def filtered_lrelu_ref(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    """The specification: bias_act, upfirdn2d, bias_act, upfirdn2d."""
    x = bias_act(x, b, impl="ref")
    x = upfirdn2d_ref(x, fu, up, (1, 1), pad, flip_filter, gain=up[0] * up[1])
    x = bias_act(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp, impl="ref")
    return upfirdn2d_ref(x, fd, (1, 1), down, (0, 0, 0, 0), flip_filter, gain=1.0)


def filtered_lrelu_triton(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    """The Triton path: one fused kernel (``_triton_flrelu.py``) when the up filter is
    separable and both axes share up/down/padding, else :func:`filtered_lrelu_unfused_triton`."""
    from ._triton_flrelu import FusedFilteredLReLU, supported

    if supported(fu, fd, up, down, pad):
        try:
            return FusedFilteredLReLU.apply(x, b, fu, fd, up, down, pad, gain, slope, clamp,
                                            flip_filter)
        except Exception as exc:  # e.g. a GPU without the shared memory the tiles need
            if "triton" not in type(exc).__module__ and "OutOfResources" not in repr(exc):
                raise
            dispatch.warn_once(f"napari-scalespace: the fused filtered_lrelu kernel failed "
                               f"({type(exc).__name__}: {exc}); using the unfused kernels")
    return filtered_lrelu_unfused_triton(x, fu, fd, b, up, down, pad, gain, slope, clamp,
                                         flip_filter)


def filtered_lrelu_unfused_triton(x, fu, fd, b, up, down, pad, gain, slope, clamp,
                                  flip_filter):
    """Triton kernels in a row: bias, up-FIR, leaky ReLU + gain + clamp, down-FIR (the
    up-sampled tensor goes through memory once each way). The fused kernel's backward
    differentiates it."""
    from ._triton_bias_act import bias_act_triton
    from ._triton_fir import upfirdn2d_triton

    y = x if b is None else bias_act_triton(x, b, 1, "linear", 0.0, 1.0, None)
    y = upfirdn2d_triton(y, fu, up, (1, 1), pad, flip_filter, up[0] * up[1])
    y = bias_act_triton(y, None, 1, "lrelu", slope, gain, clamp)
    return upfirdn2d_triton(y, fd, (1, 1), down, (0, 0, 0, 0), flip_filter, 1.0)


def filtered_lrelu_fast(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    """Polyphase up-FIR, in-place nonlinearity, decimating down-FIR, all channels-last.

    When nothing needs a gradient and both filters are 1-D, the fused kernel of
    ``_fused_cpu.py`` runs instead (the up-sampled tensor is never built). Otherwise:

    - The bias, the layout change and the up stage's input padding are one write of the (small)
      input (``_bias_pad``), the only padding copy of the whole op (``FirStage``).
    - The clamp is symmetric, so ``clamp(g lrelu(v), c) = g clamp(lrelu(v), c / |g|)`` and the
      gain is folded into ``fd`` (one pass less over the up-sampled tensor).
    - The clamp is skipped when a bound found on the input shows it cannot act; otherwise one
      ``aminmax`` pass tells whether it does.
    """
    if up == down == (1, 1) and _is_identity(fu) and _is_identity(fd):
        # nothing to filter (the generator's ToRGB): a bias_act, then the padding, which
        # commutes with it (lrelu(0) = 0)
        y = bias_act(x, b, act="lrelu", alpha=slope, gain=gain, clamp=clamp, impl="fast")
        return pad_channels_last(y, pad)
    if (_fused_cpu.ENABLED and not torch.compiler.is_compiling()
            and not _needs_grad(x, fu, fd, b) and _fused_cpu.supported(x, fu, fd)):
        return _fused_cpu.filtered_lrelu_fused(x, fu, fd, b, up, down, pad, gain, slope, clamp,
                                               flip_filter)
    up_stage = FirStage.planned(fu, up, (1, 1), pad, flip_filter, gain=up[0] * up[1])
    limit = None if clamp is None or gain == 0 else clamp / abs(gain)
    y = _bias_pad(x, b, up_stage.input_pad)
    if torch.compiler.is_compiling():  # traceable: no data-dependent branch
        y = F.leaky_relu(up_stage(y), slope)
        y = y if limit is None else y.clamp(-limit, limit)
        return fir_stage(y, fd, (1, 1), down, (0, 0, 0, 0), flip_filter, gain=gain)
    if limit is not None and (_upsampled_bound(y, up_stage.l1_norm, up) * max(1.0, abs(slope))
                              <= limit):
        limit = None  # no value can reach the clamp: skip the pass that would look for one
    y = up_stage(y)
    if torch.is_grad_enabled() and y.requires_grad:
        y = LeakyReLUClamp.apply(y, slope, limit)
    else:  # no autograd: the same in-place work without the Function's bookkeeping
        LeakyReLUClamp.inplace(y, slope, limit)
    return fir_stage(y, fd, (1, 1), down, (0, 0, 0, 0), flip_filter, gain=gain)


def _needs_grad(*tensors: torch.Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _is_identity(f: torch.Tensor) -> bool:
    if torch.compiler.is_compiling():  # (reading the value would break the graph)
        return False
    return f.numel() == 1 and float(f.reshape(())) == 1.0


def _bias_pad(x: torch.Tensor, b: torch.Tensor | None, pad: tuple[int, int, int, int]):
    """``pad_or_crop(x + b, pad)`` as one channels-last tensor, written in one pass when
    nothing needs gradients (the padded buffer is the output of the add) and nothing traces
    the op (``out=`` writes into a view break a ``torch.compile`` graph)."""
    if min(pad) < 0 or _needs_grad(x, b) or torch.compiler.is_compiling():
        y = to_channels_last(x) if b is None else to_channels_last(x) + b.reshape(1, -1, 1, 1)
        return pad_channels_last(y, pad)
    x0, x1, y0, y1 = pad
    N, C, H, W = x.shape
    out = torch.empty((N, C, H + y0 + y1, W + x0 + x1), dtype=x.dtype, device=x.device,
                      memory_format=CHANNELS_LAST)
    # zero the border only (the inside is written next)
    Ho, Wo = out.shape[2:]
    mid = slice(y0, Ho - y1)
    for rows, cols in ((slice(0, y0), slice(0, Wo)), (slice(Ho - y1, Ho), slice(0, Wo)),
                       (mid, slice(0, x0)), (mid, slice(Wo - x1, Wo))):
        if rows.start != rows.stop and cols.start != cols.stop:
            out[:, :, rows, cols] = 0
    inner = out[:, :, y0 : y0 + H, x0 : x0 + W]
    if b is None:
        inner.copy_(x)
    else:
        torch.add(x, b.reshape(1, -1, 1, 1), out=inner)
    return out


def _upsampled_bound(x: torch.Tensor, l1_norm: float, up: tuple[int, int]) -> float:
    """An upper bound of ``|upfirdn2d(x, fu, up, gain=up**2)|``: ``max|x|`` times the filter's
    L1 norm (``l1_norm``: of the 2-D filter, i.e. squared for a separable one) times the gain.
    Found on the small input, it spares a pass over the up-sampled tensor whenever the clamp
    cannot act (the usual case).
    """
    if not x.numel():
        return 0.0
    lo, hi = torch.aminmax(flat_view(x.detach()))
    return max(-float(lo), float(hi)) * l1_norm * up[0] * up[1]
