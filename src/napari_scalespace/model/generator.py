"""The generator: renders any batch of views ``(zoom, cy, cx)`` of the scale space of ``z``.

``Generator(cfg)(z, zoom, cy, cx)`` -> ``[B, channels, R, R]``: the mapping network turns ``z``
into ``w``; the input canvas is the Fourier features of canvas 0 mixed by a learned matrix; the
synthesis layers refine it canvas by canvas (appending the features assigned to each canvas),
and ToRGB gives the image. With a spatial memory (``memory_channels > 0``, one scene with
known positions), the canvases listed in ``memory_canvases`` also receive the memory read over
their pixels (:mod:`.memory`) as extra channels: mixed with the features at the input canvas,
appended after the features elsewhere; with ``memory_output`` its first ``channels`` channels,
read over the output pixels, are added to the image (a base image the network refines).
Nothing but the features and the memory depends on the
view, and both are functions of world position and pixel footprint, so two overlapping views of
the same ``z`` render the same scene where they overlap.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..geometry import View
from .config import GeneratorConfig
from .fourier import FourierFeatures
from .mapping import MappingNetwork
from .memory import SpatialMemory
from .schedule import layer_specs, transitions
from .synthesis import SynthesisLayer, stage


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig, impl: str = "auto", feature_seed: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        self.specs = layer_specs(cfg)
        self.transitions = transitions(cfg)
        self.mapping = MappingNetwork(cfg.z_dim, cfg.w_dim, cfg.mapping_layers)
        self.features = FourierFeatures(cfg, self.specs, seed=feature_seed)
        counts = self.features.counts
        if counts[0] == 0:
            raise ValueError("no Fourier feature is low enough for the input canvas: "
                             "raise num_features")
        self.memory = None
        if cfg.memory_channels:
            self.memory = SpatialMemory(cfg.memory_channels, cfg.memory_grid_levels(),
                                        cfg.memory_cells, tuple(cfg.memory_extent),
                                        fine_levels=cfg.output_levels(),
                                        fine_channels=cfg.channels)
        # channels appended at each canvas: its features, then the memory where it is read
        self.appended = [n + self._memory_channels(i) for i, n in enumerate(counts)]
        self.input_weight = nn.Parameter(torch.randn(self.specs[0].channels, self.appended[0]))
        layers = []
        channels = self.specs[0].channels
        for t in self.transitions:
            prev = self.specs[t.index - 1]
            cur = self.specs[-1] if t.is_torgb else self.specs[t.index]
            layers.append(SynthesisLayer(cfg, prev, cur, t, channels, impl=impl))
            if not t.is_torgb:
                channels = cur.channels + self.appended[t.index]
        self.layers = nn.ModuleList(layers)
        self._plans: dict[int, tuple] = {0: (self.specs, self.transitions)}

    def _memory_channels(self, canvas: int) -> int:
        """Memory channels read at ``canvas`` (0 where the memory is not read)."""
        if self.memory is None or canvas not in self.cfg.memory_canvases:
            return 0
        return self.memory.channels

    def plan(self, extra: int) -> tuple[list, list]:
        """(canvases, transitions) for canvases widened by ``extra`` output pixels per side."""
        if extra not in self._plans:
            self._plans[extra] = (layer_specs(self.cfg, extra), transitions(self.cfg, extra))
        return self._plans[extra]

    def view_bytes(self, extra: int = 0) -> int:
        """A rough bound of the activation memory one view needs in a forward: three times
        the largest up-sampled tensor of a filtered leaky ReLU (its input, itself and the
        down-sampling pass's half-way result)."""
        specs, plan = self.plan(extra)
        itemsize = self.input_weight.element_size()
        largest = 0
        for layer, t in zip(self.layers, plan, strict=True):
            side = specs[t.index - 1].size * t.up + max(t.padding)
            largest = max(largest, layer.out_channels * side * side)
        return 3 * largest * itemsize

    @property
    def impl(self) -> str:
        return self.layers[0].impl

    def set_impl(self, impl: str, conv_form: str | None = None) -> None:
        """Switch the ops implementation (and, for benchmarks, the modulated convolution's
        form: "auto" or the published "grouped") of every layer."""
        for layer in self.layers:
            layer.impl = impl
            if conv_form is not None:
                layer.conv_form = conv_form

    def forward(
        self,
        z: torch.Tensor,
        zoom: torch.Tensor,
        cy: torch.Tensor,
        cx: torch.Tensor,
        psi: float = 1.0,
        update_emas: bool = False,
        extra: int = 0,
    ) -> torch.Tensor:
        """Render ``[B, C, R, R]``; with ``extra > 0`` every canvas is widened by ``extra``
        output pixels per side and the central R x R is returned (seamless tiles)."""
        B = z.shape[0]
        specs, plan = self.plan(int(extra))
        zoom, cy, cx = (torch.as_tensor(v, dtype=torch.float32, device=z.device).reshape(-1)
                        .expand(B) for v in (zoom, cy, cx))
        with stage("mapping"):  # stage labels for torch.profiler
            w = self.mapping(z, psi=psi, update_w_avg=update_emas)
        with stage("fourier_features"):
            feats = self.features(specs[0], 0, zoom, cy, cx)
            if self._memory_channels(0):
                feats = torch.cat([feats, self._read_memory(specs[0], zoom, cy, cx)], 1)
            weight = self.input_weight / math.sqrt(feats.shape[1])
            x = torch.nn.functional.conv2d(feats, weight[:, :, None, None])
        R, base = self.cfg.resolution, None
        for layer, t in zip(self.layers, plan, strict=True):
            x = layer(x, w, t.padding, update_emas=update_emas)
            if not t.is_torgb and self.appended[t.index]:
                spec = specs[t.index]
                mem = (self._read_memory(spec, zoom, cy, cx, dtype=x.dtype)
                       if self._memory_channels(t.index) else None)
                if mem is not None and base is None and spec.rate == R:
                    base = self._output_base(mem, spec.margin)
                with stage("fourier_features"):
                    x = self._append_features(x, spec, t.index, zoom, cy, cx, mem)
        if extra:
            m = (x.shape[-1] - R) // 2
            x = x[:, :, m:m + R, m:m + R]
        x = x * self.cfg.output_scale
        if self.memory is not None and self.cfg.memory_output:  # the base image
            if base is None:
                base = self._read_memory_channels(R, zoom, cy, cx, self.cfg.channels, x.dtype)
            x = x + base
        return x

    def _output_base(self, mem: torch.Tensor, margin: int) -> torch.Tensor | None:
        """The output's base image from a memory read of a canvas at the output's rate: its
        central ``R x R`` samples are the view's pixels (``None`` without ``memory_output``)."""
        if not self.cfg.memory_output:
            return None
        R, C = self.cfg.resolution, self.cfg.channels
        return mem[:, :C, margin:margin + R, margin:margin + R]

    def _read_memory(self, spec, zoom, cy, cx, dtype=torch.float32) -> torch.Tensor:
        with stage("memory"):
            return self.memory(spec.rate, spec.margin, zoom, cy, cx, dtype=dtype)

    def _read_memory_channels(self, rate, zoom, cy, cx, channels, dtype) -> torch.Tensor:
        """The first ``channels`` memory channels over the view's ``rate x rate`` pixels."""
        with stage("memory"):
            return self.memory(rate, 0, zoom, cy, cx, dtype=dtype, channels=channels)

    def _append_features(self, x: torch.Tensor, spec, index: int, zoom, cy, cx,
                         mem: torch.Tensor | None = None) -> torch.Tensor:
        """``cat([x, features, mem], 1)`` channels-last (``mem``: the memory's read of this
        canvas, where it is read), the features written in place into their channels of the
        result (no separate feature tensor, no layout change)."""
        C, n = x.shape[1], self.features.counts[index]
        if torch.compiler.is_compiling():  # traceable form
            f = self.features(spec, index, zoom, cy, cx, dtype=x.dtype)
            parts = [x, f] if mem is None else [x, f, mem]
            return torch.cat(parts, 1).contiguous(memory_format=torch.channels_last)
        out = torch.empty(x.shape[0], C + self.appended[index], *x.shape[2:], dtype=x.dtype,
                          device=x.device, memory_format=torch.channels_last)
        if n:
            self.features(spec, index, zoom, cy, cx, dtype=x.dtype, out=out[:, C:C + n])
        if mem is not None:
            out[:, C + n:].copy_(mem)
        out[:, :C].copy_(x)  # ``out`` takes x's autograd history here
        return out

    @torch.inference_mode()
    def render(self, views: list[View], seed: int | None = 0, z: torch.Tensor | None = None,
               psi: float = 1.0, extra: int = 0) -> torch.Tensor:
        """Render views (all of one scale space) to ``[len(views), C, R, R]`` in [-1, 1]-ish."""
        device = self.input_weight.device
        if z is None:
            z = latent(self.cfg.z_dim, seed, device)
        z = z.reshape(1, -1).expand(len(views), -1)
        zoom = torch.tensor([v.zoom for v in views], device=device)
        cy = torch.tensor([v.cy for v in views], device=device)
        cx = torch.tensor([v.cx for v in views], device=device)
        return self(z, zoom, cy, cx, psi=psi, extra=extra)


def latent(z_dim: int, seed: int | None, device: torch.device | str = "cpu") -> torch.Tensor:
    """The latent of scale space ``seed`` (``None``: the fixed latent of pseudo-reconstruction,
    all zeros... normalised to the mean direction)."""
    if seed is None:
        return torch.zeros(z_dim, device=device)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(z_dim, generator=g).to(device)
