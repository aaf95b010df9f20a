"""The CPU building block of the ``fast`` ops: one FIR stage done without waste.

A stage is "zero-insert ``up``-1 samples, pad, convolve with ``f``, keep every ``down``-th
sample", per channel. Written literally (the ``ref`` ops) most of its multiplies hit inserted
zeros or produce samples that decimation throws away. Here:

- up-sampling is a depthwise *transposed* convolution with stride ``up``: each output phase only
  ever multiplies real samples (polyphase filtering), and the padding crops its result in place;
- down-sampling is a depthwise convolution with stride ``down``: only kept samples are computed;
- a 1-D filter is applied as two 1-D passes (separable), a 2-D one as a single 2-D pass;
- tensors are channels-last, where oneDNN's depthwise kernels vectorise over channels (measured
  3-6x faster than the same convolutions in NCHW, see docs/benchmarks.md).

The result equals ``upfirdn2d(..., impl="ref")`` (tested to float round-off) and is differentiable
through autograd.
"""

from __future__ import annotations

import weakref
from typing import ClassVar

import torch
import torch.nn.functional as F

from ._args import Pad4, pad_or_crop

CHANNELS_LAST = torch.channels_last


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=CHANNELS_LAST)


def flat_view(x: torch.Tensor) -> torch.Tensor:
    """All elements of ``x`` as a 1-D view in memory order (no copy for contiguous or
    channels-last tensors): reductions over it run at memory speed (a reduction over a
    channels-last tensor in logical order was measured 20x slower)."""
    if x.is_contiguous():
        return x.view(-1)
    if x.ndim == 4 and x.is_contiguous(memory_format=CHANNELS_LAST):
        return x.permute(0, 2, 3, 1).reshape(-1)
    return x.reshape(-1)


def fir_stage(
    x: torch.Tensor,
    f: torch.Tensor,
    up: tuple[int, int],
    down: tuple[int, int],
    pad: Pad4,
    flip_filter: bool,
    gain: float,
) -> torch.Tensor:
    """upfirdn2d on a (preferably channels-last) tensor; ``up``/``down`` are ``(x, y)``."""
    stage = FirStage.planned(f, up, down, pad, flip_filter, gain)
    return stage(pad_channels_last(x, stage.input_pad))


class FirStage:
    """One FIR stage, planned: ``stage(pad_or_crop(x, stage.input_pad))`` is upfirdn2d.

    A separable filter runs as an x pass then a y pass. Both passes pad their *input* (never
    their output); the rows the y pass needs are padded onto the x pass's input, which is
    smaller, and zero rows stay zero rows through the x pass: one padding copy instead of two,
    and callers may fold that copy into work they do anyway (see ``filtered_lrelu``).
    """

    _plans: ClassVar[dict[tuple, tuple[weakref.ref, FirStage]]] = {}
    MAX_PLANS = 512

    @classmethod
    def planned(cls, f, up, down, pad, flip_filter, gain) -> FirStage:
        """The stage for these arguments, planned once per filter tensor and reused while the
        tensor lives unchanged (the generator calls the same few stages on every forward:
        planning, flipping and expanding kernels cost about as much as a small layer's
        convolutions at batch 1). Filters that need gradients are planned afresh."""
        if torch.compiler.is_compiling() or f.requires_grad or f.is_inference():
            return cls(f, up, down, pad, flip_filter, gain)  # (inference tensors: no version)
        key = (id(f), f._version, up, down, pad, flip_filter, gain)
        hit = cls._plans.get(key)
        if hit is not None and hit[0]() is f:
            return hit[1]
        if len(cls._plans) >= cls.MAX_PLANS:
            cls._plans.clear()
        with torch.inference_mode(False):  # a plan made while rendering also serves training
            stage = cls(f, up, down, pad, flip_filter, gain)
        cls._plans[key] = (weakref.ref(f), stage)
        return stage

    def __init__(self, f, up, down, pad, flip_filter, gain):
        px0, px1, py0, py1 = pad
        self._filter = f.detach()
        self._l1_norm: float | None = None
        if f.ndim == 2:
            self.passes = [_AxisPass(f * gain, up, down, (py0, py1, px0, px1), flip_filter)]
            self.input_pad = self.passes[0].input_pad
            return
        px = _AxisPass(f.reshape(1, -1) * gain, (up[0], 1), (down[0], 1), (0, 0, px0, px1),
                       flip_filter)
        py = _AxisPass(f.reshape(-1, 1), (1, up[1]), (1, down[1]), (py0, py1, 0, 0),
                       flip_filter)
        self.passes = [px, py]
        self.input_pad = (*px.input_pad[:2], *py.input_pad[2:])

    @property
    def l1_norm(self) -> float:
        """``||f||_1`` of the 2-D filter (a separable one applies f along both axes), without
        the gain; found once per plan."""
        if self._l1_norm is None:
            f = self._filter
            self._l1_norm = float(f.abs().sum()) ** (2 if f.ndim == 1 else 1)
        return self._l1_norm

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for p in self.passes:
            x = p(x)
        return x


