"""Evaluate a learned scale space against its ground truth, octave by octave.

For every octave ``k`` (zoom 0 = the whole scene in one view, up to the run's octaves):

- **Distribution** (``swd``): sliced Wasserstein distance (:func:`.swd.swd`, x1000, the mean
  over Laplacian bands) between ``views`` random views of the learned scale space and the same
  views of the truth, and ``swd_bicubic`` for the bicubic baseline (:class:`.views.BicubicViews`).
- **Fidelity** (``psnr``, ``ssim``): the same views compared pixel by pixel with the truth.
  Meaningful where the model is meant to reproduce the image (coarse octaves of a single-image
  run); the baseline's ``psnr_bicubic``/``ssim_bicubic`` say what zooming the coarse image gives.
- **Scale consistency** (``consistency_psnr``, ``consistency_l1``; octaves >= 1): the view at
  zoom ``k`` box-downsampled by 2 against the view at zoom ``k - 1`` with the same centre.
- **Detail** (``gradient_energy``; ``_truth``, ``_bicubic``): :func:`.metrics.gradient_energy`
  of the same views, at every octave: past the data (no truth) it says whether zooming in still
  shows detail (at least half of the finest data octave's).
- **Seams** (``seam_psnr``): views overlapping by half a view agree on the overlap;
  ``seam_gradient_ratio``: in 2 x 2 tile blocks of the dask pyramid napari shows, neighbouring
  pixels across tile borders differ as much as inside tiles (about 1; larger = visible seams).
- **FID/KID** (optional): with a local feature network (:mod:`.features`).

Octaves finer than the data (where a rendered pixel is smaller than a source pixel, ``covered``
false) have no truth to compare with: their truth-based metrics are ``None``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..data import ImageSource
from ..geometry import View, native_zoom, random_centres, scene_extent
from ..render.pyramid import dask_pyramid
from ..render.renderer import Renderer
from . import metrics
from .features import FeatureNet, fid, kid
from .swd import swd
from .views import BicubicViews, LearnedViews, TruthViews

__all__ = ["EvalReport", "OctaveResult", "compression_line", "distributed_evaluate_steps",
           "evaluate_octave", "evaluate_steps", "format_table", "markdown_table",
           "side_by_side_markdown"]

PSNR_CAP = 100.0
"""PSNR values are capped here (dB): identical up to float round-off (JSON has no infinity)."""


@dataclass
class OctaveResult:
    octave: int
    covered: bool  # the data has a source pixel per rendered pixel (or more) at this octave
    swd: float | None = None
    swd_bicubic: float | None = None
    swd_bands: list[float] | None = None  # finest band first
    swd_bands_bicubic: list[float] | None = None
    psnr: float | None = None
    psnr_bicubic: float | None = None
    ssim: float | None = None
    ssim_bicubic: float | None = None
    consistency_psnr: float | None = None
    consistency_l1: float | None = None
    consistency_psnr_bicubic: float | None = None
    consistency_l1_bicubic: float | None = None
    seam_psnr: float | None = None
    seam_gradient_ratio: float | None = None
    fid: float | None = None
    fid_bicubic: float | None = None
    kid: float | None = None
    kid_bicubic: float | None = None
    gradient_energy: float | None = None
    gradient_energy_truth: float | None = None
    gradient_energy_bicubic: float | None = None


@dataclass
class EvalReport:
    run: str
    truth: str
    seed: int | None
    resolution: int
    views: int
    data_zoom: float  # zoom at which a view shows one source pixel per rendered pixel
    octaves: list[OctaveResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    positions: str | None = None  # the run's training mode (known / unknown), when known
    extra_octaves: int = 0  # the run's octaves beyond the data
    compression: dict | None = None  # :func:`.compression.compression`

    def to_json(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "octaves"},
                "octaves": [asdict(o) for o in self.octaves]}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> EvalReport:
        data = json.loads(Path(path).read_text())
        if "octaves" not in data or not isinstance(data["octaves"], list):
            raise ValueError(f"{path}: not an evaluation report (no 'octaves' list)")
        known = {f.name for f in fields(OctaveResult)}
        octs = [OctaveResult(**{k: v for k, v in o.items() if k in known})
                for o in data["octaves"]]
        top = {f.name for f in fields(cls)} - {"octaves"}
        return cls(**{k: v for k, v in data.items() if k in top}, octaves=octs)


def _r(v: float | None, digits: int = 4) -> float | None:
    if v is None or math.isnan(v):
        return None
    return round(float(v), digits)


def _db(v: float) -> float:
    """A PSNR for JSON: capped at :data:`PSNR_CAP`."""
    return round(min(float(v), PSNR_CAP), 4)


def _views(zoom: float, cy: np.ndarray, cx: np.ndarray) -> list[View]:
    return [View(zoom, float(y), float(x)) for y, x in zip(cy, cx, strict=True)]


@dataclass
class _Context:
    """What every octave's evaluation needs (built once per process)."""

    renderer: Renderer
    learned: LearnedViews
    real: TruthViews
    bicubic: BicubicViews
    octaves: int
    views: int
    seed: int
    data_zoom: float
    feature_net: FeatureNet | None
    blocks: int
    pyramid: list = field(default_factory=list)


