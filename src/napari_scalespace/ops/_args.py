"""Argument checking shared by the ops: every bad argument is a ``ValueError`` naming it.

Conventions (as in the published alias-free GAN ops, so that layer code reads the same):
``padding`` is an int, ``(px, py)`` or ``(px0, px1, py0, py1)`` (x = width first; negative
values crop); ``up``/``down`` are an int or ``(ux, uy)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Pad4 = tuple[int, int, int, int]  # (x0, x1, y0, y1)


def check_input(x: object, name: str = "x") -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D [N, C, H, W], got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")
    return x


def check_filter(f: object, x: torch.Tensor, name: str = "f") -> torch.Tensor:
    """Return the filter as a tensor on x's device and dtype; None means the identity ``[1]``."""
    if f is None:
        return torch.ones(1, dtype=x.dtype, device=x.device)
    if not isinstance(f, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or None, got {type(f).__name__}")
    if f.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (separable) or 2-D, got shape {tuple(f.shape)}")
    if f.numel() == 0:
        raise ValueError(f"{name} must not be empty")
    if not f.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {f.dtype}")
    return f.to(device=x.device, dtype=x.dtype)


def parse_scaling(value: object, name: str) -> tuple[int, int]:
    """An int or ``(sx, sy)``, each >= 1."""
    pair = _pair_of_ints(value, name, 2)
    if min(pair) < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return pair[0], pair[1]


def parse_padding(value: object) -> Pad4:
    """An int, ``(px, py)`` or ``(px0, px1, py0, py1)``."""
    if isinstance(value, Sequence) and len(value) == 2:
        px, py = _pair_of_ints(value, "padding", 2)
        return px, px, py, py
    if isinstance(value, Sequence) and len(value) == 4:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"padding entries must be ints, got {value!r}")
        return tuple(value)  # type: ignore[return-value]
    p = _pair_of_ints(value, "padding", 1)[0]
    return p, p, p, p


def _pair_of_ints(value: object, name: str, n: int) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * max(n, 1)
    if (
        isinstance(value, Sequence)
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return tuple(value)
    raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")


def filter_taps(f: torch.Tensor) -> tuple[int, int]:
    """(taps along x, taps along y) of a 1-D (separable) or 2-D ``[fh, fw]`` filter."""
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]


def output_size(
    size: int, up: int, down: int, pad0: int, pad1: int, taps: int, axis: str, name: str = "f"
) -> int:
    """``(size*up + pad0 + pad1 - taps + down) // down``, checked to be >= 1."""
    padded = size * up + pad0 + pad1
    if padded < taps:
        raise ValueError(
            f"{name} has {taps} taps along {axis} but the up-sampled, padded input has only "
            f"{padded} samples: reduce the filter or increase padding"
        )
    return (padded - taps + down) // down


def check_bias(b: object, x: torch.Tensor, dim: int = 1) -> torch.Tensor | None:
    if b is None:
        return None
    if not isinstance(b, torch.Tensor):
        raise ValueError(f"b must be a torch.Tensor or None, got {type(b).__name__}")
    if b.ndim != 1 or b.shape[0] != x.shape[dim]:
        raise ValueError(
            f"b must be 1-D with x.shape[{dim}] = {x.shape[dim]} entries, got {tuple(b.shape)}"
        )
    return b.to(device=x.device, dtype=x.dtype)


def pad_or_crop(x: torch.Tensor, pad: Pad4) -> torch.Tensor:
    """Zero-pad the last two axes by ``pad = (x0, x1, y0, y1)``; negative entries crop.

    Pads first and crops after, so a crop may eat into padding (``F.pad`` alone refuses
    to crop more than the unpadded input holds)."""
    x = F.pad(x, [max(p, 0) for p in pad])
    x0, x1, y0, y1 = (max(-p, 0) for p in pad)
    return x[..., y0 : x.shape[-2] - y1, x0 : x.shape[-1] - x1]
