"""Compare a learned pyramid with its ground truth, level by level.

Both stores are OME-Zarr pyramids written by :mod:`.render.export` on the same grid, so level i
of both covers the same region at the same zoom. A GAN does not reproduce the *positions* of
the ground truth (unless it is trained with known positions), so the comparison is between
distributions: per level, up to ``tiles`` tiles are drawn at random (the same tile indices from
both stores) and the sliced Wasserstein distance (:func:`.swd.swd`, x1000, lower is better) is
computed between the two sets, per Laplacian band (finest first). The per-level mean colour of
both sets is reported too (a cheap check of colour drift across zooms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from ..render.export import open_pyramid
from .swd import swd

__all__ = [
    "LevelMetrics",
    "compare_pyramids",
    "compare_steps",
    "format_table",
    "read_metrics",
    "run_image",
]


@dataclass(frozen=True)
class LevelMetrics:
    level: int  # napari level, 0 = finest
    zoom: int  # octave of the level's views (the coarsest level is zoom 0)
    tiles: int  # tiles drawn from each pyramid
    swd: list[float]  # per Laplacian band, finest first (x1000)
    mean_learned: list[float]  # mean of each channel in [0, 1]
    mean_truth: list[float]

    @property
    def swd_mean(self) -> float:
        return float(np.mean(self.swd))

    def to_dict(self) -> dict:
        return {**asdict(self), "swd_mean": self.swd_mean}


def _tile(arr: zarr.Array, a: int, b: int, r: int) -> np.ndarray:
    t = np.asarray(arr[:, a * r:(a + 1) * r, b * r:(b + 1) * r])
    return t.astype(np.float32) / 255.0 if t.dtype == np.uint8 else t.astype(np.float32)


def compare_pyramids(learned: str | Path, truth: str | Path, tiles: int = 64,
                     seed: int = 0) -> list[LevelMetrics]:
    """Per-level metrics (finest level first) of ``learned`` against ``truth``; raises
    ValueError if the two stores are not on the same grid or are incomplete."""
    la, lattrs = open_pyramid(learned)
    ta, tattrs = open_pyramid(truth)
    for path, attrs in ((learned, lattrs), (truth, tattrs)):
        if not attrs.get("complete", False):
            raise ValueError(f"{path}: the export did not finish (write it again)")
    if lattrs["grid"] != tattrs["grid"] or [a.shape for a in la] != [a.shape for a in ta]:
        raise ValueError(f"{learned} and {truth} are not on the same grid: "
                         f"{lattrs['grid']} vs {tattrs['grid']}")
    r = int(lattrs["grid"]["tile"])
    rng = np.random.default_rng(seed)
    out = []
    for level, (larr, tarr) in enumerate(zip(la, ta, strict=True)):
        ny, nx = larr.shape[1] // r, larr.shape[2] // r
        n = min(tiles, ny * nx)
        picks = rng.choice(ny * nx, size=n, replace=False)
        lt = np.stack([_tile(larr, int(i) // nx, int(i) % nx, r) for i in picks])
        tt = np.stack([_tile(tarr, int(i) // nx, int(i) % nx, r) for i in picks])
        bands = swd(torch.from_numpy(tt), torch.from_numpy(lt), seed=seed)
        out.append(LevelMetrics(
            level=level, zoom=len(la) - 1 - level, tiles=n, swd=[round(v, 4) for v in bands],
            mean_learned=[round(float(v), 4) for v in lt.mean(axis=(0, 2, 3))],
            mean_truth=[round(float(v), 4) for v in tt.mean(axis=(0, 2, 3))]))
    return out


def format_table(metrics: list[LevelMetrics]) -> str:
    """A plain-text table, one row per level."""
    rows = ["level  zoom  tiles  SWD mean  SWD per band (fine..coarse)  "
            "mean colour learned / truth"]
    for m in metrics:
        bands = " ".join(f"{v:7.1f}" for v in m.swd)
        cl = " ".join(f"{v:.2f}" for v in m.mean_learned)
        ct = " ".join(f"{v:.2f}" for v in m.mean_truth)
        rows.append(f"{m.level:5d}  {m.zoom:4d}  {m.tiles:5d}  {m.swd_mean:8.1f}  "
                    f"{bands:27s}  {cl} / {ct}")
    return "\n".join(rows)


LEARNED, TRUTH, METRICS = "learned.zarr", "truth.zarr", "metrics.json"


def read_metrics(path: str | Path) -> list[LevelMetrics]:
    """The per-level metrics of a ``metrics.json`` written by :func:`compare_steps`."""
    import json

    fields = LevelMetrics.__dataclass_fields__
    levels = json.loads(Path(path).read_text())["levels"]
    return [LevelMetrics(**{k: v for k, v in lv.items() if k in fields}) for lv in levels]


def run_image(run_dir: str | Path) -> str | None:
    """The image a run was trained on, if its config names a file that exists (a relative
    name is looked up from the working directory, then from the run directory)."""
    from ..checkpoint import read_config

    images = read_config(run_dir)[1].get("images", [])
    if not images:
        return None
    for path in (Path(images[0]), Path(run_dir) / images[0]):
        if path.is_file():
            return str(path)
    return None


def compare_steps(run_dir: str | Path, image: object, out_dir: str | Path,
                  octaves: int | None = None, seed: int | None = None, device: str = "auto",
                  tiles: int = 64, reuse: bool = False):
    """Export the learned pyramid of ``run_dir`` and the ground truth of ``image`` on the same
    grid into ``out_dir`` (``learned.zarr``, ``truth.zarr``), compare them and write
    ``metrics.json``. A generator: yields ``("learned" | "truth", tiles done, total)`` while
    writing and finally ``("metrics", [LevelMetrics, ...])``; close it to stop early.
    ``reuse`` keeps a complete store already there (same grid) instead of writing it again."""
    import json

    from ..data import open_source
    from ..geometry import scene_extent
    from ..render.export import is_complete, learned_steps, truth_steps
    from ..render.renderer import Renderer

    renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=0)
    grid = renderer.grid(octaves)
    source = open_source(image)
    extent = scene_extent(source.height, source.width)
    if not np.allclose(extent, grid.extent, rtol=1e-6):
        raise ValueError(
            f"{source.name} ({source.height} x {source.width} px) has scene extent "
            f"{tuple(round(e, 4) for e in extent)}, but the run's scene has extent "
            f"{tuple(round(e, 4) for e in grid.extent)}: not the image it was trained on")
    if source.channels != renderer.channels:
        raise ValueError(f"{source.name} has {source.channels} channels, the run "
                         f"{renderer.channels}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    want = {"octaves": grid.octaves, "tile": grid.tile, "extent": list(grid.extent)}

    def fresh(store: Path, extra: dict) -> bool:
        if not (reuse and is_complete(store)):
            return False
        ours = open_pyramid(store)[1]
        return ours["grid"] == want and all(ours.get(k) == v for k, v in extra.items())

    jobs = [("learned", out / LEARNED, {"seed": renderer.seed},
             lambda: learned_steps(renderer, out / LEARNED, octaves)),
            ("truth", out / TRUTH, {},
             lambda: truth_steps(source, out / TRUTH, grid))]
    for kind, store, extra, make in jobs:
        if fresh(store, extra):
            yield kind, 1, 1
            continue
        for done, total in make():
            yield kind, done, total
    metrics = compare_pyramids(out / LEARNED, out / TRUTH, tiles=tiles)
    (out / METRICS).write_text(json.dumps({
        "run": str(run_dir), "seed": renderer.seed, "grid": want, "tiles_per_level": tiles,
        "levels": [m.to_dict() for m in metrics]}, indent=1))
    yield "metrics", metrics
