"""Triton kernels of ``bias_act`` (``impl="triton"``): one elementwise pass forward,
``clamp(act(x + b) * gain)``, and one backward, ``dy * gain * act'(x + b)`` where the clamp let
the value through; the bias gradient is that sum over all but the bias axis. float32/float16
inputs, float32 arithmetic. See :mod:`._triton_fir` for how the tests run it on the CPU."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ._triton_fir import BLOCK

ACT_IDS = {"linear": 0, "relu": 1, "lrelu": 2, "tanh": 3, "sigmoid": 4, "elu": 5, "swish": 6}


@triton.jit
def _act(v, alpha, ACT: tl.constexpr):
    if ACT == 1:
        v = tl.where(v > 0, v, 0.0)
    elif ACT == 2:
        v = tl.where(v >= 0, v, v * alpha)
    elif ACT == 3:
        v = 2.0 / (1.0 + tl.exp(-2.0 * v)) - 1.0
    elif ACT == 4:
        v = 1.0 / (1.0 + tl.exp(-v))
    elif ACT == 5:
        v = tl.where(v >= 0, v, alpha * (tl.exp(tl.minimum(v, 0.0)) - 1.0))
    elif ACT == 6:
        v = v / (1.0 + tl.exp(-v))
    return v


@triton.jit
def _dact(v, alpha, ACT: tl.constexpr):
    """d act / d v at v."""
    d = tl.full(v.shape, 1.0, tl.float32)
    if ACT == 1:
        d = tl.where(v > 0, 1.0, 0.0)
    elif ACT == 2:
        d = tl.where(v >= 0, 1.0, alpha)
    elif ACT == 3:
        t = 2.0 / (1.0 + tl.exp(-2.0 * v)) - 1.0
        d = 1.0 - t * t
    elif ACT == 4:
        s = 1.0 / (1.0 + tl.exp(-v))
        d = s * (1.0 - s)
    elif ACT == 5:
        d = tl.where(v >= 0, 1.0, alpha * tl.exp(tl.minimum(v, 0.0)))
    elif ACT == 6:
        s = 1.0 / (1.0 + tl.exp(-v))
        d = s + v * s * (1.0 - s)
    return d


@triton.jit
def _biased(x_ptr, b_ptr, offs, live, C, inner, HAS_BIAS: tl.constexpr):
    """x + b in float32 at flat offsets ``offs`` (b along the axis of size C, stride inner)."""
    v = tl.load(x_ptr + offs, mask=live, other=0.0).to(tl.float32)
    if HAS_BIAS:
        v += tl.load(b_ptr + (offs // inner) % C, mask=live, other=0.0).to(tl.float32)
    return v


@triton.jit
def _forward_kernel(x_ptr, b_ptr, y_ptr, n, C, inner, alpha, gain, clamp,
                    ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
                    BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    v = _biased(x_ptr, b_ptr, offs, live, C, inner, HAS_BIAS)
    y = _act(v, alpha, ACT) * gain
    if HAS_CLAMP:
        y = tl.minimum(tl.maximum(y, -clamp), clamp)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=live)


@triton.jit
def _backward_kernel(x_ptr, b_ptr, gy_ptr, gx_ptr, n, C, inner, alpha, gain, clamp,
                     ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_CLAMP: tl.constexpr,
                     BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < n
    v = _biased(x_ptr, b_ptr, offs, live, C, inner, HAS_BIAS)
    g = tl.load(gy_ptr + offs, mask=live, other=0.0).to(tl.float32) * gain * _dact(v, alpha,
                                                                                  ACT)
    if HAS_CLAMP:
        y = _act(v, alpha, ACT) * gain
        g = tl.where((y >= -clamp) & (y <= clamp), g, 0.0)
    tl.store(gx_ptr + offs, g, mask=live)


def _geometry(x: torch.Tensor, dim: int) -> tuple[int, int]:
    C = x.shape[dim] if x.ndim else 1
    inner = 1
    for s in x.shape[dim + 1:]:
        inner *= s
    return C, inner


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, dim, act, alpha, gain, clamp):
        x = x.contiguous()
        C, inner = _geometry(x, dim)
        y = torch.empty_like(x)
        n = x.numel()
        has_b = b is not None
        if n:
            _forward_kernel[(triton.cdiv(n, BLOCK),)](
                x, b if has_b else x, y, n, C, inner, float(alpha), float(gain),
                float(clamp or 0.0), ACT=ACT_IDS[act], HAS_BIAS=has_b,
                HAS_CLAMP=clamp is not None, BLOCK=BLOCK)
        ctx.save_for_backward(x, b if has_b else None)
        ctx.args = (dim, act, alpha, gain, clamp)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, b = ctx.saved_tensors
        dim, act, alpha, gain, clamp = ctx.args
        C, inner = _geometry(x, dim)
        gy = gy.contiguous()
        gx = torch.empty(x.shape, dtype=torch.float32, device=x.device)
        n = x.numel()
        if n:
            _backward_kernel[(triton.cdiv(n, BLOCK),)](
                x, b if b is not None else x, gy, gx, n, C, inner, float(alpha), float(gain),
                float(clamp or 0.0), ACT=ACT_IDS[act], HAS_BIAS=b is not None,
                HAS_CLAMP=clamp is not None, BLOCK=BLOCK)
        gb = None
        if b is not None and ctx.needs_input_grad[1]:
            axes = [i for i in range(x.ndim) if i != dim]
            gb = gx.sum(dim=axes).to(b.dtype)
        return gx.to(x.dtype), gb, None, None, None, None, None


def bias_act_triton(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float,
                    gain: float, clamp: float | None) -> torch.Tensor:
    """``bias_act`` on the Triton kernels (differentiable in ``x`` and ``b``); ``b`` is 1-D."""
    return _BiasAct.apply(x, b, dim, act, alpha, gain, clamp)
