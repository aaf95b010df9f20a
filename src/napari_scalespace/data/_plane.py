"""One 2-D plane of a lazily indexed array (numpy, dask, zarr, tifffile's zarr store), read
by regions in channels-last layout ``(rows, cols, raw channels)`` and native dtype.

An array's axes are labelled with one letter each: ``y`` (rows), ``x`` (columns), ``c``
(channels: 1 gray, 3 RGB, 4 RGBA; 2 = gray + alpha only where a file format says so) and
``s`` (a singleton axis, indexed at 0). Labels come from the file's metadata where it has
them (OME-Zarr ``axes``, tifffile ``series.axes``; any other letter must have length 1) and
from the shape otherwise: ``(H, W)`` is ``yx``, ``(H, W, C)`` with C <= 4 is ``yxc``, and
leading length-1 axes are ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Plane", "axes_from_shape", "plane_from_axes"]

STACK_HINT = "pass one 2-D image (or RGB) per scene"


@dataclass(frozen=True)
class Plane:
    """Region reads of the 2-D (+ channels) plane of ``data`` labelled by ``axes``."""

    data: Any
    axes: str  # one of y, x, c, s per axis of data
    height: int
    width: int
    raw_channels: int  # channels stored, alpha included

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    def read(self, r0: int, r1: int, c0: int, c1: int, step: int = 1) -> np.ndarray:
        """``plane[r0:r1:step, c0:c1:step]`` as a numpy array ``(h, w, raw_channels)``."""
        pos = {"y": slice(r0, r1, step), "x": slice(c0, c1, step), "c": slice(None), "s": 0}
        block = np.asarray(self.data[tuple(pos[a] for a in self.axes)])
        kept = [a for a in self.axes if a != "s"]
        block = block.transpose([kept.index(a) for a in "yxc" if a in kept])
        return block if "c" in kept else block[..., None]


def axes_from_shape(shape: tuple[int, ...], name: str) -> str:
    """Axis labels of a plain array of ``shape`` (see the module docstring)."""
    nd = len(shape)
    lead = 0
    while nd - lead > 2 and shape[lead] == 1 and not (nd - lead == 3 and shape[-1] <= 4):
        lead += 1
    core = shape[lead:]
    if len(core) == 2:
        return "s" * lead + "yx"
    if len(core) == 3 and core[-1] <= 4:
        return "s" * lead + "yxc"
    if len(core) >= 3:
        raise ValueError(
            f"{name}: shape {tuple(shape)} is a {len(core)}-D stack, not a 2-D image with "
            f"1, 3 or 4 channels last; {STACK_HINT}"
        )
    raise ValueError(
        f"{name}: shape {tuple(shape)} is {nd}-D; expected a 2-D image (H, W) or (H, W, 3|4)"
    )


def plane_from_axes(data: Any, axes: str, name: str, gray_alpha: bool = False) -> Plane:
    """A :class:`Plane` of ``data`` with axes labelled ``axes`` (y, x, at most one c; any
    other letter is a singleton ``s`` and must have length 1). ``gray_alpha`` allows 2
    channels (gray + alpha), for file formats that declare them."""
    shape = tuple(int(n) for n in data.shape)
    axes = axes.lower()
    if len(axes) != len(shape):
        raise ValueError(f"{name}: axes {axes!r} do not match shape {shape}")
    if axes.count("y") != 1 or axes.count("x") != 1 or axes.count("c") > 1:
        raise ValueError(f"{name}: axes {axes!r} need one y, one x and at most one c axis")
    extra = [(a, n) for a, n in zip(axes, shape, strict=True) if a not in "yxc" and n != 1]
    if extra:
        desc = ", ".join(f"{a}={n}" for a, n in extra)
        raise ValueError(
            f"{name}: shape {shape} (axes {axes!r}) is a {2 + len(extra)}-D stack ({desc}), "
            f"not one 2-D image; {STACK_HINT}"
        )
    channels = shape[axes.index("c")] if "c" in axes else 1
    if channels not in ((1, 2, 3, 4) if gray_alpha else (1, 3, 4)):
        raise ValueError(f"{name}: {channels} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA)")
    labels = "".join(a if a in "yxc" else "s" for a in axes)
    height, width = shape[axes.index("y")], shape[axes.index("x")]
    if height == 0 or width == 0:
        raise ValueError(f"{name}: empty image (shape {shape})")
    return Plane(data, labels, height, width, channels)