def _context(renderer: Renderer, source: ImageSource, views: int, octaves: int | None,
             seed: int, feature_net: FeatureNet | None, blocks: int) -> _Context:
    R = renderer.tile_size
    _validate(renderer, source, views)
    real = TruthViews(source, R)
    n_oct = renderer.octaves if octaves is None else int(octaves)
    return _Context(renderer, LearnedViews(renderer), real, BicubicViews(source, R), n_oct,
                    views, seed, native_zoom(source.height, source.width, R), feature_net,
                    blocks, dask_pyramid(renderer, n_oct))


def _validate(renderer: Renderer, source: ImageSource, views: int) -> None:
    if views < 2:
        raise ValueError(f"views must be >= 2, got {views}")
    check_truth(source, renderer)


def check_truth(source: ImageSource, renderer: Renderer) -> None:
    """ValueError unless ``source`` can be the ground truth of ``renderer``'s scene (same
    scene extent, i.e. aspect ratio, and the same number of channels)."""
    extent = scene_extent(source.height, source.width)
    if not np.allclose(extent, renderer.extent, rtol=1e-6):
        raise ValueError(
            f"{source.name} ({source.height} x {source.width} px) has scene extent "
            f"{tuple(round(e, 4) for e in extent)}, but the run's scene has extent "
            f"{tuple(round(e, 4) for e in renderer.extent)}: not the image it was trained on")
    if source.channels != renderer.channels:
        raise ValueError(f"{source.name} has {source.channels} channels, the run "
                         f"{renderer.channels}")


def _units_per_octave(ctx: _Context) -> int:
    return 4 + (ctx.feature_net is not None)


def _octave_units(ctx: _Context, k: int) -> Iterator[OctaveResult | None]:
    """Evaluate octave ``k``: yields ``None`` after each unit of work, then the result. Its
    random draws come from ``(seed, k)`` alone, so octaves can be evaluated in any order and
    on any machine with the same result."""
    rng = np.random.default_rng([ctx.seed, k])
    extent, views, learned, bicubic = ctx.real.extent, ctx.views, ctx.learned, ctx.bicubic
    res = OctaveResult(octave=k, covered=k <= ctx.data_zoom + 1e-9)
    # distribution and fidelity: the same random views of all three
    vs = _views(k, *random_centres(k, extent, views, rng))
    lv, tv, bv = learned.render(vs), ctx.real.render(vs), bicubic.render(vs)
    if res.covered:
        t = torch.from_numpy(tv)
        bands = swd(t, torch.from_numpy(lv), seed=ctx.seed)
        bands_b = swd(t, torch.from_numpy(bv), seed=ctx.seed)
        res.swd, res.swd_bicubic = _r(np.mean(bands)), _r(np.mean(bands_b))
        res.swd_bands, res.swd_bands_bicubic = [_r(v) for v in bands], [_r(v) for v in bands_b]
        res.psnr, res.psnr_bicubic = _db(metrics.psnr(lv, tv)), _db(metrics.psnr(bv, tv))
        res.ssim, res.ssim_bicubic = _r(metrics.ssim(lv, tv)), _r(metrics.ssim(bv, tv))
        res.gradient_energy_truth = _r(metrics.gradient_energy(tv), 6)
    res.gradient_energy = _r(metrics.gradient_energy(lv), 6)
    res.gradient_energy_bicubic = _r(metrics.gradient_energy(bv), 6)
    yield None
    if ctx.feature_net is not None:
        if res.covered:
            ft = ctx.feature_net(tv)
            fl, fb = ctx.feature_net(lv), ctx.feature_net(bv)
            res.fid, res.fid_bicubic = _r(fid(fl, ft)), _r(fid(fb, ft))
            res.kid, res.kid_bicubic = _r(kid(fl, ft), 6), _r(kid(fb, ft), 6)
        yield None
    # scale consistency: zoom k against zoom k - 1, same centres
    if k >= 1:
        cy, cx = random_centres(k - 1, extent, views, rng)
        fine, coarse = _views(k, cy, cx), _views(k - 1, cy, cx)
        p, l1 = metrics.consistency(learned.render(fine), learned.render(coarse))
        res.consistency_psnr, res.consistency_l1 = _db(p), _r(l1, 6)
        p, l1 = metrics.consistency(bicubic.render(fine), bicubic.render(coarse))
        res.consistency_psnr_bicubic, res.consistency_l1_bicubic = _db(p), _r(l1, 6)
    yield None
    # seams: views overlapping by half a view, half of them along x, half along y
    first = _views(k, *random_centres(k, extent, views, rng))
    h = views // 2
    a = learned.render(first)
    bx = learned.render([v.moved(0, 0.5) for v in first[:h]])
    by = learned.render([v.moved(0.5, 0) for v in first[h:]])
    mse = np.mean([10 ** (-metrics.seam_overlap(a[:h], bx, "x") / 10),
                   10 ** (-metrics.seam_overlap(a[h:], by, "y") / 10)])
    res.seam_psnr = _db(PSNR_CAP if mse == 0 else -10 * math.log10(mse))
    yield None
    level = ctx.pyramid[ctx.octaves - k]
    res.seam_gradient_ratio = _r(_pyramid_seams(level, ctx.renderer.tile_size, ctx.blocks, rng))
    yield None
    yield res


