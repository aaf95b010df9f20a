"""The numba kernels of ``_fused_cpu.py`` (imported on first use: numba takes a while to load).

Every pass accumulates one row at a time, channels innermost (contiguous: LLVM vectorises the
channel loop), four taps per sweep of the row (a quarter of the loads and stores of the
accumulator that one tap per sweep costs); the leftover taps go one by one. ``cache=True``:
compiled once per install (about a second per kernel and dtype), then loaded from
``__pycache__``.
"""

import numba
import numpy as np
from numba import njit, prange


def use_threads(n: int) -> None:
    """Run the kernels on ``n`` threads (at most numba's pool size)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


@njit(inline="always")
def _phase_taps(m, p0, up, taps, n_src, f, ws, ss):
    """The taps of an up-filter that meet an input sample at output ``m``: their weights
    into ``ws``, the samples' indices into ``ss``; returns how many."""
    k = 0
    for t in range((p0 - m) % up, taps, up):
        s = (m + t - p0) // up
        if 0 <= s < n_src:
            ws[k] = f[t]
            ss[k] = s
            k += 1
    return k

@njit(parallel=True, nogil=True, cache=True)
def up_x(x, bias, f, up, p0, out):
    """``out[n, i] = upfir_x(x[n, i] + bias)``; x [N, H, W, C] (any strides)."""
    N, H, W, C = x.shape
    mid_w = out.shape[2]
    taps = f.shape[0]
    for row in prange(N * H):
        n = row // H
        i = row - n * H
        src = np.empty((W, C), out.dtype)  # the row with its bias, contiguous
        for c in range(C):  # (x is usually NCHW: read along its rows)
            for s in range(W):
                src[s, c] = x[n, i, s, c] + bias[c]
        ws = np.empty(taps, out.dtype)
        ss = np.empty(taps, np.int64)
        for m in range(mid_w):
            k = _phase_taps(m, p0, up, taps, W, f, ws, ss)
            o = out[n, i, m]
            o[:] = 0
            g = k - k % 4
            for a in range(0, g, 4):
                w0, w1, w2, w3 = ws[a], ws[a + 1], ws[a + 2], ws[a + 3]
                r0, r1, r2, r3 = src[ss[a]], src[ss[a + 1]], src[ss[a + 2]], src[ss[a + 3]]
                for c in range(C):
                    o[c] += w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c]
            for a in range(g, k):
                w0, r0 = ws[a], src[ss[a]]
                for c in range(C):
                    o[c] += w0 * r0[c]

@njit(parallel=True, nogil=True, cache=True)
def up_y_act_down_x(ux, f, up, p0, fd, down, params, out):
    """One up-sampled row at a time: up-filter along y, activate, down-filter along x."""
    N, H, mid_w, C = ux.shape
    mid_h, out_w = out.shape[1], out.shape[2]
    taps, taps_d = f.shape[0], fd.shape[0]
    slope, gain, limit, clamped = params[0], params[1], params[2], params[3] > 0
    gd = taps_d - taps_d % 4
    for row in prange(N * mid_h):
        n = row // mid_h
        m = row - n * mid_h
        ws = np.empty(taps, ux.dtype)
        ss = np.empty(taps, np.int64)
        k = _phase_taps(m, p0, up, taps, H, f, ws, ss)
        acc = np.zeros((mid_w, C), ux.dtype)
        g = k - k % 4
        for a in range(0, g, 4):
            w0, w1, w2, w3 = ws[a], ws[a + 1], ws[a + 2], ws[a + 3]
            r0, r1 = ux[n, ss[a]], ux[n, ss[a + 1]]
            r2, r3 = ux[n, ss[a + 2]], ux[n, ss[a + 3]]
            for j in range(mid_w):
                for c in range(C):
                    acc[j, c] += (w0 * r0[j, c] + w1 * r1[j, c] + w2 * r2[j, c]
                                  + w3 * r3[j, c])
        for a in range(g, k):
            w0, r0 = ws[a], ux[n, ss[a]]
            for j in range(mid_w):
                for c in range(C):
                    acc[j, c] += w0 * r0[j, c]
        for j in range(mid_w):
            for c in range(C):
                v = acc[j, c]
                v = gain * (v if v >= 0 else v * slope)
                if clamped:
                    v = min(max(v, -limit), limit)
                acc[j, c] = v
        for q in range(out_w):
            o = out[n, m, q]
            o[:] = 0
            b = q * down
            for a in range(0, gd, 4):
                w0, w1, w2, w3 = fd[a], fd[a + 1], fd[a + 2], fd[a + 3]
                r0, r1, r2, r3 = acc[b + a], acc[b + a + 1], acc[b + a + 2], acc[b + a + 3]
                for c in range(C):
                    o[c] += w0 * r0[c] + w1 * r1[c] + w2 * r2[c] + w3 * r3[c]
            for a in range(gd, taps_d):
                w0, r0 = fd[a], acc[b + a]
                for c in range(C):
                    o[c] += w0 * r0[c]

@njit(parallel=True, nogil=True, cache=True)
def down_y(dx, f, down, out):
    """``out[n, q] = sum_t f[t] dx[n, q * down + t]``."""
    N, out_h, out_w, C = out.shape
    taps = f.shape[0]
    g = taps - taps % 4
    for row in prange(N * out_h):
        n = row // out_h
        q = row - n * out_h
        o = out[n, q]
        o[:] = 0
        b = q * down
        for a in range(0, g, 4):
            w0, w1, w2, w3 = f[a], f[a + 1], f[a + 2], f[a + 3]
            r0, r1, r2, r3 = dx[n, b + a], dx[n, b + a + 1], dx[n, b + a + 2], dx[n, b + a + 3]
            for j in range(out_w):
                for c in range(C):
                    o[j, c] += (w0 * r0[j, c] + w1 * r1[j, c] + w2 * r2[j, c]
                                + w3 * r3[j, c])
        for a in range(g, taps):
            w0, r0 = f[a], dx[n, b + a]
            for j in range(out_w):
                for c in range(C):
                    o[j, c] += w0 * r0[j, c]
