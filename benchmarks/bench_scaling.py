"""Scaling on one machine: 1 vs 2 processes for training (torchrun) and export (dask).

    python benchmarks/bench_scaling.py [--run RUN] [--steps 30] [--rounds 2]

- **train**: ``napari-scalespace train`` (one process, torch on all cores) against
  ``torchrun --nproc_per_node 2`` (two processes of one thread each, half the batch each), same
  preset, image and global batch. Seconds per step = (wall time of N steps - wall time of 1
  step) / (N - 1), which removes start-up (imports, data, process group).
- **export**: ``napari-scalespace export RUN`` in one process against ``--scheduler local:1``
  and ``local:2``: wall time of the whole command, cluster start-up included (reported too).

Candidates run alternately, ``rounds`` times; the table gives medians. Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import machine_line

ROOT = Path(__file__).resolve().parents[1]
IMAGE = ROOT / "src/napari_scalespace/data/samples/he_1024.jpg"
CLI = [sys.executable, "-m", "napari_scalespace"]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


def timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stderr[-3000:]}")
    return time.perf_counter() - t0


def train_cmd(procs: int, out: Path, steps: int, preset: str) -> list[str]:
    args = ["train", str(IMAGE), "--out", str(out), "--preset", preset, "--steps", str(steps),
            "--device", "cpu", "--set", "checkpoint_every=100000"]
    if procs == 1:
        return [*CLI, *args]
    return [*TORCHRUN, "--nproc_per_node", str(procs), "-m", "napari_scalespace", *args]


def bench_train(steps: int, rounds: int, preset: str, tmp: Path) -> dict[int, float]:
    per_step: dict[int, list[float]] = {1: [], 2: []}
    for r in range(rounds):
        for procs in (1, 2):
            runs = [tmp / f"t{procs}-{r}-{n}" for n in (1, steps)]
            t1 = timed(train_cmd(procs, runs[0], 1, preset))
            tn = timed(train_cmd(procs, runs[1], steps, preset))
            per_step[procs].append((tn - t1) / (steps - 1))
            for p in runs:
                shutil.rmtree(p, ignore_errors=True)
    return {k: statistics.median(v) for k, v in per_step.items()}


def bench_export(run: Path, octaves: int, rounds: int, tmp: Path) -> dict[str, float]:
    modes = {"1 process": [], "local:1": [], "local:2": []}
    for _ in range(rounds):
        for mode in modes:
            out = tmp / "export.zarr"
            cmd = [*CLI, "export", str(run), "--out", str(out), "--octaves", str(octaves),
                   "--device", "cpu", "--quiet"]
            if mode != "1 process":
                cmd += ["--scheduler", mode]
            modes[mode].append(timed(cmd))
            shutil.rmtree(out, ignore_errors=True)
    return {k: statistics.median(v) for k, v in modes.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="run to export (default: the shipped tiny run)")
    p.add_argument("--octaves", type=int, default=4, help="export octaves (default 4)")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--preset", default="small")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    from napari_scalespace.data.samples import sample_run

    run = args.run or sample_run()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(f"\n### {machine_line()}\n")
        train = bench_train(args.steps, args.rounds, args.preset, tmp)
        print(f"| train `{args.preset}`, global batch of the preset | s / step | speed-up |")
        print("|---|---:|---:|")
        print(f"| 1 process (torch threads = cores) | {train[1]:.2f} | 1.00x |")
        print(f"| torchrun, 2 processes x 1 thread (gloo) | {train[2]:.2f} | "
              f"{train[1] / train[2]:.2f}x |")
        export = bench_export(run, args.octaves, args.rounds, tmp)
        base = export["1 process"]
        print(f"\n| export {run.name}, {args.octaves} octaves | wall s | speed-up |")
        print("|---|---:|---:|")
        for mode, s in export.items():
            print(f"| {mode} | {s:.1f} | {base / s:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