def _report(renderer: Renderer, source: ImageSource, views: int,
            feature_net: FeatureNet | None, run: str, truth: str) -> EvalReport:
    """The report's header and notes (octaves are appended by the caller)."""
    data_zoom = native_zoom(source.height, source.width, renderer.tile_size)
    report = EvalReport(run=run, truth=truth, seed=renderer.seed,
                        resolution=renderer.tile_size, views=views,
                        data_zoom=round(data_zoom, 4))
    if feature_net is None:
        report.notes.append("FID/KID skipped: no feature network given (--inception PATH to "
                            "local FID Inception-v3 weights, a .pth state dict or .safetensors; "
                            "nothing is downloaded)")
    else:
        report.notes.append(f"FID/KID from {feature_net.path.name} over {views} views "
                            f"per octave (biased upwards for so few views: compare like with "
                            f"like)")
    return report


def evaluate_steps(
    renderer: Renderer,
    source: ImageSource,
    views: int = 64,
    octaves: int | None = None,
    seed: int = 0,
    feature_net: FeatureNet | None = None,
    blocks: int = 8,
    run: str = "",
    truth: str = "",
) -> Iterator[tuple]:
    """Evaluate ``renderer``'s scale space against ``source`` (see the module docstring).

    A generator: yields ``("eval", done, total)`` after each unit of work and finally
    ``("report", EvalReport)``; close it to stop early. ``views`` views per octave and metric,
    ``blocks`` 2 x 2 tile blocks per octave for the seam gradient, random draws from
    ``(seed, octave)``.
    """
    ctx = _context(renderer, source, views, octaves, seed, feature_net, blocks)
    report = _report(renderer, source, views, feature_net, run, truth or source.name)
    total, done = (ctx.octaves + 1) * _units_per_octave(ctx), 0
    for k in range(ctx.octaves + 1):
        for item in _octave_units(ctx, k):
            if item is None:
                done += 1
                yield "eval", done, total
            else:
                report.octaves.append(item)
    yield "report", report


def evaluate_octave(run_dir: str, image: str, k: int, views: int, octaves: int | None,
                    seed: int, scale_space: int | None, device: str, inception: str | None,
                    blocks: int) -> OctaveResult:
    """One octave's result, computed in a dask worker with the worker's renderer and image
    (:func:`..render.cluster.worker_renderer`)."""
    from ..render.cluster import worker_renderer, worker_source

    renderer = worker_renderer(run_dir, scale_space, device, 16)
    net = None if inception is None else FeatureNet(inception)
    ctx = _context(renderer, worker_source(image), views, octaves, seed, net, blocks)
    *_, result = _octave_units(ctx, k)
    return result


