"""Sliced Wasserstein distance (SWD) between two sets of images, over patch descriptors.

Each image is decomposed into a Laplacian pyramid (binomial 5-tap low-pass, factor 2); from
every level we take ``per_image`` random ``size x size`` neighbourhoods (all channels) as
descriptors, at the same positions in both sets (so a set against itself gives exactly 0).
Per level, the descriptors of both sets are normalised with the mean and standard deviation of
each channel over both sets, projected on ``directions`` random unit vectors, and the 1-D
Wasserstein-1 distance of the projections (mean absolute difference of the sorted values) is
averaged over directions. Level 0 is the finest (fine texture), the last the
coarsest (colours, layout). Lower is better; identical distributions give about 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur(x: torch.Tensor) -> torch.Tensor:
    C = x.shape[1]
    k = _BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(C, 1, 1, 5), groups=C)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(C, 1, 5, 1), groups=C)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """``levels`` band-pass images (finest first) and the low-pass residual last."""
    out = []
    for _ in range(levels - 1):
        low = _blur(x)[:, :, ::2, ::2]
        up = F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out.append(x - up)
        x = low
    out.append(x)
    return out


def descriptors(x: torch.Tensor, size: int, per_image: int, g: torch.Generator) -> torch.Tensor:
    """Random ``size x size`` neighbourhoods of ``x [B, C, H, W]``: ``[B * per_image, C s^2]``."""
    B, _, H, W = x.shape
    if H < size or W < size:
        raise ValueError(f"images of {H}x{W} are smaller than the {size}x{size} descriptor")
    ys = torch.randint(0, H - size + 1, (B, per_image), generator=g)
    xs = torch.randint(0, W - size + 1, (B, per_image), generator=g)
    patches = x.unfold(2, size, 1).unfold(3, size, 1)  # [B, C, H', W', s, s]
    b = torch.arange(B)[:, None].expand(B, per_image)
    picked = patches[b, :, ys, xs]  # [B, per_image, C, s, s]
    return picked.reshape(B * per_image, -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions: int,
                       g: torch.Generator) -> float:
    """SWD between descriptor sets ``a [N, D]`` and ``b [M, D]`` (resampled to equal size)."""
    n = min(a.shape[0], b.shape[0])
    a, b = a[:n], b[:n]
    proj = torch.randn(a.shape[1], directions, generator=g, dtype=a.dtype)
    proj = proj / proj.norm(dim=0, keepdim=True)
    pa, _ = torch.sort(a @ proj, dim=0)
    pb, _ = torch.sort(b @ proj, dim=0)
    return float((pa - pb).abs().mean())


def swd(real: torch.Tensor, fake: torch.Tensor, levels: int | None = None, size: int = 7,
        per_image: int = 64, directions: int = 256, seed: int = 0) -> list[float]:
    """SWD per Laplacian level (finest first) between ``real`` and ``fake`` ``[B, C, R, R]``.

    ``levels`` defaults to as many as keep the coarsest level at least ``2 * size`` pixels.
    Values are scaled by 1000 (as is customary) for readability.
    """
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    R = real.shape[-1]
    if levels is None:
        levels = 1
        while R // 2**levels >= 2 * size:
            levels += 1
    g = torch.Generator().manual_seed(seed)
    real, fake = real.double(), fake.double()
    out = []
    for lr, lf in zip(laplacian_pyramid(real, levels), laplacian_pyramid(fake, levels),
                      strict=True):
        state = g.get_state()  # the same positions in both sets (common random numbers):
        da = descriptors(lr, size, per_image, g)  # SWD(a, a) is exactly 0 and the sampling
        g.set_state(state)  # noise of a comparison is smaller
        db = descriptors(lf, size, per_image, g)
        both = torch.cat([da, db]).reshape(-1, real.shape[1], size * size)
        mean = both.mean(dim=(0, 2), keepdim=True)
        std = both.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
        da = ((da.reshape(-1, real.shape[1], size * size) - mean) / std).flatten(1)
        db = ((db.reshape(-1, real.shape[1], size * size) - mean) / std).flatten(1)
        out.append(1000 * sliced_wasserstein(da, db, directions, g))
    return out
