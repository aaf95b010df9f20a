"""Whole-slide scale: training speed, truth export and evaluation on 16,384- and 100,000-px
images against the 1024-px sample, with each process's peak memory.

    python benchmarks/bench_slides.py                       # all of it (about 20 minutes)
    python benchmarks/bench_slides.py --only train --rounds 3 --steps 8

The large images are made from the bundled H&E crop by ``make_slides.py`` (into ``--out``,
once): a 16,384-px pyramidal OME-TIFF (512-px tiles, zlib, 4 sub-resolutions) and a
100,000-px OME-Zarr. Every measurement runs in a child process of its own (its peak resident
memory, ``ru_maxrss``, is its figure):

- **train**: ``small`` on each image (octaves: 4 for the sample, 8 for the large ones), two
  warm-up steps, then ``--steps`` timed steps (each step's own time: waiting for its patches
  included, the final checkpoint not); the rounds alternate the images so that the
  machine's drift falls on all; the median seconds per step and the ratio to the sample. The
  same again with the mmap-free allocator. The last round's runs are kept (a checkpoint) for
  **eval**.
- **truth**: ``napari-scalespace truth`` of the 16,384-px image at 8 octaves (its level 0 is
  the image) against **copy**, reading the image's pixels once and writing them once into a
  zarr array of the same chunks (64-px tiles, default compression), alternated; then the
  100,000-px image at 6 octaves (memory and time; at 8 octaves its finest level, 16,384 px a
  side, is area-averaged from the 50,000-px level: 7.5 G pixels decoded, about 15 minutes
  here).
- **eval**: ``napari-scalespace eval`` of the 100,000-px run (8 views per octave).

Figures go to docs/benchmarks.md ("Whole slides").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "napari_scalespace" / "data" / "samples" / "he_1024.jpg"
MMAP_FREE = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_train(image: str, octaves: int, steps: int, threads: int, run: str) -> dict:
    from napari_scalespace.data import open_source
    from napari_scalespace.data.collection import source_record
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.train.trainer import Trainer

    start = time.perf_counter()
    source = open_source(image)
    shutil.rmtree(run, ignore_errors=True)
    trainer = Trainer(run, [source], get_preset("small", octaves=octaves), seed=0,
                      threads=threads, source_info=source_record([source], [image]))
    ready = time.perf_counter() - start
    try:
        seconds = [event.seconds for event in trainer.run(2 + steps)][2:]
        per_step = sum(seconds) / steps  # the steps themselves, not the final checkpoint
    finally:
        trainer.close()
    return {"per_step": per_step, "startup": ready, "peak_mb": peak_mb()}


def child_cli(args: list[str]) -> dict:
    from napari_scalespace.cli import main

    start = time.perf_counter()
    code = main(args)
    if code:
        raise SystemExit(code)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def child_copy(image: str, out: str, tile: int) -> dict:
    """Read every pixel of the image once (its native strips of tiles) and write them once."""
    import numpy as np
    import zarr

    from napari_scalespace.data import open_source

    start = time.perf_counter()
    source = open_source(image)
    plane = source._levels[0]
    shutil.rmtree(out, ignore_errors=True)
    arr = zarr.open_group(out, mode="w", zarr_format=3).create_array(
        "0", shape=(3, plane.height, plane.width), dtype=np.uint8, chunks=(3, tile, tile))
    band = 512
    for r in range(0, plane.height, band):
        block = plane.read(r, min(plane.height, r + band), 0, plane.width)
        arr[:, r:r + block.shape[0]] = block.transpose(2, 0, 1)
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_mb()}


def spawn(args: list[str], env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True,
                         capture_output=True, text=True, env={**os.environ, **(env or {})})
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_images(out: Path) -> dict[str, Path]:
    images = {"sample 1024": SAMPLE, "OME-TIFF 16384": out / "he_16k.ome.tif",
              "OME-Zarr 100000": out / "he_100k.ome.zarr"}
    maker = Path(__file__).with_name("make_slides.py")
    for kind, side, path in (("tiff", 16384, images["OME-TIFF 16384"]),
                             ("zarr", 100000, images["OME-Zarr 100000"])):
        if not path.exists():
            subprocess.run([sys.executable, str(maker), kind, str(path), "--side", str(side)],
                           check=True)
    return images


OCTAVES = {"sample 1024": 4, "OME-TIFF 16384": 8, "OME-Zarr 100000": 8}


def bench_train(images: dict, out: Path, rounds: int, steps: int, threads: int) -> list[str]:
    lines = ["| image | octaves | allocator | s/step (median) | vs sample | start s | peak MB |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for label, env in (("default", None), ("mmap-free", MMAP_FREE)):
        got: dict[str, list[dict]] = {k: [] for k in images}
        for _ in range(rounds):
            for name, path in images.items():
                run = out / f"run-{name.split()[-1]}"
                r = spawn(["train", str(path), str(OCTAVES[name]), str(steps), str(threads),
                           str(run)], env)
                got[name].append(r)
                print(f"[train/{label}] {name}: {r}", flush=True)
        base = statistics.median(r["per_step"] for r in got["sample 1024"])
        for name, rs in got.items():
            med = statistics.median(r["per_step"] for r in rs)
            lines.append(f"| {name} | {OCTAVES[name]} | {label} | {med:.3f} | "
                         f"{med / base:.2f}x | {statistics.median(r['startup'] for r in rs):.1f} |"
                         f" {max(r['peak_mb'] for r in rs):.0f} |")
    return lines


def bench_truth(images: dict, out: Path, rounds: int) -> list[str]:
    tiff = str(images["OME-TIFF 16384"])
    lines = ["| job | seconds (median) | ratio | peak MB |", "|---|---:|---:|---:|"]
    truth, copy = [], []
    for _ in range(rounds):
        truth.append(spawn(["cli", "truth", tiff, "--out", str(out / "truth-16k.zarr"),
                            "--view-size", "64", "--octaves", "8", "--overwrite", "--quiet"]))
        copy.append(spawn(["copy", tiff, str(out / "copy-16k.zarr"), "64"]))
        print(f"[truth] {truth[-1]} / copy {copy[-1]}", flush=True)
    base = statistics.median(r["seconds"] for r in copy)
    for name, rs in (("copy: read + write the 16,384-px image once", copy),
                     ("truth 16,384 px, 8 octaves", truth)):
        med = statistics.median(r["seconds"] for r in rs)
        lines.append(f"| {name} | {med:.1f} | {med / base:.2f}x | "
                     f"{max(r['peak_mb'] for r in rs):.0f} |")
    big = spawn(["cli", "truth", str(images["OME-Zarr 100000"]), "--out",
                 str(out / "truth-100k.zarr"), "--view-size", "64", "--octaves", "6",
                 "--overwrite", "--quiet"])
    print(f"[truth] 100k: {big}", flush=True)
    lines.append(f"| truth 100,000 px, 6 octaves | {big['seconds']:.1f} | - | "
                 f"{big['peak_mb']:.0f} |")
    return lines


def bench_eval(images: dict, out: Path) -> list[str]:
    run = out / "run-100000"
    r = spawn(["cli", "eval", str(run), "--truth", str(images["OME-Zarr 100000"]),
               "--views", "8", "--json", str(out / "eval-100k.json")])
    print(f"[eval] {r}", flush=True)
    return ["| job | seconds | peak MB |", "|---|---:|---:|",
            f"| eval of the 100,000-px run, 8 views per octave | {r['seconds']:.0f} | "
            f"{r['peak_mb']:.0f} |"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, rest = argv[1], argv[2:]
        if kind == "train":
            result = child_train(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), rest[4])
        elif kind == "copy":
            result = child_copy(rest[0], rest[1], int(rest[2]))
        else:
            result = child_cli(rest)
        print(json.dumps(result))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "slides")
    p.add_argument("--only", nargs="+", choices=["train", "truth", "eval"],
                   default=["train", "truth", "eval"])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    images = make_images(args.out)
    text = []
    if "train" in args.only:
        text += ["### training", "",
                 *bench_train(images, args.out, args.rounds, args.steps, args.threads), ""]
    if "truth" in args.only:
        text += ["### truth export", "", *bench_truth(images, args.out, args.rounds), ""]
    if "eval" in args.only:
        text += ["### evaluation", "", *bench_eval(images, args.out), ""]
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