def distributed_evaluate_steps(client, run_dir: str | Path, image: str | Path,
                               views: int = 64, octaves: int | None = None, seed: int = 0,
                               scale_space: int | None = None, device: str = "cpu",
                               inception: str | Path | None = None, blocks: int = 8
                               ) -> Iterator[tuple]:
    """:func:`evaluate_steps` with one octave per task on a dask.distributed cluster: the same
    report. Yields ``("eval", octaves done, total)`` and ``("report", EvalReport)``."""
    from distributed import as_completed

    from ..data import open_source

    renderer = Renderer(run_dir, device="cpu", seed=scale_space, cache_mb=0)
    source = open_source(image)
    _validate(renderer, source, views)
    net = None if inception is None else FeatureNet(inception)  # a clear error here, not later
    report = _report(renderer, source, views, net, str(run_dir), str(image))
    n_oct = renderer.octaves if octaves is None else int(octaves)
    run_abs, img_abs = str(Path(run_dir).resolve()), str(Path(image).resolve())
    futures = [client.submit(evaluate_octave, run_abs, img_abs, k, views, n_oct, seed,
                             scale_space, device, None if inception is None else
                             str(Path(inception).resolve()), blocks, pure=False)
               for k in range(n_oct + 1)]
    results = {}
    try:
        for done, future in enumerate(as_completed(futures), 1):
            res = future.result()
            results[res.octave] = res
            yield "eval", done, len(futures)
    finally:
        client.cancel([f for f in futures if not f.done()])
    report.octaves = [results[k] for k in sorted(results)]
    yield "report", report


def _pyramid_seams(level, tile: int, blocks: int, rng: np.random.Generator) -> float:
    """:func:`metrics.seam_gradient_ratio` over random 2 x 2 tile blocks of a dask level."""
    ny, nx = level.shape[0] // tile, level.shape[1] // tile
    if ny * nx < 2:
        return math.nan
    by, bx = min(ny, 2), min(nx, 2)
    starts = [(a, b) for a in range(ny - by + 1) for b in range(nx - bx + 1)]
    picks = rng.choice(len(starts), size=min(blocks, len(starts)), replace=False)
    mosaics = []
    for i in picks:
        a, b = starts[int(i)]
        window = level[a * tile:(a + by) * tile, b * tile:(b + bx) * tile]
        block = np.asarray(window.compute(scheduler="synchronous"))  # also inside a worker
        block = block.astype(np.float64) / (255.0 if block.dtype == np.uint8 else 1.0)
        mosaics.append(block[None] if block.ndim == 2 else block.transpose(2, 0, 1))
    return metrics.seam_gradient_ratio(np.concatenate(mosaics), tile)


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _milli(v: float | None) -> float | None:
    return None if v is None else 1000 * v


def format_table(report: EvalReport) -> str:
    """Plain-text table, one row per octave: model / bicubic for each metric."""
    head = ("octave  data  SWD model/bicubic   PSNR model/bicubic   SSIM model/bicubic  "
            "consist. PSNR model/bicubic  seam PSNR  seam grad  detail x1000 model/truth")
    rows = [head]
    for o in report.octaves:
        rows.append(
            f"{o.octave:6d}  {'yes' if o.covered else 'no':>4}  "
            f"{_fmt(o.swd, '7.1f')} / {_fmt(o.swd_bicubic, '<7.1f')}  "
            f"{_fmt(o.psnr, '6.2f')} / {_fmt(o.psnr_bicubic, '<6.2f')}      "
            f"{_fmt(o.ssim, '5.3f')} / {_fmt(o.ssim_bicubic, '<5.3f')}     "
            f"{_fmt(o.consistency_psnr, '6.2f')} / {_fmt(o.consistency_psnr_bicubic, '<6.2f')}"
            f"             {_fmt(o.seam_psnr, '6.2f')}     {_fmt(o.seam_gradient_ratio, '5.2f')}"
            f"      {_fmt(_milli(o.gradient_energy), '6.3f')} / "
            f"{_fmt(_milli(o.gradient_energy_truth), '<6.3f')}")
    rows += report.notes
    if report.compression:
        rows.append(compression_line(report))
    return "\n".join(rows)


