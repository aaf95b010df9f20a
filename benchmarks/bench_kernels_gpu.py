"""Time the Triton kernels against ``ref`` (and the CPU ``fast`` path) on a GPU.

Usage: ``python benchmarks/bench_kernels_gpu.py [--rounds 20] [--dtype float32|float16]``

On a CUDA device: measures the device's copy bandwidth (a 256 MiB ``copy_``) and matmul rate
(4096^2 ``mm``), then for each op that has a Triton kernel, on the layer shapes of
``benchmarks/bench_ops.py`` (those of the published 256-px generators), times ``triton`` and
``ref`` on the GPU (forward, and forward + backward) side by side, and ``fast`` on the CPU on
the same shapes for orientation, and prints each kernel's achieved bytes/s and FLOP/s as a
fraction of the measured copy bandwidth and matmul rate. Bytes are the input, output and
filter once each (what a perfectly fused kernel must move); FLOPs are 2 per tap actually
applied (inserted zeros excluded).

On a machine without a CUDA device it says so and exits 0 without measuring anything (the
Triton kernels are checked on the CPU by ``tests/test_ops_triton.py`` through triton's
interpreter, which is far too slow to time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_ops import CASES


def _timed(fn, rounds: int, sync) -> float:
    for _ in range(2):
        fn()
    sync()
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def device_rates(dev: torch.device, dtype: torch.dtype) -> tuple[float, float]:
    sync = torch.cuda.synchronize
    a = torch.empty(64 * 2**20, device=dev, dtype=torch.float32)
    b = torch.empty_like(a)
    copy_s = _timed(lambda: b.copy_(a), 10, sync)
    m = torch.randn(4096, 4096, device=dev, dtype=dtype)
    mm_s = _timed(lambda: m @ m, 10, sync)
    return 2 * a.numel() * 4 / copy_s, 2 * 4096**3 / mm_s


def work(case, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(bytes, FLOPs) of one forward call."""
    nbytes = x.numel() * x.element_size() + y.numel() * y.element_size()
    if case.kind == "upfirdn":
        taps = case.taps_up / case.up  # non-zero taps per output sample and axis
        flops = 2 * y.numel() * 2 * taps  # separable: two passes
    elif case.kind == "flrelu":
        mid = y.numel() * case.down**2  # samples at the up-sampled rate
        down_taps = case.taps_down**2 if case.radial_down else 2 * case.taps_down
        flops = 2 * mid * 2 * case.taps_up / case.up + 2 * y.numel() * down_taps + 4 * mid
    else:
        flops = 3 * y.numel()
    return nbytes, flops


def row(case, dev: torch.device, dtype: torch.dtype, rounds: int, bw: float, mm: float) -> str:
    sync = torch.cuda.synchronize
    x_cpu, call = case.build()
    x = x_cpu.to(dev, dtype)
    with torch.inference_mode():
        y = call(x, "triton")
        t_tri = _timed(lambda: call(x, "triton"), rounds, sync)
        t_ref = _timed(lambda: call(x, "ref"), rounds, sync)
        t_cpu = _timed(lambda: call(x_cpu, "fast"), max(3, rounds // 4), lambda: None)
    xg = x.clone().requires_grad_(True)
    fb = {impl: _timed(lambda impl=impl: call(xg, impl).float().square().mean().backward(),
                       max(3, rounds // 2), sync) for impl in ("triton", "ref")}
    nbytes, flops = work(case, x, y)
    return (f"| {case.name} | {t_tri * 1e3:.3f} | {t_ref * 1e3:.3f} | {t_ref / t_tri:.1f}x | "
            f"{fb['triton'] * 1e3:.3f} | {fb['ref'] * 1e3:.3f} | {t_cpu * 1e3:.1f} | "
            f"{nbytes / t_tri / 1e9:.0f} ({100 * nbytes / t_tri / bw:.0f}%) | "
            f"{flops / t_tri / 1e12:.2f} ({100 * flops / t_tri / mm:.1f}%) |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device here: nothing to measure. The Triton kernels are tested on the "
              "CPU through triton's interpreter (tests/test_ops_triton.py); run this script on "
              "a machine with an NVIDIA GPU for their speed.")
        return 0
    from napari_scalespace.ops import dispatch

    why = dispatch.triton_unavailable()
    if why is not None:
        print(f"Triton is unavailable on this GPU machine: {why}")
        return 1
    dev = torch.device("cuda")
    dtype = getattr(torch, args.dtype)
    bw, mm = device_rates(dev, dtype)
    print(f"{torch.cuda.get_device_name(dev)}, torch {torch.__version__}, {args.dtype}: copy "
          f"{bw / 1e9:.0f} GB/s, matmul {mm / 1e12:.1f} TFLOP/s")
    print("| case | triton ms | ref ms | ref/triton | f+b triton ms | f+b ref ms | "
          "CPU fast ms | triton GB/s (% copy) | triton TFLOP/s (% mm) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    op_of = {"upfirdn": "upfirdn2d", "bias_act": "bias_act", "flrelu": "filtered_lrelu"}
    for case in CASES:
        if op_of[case.kind] not in dispatch.TRITON_OPS:
            continue
        print(row(case, dev, dtype, args.rounds, bw, mm), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
