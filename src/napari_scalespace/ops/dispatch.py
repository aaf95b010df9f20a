"""Choosing an implementation: ``impl = "ref" | "fast" | "triton" | "auto"``.

- ``ref``: the readable specification (the obvious composition of torch ops);
- ``fast``: the CPU path (polyphase, decimation-aware, channels-last depthwise convolutions);
- ``triton``: CUDA kernels (not available yet: the seam is here, see ``resolve``);
- ``auto``: the best implementation available for the tensor's device.

A requested implementation that cannot run falls back to ``fast`` with one warning per reason.
"""

from __future__ import annotations

import warnings

import torch

IMPLS = ("ref", "fast", "triton", "auto")
_warned: set[str] = set()


def _warn_once(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(reason, RuntimeWarning, stacklevel=4)


def resolve(impl: str, x: torch.Tensor) -> str:
    """The implementation that will run for ``impl`` on tensor ``x``: ``"ref"`` or ``"fast"``."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        return "fast"
    if impl == "triton":
        _warn_once("napari-scalespace: Triton kernels are not implemented yet; using impl='fast'")
        return "fast"
    return impl
