"""Training speed of two commits side by side: each checked out, their steps alternated.

    python benchmarks/bench_train_commits.py BASE                  # BASE against the work tree
    python benchmarks/bench_train_commits.py BASE HEAD --presets small paper6 --rounds 5

Each commit is checked out into a temporary git worktree (the work tree itself, uncommitted
changes included, stands for ``HEAD`` when no second commit is given). Every round starts one
child process per candidate in turn (``PYTHONPATH`` = that checkout's ``src``), which builds a
trainer on the bundled H&E sample with the same seed, runs two warm-up steps, then times
``--steps`` training steps (default: the preset's R1 interval, so that the lazy R1 step is
counted once); the median over rounds of the seconds per step is reported with images per
second (the batch over a step's time, like the trainer's ``img/s``) and the ratio. Rounds
alternate the candidates, so the machine's drift falls on both. Then the same with the
mmap-free allocator (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``). Figures go to
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "napari_scalespace" / "data" / "samples" / "he_1024.jpg"
MMAP_FREE = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def child(preset_name: str, steps: int | None, threads: int) -> None:
    """Time training steps of the ``napari_scalespace`` on ``sys.path``; print one JSON line."""
    import time

    import napari_scalespace
    from napari_scalespace.data import open_source
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.train.trainer import Trainer

    preset = get_preset(preset_name, octaves=4)
    n = steps or preset.train.r1_interval
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(Path(tmp) / "run", [open_source(str(SAMPLE))], preset, seed=0,
                          threads=threads)
        try:
            for _ in range(2):
                trainer.step()
            start = time.perf_counter()
            for _ in range(n):
                trainer.step()
            per_step = (time.perf_counter() - start) / n
        finally:
            trainer.close()
    print(json.dumps({"per_step": per_step, "batch": preset.train.batch,
                      "package": napari_scalespace.__file__}))


def checkout(commit: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into),
                    commit], check=True, capture_output=True)
    return into


def run_child(src: Path, preset: str, steps: int | None, threads: int, env: dict) -> dict:
    cmd = [sys.executable, __file__, "--child", preset, "--threads", str(threads)]
    if steps:
        cmd += ["--steps", str(steps)]
    full = {**os.environ, **env, "PYTHONPATH": str(src)}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=full).stdout
    res = json.loads(out.strip().splitlines()[-1])
    if not Path(res["package"]).resolve().is_relative_to(src.resolve()):
        raise RuntimeError(f"the child imported {res['package']}, not the checkout in {src}")
    return res


def compare(candidates: dict[str, Path], presets: list[str], steps: int | None, rounds: int,
            threads: int, env: dict, label: str) -> None:
    print(f"\n### {label}\n")
    names = list(candidates)
    print(f"| preset | {' | '.join(f'{n}: s/step (img/s)' for n in names)} | "
          f"{names[0]} / {names[1]} time |")
    print("|---|" + "---:|" * (len(names) + 1))
    for preset in presets:
        times: dict[str, list[float]] = {n: [] for n in names}
        batch = 1
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                res = run_child(candidates[name], preset, steps, threads, env)
                times[name].append(res["per_step"])
                batch = res["batch"]
        med = {n: statistics.median(v) for n, v in times.items()}
        cells = " | ".join(f"{med[n]:.3f} ({batch / med[n]:.2f})" for n in names)
        print(f"| {preset} | {cells} | **{med[names[0]] / med[names[1]]:.2f}x** |", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base", nargs="?", help="the commit to compare against")
    p.add_argument("head", nargs="?", help="the other commit (default: the work tree)")
    p.add_argument("--presets", nargs="+", default=["small"])
    p.add_argument("--steps", type=int, help="timed steps per child (default: r1_interval)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.steps, args.threads)
        return 0
    if not args.base:
        p.error("give the BASE commit")
    with tempfile.TemporaryDirectory() as tmp:
        trees = []
        try:
            candidates = {}
            for commit in (args.base, args.head):
                if commit is None:
                    candidates["work tree"] = ROOT / "src"
                    continue
                tree = checkout(commit, Path(tmp) / commit.replace("/", "_"))
                trees.append(tree)
                candidates[commit] = tree / "src"
            print(f"training steps, {args.threads} threads, {args.rounds} rounds, "
                  f"{args.steps or 'r1_interval'} timed steps per child")
            compare(candidates, args.presets, args.steps, args.rounds, args.threads, {},
                    "default allocator")
            compare(candidates, args.presets, args.steps, args.rounds, args.threads,
                    MMAP_FREE, "mmap-free allocator")
        finally:
            for tree in trees:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(tree)], capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
