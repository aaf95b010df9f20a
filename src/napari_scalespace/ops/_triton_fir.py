"""Triton kernel of ``upfirdn2d`` (``impl="triton"``), forward and backward.

One program computes ``BLOCK`` output samples of one image plane directly from the input:
output ``o`` along an axis reads the zero-inserted input at ``o * down - pad0 + t`` for the
taps ``t``; positions that are not multiples of ``up`` (inserted zeros) and positions outside
the input are masked out, so no zero is ever loaded or multiplied into memory traffic and the
up-sampled tensor never exists. Weights are the *correlation* taps (the convolution filter
flipped, unless ``flip_filter``); accumulation is in float32 for float16/float32 inputs.
A 1-D filter runs as two launches (x, then y), a 2-D one as one.

The adjoint of "up, pad, correlate with w, down" is "up by ``down``, pad, correlate with
``flip(w)``, down by ``up``" with ``pad0' = taps - 1 - pad0`` and ``pad1'`` chosen so the result
has the input's size: :func:`_adjoint_padding`. That is the backward pass.

Importing this module imports triton; :mod:`.dispatch` decides whether it may run. With
``TRITON_INTERPRET=1`` set before triton is imported, the kernel runs on CPU tensors (slowly):
that is how the tests check it.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
BLOCK = 4096 if INTERPRET else 256  # the interpreter pays per program, a GPU per register


@triton.jit
def _fir_kernel(x_ptr, w_ptr, y_ptr, H, W, OH, OW, UPY, UPX, DOWNY, DOWNX, PADY, PADX,
                TH, TW, gain, BLOCK: tl.constexpr):
    plane = tl.program_id(0)
    offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    live = offs < OH * OW
    oy = offs // OW
    ox = offs % OW
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    x_plane = x_ptr + plane.to(tl.int64) * H * W
    for ty in range(TH):
        ky = oy * DOWNY - PADY + ty
        in_y = (ky >= 0) & (ky < H * UPY) & (ky % UPY == 0)
        iy = ky // UPY
        for tx in range(TW):
            kx = ox * DOWNX - PADX + tx
            in_x = (kx >= 0) & (kx < W * UPX) & (kx % UPX == 0)
            ix = kx // UPX
            m = live & in_y & in_x
            v = tl.load(x_plane + iy * W + ix, mask=m, other=0.0).to(tl.float32)
            acc += v * tl.load(w_ptr + ty * TW + tx)
    y_plane = y_ptr + plane.to(tl.int64) * OH * OW
    tl.store(y_plane + offs, (acc * gain).to(y_ptr.dtype.element_ty), mask=live)


def _out_size(n: int, up: int, down: int, p0: int, p1: int, taps: int) -> int:
    return (n * up + p0 + p1 - taps + down) // down


def _launch(x: torch.Tensor, w: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
            pad: tuple[int, int, int, int], gain: float, dtype: torch.dtype) -> torch.Tensor:
    """One pass with 2-D correlation taps ``w [TH, TW]`` (float32) on ``x [N, C, H, W]``."""
    N, C, H, W = x.shape
    (ux, uy), (dx, dy) = up, down
    px0, px1, py0, py1 = pad
    TH, TW = w.shape
    OH, OW = _out_size(H, uy, dy, py0, py1, TH), _out_size(W, ux, dx, px0, px1, TW)
    x = x.contiguous()
    y = torch.empty((N, C, OH, OW), device=x.device, dtype=dtype)
    if y.numel() == 0:
        return y
    grid = (N * C, triton.cdiv(OH * OW, BLOCK))
    _fir_kernel[grid](x, w.contiguous(), y, H, W, OH, OW, uy, ux, dy, dx, py0, px0, TH, TW,
                      float(gain), BLOCK=BLOCK)
    return y


def _taps(f: torch.Tensor, flip_filter: bool) -> torch.Tensor:
    """Correlation taps (float32) of the filter ``f``."""
    f = f.to(torch.float32)
    return f if flip_filter else f.flip(list(range(f.ndim)))


def fir(x: torch.Tensor, w: torch.Tensor, up: tuple[int, int], down: tuple[int, int],
        pad: tuple[int, int, int, int], gain: float) -> torch.Tensor:
    """upfirdn2d with correlation taps ``w`` (1-D: separable, x then y; 2-D: as is)."""
    out_dtype = x.dtype
    if w.ndim == 2:
        return _launch(x, w, up, down, pad, gain, out_dtype)
    px0, px1, py0, py1 = pad
    t = _launch(x, w.view(1, -1), (up[0], 1), (down[0], 1), (px0, px1, 0, 0), 1.0,
                torch.float32)  # the intermediate keeps float32
    return _launch(t, w.view(-1, 1), (1, up[1]), (1, down[1]), (0, 0, py0, py1), gain,
                   out_dtype)


def _adjoint_padding(n: int, out: int, up: int, down: int, p0: int, taps: int
                     ) -> tuple[int, int]:
    """Padding of the adjoint pass (up ``down``, down ``up``) so that it returns ``n``
    samples from ``out``."""
    q0 = taps - 1 - p0
    q1 = n * up - out * down - q0 + taps - up
    return q0, q1


class _FIR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, up, down, pad, gain):
        y = fir(x, w, up, down, pad, gain)
        ctx.save_for_backward(w)
        ctx.geometry = (x.shape, y.shape, up, down, pad, gain)
        return y

    @staticmethod
    def backward(ctx, gy):
        (w,) = ctx.saved_tensors
        (_, _, H, W), (_, _, OH, OW), up, down, pad, gain = ctx.geometry
        th, tw = (w.shape if w.ndim == 2 else (w.shape[0], w.shape[0]))
        qx = _adjoint_padding(W, OW, up[0], down[0], pad[0], tw)
        qy = _adjoint_padding(H, OH, up[1], down[1], pad[2], th)
        wb = w.flip(list(range(w.ndim)))
        gx = _FIR.apply(gy, wb, down, up, (*qx, *qy), gain)
        return gx, None, None, None, None, None


def upfirdn2d_triton(x: torch.Tensor, f: torch.Tensor, up: tuple[int, int],
                     down: tuple[int, int], pad: tuple[int, int, int, int], flip_filter: bool,
                     gain: float) -> torch.Tensor:
    """``upfirdn2d`` on the Triton kernel (differentiable in ``x``)."""
    return _FIR.apply(x, _taps(f, flip_filter), tuple(up), tuple(down), tuple(pad),
                      float(gain))
