"""The mapping network: latent ``z`` -> intermediate latent ``w``.

``w = MLP(z / rms(z))`` with leaky-ReLU layers at a reduced learning rate (``lr_mul``); a running
average ``w_avg`` (updated while training) supports the truncation trick
``w' = w_avg + psi (w - w_avg)``.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from .layers import EqualizedLinear


class MappingNetwork(nn.Module):
    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.998) -> None:
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, activation="lrelu", lr_mul=lr_mul)
            for a, b in itertools.pairwise(dims)
        )
        self.z_dim, self.w_dim, self.w_avg_beta = z_dim, w_dim, w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, psi: float = 1.0, update_w_avg: bool = False):
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [B, {self.z_dim}], got {tuple(z.shape)}")
        x = z * (z.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.lerp_(x.detach().mean(0), 1 - self.w_avg_beta)
        if psi != 1:
            x = self.w_avg.lerp(x, psi)
        return x
