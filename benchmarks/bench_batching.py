"""Tiles per generator call: the renderer's measured batch size against fixed ones.

    python benchmarks/bench_batching.py                     # small; this process, then mmap-free
    python benchmarks/bench_batching.py --presets tiny small --tiles 512

Renders the same ``--tiles`` tiles of an untrained generator (weights do not change the cost)
through :class:`render.renderer.Renderer`, asked for in requests of ``--request`` tiles as a
viewer or an export does, with the batch size measured (the default) and fixed at 1 and 16.
Prints tiles/s of each and the size the measured renderer settled on (with the time per tile
it measured at each size). Then the same in a child process with the mmap-free allocator
(``MALLOC_MMAP_MAX_=0``, what the command line sets up): the default allocator is the napari
case.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine_line, rerun_mmap_free
from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator
from napari_scalespace.render.renderer import Renderer


def tiles_per_second(renderer: Renderer, keys: list, request: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(keys), request):
        renderer.render_tiles(keys[i:i + request])
    return len(keys) / (time.perf_counter() - t0)


def run(presets: list[str], n_tiles: int, request: int) -> None:
    print(f"\n### {machine_line()}\n")
    print("| preset | tiles | measured tiles/s | settled on | fixed 1 tiles/s | fixed 16 tiles/s "
          "| ms/tile by batch (measured) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in presets:
        torch.manual_seed(0)
        G = Generator(get_preset(name, octaves=8).generator).eval()
        zoom = 8
        side = 2**zoom
        keys = [(zoom, a, b) for a in range(side) for b in range(side)][:n_tiles]
        rates = {}
        for label, fixed in (("measured", None), ("1", 1), ("16", 16)):
            r = Renderer.from_generator(G, {"scenes": 1}, cache_mb=0, max_batch=fixed)
            r.render_tiles(keys[-request:])  # warm-up (oneDNN plans, allocator)
            rates[label] = (tiles_per_second(r, keys, request), r)
        measured = rates["measured"][1]
        per = ", ".join(f"{n}: {1e3 * t:.1f}" for n, t in measured.sizer.per_tile().items())
        print(f"| {name} | {len(keys)} | {rates['measured'][0]:.1f} | {measured.batch_size} | "
              f"{rates['1'][0]:.1f} | {rates['16'][0]:.1f} | {per} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["small"])
    p.add_argument("--tiles", type=int, default=384)
    p.add_argument("--request", type=int, default=32, help="tiles per render_tiles call")
    p.add_argument("--once", action="store_true", help="only this process's allocator")
    args = p.parse_args(argv)
    run(args.presets, args.tiles, args.request)
    if not args.once:
        return rerun_mmap_free([__file__, "--once", "--presets", *args.presets, "--tiles",
                                str(args.tiles), "--request", str(args.request)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
