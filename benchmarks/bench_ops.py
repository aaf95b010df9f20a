"""Benchmark the ops: ``fast`` vs ``ref`` side by side on the layer shapes of a real generator.

    python benchmarks/bench_ops.py            # default allocator, then mmap-free (two tables)
    python benchmarks/bench_ops.py --quick    # fewer rounds
    python benchmarks/bench_ops.py --once     # only the allocator this process has
    python benchmarks/bench_ops.py --case 84px  # only the cases whose name holds "84px"

Prints a markdown table per allocator: ms per call and the ref/fast ratio, forward and
forward+backward. A ``filtered_lrelu`` forward needs no gradient, so ``fast`` runs the fused
CPU kernel there (``ops/_fused_cpu.py``); the "fwd passes" column times the torch passes it
replaces (the kernel turned off), side by side with the other two. Figures and the commands
that produced them are kept in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine_line, rerun_mmap_free, time_side_by_side
from napari_scalespace.ops import _fused_cpu, bias_act, filtered_lrelu, lowpass_filter, upfirdn2d


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple[int, int, int, int]
    kind: str  # "flrelu" | "upfirdn" | "bias_act"
    up: int = 1
    down: int = 1
    taps_up: int = 1
    taps_down: int = 1
    radial_down: bool = False

    def build(self):
        """Inputs and a call(impl) closure, with the layer's real filters and padding."""
        x = torch.randn(self.shape)
        C = self.shape[1]
        if self.kind == "bias_act":
            b = torch.randn(C)
            return x, lambda t, impl: bias_act(t, b, act="lrelu", clamp=256, impl=impl)
        if self.kind == "upfirdn":
            f = lowpass_filter(self.taps_up, cutoff=0.25 * self.up, width=0.25, fs=2.0 * self.up)
            pad = (self.taps_up - self.up) // 2
            p = (pad + self.up - 1, pad)
            return x, lambda t, impl: upfirdn2d(t, f, up=self.up, padding=(*p, *p), impl=impl)
        fs_in = 16.0
        fs_mid = fs_in * self.up
        fu = lowpass_filter(self.taps_up, cutoff=fs_in / 2.5, width=fs_in / 4, fs=fs_mid)
        fd = lowpass_filter(self.taps_down, cutoff=fs_in / 2.5, width=fs_in / 4, fs=fs_mid,
                            radial=self.radial_down)
        b = torch.randn(C)
        # Padding so that the output has size in * up / down (as in the generator's layers).
        total = self.taps_up - 1 + self.taps_down - 1 - (self.down - 1)
        p = (total // 2, total - total // 2)
        return x, lambda t, impl: filtered_lrelu(
            t, fu, fd, b, up=self.up, down=self.down, padding=(*p, *p), clamp=256, impl=impl
        )


CASES = [
    Case("filtered_lrelu 128ch 84px up2 down2 12/12", (1, 128, 84, 84), "flrelu", 2, 2, 12, 12),
    Case("filtered_lrelu 256ch 52px up4 down2 24/12", (1, 256, 52, 52), "flrelu", 4, 2, 24, 12),
    Case("filtered_lrelu 4x64ch 148px up2 down2 12/12", (4, 64, 148, 148), "flrelu", 2, 2, 12, 12),
    Case("filtered_lrelu 64ch 276px up2 down2 12/12", (1, 64, 276, 276), "flrelu", 2, 2, 12, 12),
    Case("filtered_lrelu 128ch 84px up2 down2 12/r6", (1, 128, 84, 84), "flrelu", 2, 2, 12, 6,
         radial_down=True),
    Case("upfirdn2d 128ch 84px up2 12", (1, 128, 84, 84), "upfirdn", up=2, taps_up=12),
    Case("bias_act lrelu 4x64ch 148px", (4, 64, 148, 148), "bias_act"),
]


def run(rounds: int, only: str | None = None) -> None:
    print(f"\n### {machine_line()}\n")
    print("| case | fwd ref ms | fwd fast ms | fwd ratio | fwd passes ms | f+b ref ms | "
          "f+b fast ms | f+b ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        if only and only not in case.name:
            continue
        fwd, fb = measure(case, rounds)
        passes = f"{fwd['passes'] * 1e3:.1f}" if "passes" in fwd else "-"
        print(
            f"| {case.name} | {fwd['ref'] * 1e3:.1f} | {fwd['fast'] * 1e3:.1f} | "
            f"{fwd['ref'] / fwd['fast']:.1f}x | {passes} | "
            f"{fb['ref'] * 1e3:.1f} | {fb['fast'] * 1e3:.1f} | "
            f"{fb['ref'] / fb['fast']:.1f}x |",
            flush=True,
        )


def measure(case: Case, rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per call of ref and fast: forward (inference mode) and forward+backward."""
    x, call = case.build()
    candidates = {i: lambda i=i: call(x, i) for i in ("ref", "fast")}
    if case.kind == "flrelu" and not case.radial_down:
        candidates["passes"] = lambda: _without_fused_kernel(call, x)
    with torch.inference_mode():
        fwd = time_side_by_side(candidates, rounds)
    xg = x.clone().requires_grad_(True)

    def fwd_bwd(impl: str) -> None:
        call(xg, impl).square().mean().backward()

    fb = time_side_by_side({i: lambda i=i: fwd_bwd(i) for i in ("ref", "fast")},
                           max(3, rounds // 2))
    return fwd, fb


def _without_fused_kernel(call, x):
    _fused_cpu.ENABLED = False
    try:
        return call(x, "fast")
    finally:
        _fused_cpu.ENABLED = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (3)")
    parser.add_argument("--once", action="store_true", help="only this process's allocator")
    parser.add_argument("--case", help="only the cases whose name contains this text")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    run(3 if args.quick else 9, args.case)
    if not args.once:
        extra = (["--quick"] if args.quick else []) + (["--case", args.case] if args.case else [])
        return rerun_mmap_free([__file__, "--once", *extra])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
