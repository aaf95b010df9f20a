"""The numba kernel of ``_fused_cpu.py`` (imported on first use: numba takes a while to load).

One call computes the output rows of some blocks of images, streaming: an output row needs
``taps_d`` rows after the x down-filter (a ring of ``taps_d`` rows), each of those one
up-sampled row, made from the few input rows after the x up-filter that its y phase meets (a
ring of ``ceil(taps_u / up_y) + 1`` rows). Every row of each ring is computed once per block,
when first needed, so per thread only a few rows exist at a time and they stay in cache.

Every filter is ``_weighted_sum``: it accumulates into a row, channels innermost (contiguous:
LLVM vectorises the channel loop), four taps per sweep of the row (a quarter of the loads and
stores of the accumulator that one tap per sweep costs); the leftover taps go one by one.
Blocks run in parallel (``prange``, OpenMP). ``cache=True``: compiled once per install (about
15 s per dtype), then loaded from ``__pycache__`` (``_fused_cpu.warm_up`` compiles ahead).
"""

import numba
import numpy as np
from numba import njit, prange

# OpenMP first: torch runs on the same libgomp, so its worker threads, still spinning after
# torch's last parallel region, take our rows at once (a separate pool of threads measured 2x
# slower right after a torch convolution, on two cores)
numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]


def use_threads(n: int) -> None:
    """Run on ``n`` threads (at most numba's pool)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


@njit(inline="always")
def _phase_taps(m, p0, up, taps, n_src, f, ws, ss):
    """The taps of an up-filter that meet an input sample at output ``m``: their weights into
    ``ws``, the samples' indices into ``ss`` (consecutive); returns how many."""
    k = 0
    for t in range((p0 - m) % up, taps, up):
        s = (m + t - p0) // up
        if 0 <= s < n_src:
            ws[k] = f[t]
            ss[k] = s
            k += 1
    return k


@njit(inline="always")
def _weighted_sum(out, rows, idx, offset, ws, k):
    """``out[:] = sum_a ws[a] * rows[offset + idx[a]]`` for ``a < k`` (``out`` 1-D, ``rows``
    2-D): every filter of the kernel is this, four taps per sweep."""
    n = out.shape[0]
    out[:] = 0
    g = k - k % 4
    for a in range(0, g, 4):
        w0, w1, w2, w3 = ws[a], ws[a + 1], ws[a + 2], ws[a + 3]
        r0, r1 = rows[offset + idx[a]], rows[offset + idx[a + 1]]
        r2, r3 = rows[offset + idx[a + 2]], rows[offset + idx[a + 3]]
        for c in range(n):
            out[c] += w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c]
    for a in range(g, k):
        w0, r0 = ws[a], rows[offset + idx[a]]
        for c in range(n):
            out[c] += w0 * r0[c]


@njit(inline="always")
def _up_x_row(x, strides, bias, n, i, f, up, p0, src, ws, ss, dst):
    """``dst = upfir_x(x[n, :, i, :] + bias)``: one input row into ``[mid_w, C]``; ``x`` is
    the flat memory of an NCHW tensor with element ``strides`` (any layout)."""
    W, C = src.shape
    s_n, s_c, s_h, s_w = strides[0], strides[1], strides[2], strides[3]
    base = n * s_n + i * s_h
    for c in range(C):  # (x is usually NCHW: read along its rows)
        for s in range(W):
            src[s, c] = x[base + c * s_c + s * s_w] + bias[c]
    for m in range(dst.shape[0]):
        k = _phase_taps(m, p0, up, f.shape[0], W, f, ws, ss)
        _weighted_sum(dst[m], src, ss, 0, ws, k)


@njit(inline="always")
def _act_down_x(acc, fd, taps_idx, down, params, dst):
    """``dst = downfir_x(clamp(gain * lrelu(acc)))``, the activation in place in ``acc``."""
    mid_w, C = acc.shape
    slope, gain, limit, clamped = params[0], params[1], params[2], params[3] > 0
    for j in range(mid_w):
        for c in range(C):
            v = acc[j, c]
            v = gain * (v if v >= 0 else v * slope)
            if clamped:
                v = min(max(v, -limit), limit)
            acc[j, c] = v
    for q in range(dst.shape[0]):
        _weighted_sum(dst[q], acc, taps_idx, q * down, fd, fd.shape[0])


