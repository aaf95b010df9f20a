"""Multiscale Fourier features: the only way the view enters the generator.

Feature j has a base frequency ``f_j`` (a 2-vector, cycles per view side at the zoom where its
bin is fully active) and a phase ``phi_j``:

- radii ``|f_j|`` are spread uniformly (``linspace``, deterministic) up to
  ``feature_bandwidth * R / (2 sqrt 2)`` (a fraction of the highest frequency the finest canvas
  represents on its diagonal); directions are random;
  features are sorted by radius and assigned round-robin to ``num_bins`` bins;
- bin k multiplies frequencies by ``2**(3k)``: in world units (cycles per scene unit) feature j
  has frequency ``F_j = f_j * 2**(3 k_j)``; at zoom l it has ``F_j 2**-l`` cycles per view side,
  which is ``f_j`` when ``l = 3k``;
- bin k's amplitude fades in with zoom: ``a_k(l) = clamp(l - 3k + 1, 0, 1)`` (bin 0 always on),
  so fine detail is only switched on when the view is small enough to show it;
- feature j is injected at the first canvas whose rate represents ``|f_j|`` without aliasing even
  on the diagonal: ``|f_j| <= rate_i / (2 sqrt 2)``. The canvas at layer 0 mixes its features
  with a learned matrix; later canvases receive them as raw sinusoid channels after their
  nonlinearity.
- *Our addition:* while a bin fades in (``3k - 1 < l < 3k``) its per-view frequency is between
  ``f_j`` and ``2 f_j``; a gate ``g = clamp((rate/2 - max(|fx|, |fy|)) / (rate/2 - rate/(2 sqrt
  2)), 0, 1)`` on the per-view frequency fades out any component that would approach the
  canvas's Nyquist frequency, so no feature aliases at any zoom.

A feature's value at world position p is ``a g sin(2 pi F.p + phi)``. ``F.p`` is evaluated as
``F.c + (F 2**-l).u`` with c the view centre (its fractional part in float64) and u the canvas
offsets from ``geometry.canvas_offsets``, so precision does not degrade with zoom. The wave
separates into a row and a column factor, so only those are evaluated with ``sin``/``cos``.

The split of features over canvases is documented per preset by :func:`feature_split`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..geometry import canvas_offsets
from .config import GeneratorConfig
from .schedule import LayerSpec

OCTAVES_PER_BIN = 3


def bin_amplitude(zoom: torch.Tensor, k: int) -> torch.Tensor:
    """``a_k(l) = clamp(l - 3k + 1, 0, 1)``; bin 0 is always on."""
    if k == 0:
        return torch.ones_like(zoom)
    return (zoom - OCTAVES_PER_BIN * k + 1).clamp(0, 1)


class FourierFeatures(nn.Module):
    """Deterministic multiscale features; ``forward(spec, layer, zoom, cy, cx)`` evaluates the
    ones injected at canvas ``layer`` for a batch of views: ``[B, n_layer, size, size]``."""

    def __init__(self, cfg: GeneratorConfig, specs: list[LayerSpec], seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        n = cfg.num_features
        f_max = cfg.feature_bandwidth * cfg.resolution / (2 * math.sqrt(2))
        radii = torch.linspace(f_max / n, f_max, n, dtype=torch.float64)
        angles = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
        freqs = torch.stack([radii * torch.sin(angles), radii * torch.cos(angles)], 1)  # (fy, fx)
        phases = torch.rand(n, generator=g, dtype=torch.float64)  # in cycles
        bins = torch.arange(n) % cfg.num_bins
        limits = torch.tensor([s.rate / (2 * math.sqrt(2)) for s in specs], dtype=torch.float64)
        layer = torch.searchsorted(limits, radii * (1 - 1e-9))  # first canvas with limit >= |f|
        self.num_bins = cfg.num_bins
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)
        self.register_buffer("bins", bins)
        self.register_buffer("layer", layer)
        # feature indices of each canvas, as plain lists (no data-dependent op when traced)
        self._indices = [(layer == i).nonzero().flatten().tolist() for i in range(len(specs))]
        self.counts = [len(i) for i in self._indices]
        self._cache: dict[tuple, tuple] = {}

    def forward(
        self, spec: LayerSpec, index: int, zoom: torch.Tensor, cy: torch.Tensor,
        cx: torch.Tensor, dtype: torch.dtype = torch.float32, out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Features of canvas ``index`` evaluated on ``spec`` (a possibly widened canvas), written
        into ``out`` (``[B, n, size, size]``, any strides, e.g. channels of a larger buffer)
        when given.

        A feature is a plane wave, so it separates along the axes:
        ``sin(a + b + c) = sin(a + b) cos(c) + cos(a + b) sin(c)`` with ``a`` the phase, ``b``
        and ``c`` the row and column terms. The sines and cosines are evaluated on the rows and
        columns only (in float64), and the canvas is two broadcast products: no per-sample
        argument tensor, no per-sample ``sin``."""
        B, S = zoom.shape[0], spec.size
        world, phi, bins = self._canvas_features(index)
        n = world.shape[0]
        if n == 0:
            empty = torch.empty(B, 0, S, S, dtype=dtype, device=zoom.device)
            return empty if out is None else out
        zoom64 = zoom.to(torch.float64)
        centre = torch.stack([cy, cx], 1).to(torch.float64)  # [B, 2]
        phase = torch.frac(centre @ world.T + phi)  # [B, n] cycles, exact in float64
        per_view = world[None] * torch.exp2(-zoom64)[:, None, None]  # [B, n, 2] cycles/view
        amp = torch.stack([bin_amplitude(zoom64, b) for b in range(self.num_bins)], 1)[:, bins]
        nyq, safe = spec.rate / 2, spec.rate / (2 * math.sqrt(2))
        gate = ((nyq - per_view.abs().amax(-1)) / (nyq - safe)).clamp(0, 1)
        u = canvas_offsets(spec.rate, spec.margin, dtype=torch.float64, device=zoom.device)
        # [B, S, n] (features fastest, as in a channels-last canvas), viewed as [B, n, S, 1]
        # (rows) and [B, n, 1, S] (columns) for the broadcast products.
        u = u[None, :, None]
        rows = 2 * math.pi * (phase[:, None] + per_view[:, None, :, 0] * u)
        cols = 2 * math.pi * per_view[:, None, :, 1] * u
        scale = (amp * gate)[:, None]
        sin_r, cos_r = ((scale * v).to(dtype).permute(0, 2, 1)[..., None]
                        for v in (rows.sin(), rows.cos()))
        sin_c, cos_c = (v.to(dtype).permute(0, 2, 1)[:, :, None] for v in (cols.sin(), cols.cos()))
        if out is None:
            return torch.addcmul(sin_r * cos_c, cos_r, sin_c)
        torch.mul(sin_r, cos_c, out=out)
        return out.addcmul_(cos_r, sin_c)

    def _canvas_features(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """World frequencies ``[n, 2]``, phases ``[n]`` and bins of the features of canvas
        ``index`` (cached per device)."""
        key = (index, self.freqs.device, self.freqs.dtype)
        hit = None if torch.compiler.is_compiling() else self._cache.get(key)
        if hit is None:
            sel = self._indices[index]
            k = self.bins[sel]
            world = self.freqs[sel] * torch.exp2(OCTAVES_PER_BIN * k.to(torch.float64))[:, None]
            hit = (world, self.phases[sel], k)
            if not torch.compiler.is_compiling():
                self._cache[key] = hit
        return hit


def feature_split(cfg: GeneratorConfig, specs: list[LayerSpec]) -> dict[int, float]:
    """Fraction of the features injected at each canvas size (e.g. ``{36: 0.06, ...}``)."""
    ff = FourierFeatures(cfg, specs)
    split: dict[int, float] = {}
    for spec, count in zip(specs, ff.counts, strict=True):
        split[spec.size] = split.get(spec.size, 0.0) + count / cfg.num_features
    return split
