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
    memory_channels: int = 0
    """Channels of the spatial memory (:mod:`.memory`): learnable grids in scene coordinates
    read over each canvas pixel's footprint, for one scene with known positions. 0: none (the
    published generator; required for several scenes)."""
    memory_levels: int = 0
    """Grids of the memory; level k has ``memory_cells * 2**k`` cells per scene unit. 0: one
    per data octave plus one, up to ``MEMORY_MAX_CELLS`` cells per scene unit
    (:meth:`memory_grid_levels`; a run records the number it used)."""
    memory_cells: int = 16
    """Cells per scene unit of the memory's coarsest level."""
    memory_canvases: tuple[int, ...] = (0,)
    """Canvases that receive the memory as extra channels (0 = the input canvas, mixed with
    the features; others appended after their features)."""
    memory_extent: tuple[float, float] = (1.0, 1.0)
    """Scene extent (y, x) in scene units the memory covers (the image's, set when a run is
    created)."""
    memory_output: bool = False
    """Also add the memory's first ``channels`` channels, read over the output pixels, to the
    image: the memory (started from the image pyramid) is then a band-limited base image and
    the synthesis network renders what it lacks (a residual)."""
    memory_output_levels: int = 0
    """Levels past the memory's finest (each twice as fine again) that hold only the image's
    ``channels`` channels: they add into the memory's first channels, so the base image
    carries detail down to their cells, at ``channels / memory_channels`` of the bytes a full
    level would take (ignored without ``memory_output``)."""

    def __post_init__(self) -> None:
        c = _Checker(self, "generator")
        c.power_of_two("resolution", 4, 4096)
        c.integer("channels", 1, 4)
        c.integer("octaves", 1, MAX_OCTAVES)
        for name in ("z_dim", "w_dim", "channel_base", "channel_max", "num_features"):
            c.integer(name, 1, 1 << 20)
        c.integer("mapping_layers", 1, 64)
        c.integer("num_layers", 1, 64)
        c.integer("num_critical", 0, self.num_layers - 1)
        c.number("first_cutoff", 0, self.resolution / 2, lo_open=True, hi_open=True)
        c.number("first_stopband", self.first_cutoff, 1e6, lo_open=True)
        c.number("last_stopband_rel", 1, 16)
        c.integer("margin", 0, 1024)
        c.integer("filter_size", 1, 64)
        c.integer("lrelu_upsampling", 1, 16)
        c.integer("conv_kernel", 1, 15, odd=True)
        c.number("conv_clamp", 0, 1e9, lo_open=True, none_ok=True)
        c.integer("num_bins", 1, 16)
        c.number("feature_bandwidth", 0, 4, lo_open=True)
        c.boolean("radial_filters")
        c.number("output_scale", 0, 1e6, lo_open=True)
        c.integer("tile_margin", 0, 1024)
        c.integer("memory_channels", 0, 256)
        c.integer("memory_levels", 0, 16)
        c.integer("memory_cells", 1, 1 << 16)
        canvases = self.memory_canvases
        if not isinstance(canvases, tuple | list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= self.num_layers
                for i in canvases):
            raise ValueError(f"generator.memory_canvases must be a list of canvas indices in "
                             f"[0, {self.num_layers}], got {canvases!r}")
        object.__setattr__(self, "memory_canvases", tuple(sorted(set(canvases))))
        extent = self.memory_extent
        if (not isinstance(extent, tuple | list) or len(extent) != 2 or not all(
                _is_number(e) and 0 < e <= 1e6 for e in extent)):
            raise ValueError(f"generator.memory_extent must be two positive numbers (y, x), "
                             f"got {extent!r}")
        object.__setattr__(self, "memory_extent", tuple(float(e) for e in extent))
        c.boolean("memory_output")
        if self.memory_output and 0 < self.memory_channels < self.channels:
            raise ValueError(f"generator.memory_output needs at least channels = "
                             f"{self.channels} memory channels, got {self.memory_channels}")
        c.integer("memory_output_levels", 0, 4)
        if self.memory_channels:
            fine = self.output_levels()
            cells = self.memory_cells * 2 ** (self.memory_grid_levels() - 1 + fine)
            width = self.channels if fine else self.memory_channels
            values = width * math.prod(math.ceil(e * cells) for e in extent)
            if values > 1 << 28:
                raise ValueError(f"generator.memory: the finest level alone would hold "
                                 f"{values:,} values (its channels x {cells} cells per scene "
                                 f"unit over the extent); at most {1 << 28:,}: fewer levels, "
                                 f"cells or channels")

    def output_levels(self) -> int:
        """The memory's levels that hold only the image's channels: ``memory_output_levels``
        where the memory adds to the output (``memory_output``), else none."""
        return self.memory_output_levels if self.memory_output and self.memory_channels else 0

    def memory_grid_levels(self, data_octaves: int | None = None) -> int:
        """The memory's levels: ``memory_levels``, or for 0 one per data octave plus one
        (default: every octave), as long as the finest has at most ``MEMORY_MAX_CELLS`` cells
        per scene unit: with ``memory_cells = R / 4`` the finest grid then has a cell per 4
        image pixels."""
        if self.memory_levels:
            return self.memory_levels
        octaves = self.octaves if data_octaves is None else data_octaves
        cap = 1 + max(0, math.floor(math.log2(MEMORY_MAX_CELLS / self.memory_cells)))
        return max(1, min(int(octaves) + 1, cap))


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
        c = _Checker(self, "discriminator")
        c.power_of_two("resolution", 4, 4096)
        c.integer("channels", 1, 4)
        c.integer("channel_base", 1, 1 << 20)
        c.integer("channel_max", 1, 1 << 20)
        c.integer("mbstd_group", 1, 1024)
        c.integer("mbstd_channels", 0, 1024)
        c.number("conv_clamp", 0, 1e9, lo_open=True, none_ok=True)
        c.boolean("scale_conditioning")
        c.integer("octaves", 1, MAX_OCTAVES)


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
    warmup_fraction: float = 0.1
    """For a run of planned length (steps, or a time limit): the warm-up lasts at most this
    fraction of it (0 = ``warmup_kimg`` whatever the length)."""
    skew_fraction: float = 0.4
    """For a run of planned length: the skew lasts at most this fraction of it (0 = off)."""
    checkpoint_every: int = 500
    """Steps between checkpoints (and at the end of the run)."""
    positions: str = "auto"
    """``"known"``: one scene whose patches' views are known, so the generator's render of each
    real patch's view is also compared with the patch (reconstruction loss);
    ``"unknown"``: adversarial and consistency losses only (the published behaviour);
    ``"auto"``: known for one image, unknown for several (resolved when a run is created; the
    run's config records the resolved mode)."""
    reconstruction_weight: float = 10.0
    """Weight of the reconstruction loss (``positions="known"``)."""
    reconstruction_octaves: tuple[float, ...] = ()
    """Per-octave factors of ``reconstruction_weight`` (octave 0 first; octaves past the end
    use the last factor; empty = 1 everywhere)."""
    reconstruction_lowpass: bool = False
    """With a spatial memory: compare each render with its patch at most at the memory's
    finest resolution (both averaged over blocks of the view pixels one finest cell covers,
    :func:`..geometry.pixels_per_cell`), so that the reconstruction asks for what the memory
    can hold and leaves finer detail to the detail and adversarial losses instead of blurring
    it."""
    detail_weight: float = 0.0
    """Weight of the detail loss (``positions="known"``, :func:`..train.losses.detail`): the
    local detail energy of each render against its patch's, so that uncertainty about where a
    detail is does not turn into blur."""
    detail_rms: bool = False
    """Local detail energy as the root mean square of a band over a block (weighs a sparse
    strong edge as gradient energy does) instead of its mean absolute value."""
    extra_octaves: int = 0
    """Octaves beyond the data: the generator's finest ``extra_octaves`` octaves have no real
    patches; their views are trained by the adversarial loss against the finest data octave
    and by the scale-consistency loss."""

    def __post_init__(self) -> None:
        c = _Checker(self, "train")
        c.integer("batch", 1, 1 << 16)
        c.number("g_lr", 0, 1, lo_open=True)
        c.number("d_lr", 0, 1, lo_open=True)
        betas = self.betas
        if (not isinstance(betas, tuple | list) or len(betas) != 2 or not all(
                _is_number(b) and 0 <= b < 1 for b in betas)):
            raise ValueError(f"train.betas must be two numbers in [0, 1), e.g. [0, 0.99], got "
                             f"{betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))
        c.number("r1_gamma", 0, 1e6)
        c.integer("r1_interval", 1, 1 << 20)
        c.number("ema_kimg", 0, 1e9)
        c.number("ema_rampup", 0, 1e6)
        c.number("consistency_weight", 0, 1e6)
        c.integer("consistency_interval", 1, 1 << 20)
        c.number("warmup_kimg", 0, 1e9)
        c.number("skew_kimg", 0, 1e9)
        c.number("boost_first", 1, 1e3)
        c.number("boost_last", 1, 1e3)
        c.number("warmup_fraction", 0, 1)
        c.number("skew_fraction", 0, 1)
        c.integer("checkpoint_every", 1, 1 << 30)
        if self.positions not in POSITIONS:
            raise ValueError(f"train.positions must be one of {POSITIONS}, got "
                             f"{self.positions!r}")
        c.number("reconstruction_weight", 0, 1e6)
        factors = self.reconstruction_octaves
        if not isinstance(factors, tuple | list) or not all(
                _is_number(f) and 0 <= f <= 1e6 for f in factors):
            raise ValueError(f"train.reconstruction_octaves must be a list of numbers in "
                             f"[0, 1e6], got {factors!r}")
        object.__setattr__(self, "reconstruction_octaves", tuple(float(f) for f in factors))
        c.boolean("reconstruction_lowpass")
        c.number("detail_weight", 0, 1e6)
        c.boolean("detail_rms")
        c.integer("extra_octaves", 0, MAX_OCTAVES - 1)

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
        for name, kind in (("name", str), ("ms_per_view", str), ("generator", GeneratorConfig),
                           ("discriminator", DiscriminatorConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"preset {name} must be a {kind.__name__}, got "
                                 f"{getattr(self, name)!r}")
        g, d = self.generator, self.discriminator
        for name in ("resolution", "channels", "octaves"):
            if getattr(g, name) != getattr(d, name):
                raise ValueError(f"generator.{name} ({getattr(g, name)}) and discriminator."
                                 f"{name} ({getattr(d, name)}) must be equal")
        if self.train.extra_octaves >= self.generator.octaves:
            raise ValueError(f"extra_octaves ({self.train.extra_octaves}) must leave at least "
                             f"one octave with data (the generator has "
                             f"{self.generator.octaves} octaves)")

    @property
    def data_octaves(self) -> int:
        """Octaves trained on real patches: the generator's minus the extra ones."""
        return self.generator.octaves - self.train.extra_octaves


MAX_OCTAVES = 20
"""Deepest zoom a run may have: views 2**-20 of the scene wide, whose pixels are still far above
the resolution of the float64 coordinates (and of any image a run could learn from)."""
MEMORY_MAX_CELLS = 512
"""Finest spatial-memory grid chosen automatically, in cells per scene unit (8 channels of
512^2 cells, and a colour level of 1024^2: 5.9 million values over all levels). A coarse view
reads every cell of every level, so a training step's cost grows with the finest grid: with
1024 (24 million values) a `small` step of an 8-octave run took 1.8 s against 1.1 s on the
4-octave sample (docs/benchmarks.md, "Whole slides")."""


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


class _Checker:
    """Range and type checks of one config's fields; each failure is one ``ValueError`` line
    naming the field (``train.batch``), the allowed values and the value given."""

    def __init__(self, cfg: object, section: str) -> None:
        self.cfg, self.section = cfg, section

    def _fail(self, name: str, allowed: str) -> None:
        raise ValueError(f"{self.section}.{name} must be {allowed}, got "
                         f"{getattr(self.cfg, name)!r}")

    def integer(self, name: str, lo: int, hi: int, odd: bool = False) -> None:
        v = getattr(self.cfg, name)
        if isinstance(v, float) and v.is_integer():  # 8.0 from a JSON file
            v = int(v)
            object.__setattr__(self.cfg, name, v)
        if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi) or (
                odd and v % 2 == 0):
            self._fail(name, f"an{' odd' if odd else ''} integer in [{lo}, {hi}]")

    def power_of_two(self, name: str, lo: int, hi: int) -> None:
        self.integer(name, lo, hi)
        v = getattr(self.cfg, name)
        if v & (v - 1):
            self._fail(name, f"a power of two in [{lo}, {hi}]")

    def number(self, name: str, lo: float, hi: float, lo_open: bool = False,
               hi_open: bool = False, none_ok: bool = False) -> None:
        v = getattr(self.cfg, name)
        if v is None and none_ok:
            return
        ok = _is_number(v) and (lo < v if lo_open else lo <= v) and (
            v < hi if hi_open else v <= hi)
        if not ok:
            interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            self._fail(name, f"a number in {interval}{' or null' if none_ok else ''}")
        object.__setattr__(self.cfg, name, float(v))

    def boolean(self, name: str) -> None:
        if not isinstance(getattr(self.cfg, name), bool):
            self._fail(name, "true or false")


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
               filter_size=4, tile_margin=8,
               # one image with known positions: a spatial memory of 8 channels, a cell per 4
               # image pixels at its finest level, read at the input and the first 64-px canvas
               # and added to the output as a base image (docs/evaluation.md, "Spatial
               # memory"), then a level of the image's 3 channels, a cell per 2 image pixels
               # (docs/evaluation.md, "The fidelity benchmark"); dropped for unknown positions
               memory_channels=8, memory_cells=16, memory_canvases=(0, 4), memory_output=True,
               memory_output_levels=1),
        d=dict(channel_base=2048, channel_max=64),
        # reconstruction at the memory's resolution, detail beyond it from the detail and
        # adversarial losses (docs/evaluation.md, "The fidelity benchmark")
        t=dict(batch=8, ema_kimg=1.0, warmup_kimg=1.0, skew_kimg=4.0, r1_interval=8,
               consistency_interval=2, checkpoint_every=100, reconstruction_lowpass=True,
               detail_weight=50.0, detail_rms=True),
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
    return with_overrides(PRESETS[name], **overrides)


