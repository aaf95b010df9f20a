"""Losses: non-saturating logistic GAN loss, the (lazy) R1 penalty, and reconstruction.

- discriminator: ``softplus(D(fake)) + softplus(-D(real))``;
- generator: ``softplus(-D(fake))`` (non-saturating);
- R1: ``gamma / 2 * E ||grad_x D(real)||^2``, evaluated every ``interval`` steps and scaled by
  ``interval`` (lazy regularisation) so its average strength does not depend on the interval;
- reconstruction (known positions): the generator's render of a real patch's own view
  against the patch, ``L1 + (1 - SSIM)`` (SSIM with a Gaussian window, sigma 1.5, on images
  mapped from [-1, 1] to [0, 1]), per sample, so that each sample can be weighted by its octave
  (and samples without a real view, beyond the data, left out); optionally low-pass: both
  averaged over blocks of a sample's ``pool`` pixels first;
- detail (known positions): per band of a box Laplacian pyramid (``L_j = G_j - up(G_{j+1})``,
  ``G_{j+1}`` = 2 x 2 means of ``G_j``), the local detail energy ``E_j`` (mean ``|L_j|`` over
  4 x 4 blocks) of the render against the patch's, ``mean_j mean |E_j(fake) - E_j(real)|``. A
  pixel loss where the model is unsure of a detail's exact place is smallest for the local
  mean (a blur); this one is smallest when the render has the patch's amount of detail, where
  the patch has it, whatever its phase.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops import upfirdn2d


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` over the batch; ``real`` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum([1, 2, 3]).mean()


def reconstruction(fake: torch.Tensor, real: torch.Tensor,
                   weight: torch.Tensor | None = None,
                   pool: torch.Tensor | None = None) -> torch.Tensor:
    """``mean |fake - real| + (1 - SSIM(fake, real))`` for views in [-1, 1] (0 when equal).

    With ``weight [B]``: the per-sample losses weighted, summed and divided by the number of
    samples with a non-zero weight (zero-weight samples take no part). With ``pool [B]``
    (powers of two): sample i is compared after averaging ``pool_i x pool_i`` blocks of both
    (a low-pass reconstruction: finer detail is left to other losses)."""
    if pool is None or bool((pool <= 1).all()):
        per_sample = _rec_per_sample(fake, real)
    else:
        per_sample = torch.empty(fake.shape[0], dtype=fake.dtype, device=fake.device)
        for p in pool.unique().tolist():
            rows = (pool == p).nonzero()[:, 0]
            a, b = fake.index_select(0, rows), real.index_select(0, rows)
            if p > 1:
                a, b = F.avg_pool2d(a, int(p)), F.avg_pool2d(b, int(p))
            per_sample = per_sample.index_put((rows,), _rec_per_sample(a, b))
    if weight is None:
        return per_sample.mean()
    weight = weight.to(per_sample)
    return (per_sample * weight).sum() / (weight > 0).sum().clamp_min(1)


def _rec_per_sample(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    return ((fake - real).abs().mean([1, 2, 3])
            + 1 - ssim((fake + 1) / 2, (real + 1) / 2, per_sample=True))


def detail_energy(x: torch.Tensor, levels: int = 3, block: int = 4, rms: bool = False
                  ) -> list[torch.Tensor]:
    """``E_j``, j = 0 .. levels-1: mean ``|L_j|`` over ``block x block`` blocks of the box
    Laplacian band j of ``x [B, C, H, W]`` (channels averaged), ``[B, 1, H / 2^j / block, ...]``;
    bands whose blocks would not fit are left out. ``rms``: ``sqrt(mean L_j^2 + 1e-8)`` over
    the block instead (a sparse strong edge weighs as in gradient energy)."""
    out = []
    g = x
    for _ in range(levels):
        if min(g.shape[-2:]) < 2 * block:
            break
        coarse = F.avg_pool2d(g, 2)
        band = g - F.interpolate(coarse, scale_factor=2, mode="nearest")
        if rms:
            out.append((F.avg_pool2d(band.square().mean(1, keepdim=True), block) + 1e-8).sqrt())
        else:
            out.append(F.avg_pool2d(band.abs().mean(1, keepdim=True), block))
        g = coarse
    return out


def detail(fake: torch.Tensor, real: torch.Tensor,
           weight: torch.Tensor | None = None, rms: bool = False) -> torch.Tensor:
    """``mean_j mean |E_j(fake) - E_j(real)|`` (:func:`detail_energy`, ``rms`` as there),
    weighted per sample as :func:`reconstruction`."""
    pairs = list(zip(detail_energy(fake, rms=rms), detail_energy(real, rms=rms), strict=True))
    per_sample = sum((a - b).abs().mean([1, 2, 3]) for a, b in pairs) / max(len(pairs), 1)
    if weight is None:
        return per_sample.mean()
    weight = weight.to(per_sample)
    return (per_sample * weight).sum() / (weight > 0).sum().clamp_min(1)


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, data_range: float = 1.0,
         per_sample: bool = False) -> torch.Tensor:
    """Mean structural similarity of ``[B, C, H, W]`` images (Wang et al. 2004: Gaussian
    window, ``K1 = 0.01``, ``K2 = 0.03``), differentiable; windows stay inside the image.
    ``per_sample``: one value per image ``[B]``."""
    radius = min(int(3.5 * sigma + 0.5), (min(a.shape[-2:]) - 1) // 2)
    t = torch.arange(-radius, radius + 1, dtype=a.dtype, device=a.device)
    g = torch.exp(-t.square() / (2 * sigma**2))
    g = g / g.sum()

    def blur(x: torch.Tensor) -> torch.Tensor:  # separable, valid windows only
        return upfirdn2d(x, g)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a.square()
    var_b = blur(b * b) - mu_b.square()
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)
         / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2)))
    return s.mean([1, 2, 3]) if per_sample else s.mean()
