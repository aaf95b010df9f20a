"""Typed, documented configurations and the presets ``tiny``, ``small``, ``paper6``, ``paper8``.

The same dataclasses drive the CLI, the napari widgets and the checkpoint's JSON
(``to_dict``/``from_dict`` round-trip exactly; unknown keys are an error, so a checkpoint from
an incompatible version fails loudly instead of silently misbehaving).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class GeneratorConfig:
    """The generator: a mapping network and an alias-free synthesis network of views."""

    resolution: int = 256
    """Output pixels per view side (R): one rendered view is R x R."""
    channels: int = 3
    """Image channels (1 for single-channel sources, 3 for RGB)."""
    octaves: int = 8
    """Zoom range of the scale space: views from zoom 0 (whole scene) to zoom ``octaves``."""
    z_dim: int = 512
    """Latent size; one latent is one scale space (scene)."""
    w_dim: int = 512
    """Intermediate latent size (output of the mapping network)."""
    mapping_layers: int = 2
    """Fully connected layers of the mapping network."""
    num_layers: int = 14
    """Synthesis layers, excluding the input layer and ToRGB."""
    num_critical: int = 2
    """The last layers that are critically sampled (cutoff at Nyquist, no margin)."""
    first_cutoff: float = 2.0
    """Cutoff of the input layer, in cycles per view side."""
    first_stopband: float = 2**2.1
    """Stopband of the input layer, in cycles per view side."""
    last_stopband_rel: float = 2**0.3
    """Stopband of the last layer relative to its cutoff (resolution / 2)."""
    margin: int = 10
    """Extra samples on each side of every non-critical layer's canvas."""
    channel_base: int = 16384
    """Channels of a layer = min(channel_base / 2 / cutoff, channel_max)."""
    channel_max: int = 256
    """Upper bound on the channels of a layer."""
    filter_size: int = 6
    """Low-pass taps per unit of up-/down-sampling factor (taps = filter_size * factor)."""
    lrelu_upsampling: int = 2
    """Rate of the nonlinearity relative to the layer's (2 = alias-free leaky ReLU)."""
    conv_kernel: int = 3
    """Kernel size of the modulated convolutions (ToRGB uses 1)."""
    conv_clamp: float | None = 256.0
    """Clamp of the pre-activation values (numerical safety with mixed precision)."""
    num_features: int = 1024
    """Fourier features of the input, distributed over the layers that can represent them."""
    num_bins: int = 2
    """Frequency bins of the features; bin k is multiplied by 2**(3k) and gated by zoom."""
    feature_bandwidth: float = 0.6
    """Highest feature frequency relative to what the finest canvas represents on its diagonal,
    ``R / (2 sqrt 2)``. With 0.6 about 1/6 of the features land on the largest canvases (the
    published models put about 18 % there); at 1.0 half of them would, and the convolution after
    the finest canvas would see several times more input channels."""
    radial_filters: bool = False
    """Radially symmetric (jinc) down filters in the critically sampled layers."""
    output_scale: float = 0.25
    """Scale of the ToRGB output."""
    tile_margin: int = 16
    """Output pixels per side by which canvases are widened when rendering tiles, so that the
    border effects of the last (margin-free) layers fall outside the tile: adjacent tiles then
    meet without seams. Training uses the published canvases (no widening)."""

    def __post_init__(self) -> None:
        _check_positive(self, "resolution", "channels", "octaves", "z_dim", "w_dim",
                        "num_layers", "channel_base", "channel_max", "filter_size",
                        "lrelu_upsampling", "conv_kernel", "num_features", "num_bins")
        if self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two, got {self.resolution}")
        if not 0 <= self.num_critical < self.num_layers:
            raise ValueError(f"num_critical must be in [0, num_layers), got {self.num_critical}")
        if self.first_cutoff >= self.resolution / 2:
            raise ValueError("first_cutoff must be below the output Nyquist frequency")


