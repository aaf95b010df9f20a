"""Choosing an implementation: ``impl = "ref" | "fast" | "triton" | "auto"``.

- ``ref``: the readable specification (the obvious composition of torch ops);
- ``fast``: the CPU path (polyphase, decimation-aware, channels-last depthwise convolutions);
- ``triton``: Triton kernels (``_triton_*.py``), for CUDA tensors, or for CPU tensors when
  ``TRITON_INTERPRET=1`` was set before triton was imported (the tests);
- ``auto``: ``fast`` on the CPU; on CUDA ``triton`` when it imports and the op has a kernel,
  else ``ref``, with one warning per reason.

Nothing here imports triton for a CPU tensor under ``auto``. An implementation that cannot run
falls back with one :class:`RuntimeWarning` per reason, never an error.
"""

from __future__ import annotations

import importlib
import os
import warnings

import torch

IMPLS = ("ref", "fast", "triton", "auto")
TRITON_OPS = frozenset({"upfirdn2d", "bias_act", "filtered_lrelu"})
"""The ops that have a Triton kernel so far."""
_warned: set[str] = set()
_triton_error: list[str | None] = []  # [] = not checked yet; [None] = importable


def warn_once(reason: str) -> None:
    """One :class:`RuntimeWarning` per distinct reason per process."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(reason, RuntimeWarning, stacklevel=4)



def triton_unavailable() -> str | None:
    """Why the Triton kernels cannot be imported here, or ``None`` if they can."""
    if not _triton_error:
        try:
            importlib.import_module("napari_scalespace.ops._triton_fir")
            _triton_error.append(None)
        except Exception as exc:  # ImportError, or triton failing to initialise
            _triton_error.append(f"{type(exc).__name__}: {exc}")
    return _triton_error[0]


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def resolve(impl: str, x: torch.Tensor, op: str = "") -> str:
    """The implementation that will run for ``impl`` on tensor ``x``: ``"ref"``, ``"fast"``
    or ``"triton"`` (only for an ``op`` in :data:`TRITON_OPS`)."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl in ("ref", "fast"):
        return impl
    on_gpu = x.device.type == "cuda"
    if impl == "auto" and not on_gpu:
        return "fast"
    fallback = "ref" if on_gpu else "fast"
    if op not in TRITON_OPS:
        warn_once(f"napari-scalespace: no Triton kernel for {op or 'this op'} yet; using "
                   f"impl={fallback!r}")
        return fallback
    if not (on_gpu or interpreting()):
        warn_once(f"napari-scalespace: impl='triton' needs a CUDA tensor (or "
                   f"TRITON_INTERPRET=1); got a {x.device.type} tensor, using impl='fast'")
        return "fast"
    why = triton_unavailable()
    if why is not None:
        warn_once(f"napari-scalespace: Triton is unavailable ({why}); using "
                   f"impl={fallback!r}")
        return fallback
    return "triton"