def markdown_table(report: EvalReport) -> str:
    """The table of :func:`format_table` as markdown (model / bicubic in each cell; detail:
    model / truth)."""
    rows = ["| octave | data | SWD x1000 | PSNR dB | SSIM | consistency PSNR dB | seam PSNR dB "
            "| seam gradient | detail x1000 (gradient energy) |",
            "|---:|:---:|---:|---:|---:|---:|---:|---:|---:|"]
    for o in report.octaves:
        def pair(a, b, spec):
            return f"{_fmt(a, spec)} / {_fmt(b, spec)}"
        rows.append(f"| {o.octave} | {'yes' if o.covered else 'no'} | "
                    f"{pair(o.swd, o.swd_bicubic, '.1f')} | "
                    f"{pair(o.psnr, o.psnr_bicubic, '.2f')} | "
                    f"{pair(o.ssim, o.ssim_bicubic, '.3f')} | "
                    f"{pair(o.consistency_psnr, o.consistency_psnr_bicubic, '.2f')} | "
                    f"{_fmt(o.seam_psnr, '.2f')} | {_fmt(o.seam_gradient_ratio, '.2f')} | "
                    f"{pair(_milli(o.gradient_energy), _milli(o.gradient_energy_truth), '.3f')} |")
    return "\n".join(rows)


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def compression_line(report: EvalReport) -> str:
    """One sentence on the model's size against the truth pyramid's."""
    c = report.compression
    if not c:
        return ""
    return (f"size: generator {_mb(c['generator_float16'])} as float16 "
            f"({_mb(c['generator_float32'])} as float32) vs the truth pyramid over "
            f"{c['octaves']} octaves {_mb(c['truth_uncompressed'])} uncompressed "
            f"({c['ratio_uncompressed_float16']:g}x the float16 generator), "
            f"{_mb(c['truth_zarr'])} as OME-Zarr ({c['ratio_zarr_float16']:g}x)")


def mean_covered(report: EvalReport, name: str) -> float | None:
    """The mean of metric ``name`` over the octaves the data covers (``None`` if none)."""
    vals = [getattr(o, name) for o in report.octaves
            if o.covered and getattr(o, name) is not None]
    return float(np.mean(vals)) if vals else None


def side_by_side_markdown(reports: list[EvalReport], labels: list[str]) -> str:
    """Several runs against one truth in one markdown table (a cell per metric: each run's
    value in the order of ``labels``, then the bicubic baseline's), the mean PSNR over the
    octaves with data, and each run's size against the truth pyramid."""
    if len(reports) != len(labels) or not reports:
        raise ValueError("one label per report, at least one report")
    first = reports[0]
    if any([o.octave for o in r.octaves] != [o.octave for o in first.octaves]
           for r in reports):
        raise ValueError("the reports cover different octaves")
    who = " / ".join(labels)
    rows = [f"| octave | data | PSNR dB ({who} / bicubic) | SSIM ({who} / bicubic) "
            f"| SWD x1000 ({who} / bicubic) | consistency PSNR dB ({who}) "
            f"| gradient energy x1000 ({who} / truth) |",
            "|---:|:---:|---:|---:|---:|---:|---:|"]

    def cell(k: int, name: str, base: str | None, spec: str, scale: float = 1.0) -> str:
        vals = [getattr(r.octaves[k], name) for r in reports]
        if base is not None:
            vals.append(getattr(first.octaves[k], base))
        return " / ".join(_fmt(None if v is None else v * scale, spec) for v in vals)

    for k, o in enumerate(first.octaves):
        rows.append(f"| {o.octave} | {'yes' if o.covered else 'no'} | "
                    f"{cell(k, 'psnr', 'psnr_bicubic', '.2f')} | "
                    f"{cell(k, 'ssim', 'ssim_bicubic', '.3f')} | "
                    f"{cell(k, 'swd', 'swd_bicubic', '.1f')} | "
                    f"{cell(k, 'consistency_psnr', None, '.2f')} | "
                    f"{cell(k, 'gradient_energy', 'gradient_energy_truth', '.2f', 1000)} |")
    means = [mean_covered(r, "psnr") for r in reports]
    rows += ["", "mean PSNR over the octaves with data: " + ", ".join(
        f"{label} {_fmt(m, '.2f')} dB" for label, m in zip(labels, means, strict=True))]
    for label, r in zip(labels, reports, strict=True):
        if r.compression:
            rows += ["", f"{label} (positions {r.positions or '?'}): {compression_line(r)}"]
    return "\n".join(rows)
