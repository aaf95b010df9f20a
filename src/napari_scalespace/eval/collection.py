"""Evaluate a scale space learned from a collection, octave by octave.

A collection has no pixel truth: its images sit at unknown positions. What can be measured is
whether the learned views *look like* each image's patches at the zooms that image covers, and
whether that beats what a user has without a model: the overview (the image with the largest
field of view) zoomed in (:class:`.views.SourceZoomViews`: area-resampled down to its native
zoom, bicubic past it).

At every zoom ``k = 0..octaves``, with draws seeded by ``(seed, k)``:

- ``views`` learned views at random positions of the collection's scene, and the zoomed
  overview's at the same views;
- for every image with patches at zoom ``k`` (:meth:`.Collection.covering`): ``views`` of its
  patches at random positions (its own zoom ``k - o_i``), and the sliced Wasserstein distance
  (:func:`.swd.swd`, x1000) of the learned and of the zoomed-overview views against them
  (``per_image``);
- ``swd`` / ``swd_overview``: the same against the pooled patches, each drawn from an image
  chosen uniformly among those covering ``k`` (as training draws them);
- detail (:func:`.metrics.gradient_energy`) of the learned, real (pooled) and overview views.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.collection import Collection
from ..geometry import View, image_zoom, random_centres
from ..render.renderer import Renderer
from . import metrics
from .evaluate import _r, _views
from .swd import swd
from .views import LearnedViews, SourceZoomViews, TruthViews

__all__ = ["CollectionOctave", "CollectionReport", "collection_markdown",
           "evaluate_collection_steps", "save_collection_sheet"]


@dataclass
class CollectionOctave:
    octave: int
    images: list[str]  # the images with patches at this zoom
    swd: float | None = None  # learned vs the pooled patches
    swd_overview: float | None = None  # zoomed overview vs the pooled patches
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> swd, ...
    gradient_energy: float | None = None
    gradient_energy_real: float | None = None
    gradient_energy_overview: float | None = None


@dataclass
class CollectionReport:
    run: str
    overview: str  # the image with the largest field of view (zoom 0)
    images: list[dict]  # name, pixel_size, zoom range
    resolution: int
    views: int
    seed: int
    octaves: list[CollectionOctave] = field(default_factory=list)
    kind: str = "collection"

    def to_dict(self) -> dict:
        return asdict(self)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        return path


def _image_patches(collection: Collection, i: int, zoom: float, n: int, resolution: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``n`` patches of image ``i`` at collection ``zoom``, random positions."""
    src = collection.sources[i]
    own = float(image_zoom(zoom, collection.offsets[i]))
    truth = TruthViews(src, resolution)
    return truth.render(_views(own, *random_centres(own, truth.extent, n, rng)))


def evaluate_collection_steps(renderer: Renderer, collection: Collection, views: int = 64,
                              octaves: int | None = None, seed: int = 0, run: str = ""
                              ) -> Iterator[tuple]:
    """Evaluate ``renderer`` against ``collection`` (see the module docstring). Yields
    ``("eval", done, total)`` after each zoom, then ``("report", CollectionReport)``."""
    if views < 2:
        raise ValueError(f"views must be >= 2, got {views}")
    R = renderer.tile_size
    if collection.channels != renderer.channels:
        raise ValueError(f"the collection has {collection.channels} channels, the run "
                         f"{renderer.channels}")
    if not np.allclose(collection.extent, renderer.extent, rtol=1e-6):
        raise ValueError(f"the collection's scene (its overview's aspect ratio) has extent "
                         f"{collection.extent}, the run's {renderer.extent}: not its collection")
    n_oct = renderer.octaves if octaves is None else int(octaves)
    ranges = collection.zoom_ranges(R)
    report = CollectionReport(
        run=run, overview=collection.names[collection.reference],
        images=[{"name": n, "pixel_size": str(p), "zooms": [_r(lo), _r(hi)]}
                for n, p, (lo, hi) in zip(collection.names, collection.pixel_sizes, ranges,
                                          strict=True)],
        resolution=R, views=views, seed=seed)
    learned = LearnedViews(renderer)
    overview = SourceZoomViews(collection.sources[collection.reference], R)
    for k in range(n_oct + 1):
        rng = np.random.default_rng([seed, k])
        vs = _views(k, *random_centres(k, collection.extent, views, rng))
        lv, ov = learned.render(vs), overview.render(vs)
        cover = np.flatnonzero(collection.covering(np.array([float(k)]), R)[0])
        res = CollectionOctave(octave=k, images=[collection.names[i] for i in cover],
                               gradient_energy=_r(metrics.gradient_energy(lv), 6),
                               gradient_energy_overview=_r(metrics.gradient_energy(ov), 6))
        if len(cover):
            lt, ot = torch.from_numpy(lv), torch.from_numpy(ov)
            for i in cover:
                real = torch.from_numpy(_image_patches(collection, i, k, views, R, rng))
                res.per_image[collection.names[i]] = {
                    "swd": _r(np.mean(swd(real, lt, seed=seed))),
                    "swd_overview": _r(np.mean(swd(real, ot, seed=seed)))}
            pick = cover[rng.integers(0, len(cover), views)]
            pooled = np.concatenate([
                _image_patches(collection, i, k, int((pick == i).sum()), R, rng)
                for i in cover if (pick == i).any()])
            pt = torch.from_numpy(pooled)
            res.swd = _r(np.mean(swd(pt, lt, seed=seed)))
            res.swd_overview = _r(np.mean(swd(pt, ot, seed=seed)))
            res.gradient_energy_real = _r(metrics.gradient_energy(pooled), 6)
        report.octaves.append(res)
        yield "eval", k + 1, n_oct + 1
    yield "report", report


