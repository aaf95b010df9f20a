"""Keep triton out of processes that render with Mesa's llvmpipe.

Triton bundles its own LLVM; importing it into a process that already holds Mesa's ``libLLVM``
(any napari drawn with software OpenGL: Xvfb, remote desktops, VMs) crashes the process
(SIGSEGV, seen here). torch imports triton on its own when it is installed: constructing any
``torch.optim`` optimizer imports ``torch._dynamo``, which imports triton. So before training
or rendering inside napari we look for Mesa's LLVM in the process's memory map and, if it is
there, make ``import triton`` fail cleanly (torch then treats triton as absent; the CPU path does
not need it). With a hardware OpenGL driver nothing changes.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_MAPS = Path("/proc/self/maps")


def mesa_llvm_loaded() -> bool:
    try:
        maps = _MAPS.read_text()
    except OSError:
        return False
    return any("libLLVM" in line and "triton" not in line for line in maps.splitlines())


def block_triton_if_unsafe() -> bool:
    """Block ``import triton`` when it would crash; ``True`` if blocked (now or before)."""
    if sys.modules.get("triton", 0) is None:
        return True
    if "triton" in sys.modules or not mesa_llvm_loaded():
        return False
    sys.modules["triton"] = None  # type: ignore[assignment]
    warnings.warn("napari-scalespace: napari renders with Mesa's LLVM here, which crashes with "
                  "triton's; triton is disabled in this napari session (CPU ops are used)",
                  RuntimeWarning, stacklevel=2)
    return True
