"""Keep glibc from giving every large temporary its own ``mmap``.

By default glibc serves each allocation over 32 MiB (the dynamic mmap threshold's ceiling) with
a fresh ``mmap`` and returns it on free, so every large torch temporary page-faults all of its
pages again on every call: measured here, a ``small`` generator step runs 1.5x faster with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1e11`` (docs/benchmarks.md). The same settings can
be made at run time with ``mallopt``; the command line does so for ``train`` and ``render``
(the freed memory then stays with the process for reuse instead of going back to the system).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_large_allocations() -> bool:
    """Apply the settings in this process; ``True`` if glibc accepted them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(M_MMAP_MAX, 0) == 1
    return bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok)
