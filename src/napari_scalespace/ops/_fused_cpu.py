"""A fused CPU kernel for ``filtered_lrelu``'s forward pass (compiled by numba).

The torch path (``filtered_lrelu_fast``) runs each stage as its own depthwise convolution, so
the up-sampled tensor, four times the input, goes through memory several times. Here it never
exists: the kernel (``_numba_kernels.py``) streams each block of output rows through two
small rings of rows, channels-last and channels innermost::

    ux[i]  = upfir_x(x[i] + b)                      input rows, when first needed
    dx[m]  = downfir_x(act(upfir_y(ux)[m]))         up-sampled rows, one at a time
    out[q] = downfir_y(dx)[q]                       output rows

``act(v) = clamp(gain * lrelu(v), clamp)``. The polyphase up-filters touch only the taps that
meet an input sample; the down-filters compute only the samples that decimation keeps.

Forward only: it serves inference (rendering, evaluation, previews), and
``filtered_lrelu_fast`` takes it whenever no gradient is needed. Both filters must be 1-D
(separable); float32 or float64. The kernel compiles on first use (about 15 s per dtype, once
per install: numba caches it beside its file, later processes load it in about a second;
``scripts/setup-env.sh`` compiles it ahead with :func:`warm_up`). Blocks of rows run on
``torch.get_num_threads()`` threads of OpenMP, the runtime torch uses, so torch's workers take
them; calls from several Python threads take turns. On one thread (``torch.set_num_threads(1)``
or small work) no OpenMP region is opened: its idle workers spin, and two one-thread training
processes side by side ran 6x slower for it.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import torch

from . import dispatch

ENABLED = os.environ.get("NAPARI_SCALESPACE_FUSED_CPU", "1") != "0"
"""``NAPARI_SCALESPACE_FUSED_CPU=0`` turns the kernel off (the torch passes run instead)."""
MIN_WORK_PER_THREAD = 1 << 16
"""Up-sampled samples (times channels) per thread below which fewer threads run."""
_lock = threading.Lock()  # numba's thread pools must not be entered twice at once
_kernels: list = []  # [module] once imported, [None] if numba cannot be imported


def kernels():
    """The compiled kernels' module, or ``None`` (with one warning) if numba is broken."""
    if not _kernels:
        try:
            from . import _numba_kernels
        except Exception as exc:  # numba is a dependency; a broken install only costs speed
            dispatch.warn_once(f"napari-scalespace: the fused CPU kernel is unavailable "
                               f"({type(exc).__name__}: {exc}); using the torch passes")
            _numba_kernels = None
        _kernels.append(_numba_kernels)
    return _kernels[0]


def supported(x: torch.Tensor, fu: torch.Tensor, fd: torch.Tensor) -> bool:
    """Whether the fused kernel can run this call (CPU, float32/64, 1-D filters, numba)."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and fu.ndim == 1 and fd.ndim == 1 and x.numel() > 0 and kernels() is not None)


def filtered_lrelu_fused(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter,
                         threads: int | None = None):
    """``filtered_lrelu`` (arguments as checked by :func:`filtered_lrelu`) in one fused
    kernel; returns a channels-last tensor. Only for inputs that need no gradient.
    ``threads``: how many (default: torch's thread count, fewer for small work)."""
    N, C, H, W = x.shape
    (upx, upy), (downx, downy) = up, down
    x0, x1, y0, y1 = pad
    dtype = torch_to_numpy_dtype(x.dtype)
    if not flip_filter:  # the kernels correlate; upfirdn2d convolves
        fu, fd = fu.flip(0), fd.flip(0)
    fu = fu.detach().to(torch.float64).numpy()
    fd = fd.detach().to(torch.float64).numpy()
    fux, fuy = (fu * upx).astype(dtype), (fu * upy).astype(dtype)
    fd = fd.astype(dtype)
    taps_u, taps_d = fu.shape[0], fd.shape[0]
    mid_w = W * upx + x0 + x1 - taps_u + 1
    mid_h = H * upy + y0 + y1 - taps_u + 1
    out_w = (mid_w - taps_d + downx) // downx
    out_h = (mid_h - taps_d + downy) // downy
    x = x.detach()
    if x.is_contiguous(memory_format=torch.channels_last):
        flat = x.permute(0, 2, 3, 1).reshape(-1)  # views of the memory as it is
    else:
        x = x.contiguous()  # (a copy only for an unusual layout, e.g. a crop)
        flat = x.reshape(-1)
    shape, strides = np.array(x.shape, np.int64), np.array(x.stride(), np.int64)
    bias = np.zeros(C, dtype) if b is None else np.ascontiguousarray(b.detach().numpy())
    params = np.array([slope, gain, 0.0 if clamp is None else clamp,
                       0.0 if clamp is None else 1.0], dtype)
    out = torch.empty((N, out_h, out_w, C), dtype=x.dtype)
    if threads is None:
        threads = max(1, min(torch.get_num_threads(),
                             N * out_h * mid_w * C * upy // MIN_WORK_PER_THREAD))
    blocks = threads // math.gcd(N, threads)  # row blocks per image: N * blocks splits evenly
    k = kernels()
    args = (flat.numpy(), shape, strides, bias, fux, fuy, fd, upx, upy, downx, downy, x0, y0,
            mid_w, params, out.numpy(), blocks, N * blocks)
    if threads == 1:  # no OpenMP region: its idle workers would spin (see the kernel)
        k.filtered_lrelu_serial(*args)
    else:
        with _lock:
            k.use_threads(threads)
            k.filtered_lrelu_blocks(*args)
    return out.permute(0, 3, 1, 2)


def warm_up() -> bool:
    """Compile the kernel (its one-thread and its parallel form) for float32 now (the set-up
    script calls this, so that the first render does not wait); whether it is available."""
    x = torch.zeros(1, 1, 4, 4)
    f = torch.ones(2)
    if not supported(x, f, f):
        return False
    for threads in (1, 2):
        filtered_lrelu_fused(x, f, f, None, (2, 2), (2, 2), (1, 1, 1, 1), 1.0, 0.2, None,
                             False, threads)
    return True


def torch_to_numpy_dtype(dtype: torch.dtype):
    return np.float32 if dtype == torch.float32 else np.float64


