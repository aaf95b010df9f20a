"""Whole-generator forward on the CPU: our fast path against the published formulation.

    python benchmarks/bench_generator.py                       # tiny, small; batch 1 and 16
    python benchmarks/bench_generator.py --presets small paper6 --batches 1
    python benchmarks/bench_generator.py --once                # only this process's allocator

Candidates, side by side in one process (interleaved rounds, medians), rendering tiles as the
renderer does (``extra = tile_margin``, ``torch.inference_mode``, random weights):

- **fast**: ``impl="fast"`` ops and the modulated convolution in its cheapest form;
- **published**: ``impl="ref"`` ops (the obvious composition) and one grouped convolution with
  per-sample modulated weights per layer (the published formulation).

Prints per preset and batch: ms per view, views per second, the ratio, and the share of the
fast forward's time per stage (``torch.profiler`` over the labels ``mapping``,
``fourier_features``, ``modulated_conv``, ``filtered_lrelu``). Then the same in a child process
with the mmap-free allocator (``MALLOC_MMAP_MAX_=0``). Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine_line, rerun_mmap_free, time_side_by_side
from napari_scalespace.geometry import View
from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator, latent

STAGES = ("mapping", "fourier_features", "modulated_conv", "filtered_lrelu")


def views(n: int, zoom: float = 2.0) -> list[View]:
    return [View(zoom, 0.3 + 0.05 * (i % 8), 0.4 + 0.05 * (i // 8)) for i in range(n)]


def stage_shares(G: Generator, vs: list[View], z: torch.Tensor, calls: int = 3) -> dict:
    """Share of the forward's wall time per stage label (fast candidate)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            G.render(vs, z=z, extra=G.cfg.tile_margin)
    spent = defaultdict(float)
    total = 0.0
    for evt in prof.key_averages():
        if evt.key in STAGES:
            spent[evt.key] += evt.cpu_time_total
        if evt.key == "aten::conv2d" or evt.key == "aten::conv_transpose2d":
            spent["(all convolutions)"] += evt.cpu_time_total
    total = sum(spent[s] for s in STAGES)
    return {k: v / total for k, v in spent.items()} if total else {}


def run(presets: list[str], batches: list[int], rounds: int) -> None:
    print(f"\n### {machine_line()}\n")
    print("| preset | batch | published ms/view | fast ms/view | ratio | fast views/s |")
    print("|---|---:|---:|---:|---:|---:|")
    shares = {}
    for name in presets:
        torch.manual_seed(0)
        G = Generator(get_preset(name).generator).eval()
        z = latent(G.cfg.z_dim, 0)
        for batch in batches:
            vs = views(batch)

            def call(impl: str, form: str, vs=vs, G=G, z=z) -> None:
                G.set_impl(impl, conv_form=form)
                G.render(vs, z=z, extra=G.cfg.tile_margin)

            t = time_side_by_side({"published": lambda: call("ref", "grouped"),
                                   "fast": lambda: call("fast", "auto")}, rounds)
            pub, fast = t["published"] / batch * 1e3, t["fast"] / batch * 1e3
            print(f"| {name} | {batch} | {pub:.1f} | {fast:.1f} | {pub / fast:.2f}x | "
                  f"{1e3 / fast:.1f} |", flush=True)
            G.set_impl("fast", conv_form="auto")
            shares[(name, batch)] = stage_shares(G, vs, z)
    print("\nShare of the fast forward's time per stage (and all convolutions, which the "
          "modulated_conv and filtered_lrelu stages both run):\n")
    cols = [*STAGES, "(all convolutions)"]
    print("| preset | batch | " + " | ".join(cols) + " |")
    print("|---|---:|" + "---:|" * len(cols))
    for (name, batch), sh in shares.items():
        print(f"| {name} | {batch} | " + " | ".join(f"{100 * sh.get(c, 0):.0f}%" for c in cols)
              + " |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--once", action="store_true", help="only this process's allocator")
    args = p.parse_args(argv)
    run(args.presets, args.batches, args.rounds)
    if not args.once:
        extra = ["--presets", *args.presets, "--batches", *map(str, args.batches), "--rounds",
                 str(args.rounds)]
        return rerun_mmap_free([__file__, "--once", *extra])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