def with_overrides(preset: Preset, **overrides: Any) -> Preset:
    """``preset`` with fields overridden by name, as :func:`get_preset` does (every config that
    has the field is changed; unknown keys raise; the result is validated)."""
    parts = {"generator": preset.generator, "discriminator": preset.discriminator,
             "train": preset.train}
    used: set[str] = set()
    for key, cfg in parts.items():
        names = {f.name for f in fields(cfg)}
        mine = {k: v for k, v in overrides.items() if k in names}
        used |= set(mine)
        parts[key] = dataclasses.replace(cfg, **mine)
    unknown = sorted(set(overrides) - used)
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown}")
    return dataclasses.replace(preset, **parts)


def bins_for_octaves(octaves: int) -> int:
    """Feature bins that keep the generator's input busy at every zoom ``0..octaves``: bin k's
    frequencies are ``8**k`` times bin 0's and switch on from zoom ``3k - 1``, so one bin per
    three zoom levels, ``ceil((octaves + 1) / 3)``. (With one bin a 64-px `small` generator's
    features fall under one cycle per view from zoom 4 on and its finest zooms stay flat:
    docs/evaluation.md, "Collections" and "Zooming past the data".)"""
    return -(-(int(octaves) + 1) // 3)


def run_preset(name: str, *, octaves: int | None = None, extra_octaves: int | None = None,
               channels: int | None = None, spanned_octaves: int | None = None,
               overrides: dict | None = None) -> Preset:
    """The preset of a new run from what a user chose; the command line and the Train widget
    both build it here.

    ``name`` with ``overrides`` (config fields by name); ``octaves`` with data (``None``: an
    ``octaves`` override, else for a collection the ``spanned_octaves`` its images span,
    else the preset's) plus ``extra_octaves`` past them (``None``: an ``extra_octaves``
    override, else 0); ``channels``: the images', unless overridden. Runs with extra octaves
    and collections (``spanned_octaves`` given) get feature bins for their octaves
    (:func:`with_feature_bins`)."""
    overrides = dict(overrides or {})
    base = get_preset(name)
    extra = overrides.get("extra_octaves", 0) if extra_octaves is None else extra_octaves
    if not isinstance(extra, int) or isinstance(extra, bool) or extra < 0:
        raise ValueError(f"extra octaves must be an integer >= 0, got {extra!r}")
    data = (octaves if octaves is not None else overrides.get("octaves")
            or spanned_octaves or base.generator.octaves)
    overrides.update(octaves=data + extra, extra_octaves=extra)
    if channels is not None:
        overrides.setdefault("channels", channels)
    if extra or spanned_octaves is not None:
        overrides = with_feature_bins(name, overrides)
    return get_preset(name, **overrides)


def with_feature_bins(name: str, overrides: dict) -> dict:
    """``overrides`` plus ``num_bins`` for their octaves (:func:`bins_for_octaves`, never fewer
    than the preset's) unless they set it: what ``train`` uses for runs whose zoom range the
    preset was not sized for (octaves past the data, collections)."""
    if "num_bins" in overrides:
        return overrides
    base = get_preset(name)
    octaves = overrides.get("octaves", base.generator.octaves)
    return {**overrides, "num_bins": max(base.generator.num_bins, bins_for_octaves(octaves))}