@njit(parallel=True, nogil=True, cache=True)
def filtered_lrelu_blocks(x, shape, strides, bias, fux, fuy, fd, up_x, up_y, down_x, down_y,
                          pad_x, pad_y, mid_w, params, out, blocks, items):
    """Output rows of ``items`` in parallel: item ``n * blocks + b`` is the ``b``-th of
    ``blocks`` equal row blocks of image ``n``. ``x``: the flat memory of an NCHW tensor of
    ``shape`` and element ``strides`` (one compiled kernel serves every layout); ``out``
    [N, out_h, out_w, C]; filters as they correlate, gains folded in; ``params`` = slope,
    gain, clamp, whether to clamp. (The loop alone is parallel: numba compiles a parallel
    body far more slowly than a plain function.)"""
    for item in prange(items):
        _block(x, shape, strides, bias, fux, fuy, fd, up_x, up_y, down_x, down_y, pad_x,
               pad_y, mid_w, params, out, item // blocks, item % blocks, blocks)


@njit(nogil=True, cache=True)
def filtered_lrelu_serial(x, shape, strides, bias, fux, fuy, fd, up_x, up_y, down_x, down_y,
                          pad_x, pad_y, mid_w, params, out, blocks, items):
    """:func:`filtered_lrelu_blocks` on the calling thread alone: no OpenMP region, whose
    idle workers spin and take the CPU from other processes (two one-thread training runs side
    by side ran 6x slower with it)."""
    for item in range(items):
        _block(x, shape, strides, bias, fux, fuy, fd, up_x, up_y, down_x, down_y, pad_x,
               pad_y, mid_w, params, out, item // blocks, item % blocks, blocks)


@njit(nogil=True, cache=True)
def _block(x, shape, strides, bias, fux, fuy, fd, up_x, up_y, down_x, down_y, pad_x, pad_y,
           mid_w, params, out, n, b, blocks):
    """The ``b``-th of ``blocks`` row blocks of image ``n``, with its own rings."""
    C, H, W = shape[1], shape[2], shape[3]
    out_h, out_w = out.shape[1], out.shape[2]
    taps_u, taps_d = fux.shape[0], fd.shape[0]
    ring_u = (taps_u + up_y - 1) // up_y + 1
    ux = np.empty((ring_u, mid_w, C), out.dtype)  # input rows after the x up-filter
    ux_flat = ux.reshape((ring_u, mid_w * C))  # (the same memory, rows as vectors)
    ux_row = np.full(ring_u, -1, np.int64)  # which input row each slot holds
    dx = np.empty((taps_d, out_w * C), out.dtype)  # up-sampled rows after the x down-filter
    acc = np.empty((mid_w, C), out.dtype)  # one up-sampled row
    acc_flat = acc.reshape(mid_w * C)
    src = np.empty((W, C), out.dtype)
    ws = np.empty(taps_u, out.dtype)  # the y up-filter's taps at one row, their input rows
    ss = np.empty(taps_u, np.int64)
    ws_x = np.empty(taps_u, out.dtype)  # (the same along x, inside _up_x_row)
    ss_x = np.empty(taps_u, np.int64)
    slots = np.empty(max(taps_u, taps_d), np.int64)  # ring slots of the rows a sum reads
    taps_idx = np.arange(taps_d)
    q0, q1 = out_h * b // blocks, out_h * (b + 1) // blocks
    done = q0 * down_y - 1  # the last up-sampled row in the ring
    for q in range(q0, q1):
        m0 = q * down_y
        for m in range(max(done + 1, m0), m0 + taps_d):
            k = _phase_taps(m, pad_y, up_y, taps_u, H, fuy, ws, ss)
            for a in range(k):
                s = ss[a]
                slot = s % ring_u
                if ux_row[slot] != s:
                    _up_x_row(x, strides, bias, n, s, fux, up_x, pad_x, src, ws_x, ss_x,
                              ux[slot])
                    ux_row[slot] = s
                slots[a] = slot
            _weighted_sum(acc_flat, ux_flat, slots, 0, ws, k)
            _act_down_x(acc, fd, taps_idx, down_x, params,
                        dx[m % taps_d].reshape((out_w, C)))
            done = m
        for t in range(taps_d):
            slots[t] = (m0 + t) % taps_d
        _weighted_sum(out[n, q].reshape(out_w * C), dx, slots, 0, fd, taps_d)
