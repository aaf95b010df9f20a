"""Adversarial losses: non-saturating logistic GAN loss and the (lazy) R1 penalty.

- discriminator: ``softplus(D(fake)) + softplus(-D(real))``;
- generator: ``softplus(-D(fake))`` (non-saturating);
- R1: ``gamma / 2 * E ||grad_x D(real)||^2``, evaluated every ``interval`` steps and scaled by
  ``interval`` (lazy regularisation) so its average strength does not depend on the interval.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake_logits).mean()


def r1_penalty(real: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """``E ||grad_x D(x)||^2`` over the batch; ``real`` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().sum([1, 2, 3]).mean()
