"""The numba kernel of the memory's read at render time (:class:`.memory.MemoryTables`).

One call reads one level of the memory over one canvas and adds it to ``out``: the same
footprint means as :func:`.memory.footprint_mean` (which forms tent-weight matrices, for
gradients), here from the bilinear surface's antiderivative: along y from the stored prefix,
then along x from a prefix of each row, then differences at the pixel edges, as loops in
float64. A render reads every level of every tile; in torch its few hundred thousand
operations per read would cost more in dispatch than in arithmetic. Channels run in parallel
(``prange``, OpenMP: the runtime torch uses, as in :mod:`..ops._numba_kernels`) in
:data:`read_level_parallel`, so a single tile's read at zoom 0, where it spans every cell of
every level, takes all of torch's threads; :data:`read_level` is the same on one thread.
``cache=True``: compiled once per install, then loaded from ``__pycache__``.
"""

import math
import types

import numba
import numpy as np
from numba import njit, prange

numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]


@njit(inline="always")
def _cell(t, n):
    """Interval ``k``, ``k + 1``, fraction ``phi`` and the distances below the first and above
    the last centre of position ``t`` on an ``n``-cell curve."""
    tc = min(max(t, 0.0), n - 1.0)
    k = min(math.floor(tc), max(n - 2, 0))
    phi = tc - k
    return int(k), min(int(k) + 1, n - 1), phi, min(t, 0.0), max(t - (n - 1.0), 0.0)


def _read_level(grid, prefix, ty, tx, x0, x1, out):
    """``out[c, i, j] +=`` the mean of the bilinear surface through ``grid [C, Ny, Nx]``
    (``prefix``: its prefix along y) over ``[ty_i, ty_{i+1}] x [tx_j, tx_{j+1}]`` (cell units
    from the first centre); columns ``[x0, x1)`` hold every ``tx``. Differences along y come
    before the integral along x (the prefix's large values cancel before they meet a small
    footprint)."""
    C, ny, _ = grid.shape
    P, Q, n = ty.shape[0], tx.shape[0], x1 - x0
    xk = np.empty(Q, np.int64)
    xk1 = np.empty(Q, np.int64)
    xphi = np.empty(Q)
    xbelow = np.empty(Q)
    xabove = np.empty(Q)
    for j in range(Q):
        xk[j], xk1[j], xphi[j], xbelow[j], xabove[j] = _cell(tx[j] - x0, n)
    for c in prange(C):
        g, q = grid[c], prefix[c]
        prev = np.empty(n)
        cur = np.empty(n)
        qx = np.empty(n)
        row = np.empty(Q)
        for i in range(P):
            k, k1, phi, below, above = _cell(ty[i], ny)
            h = 0.5 * phi * phi
            for x in range(n):  # A along y at edge i, one value per column
                m0, m1 = g[k, x0 + x], g[k1, x0 + x]
                cur[x] = (q[k, x0 + x] + phi * m0 + h * (m1 - m0) + below * g[0, x0 + x]
                          + above * g[ny - 1, x0 + x])
            if i > 0:
                # the column integrals over [ty_{i-1}, ty_i], then A along x of them
                qx[0] = 0.0
                d0 = cur[0] - prev[0]
                for x in range(1, n):
                    d1 = cur[x] - prev[x]
                    qx[x] = qx[x - 1] + 0.5 * (d0 + d1)
                    d0 = d1
                first, last = cur[0] - prev[0], cur[n - 1] - prev[n - 1]
                for j in range(Q):
                    kk, kk1, p = xk[j], xk1[j], xphi[j]
                    a, b = cur[kk] - prev[kk], cur[kk1] - prev[kk1]
                    row[j] = (qx[kk] + p * a + 0.5 * p * p * (b - a) + xbelow[j] * first
                              + xabove[j] * last)
                dy = ty[i] - ty[i - 1]
                for j in range(Q - 1):
                    out[c, i - 1, j] += (row[j + 1] - row[j]) / (dy * (tx[j + 1] - tx[j]))
            for x in range(n):
                prev[x] = cur[x]


def _named(f, name: str):
    """``f`` as a function of another name: numba's cache keys a compiled function by its
    qualified name and line, not by its options, so the serial and the parallel compilation
    of one function would share (and load each other's) cache entries."""
    g = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    g.__qualname__ = name
    return g


read_level = njit(nogil=True, cache=True)(_named(_read_level, "read_level"))
"""One thread: for small reads (a few cells of a deep zoom), where waking threads costs more
than the read."""
read_level_parallel = njit(nogil=True, cache=True, parallel=True)(
    _named(_read_level, "read_level_parallel"))
"""Channels on torch's threads: for reads spanning many cells (coarse zooms)."""
