"""A fused CPU kernel for ``filtered_lrelu``'s forward pass (compiled by numba).

The torch path (``filtered_lrelu_fast``) runs each stage as its own depthwise convolution, so
the up-sampled tensor, four times the input, goes through memory several times. Here the
up-sampled rows never exist as a tensor: three row-parallel passes over channels-last arrays,
channels innermost (contiguous, vectorised by LLVM)::

    ux[i]  = upfir_x(x[i] + b)                      for every input row i
    dx[m]  = downfir_x(act(upfir_y(ux)[m]))         for every up-sampled row m (one row at a time)
    out[q] = downfir_y(dx)[q]                       for every output row q

``act(v) = clamp(gain * lrelu(v), clamp)``. The polyphase up-filters touch only the taps that
meet an input sample; the down-filters compute only the samples that decimation keeps.

Forward only: it serves inference (rendering, evaluation, previews), and
``filtered_lrelu_fast`` takes it whenever no gradient is needed. Both filters must be 1-D
(separable); float32 or float64. The kernels (``_numba_kernels.py``, imported on first use)
compile on first use (about a second each) and numba caches them beside their file, so later
processes load them at once. Calls from several threads take turns (``_lock``); the kernels
release the GIL.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import torch

from . import dispatch

ENABLED = os.environ.get("NAPARI_SCALESPACE_FUSED_CPU", "1") != "0"
"""``NAPARI_SCALESPACE_FUSED_CPU=0`` turns the kernel off (the torch passes run instead)."""
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


def filtered_lrelu_fused(x, fu, fd, b, up, down, pad, gain, slope, clamp, flip_filter):
    """``filtered_lrelu`` (arguments as checked by :func:`filtered_lrelu`) in three fused
    passes; returns a channels-last tensor. Only for inputs that need no gradient."""
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
    xs = x.detach().permute(0, 2, 3, 1).numpy()  # a view: any strides
    bias = np.zeros(C, dtype) if b is None else b.detach().numpy()
    params = np.array([slope, gain, 0.0 if clamp is None else clamp,
                       0.0 if clamp is None else 1.0], dtype)
    ux = np.empty((N, H, mid_w, C), dtype)
    dx = np.empty((N, mid_h, out_w, C), dtype)
    out = torch.empty((N, out_h, out_w, C), dtype=x.dtype)
    k = kernels()
    with _lock:
        k.use_threads(torch.get_num_threads())  # as many as torch was told to use
        k.up_x(xs, bias, fux, upx, x0, ux)
        k.up_y_act_down_x(ux, fuy, upy, y0, fd, downx, params, dx)
        k.down_y(dx, fd, downy, out.numpy())
    return out.permute(0, 3, 1, 2)


def torch_to_numpy_dtype(dtype: torch.dtype):
    return np.float32 if dtype == torch.float32 else np.float64


