"""One fused Triton kernel for ``filtered_lrelu`` (separable up filter; separable or full
"radial" down filter).

Each program computes a ``BO x BO`` tile of one output plane. Along each axis the two FIR
stages are banded matrices built in registers from the filter taps (index arithmetic, masked
loads of the few taps), so with ``X`` the input tile (bias added inside the image, zeros
outside)::

    U   = up**2 * Uy @ X @ Ux^T          the up-sampled, padded tile   [BM, BM]
    A   = clamp(gain * lrelu(U))
    out = Dy @ A @ Dx^T                  the decimated output tile     [BO, BO]

``Uy[r, i]`` is the up tap linking mid row ``m0 + r`` to input row ``i0 + i`` (zero unless
that input row lands on the filter's support after zero-insertion), ``Dy[o, r]`` the down tap
linking output row ``o0 + o`` to mid row ``m0 + r``. A full down filter ``w[sy, sx]`` is applied
as ``sum_sy Sel_sy @ A @ Dx_sy^T`` (``Sel_sy`` picks mid row ``o * down + sy``, ``Dx_sy`` holds
the taps of row ``sy``). The up-sampled tile exists only in
registers: the kernel reads the input once and writes the output once. Matrix products run in
float32 (``input_precision="ieee"``: no TF32 rounding).

The backward pass differentiates the unfused Triton composition (recomputed), so training on a
GPU stays on Triton kernels.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BO = 16  # output tile side (tl.dot needs at least 16)


@triton.jit
def _band(w_ptr, rows, cols, ROW_STEP, COL_STEP, OFFSET, T):
    """Matrix of taps w[t], t = cols * COL_STEP - rows * ROW_STEP + OFFSET (0 outside [0, T))."""
    t = cols[None, :] * COL_STEP - rows[:, None] * ROW_STEP + OFFSET
    return tl.load(w_ptr + t, mask=(t >= 0) & (t < T), other=0.0)


@triton.jit
def _flrelu_kernel(x_ptr, b_ptr, wu_ptr, wd_ptr, y_ptr, C, H, W, OH, OW,
                   UP, DOWN, PY, PX, TU, TD, up_gain, gain, slope, clamp,
                   HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr, RADIAL: tl.constexpr,
                   BO: tl.constexpr, BM: tl.constexpr, BI: tl.constexpr):
    plane = tl.program_id(0)
    oy0 = tl.program_id(1) * BO
    ox0 = tl.program_id(2) * BO
    o = tl.arange(0, BO)
    r = tl.arange(0, BM)
    i = tl.arange(0, BI)
    # mid rows/cols m0 + r feed outputs o0 .. o0 + BO - 1; input rows/cols i0 + i feed them
    my0 = oy0 * DOWN
    mx0 = ox0 * DOWN
    iy0 = (my0 - PY) // UP  # then made a floor division whatever the rounding of //
    ix0 = (mx0 - PX) // UP
    iy0 = tl.where(iy0 * UP > my0 - PY, iy0 - 1, iy0)
    ix0 = tl.where(ix0 * UP > mx0 - PX, ix0 - 1, ix0)
    # input tile with the bias added inside the image
    rows_in = iy0 + i
    cols_in = ix0 + i
    inside = ((rows_in >= 0) & (rows_in < H))[:, None] & ((cols_in >= 0) & (cols_in < W))[None, :]
    base = x_ptr + plane.to(tl.int64) * H * W
    xt = tl.load(base + rows_in[:, None] * W + cols_in[None, :], mask=inside,
                 other=0.0).to(tl.float32)
    if HAS_BIAS:
        xt = tl.where(inside, xt + tl.load(b_ptr + plane % C).to(tl.float32), 0.0)
    # up taps: mid m reads zero-inserted input at m - P + t, i.e. input row k with
    # k * UP = m - P + t  ->  t = k * UP - m + P = (i0 + i) * UP - (m0 + r) + P
    uy = _band(wu_ptr, r, i, 1, UP, iy0 * UP - my0 + PY, TU)  # [BM, BI]
    ux = _band(wu_ptr, r, i, 1, UP, ix0 * UP - mx0 + PX, TU)  # [BM, BI]
    u = tl.dot(uy, xt, input_precision="ieee")  # [BM, BI]
    u = tl.dot(u, tl.trans(ux), input_precision="ieee") * up_gain  # [BM, BM]
    a = tl.where(u >= 0, u, u * slope) * gain
    if HAS_CLAMP:
        a = tl.minimum(tl.maximum(a, -clamp), clamp)
    # down taps: output o reads mid (o0 + o) * DOWN + s  ->  s = (m0 + r) - (o0 + o) * DOWN
    if RADIAL:  # w[sy, sx]: one (row selection, row of taps) pair of products per tap row
        out = tl.zeros((BO, BO), dtype=tl.float32)
        for sy in range(TD):
            sel = tl.where(r[None, :] - o[:, None] * DOWN == sy, 1.0, 0.0)  # [BO, BM]
            dx = _band(wd_ptr + sy * TD, o, r, DOWN, 1, 0, TD)  # w[sy, c - o * DOWN]
            rows = tl.dot(sel, a, input_precision="ieee")
            out += tl.dot(rows, tl.trans(dx), input_precision="ieee")
    else:
        dy = _band(wd_ptr, o, r, DOWN, 1, 0, TD)  # [BO, BM]
        dx = _band(wd_ptr, o, r, DOWN, 1, 0, TD)
        out = tl.dot(dy, a, input_precision="ieee")
        out = tl.dot(out, tl.trans(dx), input_precision="ieee")  # [BO, BO]
    oy = oy0 + o
    ox = ox0 + o
    live = (oy < OH)[:, None] & (ox < OW)[None, :]
    ybase = y_ptr + plane.to(tl.int64) * OH * OW
    tl.store(ybase + oy[:, None] * OW + ox[None, :], out.to(y_ptr.dtype.element_ty), mask=live)


def _pow2(n: int) -> int:
    return max(16, triton.next_power_of_2(int(n)))


def supported(fu: torch.Tensor, fd: torch.Tensor, up, down, pad) -> bool:
    """A separable up filter, a separable or square full (radial) down filter, the same
    up/down and padding on both axes."""
    square = fd.ndim == 1 or (fd.ndim == 2 and fd.shape[0] == fd.shape[1])
    return (fu.ndim == 1 and square and up[0] == up[1] and down[0] == down[1]
            and pad[0] == pad[2] and pad[1] == pad[3])


def flrelu_fused(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter) -> torch.Tensor:
    """Forward of ``filtered_lrelu`` in one kernel (see :func:`supported`)."""
    N, C, H, W = x.shape
    u, d, p0, p1 = up[0], down[0], pad[0], pad[1]
    wu = (fu if flip_filter else fu.flip(0)).to(torch.float32).contiguous()
    wd = (fd if flip_filter else fd.flip(list(range(fd.ndim)))).to(torch.float32).contiguous()
    tu, td = wu.numel(), wd.shape[0]
    mid_h, mid_w = H * u + p0 + p1 - tu + 1, W * u + p0 + p1 - tu + 1
    OH, OW = (mid_h - td + d) // d, (mid_w - td + d) // d
    y = torch.empty((N, C, OH, OW), device=x.device, dtype=x.dtype)
    if y.numel() == 0:
        return y
    bm = _pow2((BO - 1) * d + td)
    bi = _pow2((bm + tu) // u + 2)
    grid = (N * C, triton.cdiv(OH, BO), triton.cdiv(OW, BO))
    bias = b if b is not None else wu
    _flrelu_kernel[grid](x.contiguous(), bias.contiguous(), wu, wd, y, C, H, W, OH, OW,
                         u, d, p0, p0, tu, td, float(u * u), float(gain), float(slope),
                         float(clamp or 0.0), HAS_BIAS=b is not None,
                         HAS_CLAMP=clamp is not None, RADIAL=fd.ndim == 2, BO=BO, BM=bm,
                         BI=bi)
    return y


class FusedFilteredLReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, fu, fd, up, down, pad, gain, slope, clamp, flip_filter):
        ctx.save_for_backward(x, b)
        ctx.args = (fu, fd, up, down, pad, gain, slope, clamp, flip_filter)
        return flrelu_fused(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter)

    @staticmethod
    def backward(ctx, gy):
        from .filtered_lrelu import filtered_lrelu_unfused_triton

        x, b = ctx.saved_tensors
        fu, fd, up, down, pad, gain, slope, clamp, flip_filter = ctx.args
        with torch.enable_grad():
            xg = x.detach().requires_grad_(ctx.needs_input_grad[0])
            bg = None if b is None else b.detach().requires_grad_(ctx.needs_input_grad[1])
            y = filtered_lrelu_unfused_triton(xg, fu, fd, bg, up, down, pad, gain, slope,
                                              clamp, flip_filter)
            inputs = [t for t in (xg, bg) if t is not None and t.requires_grad]
            grads = torch.autograd.grad(y, inputs, gy)
        it = iter(grads)
        gx = next(it) if ctx.needs_input_grad[0] else None
        gb = next(it) if b is not None and ctx.needs_input_grad[1] else None
        return gx, gb, None, None, None, None, None, None, None, None, None
