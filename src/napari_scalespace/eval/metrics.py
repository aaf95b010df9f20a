"""Image-set metrics of a scale space, on float arrays ``[N, C, R, R]`` with values in [0, 1].

- :func:`psnr`, :func:`ssim`, :func:`mean_abs`: pixel fidelity of one set against another
  (view by view, same views); PSNR over all pixels of the set, SSIM (scikit-image, 7-px
  Gaussian-free window, per channel) averaged over views.
- :func:`consistency`: a view at zoom ``l`` box-downsampled by 2 against the central half of the
  view at zoom ``l - 1`` with the same centre. A scale-consistent scale space has the coarser
  view equal to the area average of the finer one, so the two agree.
- :func:`seam_overlap`: two views at one zoom, the second shifted by half a view: their
  overlapping halves show the same part of the scene at the same pixel grid.
- :func:`gradient_energy`: the mean squared difference of neighbouring pixels (along y and
  along x, summed): how much detail a set of views shows. Natural images keep roughly the same
  energy from octave to octave; a zoom that invents nothing (bicubic past the data) loses about
  three quarters of it per octave.
- :func:`seam_gradient_ratio`: on a mosaic of tiles (what napari shows), the mean absolute
  difference between neighbouring pixels that sit on two sides of a tile border, divided by the
  same mean inside tiles: about 1 without seams, larger with them.

Every function states its inputs' shapes and raises ``ValueError`` on mismatches.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

__all__ = [
    "box_downsample",
    "consistency",
    "gradient_energy",
    "mean_abs",
    "psnr",
    "seam_gradient_ratio",
    "seam_overlap",
    "ssim",
]


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"the two sets differ in shape: {a.shape} vs {b.shape}")
    if a.ndim != 4:
        raise ValueError(f"expected [N, C, H, W] arrays, got shape {a.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels (``inf`` for identical sets)."""
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference (L1) over all pixels."""
    a, b = _pair(a, b)
    return float(np.mean(np.abs(a - b)))


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (scikit-image, 7 x 7 window) averaged over the views."""
    a, b = _pair(a, b)
    if min(a.shape[2:]) < 7:
        raise ValueError(f"SSIM needs views of at least 7 x 7 pixels, got {a.shape[2:]}")
    return float(np.mean([
        structural_similarity(x, y, data_range=data_range, channel_axis=0)
        for x, y in zip(a, b, strict=True)]))


def gradient_energy(images: np.ndarray, per_view: bool = False) -> float | np.ndarray:
    """Mean over views, channels and pixels of ``dy^2 + dx^2`` (forward differences) of
    ``[N, C, H, W]`` views; ``per_view``: one value per view ``[N]``."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or min(x.shape[2:]) < 2:
        raise ValueError(f"gradient_energy needs [N, C, H, W] views of at least 2 x 2 pixels, "
                         f"got shape {x.shape}")
    e = (np.diff(x, axis=2) ** 2).mean(axis=(1, 2, 3)) + (np.diff(x, axis=3) ** 2).mean(
        axis=(1, 2, 3))
    return e if per_view else float(e.mean())


def box_downsample(x: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks of ``[N, C, H, W]`` (H, W multiples of factor)."""
    x = np.asarray(x)
    n, c, h, w = x.shape
    if h % factor or w % factor:
        raise ValueError(f"{h} x {w} is not a multiple of the factor {factor}")
    return x.reshape(n, c, h // factor, factor, w // factor, factor).mean(axis=(3, 5))


def consistency(fine: np.ndarray, coarse: np.ndarray) -> tuple[float, float]:
    """``(PSNR, L1)`` of ``box_downsample(fine, 2)`` against the centre of ``coarse``.

    ``fine[i]`` is the view at zoom ``l`` and ``coarse[i]`` the view at zoom ``l - 1`` with the
    same centre, both ``R x R`` (R a multiple of 4): the fine view covers the central
    ``R/2 x R/2`` pixels of the coarse one.
    """
    fine, coarse = _pair(fine, coarse)
    r = fine.shape[-1]
    if r % 4 or fine.shape[-2] != r:
        raise ValueError(f"consistency needs square views of a multiple of 4 pixels, got "
                         f"{fine.shape[-2:]}")
    down = box_downsample(fine, 2)
    centre = coarse[:, :, r // 4: 3 * r // 4, r // 4: 3 * r // 4]
    return psnr(down, centre), mean_abs(down, centre)


def seam_overlap(first: np.ndarray, second: np.ndarray, axis: str) -> float:
    """PSNR between the overlapping halves of views ``second[i]`` = ``first[i]`` shifted by
    half a view along ``axis`` ("x": to the right, "y": down)."""
    first, second = _pair(first, second)
    r = first.shape[-1]
    if r % 2 or first.shape[-2] != r:
        raise ValueError(f"seam_overlap needs square views of an even size, got "
                         f"{first.shape[-2:]}")
    h = r // 2
    if axis == "x":
        return psnr(first[..., :, h:], second[..., :, :h])
    if axis == "y":
        return psnr(first[..., h:, :], second[..., :h, :])
    raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")


def seam_gradient_ratio(mosaic: np.ndarray, tile: int) -> float:
    """Mean |difference| of neighbouring pixels across tile borders over the same inside tiles.

    ``mosaic`` is ``[C, H, W]`` (or ``[H, W]``) assembled from ``tile x tile`` tiles starting at
    pixel (0, 0); both directions (columns and rows) are pooled. ``nan`` when the mosaic has no
    border or no inside pair, or is flat inside.
    """
    m = np.asarray(mosaic, dtype=np.float64)
    if m.ndim == 2:
        m = m[None]
    if m.ndim != 3:
        raise ValueError(f"expected a [C, H, W] or [H, W] mosaic, got shape {m.shape}")
    border, inside = [], []
    for d in (np.abs(np.diff(m, axis=2)), np.abs(np.diff(m, axis=1)).transpose(0, 2, 1)):
        at = (np.arange(d.shape[2]) + 1) % tile == 0  # pair (j, j + 1) straddles a border
        border.append(d[:, :, at].ravel())
        inside.append(d[:, :, ~at].ravel())
    b, i = np.concatenate(border), np.concatenate(inside)
    if b.size == 0 or i.size == 0 or i.mean() == 0:
        return math.nan
    return float(b.mean() / i.mean())