@dataclass(frozen=True)
class DiscriminatorConfig:
    """A residual discriminator of R x R patches, optionally conditioned on the zoom."""

    resolution: int = 256
    channels: int = 3
    channel_base: int = 16384
    """Channels at resolution r = min(channel_base / r, channel_max)."""
    channel_max: int = 256
    mbstd_group: int = 4
    """Minibatch standard-deviation group size."""
    mbstd_channels: int = 1
    conv_clamp: float | None = 256.0
    scale_conditioning: bool = True
    """Condition on the view's zoom (projection discriminator)."""
    octaves: int = 8
    """Zoom range the conditioning embeds (zoom / octaves in [0, 1])."""

    def __post_init__(self) -> None:
        _check_positive(self, "resolution", "channels", "channel_base", "channel_max",
                        "mbstd_group", "octaves")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and losses."""

    batch: int = 32
    g_lr: float = 0.0025
    d_lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 2.0
    r1_interval: int = 16
    """Lazy R1: the penalty runs every r1_interval steps, scaled by the interval."""
    ema_kimg: float = 10.0
    """Half-life of the generator EMA, in thousands of images."""
    ema_rampup: float = 0.05
    """Early in a run the EMA half-life is at most this fraction of the images shown so far
    (0 = off), so that short runs render a recent generator, not its random start."""
    consistency_weight: float = 4.0
    """Weight of the scale-consistency loss (lambda)."""
    consistency_interval: int = 1
    """Steps between evaluations of the consistency loss (it costs a second generator pass)."""
    warmup_kimg: float = 100.0
    """Octave schedule: coarse-first warm-up, then uniform."""
    skew_kimg: float = 400.0
    """Octave schedule: after warm-up, skew towards fine octaves over this many kimg."""
    boost_first: float = 3.0
    boost_last: float = 2.0
    checkpoint_every: int = 500
    """Steps between checkpoints (and at the end of the run)."""
    positions: str = "auto"
    """``"known"``: one scene whose patches' views are known, so the generator's render of each
    real patch's view is also compared with the patch (reconstruction loss, issue 10);
    ``"unknown"``: adversarial and consistency losses only (the published behaviour);
    ``"auto"``: known for one image, unknown for several (resolved when a run is created; the
    run's config records the resolved mode)."""
    reconstruction_weight: float = 10.0
    """Weight of the reconstruction loss (``positions="known"``)."""
    reconstruction_octaves: tuple[float, ...] = ()
    """Per-octave factors of ``reconstruction_weight`` (octave 0 first; octaves past the end
    use the last factor; empty = 1 everywhere)."""
    extra_octaves: int = 0
    """Octaves beyond the data: the generator's finest ``extra_octaves`` octaves have no real
    patches; their views are trained by the adversarial loss against the finest data octave
    and by the scale-consistency loss (issue 10)."""

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if not self.reconstruction_weight >= 0:
            raise ValueError(f"reconstruction_weight must be >= 0, got "
                             f"{self.reconstruction_weight!r}")
        factors = self.reconstruction_octaves
        if not isinstance(factors, tuple | list) or not all(
                isinstance(f, int | float) and not isinstance(f, bool) and f >= 0
                for f in factors):
            raise ValueError(f"reconstruction_octaves must be a list of numbers >= 0, got "
                             f"{factors!r}")
        object.__setattr__(self, "reconstruction_octaves", tuple(float(f) for f in factors))
        if (isinstance(self.extra_octaves, bool) or not isinstance(self.extra_octaves, int)
                or self.extra_octaves < 0):
            raise ValueError(f"extra_octaves must be an integer >= 0, got "
                             f"{self.extra_octaves!r}")

    def reconstruction_factor(self, octave: int) -> float:
        """The factor of ``reconstruction_weight`` at data octave ``octave``."""
        f = self.reconstruction_octaves
        return 1.0 if not f else f[min(int(octave), len(f) - 1)]


POSITIONS = ("auto", "known", "unknown")


@dataclass(frozen=True)
class Preset:
    """A named combination of generator, discriminator and training configs."""

    name: str
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    ms_per_view: str = ""
    """Measured render time per view on the reference machine (see docs/benchmarks.md)."""

    def __post_init__(self) -> None:
        if self.train.extra_octaves >= self.generator.octaves:
            raise ValueError(f"extra_octaves ({self.train.extra_octaves}) must leave at least "
                             f"one octave with data (the generator has "
                             f"{self.generator.octaves} octaves)")

    @property
    def data_octaves(self) -> int:
        """Octaves trained on real patches: the generator's minus the extra ones."""
        return self.generator.octaves - self.train.extra_octaves


def _check_positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (isinstance(value, int | float) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return json_ready(dataclasses.asdict(cfg))


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"non-finite value {value} cannot be stored")
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config dataclass; unknown keys raise ``ValueError`` naming them."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {unknown}")
    kwargs = {}
    for name, value in data.items():
        nested = _NESTED.get(cls.__name__, {})
        if name in nested:
            value = from_dict(nested[name], value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_NESTED: dict[str, dict[str, type]] = {
    "Preset": {
        "generator": GeneratorConfig,
        "discriminator": DiscriminatorConfig,
        "train": TrainConfig,
    }
}


def _preset(name: str, resolution: int, octaves: int, g: dict, d: dict, t: dict,
            ms: str = "") -> Preset:
    return Preset(
        name=name,
        generator=GeneratorConfig(resolution=resolution, octaves=octaves, **g),
        discriminator=DiscriminatorConfig(resolution=resolution, octaves=octaves, **d),
        train=TrainConfig(**t),
        ms_per_view=ms,
    )


PRESETS: dict[str, Preset] = {
    # CPU tests: trains a few hundred steps in minutes on two cores.
    "tiny": _preset(
        "tiny", 32, 3,
        g=dict(z_dim=32, w_dim=32, mapping_layers=2, num_layers=6, num_critical=1,
               channel_base=512, channel_max=32, num_features=64, num_bins=1, margin=4,
               first_cutoff=2.0, filter_size=4, tile_margin=8),
        d=dict(channel_base=512, channel_max=32, mbstd_group=4),
        t=dict(batch=8, g_lr=0.002, d_lr=0.002, r1_gamma=1.0, r1_interval=4, ema_kimg=0.5,
               warmup_kimg=0.5, skew_kimg=2.0, checkpoint_every=50),
    ),
    # CPU demo: 64 px views, 4 octaves, trains in tens of minutes on a laptop.
    "small": _preset(
        "small", 64, 4,
        g=dict(z_dim=64, w_dim=64, mapping_layers=2, num_layers=8, num_critical=2,
               channel_base=2048, channel_max=64, num_features=192, num_bins=1, margin=6,
               filter_size=4, tile_margin=8),
        d=dict(channel_base=2048, channel_max=64),
        t=dict(batch=8, ema_kimg=1.0, warmup_kimg=1.0, skew_kimg=4.0, r1_interval=8,
               consistency_interval=2, checkpoint_every=100),
    ),
    # Sized like the published models (256 px views).
    "paper6": _preset(
        "paper6", 256, 6,
        g=dict(num_features=1024, num_bins=2, channel_base=16384, channel_max=256),
        d=dict(channel_base=16384, channel_max=256),
        t=dict(),
    ),
    "paper8": _preset(
        "paper8", 256, 8,
        g=dict(num_features=1536, num_bins=3, channel_base=32768, channel_max=320),
        d=dict(channel_base=32768, channel_max=320),
        t=dict(),
    ),
}


def get_preset(name: str, **overrides: Any) -> Preset:
    """A preset by name, with generator/discriminator/train fields overridden by name.

    ``get_preset("small", octaves=3, batch=8)``: a key is looked up in the generator, the
    discriminator and the train config (all that have it are changed); unknown keys raise.
    """
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    p = PRESETS[name]
    parts = {"generator": p.generator, "discriminator": p.discriminator, "train": p.train}
    used: set[str] = set()
    for key, cfg in parts.items():
        names = {f.name for f in fields(cfg)}
        mine = {k: v for k, v in overrides.items() if k in names}
        used |= set(mine)
        parts[key] = dataclasses.replace(cfg, **mine)
    unknown = sorted(set(overrides) - used)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown}")
    return dataclasses.replace(p, **parts)


def bins_for_octaves(octaves: int) -> int:
    """Feature bins that keep the generator's input busy at every zoom ``0..octaves``: bin k's
    frequencies are ``8**k`` times bin 0's and switch on from zoom ``3k - 1``, so one bin per
    three zoom levels, ``ceil((octaves + 1) / 3)``. (With one bin a 64-px `small` generator's
    features fall under one cycle per view from zoom 4 on and its finest zooms stay flat:
    docs/evaluation.md, "Collections" and "Zooming past the data".)"""
    return -(-(int(octaves) + 1) // 3)


def with_feature_bins(name: str, overrides: dict) -> dict:
    """``overrides`` plus ``num_bins`` for their octaves (:func:`bins_for_octaves`, never fewer
    than the preset's) unless they set it: what ``train`` uses for runs whose zoom range the
    preset was not sized for (octaves past the data, collections)."""
    if "num_bins" in overrides:
        return overrides
    base = get_preset(name)
    octaves = overrides.get("octaves", base.generator.octaves)
    return {**overrides, "num_bins": max(base.generator.num_bins, bins_for_octaves(octaves))}
