"""The numba kernel of ``_fused_cpu.py`` (imported on first use: numba takes a while to load).

One call computes the output rows of some blocks of images, streaming: an output row needs
``taps_d`` rows after the x down-filter (a ring of ``taps_d`` rows), each of those one
up-sampled row, made from the few input rows after the x up-filter that its y phase meets (a
ring of ``ceil(taps_u / up_y) + 1`` rows). Every row of each ring is computed once per block,
when first needed, so per thread only a few rows exist at a time and they stay in cache.

Every filter accumulates into a row, channels innermost (contiguous: LLVM vectorises the
channel loop), four taps per sweep of the row (a quarter of the loads and stores of the
accumulator that one tap per sweep costs); the leftover taps go one by one. Blocks run in
parallel (``prange``, OpenMP). ``cache=True``: compiled once per install (about 15 s per
dtype), then loaded from ``__pycache__`` (``_fused_cpu.warm_up`` compiles ahead).
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
def _sum_rows(acc, rows, slots, ws, k):
    """``acc[...] = sum_a ws[a] * rows[slots[a]]`` over 2-D rows ``[L, C]``."""
    L, C = acc.shape
    acc[:] = 0
    g = k - k % 4
    for a in range(0, g, 4):
        w0, w1, w2, w3 = ws[a], ws[a + 1], ws[a + 2], ws[a + 3]
        r0, r1 = rows[slots[a]], rows[slots[a + 1]]
        r2, r3 = rows[slots[a + 2]], rows[slots[a + 3]]
        for j in range(L):
            for c in range(C):
                acc[j, c] += w0 * r0[j, c] + w1 * r1[j, c] + w2 * r2[j, c] + w3 * r3[j, c]
    for a in range(g, k):
        w0, r0 = ws[a], rows[slots[a]]
        for j in range(L):
            for c in range(C):
                acc[j, c] += w0 * r0[j, c]


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
        o = dst[m]
        o[:] = 0
        g = k - k % 4
        for a in range(0, g, 4):
            w0, w1, w2, w3 = ws[a], ws[a + 1], ws[a + 2], ws[a + 3]
            s0, s1, s2, s3 = src[ss[a]], src[ss[a + 1]], src[ss[a + 2]], src[ss[a + 3]]
            for c in range(C):
                o[c] += w0 * s0[c] + w1 * s1[c] + w2 * s2[c] + w3 * s3[c]
        for a in range(g, k):
            w0, s0 = ws[a], src[ss[a]]
            for c in range(C):
                o[c] += w0 * s0[c]


@njit(inline="always")
def _act_down_x(acc, fd, down, params, dst):
    """``dst = downfir_x(clamp(gain * lrelu(acc)))``, the activation in place in ``acc``."""
    mid_w, C = acc.shape
    taps = fd.shape[0]
    slope, gain, limit, clamped = params[0], params[1], params[2], params[3] > 0
    for j in range(mid_w):
        for c in range(C):
            v = acc[j, c]
            v = gain * (v if v >= 0 else v * slope)
            if clamped:
                v = min(max(v, -limit), limit)
            acc[j, c] = v
    g = taps - taps % 4
    for q in range(dst.shape[0]):
        o = dst[q]
        o[:] = 0
        b = q * down
        for a in range(0, g, 4):
            w0, w1, w2, w3 = fd[a], fd[a + 1], fd[a + 2], fd[a + 3]
            r0, r1, r2, r3 = acc[b + a], acc[b + a + 1], acc[b + a + 2], acc[b + a + 3]
            for c in range(C):
                o[c] += w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c]
        for a in range(g, taps):
            w0, r0 = fd[a], acc[b + a]
            for c in range(C):
                o[c] += w0 * r0[c]


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
    ux_row = np.full(ring_u, -1, np.int64)  # which input row each slot holds
    dx = np.empty((taps_d, out_w, C), out.dtype)  # up-sampled rows after the x down-filter
    acc = np.empty((mid_w, C), out.dtype)  # one up-sampled row
    src = np.empty((W, C), out.dtype)
    ws = np.empty(taps_u, out.dtype)  # the y up-filter's taps at one row, their input rows
    ss = np.empty(taps_u, np.int64)
    ws_x = np.empty(taps_u, out.dtype)  # (the same along x, inside _up_x_row)
    ss_x = np.empty(taps_u, np.int64)
    slots = np.empty(max(taps_u, taps_d), np.int64)  # ring slots of the rows a sum reads
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
            _sum_rows(acc, ux, slots, ws, k)
            _act_down_x(acc, fd, down_x, params, dx[m % taps_d])
            done = m
        for t in range(taps_d):
            slots[t] = (m0 + t) % taps_d
        _sum_rows(out[n, q], dx, slots, fd, taps_d)
