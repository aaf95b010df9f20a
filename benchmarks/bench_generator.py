"""Whole-generator forward on the CPU: our fast path against the published formulation.

    python benchmarks/bench_generator.py                       # tiny, small; batch 1 and 16
    python benchmarks/bench_generator.py --presets small paper6 --batches 1
    python benchmarks/bench_generator.py --once                # only this process's allocator
    python benchmarks/bench_generator.py --train --presets tiny small   # training images/s
    python benchmarks/bench_generator.py --compile --presets small --batches 1   # torch.compile

Candidates, side by side in one process (interleaved rounds, medians), rendering tiles as the
renderer does (``extra = tile_margin``, ``torch.inference_mode``, random weights):

- **fast**: ``impl="fast"`` ops and the modulated convolution in its cheapest form;
- **published**: ``impl="ref"`` ops (the obvious composition) and one grouped convolution with
  per-sample modulated weights per layer (the published formulation).

Prints per preset and batch: ms per view, views per second, the ratio, and the share of the
fast forward's time per stage (``torch.profiler`` over the labels ``mapping``,
``fourier_features``, ``modulated_conv``, ``filtered_lrelu``). Then the same in a child process
with the mmap-free allocator (``MALLOC_MMAP_MAX_=0``). Figures go to docs/benchmarks.md.

``--train`` times whole training steps instead (a discriminator update with its lazy R1, a
generator update with the scale-consistency pass), generator *and* discriminator on the
published formulation against both on the fast path: two trainers with the same seed run on
the bundled H&E sample, one step each in turn, so both do the same sequence of work (one R1
interval of steps after two warm-up steps); images/s is the batch (real images trained on)
over the time per step, like the trainer's ``img/s``.

``--compile`` times ``torch.compile(G)`` (inductor) against the eager fast path: the compile
time (first call) and the steady per-view time. Under compilation the ops take a traceable
form (no data-dependent clamp skip, no ``out=`` writes), see ``ops/filtered_lrelu.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
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


def set_impl(module: torch.nn.Module, impl: str, conv_form: str) -> None:
    """Put every layer of a generator or discriminator on ``impl`` ops (and the generator's
    modulated convolutions in ``conv_form``)."""
    for m in module.modules():
        if isinstance(m.__dict__.get("impl"), str):  # layers (not the Generator's property)
            m.impl = impl
        if hasattr(m, "conv_form"):
            m.conv_form = conv_form


def train_rate(presets: list[str], steps: int | None = None) -> None:
    from napari_scalespace.data import open_source
    from napari_scalespace.data.samples import sample_path
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.train.trainer import Trainer

    print(f"\n### {machine_line()}\n")
    print("| preset | batch | steps | published s/step | fast s/step | ratio | fast images/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    source = open_source(sample_path("he"))
    for name in presets:
        preset = get_preset(name)
        n = steps or preset.train.r1_interval
        with tempfile.TemporaryDirectory() as tmp:
            trainers = {}
            for label, impl, form in (("published", "ref", "grouped"), ("fast", "fast", "auto")):
                tr = Trainer(f"{tmp}/{label}", [source], preset, seed=0, device="cpu")
                for module in (tr.G, tr.D, tr.G_ema):
                    set_impl(module, impl, form)
                trainers[label] = tr
            spent = dict.fromkeys(trainers, 0.0)
            for i in range(2 + n):
                for label, tr in trainers.items():
                    t0 = time.perf_counter()
                    tr.step()
                    if i >= 2:
                        spent[label] += time.perf_counter() - t0
        pub, fast = spent["published"] / n, spent["fast"] / n
        b = preset.train.batch
        print(f"| {name} | {b} | {n} | {pub:.2f} | {fast:.2f} | {pub / fast:.2f}x | "
              f"{b / fast:.1f} |", flush=True)


def compile_rate(presets: list[str], batches: list[int], rounds: int) -> None:
    print(f"\n### {machine_line()}\n")
    print("| preset | batch | compile s | eager fast ms/view | compiled ms/view | ratio | "
          "max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in presets:
        for batch in batches:
            torch._dynamo.reset()
            torch.manual_seed(0)
            G = Generator(get_preset(name).generator).eval()
            G.set_impl("fast")
            compiled = torch.compile(G)
            vs = views(batch)
            z = latent(G.cfg.z_dim, 0).reshape(1, -1).expand(batch, -1)
            args = [torch.tensor([getattr(v, k) for v in vs]) for k in ("zoom", "cy", "cx")]
            extra = G.cfg.tile_margin
            with torch.inference_mode():
                t0 = time.perf_counter()
                first = compiled(z, *args, extra=extra)
                compile_s = time.perf_counter() - t0
                diff = float((first - G(z, *args, extra=extra)).abs().max())
                def call(fn, z=z, args=args, extra=extra):
                    return lambda: fn(z, *args, extra=extra)

                t = time_side_by_side({"eager": call(G), "compiled": call(compiled)}, rounds)
            e, c = t["eager"] / batch * 1e3, t["compiled"] / batch * 1e3
            print(f"| {name} | {batch} | {compile_s:.0f} | {e:.1f} | {c:.1f} | {e / c:.2f}x | "
                  f"{diff:.1e} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--once", action="store_true", help="only this process's allocator")
    p.add_argument("--train", action="store_true", help="time training steps instead")
    p.add_argument("--compile", action="store_true", help="time torch.compile instead")
    p.add_argument("--steps", type=int, help="timed training steps (default: r1_interval)")
    args = p.parse_args(argv)
    if args.train:
        train_rate(args.presets, args.steps)
    elif args.compile:
        compile_rate(args.presets, args.batches, args.rounds)
    else:
        run(args.presets, args.batches, args.rounds)
    if not args.once:
        extra = ["--presets", *args.presets, "--batches", *map(str, args.batches), "--rounds",
                 str(args.rounds)] + (["--train"] if args.train else []) + (
                 ["--compile"] if args.compile else []) + (
                 ["--steps", str(args.steps)] if args.steps else [])
        return rerun_mmap_free([__file__, "--once", *extra])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