def _cell(a: float | None, b: float | None, digits: int = 1) -> str:
    if a is None:
        return "-"
    mark = " **<**" if b is not None and a < b else ""
    return f"{a:.{digits}f} / {b:.{digits}f}{mark}"


def collection_markdown(report: CollectionReport) -> str:
    """Two markdown tables: pooled SWD and detail per zoom; SWD per image and zoom
    (``learned / zoomed overview``; **<** marks the model winning)."""
    lines = [f"Overview (zoom 0): {report.overview}. Images: " + "; ".join(
        f"{m['name']} ({m['pixel_size']}/px, zooms {m['zooms'][0]:g}-{m['zooms'][1]:g})"
        for m in report.images) + ".", "",
        "| zoom | images with data | SWD x1e3 learned / overview | detail learned | "
        "detail real | detail overview |", "|---:|---|---:|---:|---:|---:|"]
    for o in report.octaves:
        real = "-" if o.gradient_energy_real is None else f"{o.gradient_energy_real * 1e3:.2f}"
        lines.append(f"| {o.octave} | {len(o.images)} | {_cell(o.swd, o.swd_overview)} | "
                     f"{o.gradient_energy * 1e3:.2f} | {real} | "
                     f"{o.gradient_energy_overview * 1e3:.2f} |")
    names = [m["name"] for m in report.images]
    lines += ["", "| zoom | " + " | ".join(names) + " |",
              "|---:|" + "---:|" * len(names)]
    for o in report.octaves:
        cells = [_cell(o.per_image[n]["swd"], o.per_image[n]["swd_overview"])
                 if n in o.per_image else "-" for n in names]
        lines.append(f"| {o.octave} | " + " | ".join(cells) + " |")
    lines += ["", "Detail: mean squared gradient x1e3 (pixel values in [0, 1])."]
    return "\n".join(lines)


def save_collection_sheet(renderer: Renderer, collection: Collection, path: str | Path,
                          centre: tuple[float, float] | None = None,
                          octaves: int | None = None, seed: int = 0) -> Path:
    """Contact sheet: per zoom, the learned view and the zoomed overview around ``centre``
    (default: the overview's busiest region at its native zoom) beside a real patch of the
    finest image with data at that zoom (a random position: positions are unknown)."""
    from ..geometry import clamped_centre
    from .plots import busiest_centre, save_contact_sheet

    R = renderer.tile_size
    n_oct = renderer.octaves if octaves is None else int(octaves)
    overview = SourceZoomViews(collection.sources[collection.reference], R)
    if centre is None:
        native = collection.zoom_ranges(R)[collection.reference][1]
        centre = busiest_centre(TruthViews(overview.source, R), min(native, n_oct), seed)
    vs = [View(k, *clamped_centre(k, collection.extent, *centre)) for k in range(n_oct + 1)]
    rng = np.random.default_rng(seed)
    real = np.ones((len(vs), collection.channels, R, R), np.float32)
    for k in range(n_oct + 1):
        cover = np.flatnonzero(collection.covering(np.array([float(k)]), R)[0])
        if len(cover):
            ranges = collection.zoom_ranges(R)
            finest = cover[np.argmax([ranges[i][1] for i in cover])]
            real[k] = _image_patches(collection, finest, k, 1, R, rng)[0]
    sheet = {"learned": LearnedViews(renderer).render(vs), "overview zoomed": overview.render(vs),
             "real (random position)": real}
    return save_contact_sheet(sheet, path, centre)