def pad_channels_last(x: torch.Tensor, pad: Pad4) -> torch.Tensor:
    """``pad_or_crop`` (``x`` itself when there is nothing to pad), channels-last."""
    return to_channels_last(pad_or_crop(x, pad)) if any(pad) else x


class _AxisPass:
    """One depthwise pass with a ``[kh, kw]`` kernel; ``pad_yx = (y0, y1, x0, x1)``.

    ``input_pad`` (``(x0, x1, y0, y1)``, negative = crop) is what the caller pads onto the
    input before calling the pass; the rest of the padding is done by the convolution itself.
    """

    def __init__(self, kernel, up, down, pad_yx, flip_filter):
        kh, kw = kernel.shape
        (ux, uy), (dx, dy) = up, down
        y0, y1, x0, x1 = pad_yx
        self.down = (dy, dx)
        self.transposed = ux > 1 or uy > 1
        self._weights: dict[tuple, torch.Tensor] = {}
        if not self.transposed:
            # y[o] = sum_t g[t] xpad[o*down + t], g the correlation kernel (flipped f).
            self.kernel = kernel if flip_filter else kernel.flip((0, 1))
            sym_y, sym_x = max(0, min(y0, y1)), max(0, min(x0, x1))
            self.input_pad = (x0 - sym_x, x1 - sym_x, y0 - sym_y, y1 - sym_y)
            self.padding = (sym_y, sym_x)
            return
        # Transposed convolution: z[k] = sum_n x[n] f[k - n*up], the full convolution of the
        # zero-inserted input with f; the spec's output is y[o] = z[o + taps - 1 - pad0] with
        # length n*up + pad0 + pad1 - taps + 1, i.e. crop taps-1-pad0 on the left and
        # taps-up-pad1 on the right (negative crop = zero padding). The crops are realised
        # without copying the (large) output: zeros padded onto the (small) input shift z by
        # whole periods, the transposed convolution's own ``padding`` crops both sides, and
        # ``output_padding`` (< up) extends the right side.
        self.kernel = kernel.flip((0, 1)) if flip_filter else kernel
        qx0, qx1, cx, ox = _transposed_crop(kw - 1 - x0, kw - ux - x1, ux)
        qy0, qy1, cy, oy = _transposed_crop(kh - 1 - y0, kh - uy - y1, uy)
        self.input_pad = (qx0, qx1, qy0, qy1)
        self.stride, self.padding, self.output_padding = (uy, ux), (cy, cx), (oy, ox)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        weight, C = self._weight(x), x.shape[1]
        if not self.transposed:
            return F.conv2d(x, weight, stride=self.down, padding=self.padding, groups=C)
        z = F.conv_transpose2d(x, weight, stride=self.stride, padding=self.padding,
                               output_padding=self.output_padding, groups=C)
        dy, dx = self.down
        return z[:, :, ::dy, ::dx] if dx > 1 or dy > 1 else z

    def _weight(self, x: torch.Tensor) -> torch.Tensor:
        """The depthwise weight ``[C, 1, kh, kw]``, made once per channel count and dtype (a
        planned stage serves every call of its layer)."""
        C = x.shape[1]
        key = (C, x.dtype, x.device)
        weight = self._weights.get(key)
        if weight is None:
            kh, kw = self.kernel.shape
            with torch.inference_mode(False):  # kept: must serve autograd too
                weight = self.kernel.to(x.dtype).reshape(1, 1, kh, kw).expand(C, 1, kh, kw)
                weight = self._weights[key] = weight.contiguous()
        return weight


def _transposed_crop(left: int, right: int, up: int) -> tuple[int, int, int, int]:
    """Input zero-padding ``(q0, q1)``, ``padding`` and ``output_padding`` of a transposed
    convolution with stride ``up`` that crop ``left``/``right`` samples off its full output."""
    q0 = max(0, -(left // up) if left < 0 else 0, -((left - right) // up))
    left += q0 * up
    q1, extra = divmod(left - right, up)
    return q0, q1, left, extra
