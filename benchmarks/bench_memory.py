"""What the spatial memory costs a rendered tile: `small` with its memory against `small`
without one, side by side in one process (interleaved rounds, medians).

    python benchmarks/bench_memory.py                      # batches 1 and 8, zooms 0-4
    python benchmarks/bench_memory.py --layout block       # a batch = neighbouring tiles
    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 python benchmarks/bench_memory.py

Both generators have the same weights where they share them (same seed) and random memory
grids; tiles are rendered as the renderer does (``extra = tile_margin``,
``torch.inference_mode``) at random centres (or in blocks of neighbours), at each zoom
separately (the memory's read costs most at zoom 0, where a view covers every cell of every
level) and over a whole 4-octave pyramid's tiles (1 + 4 + 16 + 64 + 256: mostly fine zooms).
Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator


def generators(levels: int) -> dict[str, Generator]:
    cfg = get_preset("small").generator
    out = {}
    for name, channels in (("with memory", cfg.memory_channels), ("without", 0)):
        torch.manual_seed(0)
        g = dataclasses.replace(cfg, memory_channels=channels, memory_levels=levels)
        G = Generator(g).eval()
        if G.memory is not None:
            with torch.no_grad():
                for grid in G.memory.grids:
                    grid.normal_()
        out[name] = G
    return out


def views(batch: int, zoom: float, seed: int, layout: str = "random"
          ) -> tuple[torch.Tensor, ...]:
    """``batch`` tiles at ``zoom``: at random centres, or (``block``) a block of neighbouring
    tiles two rows high at a random place, as a viewer asks for them."""
    g = torch.Generator().manual_seed(seed)
    side = 2.0**-zoom
    if layout == "random" or batch == 1:
        centre = side / 2 + (1 - side) * torch.rand(2, batch, generator=g)
        return torch.full((batch,), zoom), centre[0], centre[1]
    i = torch.arange(batch)
    rows, cols = i // max(batch // 2, 1), i % max(batch // 2, 1)
    corner = torch.rand(2, generator=g) * (1 - side * torch.tensor([2.0, batch / 2])).clamp(min=0)
    return (torch.full((batch,), zoom), corner[0] + side * (rows + 0.5),
            corner[1] + side * (cols + 0.5))


def time_call(G: Generator, z: torch.Tensor, v: tuple) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        G(z, *v, extra=G.cfg.tile_margin)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    p.add_argument("--zooms", nargs="+", type=float, default=[0, 1, 2, 3, 4])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--levels", type=int, default=5, help="memory levels (small, 4 octaves: 5)")
    p.add_argument("--layout", choices=["random", "block"], default="random",
                   help="a batch's tiles: random centres, or a block of neighbours")
    args = p.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    gens = generators(args.levels)
    pyramid = {z: 4 ** int(z) for z in args.zooms}  # tiles per level of a pyramid
    print(f"small, memory {gens['with memory'].memory}, threads {torch.get_num_threads()}")
    print(f"tiles of a batch: {args.layout}")
    print("batch  zoom   ms/view with   ms/view without   ratio")
    for batch in args.batches:
        z = torch.zeros(batch, gens["without"].cfg.z_dim)
        per_zoom: dict[float, dict[str, float]] = {}
        for zoom in args.zooms:
            times: dict[str, list[float]] = {name: [] for name in gens}
            for r in range(args.rounds + 1):
                v = views(batch, zoom, r, args.layout)
                for name, G in gens.items():
                    t = time_call(G, z, v)
                    if r:  # the first round warms up
                        times[name].append(t / batch)
            med = {name: statistics.median(ts) * 1e3 for name, ts in times.items()}
            per_zoom[zoom] = med
            print(f"{batch:5d}  {zoom:4.1f}   {med['with memory']:12.2f}   "
                  f"{med['without']:15.2f}   {med['with memory'] / med['without']:5.2f}x")
        total = {name: sum(pyramid[zm] * per_zoom[zm][name] for zm in args.zooms)
                 / sum(pyramid.values()) for name in gens}
        print(f"{batch:5d}  pyramid {total['with memory']:9.2f}   {total['without']:15.2f}   "
              f"{total['with memory'] / total['without']:5.2f}x  (tiles weighted 4^zoom)")


if __name__ == "__main__":
    main()
