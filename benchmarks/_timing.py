"""Timing helpers shared by the benchmarks: interleaved repeats, medians, allocator variants.

This machine is shared and noisy, so candidates are timed *side by side*: each round runs every
candidate once (A B A B ...) and the figure is the median over rounds; ratios come from the
same rounds. glibc gives every temporary over 32 MiB its own mmap; ``MMAP_FREE_ENV`` turns that
off so that figures can be reported both ways (see docs/benchmarks.md).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

MMAP_FREE_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def allocator_label() -> str:
    return "mmap-free" if os.environ.get("MALLOC_MMAP_MAX_") == "0" else "default"


def time_side_by_side(
    candidates: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 2
) -> dict[str, float]:
    """Median seconds per call of each candidate, measured in interleaved rounds."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def machine_line() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), allocator {allocator_label()}"
    )


def rerun_mmap_free(argv: list[str]) -> int:
    """Run this script again in a child process with the mmap-free allocator settings."""
    env = dict(os.environ, **MMAP_FREE_ENV)
    return subprocess.call([sys.executable, *argv], env=env)
