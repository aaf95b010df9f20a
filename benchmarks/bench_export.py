"""Peak memory and time of streaming an OME-Zarr export of a learned pyramid.

Usage: ``python benchmarks/bench_export.py --octaves 6 [--out DIR] [--batch 16] [--threads N]``

Builds an *untrained* ``tiny`` generator (``get_preset("tiny", octaves=N)``; weights do not
change the cost), renders every tile of the N-octave pyramid (sum of 4**l tiles, l = 0..N) with
:func:`render.export.export_renderer` and writes it as OME-Zarr, then prints the tile count, the
wall time and the peak resident set size of the process (``resource.getrusage``), before and
after the export. The store is deleted unless ``--keep``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from napari_scalespace._allocator import keep_large_allocations
from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator
from napari_scalespace.render.export import export_renderer
from napari_scalespace.render.renderer import Renderer


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--octaves", type=int, default=6)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, help="torch threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", help="output directory (default: a temporary one)")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    keep_large_allocations()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G = Generator(get_preset("tiny", octaves=args.octaves).generator).to(args.device)
    renderer = Renderer.from_generator(G, {"scenes": 1}, cache_mb=0, max_batch=args.batch)
    base = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_export_"))
    out = base / f"learned_{args.octaves}.zarr"
    grid = renderer.grid(args.octaves)
    tiles = sum(grid.n_tiles(lv)[0] * grid.n_tiles(lv)[1] for lv in range(grid.n_levels))
    rss0 = peak_rss_mb()
    t0 = time.perf_counter()
    export_renderer(renderer, out, octaves=args.octaves, progress=True)
    dt = time.perf_counter() - t0
    rss1 = peak_rss_mb()
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"tiny octaves={args.octaves} tile={grid.tile} levels={grid.n_levels} tiles={tiles} "
          f"finest={grid.level_shape(0)} batch={args.batch} threads={torch.get_num_threads()} "
          f"device={args.device}")
    print(f"time {dt:.1f} s ({tiles / dt:.0f} tiles/s), generator calls "
          f"{renderer.stats.generator_calls}, store {size / 2**20:.1f} MiB")
    print(f"peak RSS before export {rss0:.0f} MiB, after {rss1:.0f} MiB")
    if not args.keep:
        shutil.rmtree(base if not args.out else out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
