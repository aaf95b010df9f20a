"""``bias_act``: ``clamp(act(x + b) * gain, -clamp, clamp)``, with ``b`` broadcast along ``dim``.

Activations and their defaults (``alpha`` is the activation's parameter, ``gain`` the output
scale that keeps unit variance for the rectifiers):

==========  =====================================  =========  =======
act         formula                                alpha      gain
==========  =====================================  =========  =======
linear      x                                      -          1
relu        max(x, 0)                              -          sqrt(2)
lrelu       x if x >= 0 else alpha * x             0.2        sqrt(2)
tanh        tanh(x)                                -          1
sigmoid     1 / (1 + exp(-x))                      -          1
elu         x if x >= 0 else alpha (exp(x) - 1)    1.0        1
swish       x * sigmoid(x)                         -          sqrt(2)
==========  =====================================  =========  =======
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import dispatch
from ._args import check_bias
from ._polyphase import flat_view


@dataclass(frozen=True)
class Activation:
    fn: Callable[[torch.Tensor, float], torch.Tensor]
    alpha: float
    gain: float
    inplace: Callable[[torch.Tensor, float], torch.Tensor] | None = None


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0, lambda x, a: x),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), lambda x, a: F.relu_(x)),
    "lrelu": Activation(
        lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), lambda x, a: F.leaky_relu_(x, a)
    ),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, lambda x, a: x.tanh_()),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, lambda x, a: x.sigmoid_()),
    "elu": Activation(lambda x, a: F.elu(x, a), 1.0, 1.0, lambda x, a: F.elu_(x, a)),
    "swish": Activation(lambda x, a: F.silu(x), 0.0, math.sqrt(2)),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
    impl: str = "auto",
) -> torch.Tensor:
    """Add a bias, apply an activation, scale and clamp (see the module docstring)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point torch.Tensor, got {_describe(x)}")
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(f"dim must index a dimension of x (ndim {x.ndim}), got {dim}")
    dim %= x.ndim
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    if clamp is not None and not clamp >= 0:
        raise ValueError(f"clamp must be None or >= 0, got {clamp!r}")
    b = check_bias(b, x, dim)
    spec = ACTIVATIONS[act]
    alpha = spec.alpha if alpha is None else float(alpha)
    gain = spec.gain if gain is None else float(gain)
    bias = None if b is None else b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    which = dispatch.resolve(impl, x, "bias_act")
    if which == "ref":
        return bias_act_ref(x, bias, spec, alpha, gain, clamp)
    if which == "triton":
        from ._triton_bias_act import bias_act_triton

        return bias_act_triton(x, b, dim, act, alpha, gain, clamp)
    return bias_act_fast(x, bias, spec, alpha, gain, clamp)


def bias_act_ref(x, bias, spec: Activation, alpha, gain, clamp) -> torch.Tensor:
    """The specification, one op at a time."""
    if bias is not None:
        x = x + bias
    x = spec.fn(x, alpha)
    x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def bias_act_fast(x, bias, spec: Activation, alpha, gain, clamp) -> torch.Tensor:
    """One new tensor, then in-place work on it (out of place where autograd needs the input,
    except for the leaky ReLU, whose in-place Function keeps only its output)."""
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or getattr(bias, "requires_grad",
                                                                        False))
    if needs_grad and spec is ACTIVATIONS["lrelu"] and alpha > 0 and gain > 0:
        # clamp(g lrelu(v), c) = clamp(lrelu(g v), c) for g > 0: scale, then one in-place pass
        # whose backward is one pass over the output
        y = x * gain if bias is None else (x + bias).mul_(gain)
        return LeakyReLUClamp.apply(y, alpha, clamp)
    y = x + bias if bias is not None else x.clone()
    if needs_grad or spec.inplace is None:
        y = spec.fn(y, alpha)
        if gain != 1:
            y = y * gain
        return y if clamp is None else y.clamp(-clamp, clamp)
    spec.inplace(y, alpha)
    if gain != 1:
        y.mul_(gain)
    return y if clamp is None else y.clamp_(-clamp, clamp)


class LeakyReLUClamp(torch.autograd.Function):
    """In place ``clamp(lrelu(x), -limit, limit)`` on a fresh tensor nobody else reads (the
    output of ``filtered_lrelu``'s up-sampling stage, or ``bias_act``'s scaled sum), with a
    one-pass backward that is itself differentiable (R1's double backward).

    The derivative is read off the *output* (for slope > 0 the output has the input's sign), so
    nothing but the output is kept, and autograd keeps that anyway for the down-sampling
    stage's backward. The clamp is applied (and its mask used in the backward) only when some
    value actually exceeds the limit, which one ``aminmax`` pass tells.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float, limit: float | None) -> torch.Tensor:
        if slope <= 0:  # the output no longer tells the sign: plain out-of-place ops
            y = F.leaky_relu(x, slope)
            ctx.clamped = limit is not None and bool(y.abs().max() > limit)
            y = y.clamp(-limit, limit) if ctx.clamped else y
            ctx.save_for_backward(x)
            ctx.slope, ctx.limit, ctx.from_output = slope, limit, False
            return y
        ctx.clamped = LeakyReLUClamp.inplace(x, slope, limit)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.slope, ctx.limit, ctx.from_output = slope, limit, True
        return x

    @staticmethod
    def inplace(x: torch.Tensor, slope: float, limit: float | None) -> bool:
        """``x = clamp(lrelu(x), limit)`` in place (slope > 0); whether the clamp acted."""
        F.leaky_relu_(x, slope)
        if limit is not None and x.numel():
            lo, hi = torch.aminmax(flat_view(x.detach()))
            if hi > limit or lo < -limit:
                x.clamp_(-limit, limit)
                return True
        return False

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (saved,) = ctx.saved_tensors
        g = torch.ops.aten.leaky_relu_backward(grad, saved, ctx.slope, ctx.from_output)
        if ctx.clamped:
            ref = saved if ctx.from_output else F.leaky_relu(saved, ctx.slope)
            g = torch.ops.aten.hardtanh_backward(g, ref, -ctx.limit, ctx.limit)
        return g, None, None


def _describe(x: object) -> str:
    return f"{x.dtype} tensor" if isinstance(x, torch.Tensor) else type(x).__name__
