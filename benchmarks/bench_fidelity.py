"""The fidelity benchmark: every quality claim in docs/evaluation.md comes from this script.

`small` is trained on a fixed set of real images of three modalities at a fixed budget, one
run at a time, then each run is evaluated against its image beside bicubic zoom of the
zoom-0 view (`napari-scalespace eval`), and one table is printed: per image and octave PSNR,
SWD, detail (gradient energy, model / truth), consistency PSNR, seam PSNR and model bytes,
each checked against the targets below.

    python benchmarks/bench_fidelity.py                       # 20 minutes per image, 2 threads
    python benchmarks/bench_fidelity.py --steps 600           # a step budget (noisy machines)
    python benchmarks/bench_fidelity.py --resume-minutes 20   # then 20 more minutes per run
    python benchmarks/bench_fidelity.py --ablation --steps 200 --images he bluemarble

Images (1024 x 1024 RGB, full resolution, never resampled):

- ``he``: the bundled H&E crop (brightfield histology, CC0);
- ``bluemarble``: the bundled Blue Marble crop (satellite mosaic, public domain);
- ``retina``: the centre 1024 x 1024 of ``retina.jpg`` shipped in scikit-image's wheel (a
  fundus photograph, CC0), cropped into ``OUT/data`` when the benchmark runs (not in the repo).

While a run trains, each checkpoint it writes (every 100 steps in `small`) is copied into
``RUN-snapshots/`` with the seconds since the start, and ``--curve`` evaluates five of them,
evenly spread: the fidelity figures against training time (``NAME-curve.json`` and
``NAME-curve.png`` per image).

``--ablation`` trains each variant of :data:`VARIANTS` (the method before spatial memory,
each lever added alone, all of them) on each image at the same budget and prints a table of
the means over the data octaves. Runs that already finished are evaluated again, not
retrained: delete ``OUT`` to start over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "src" / "napari_scalespace" / "data" / "samples"

TARGETS = {"psnr_octave0": 28.0, "consistency_psnr": 30.0, "seam_psnr": 35.0,
           "detail_low": 0.5, "detail_high": 2.0}
"""What every data octave must reach: PSNR above bicubic zoom's (octave 0: at
least 28 dB), SWD below bicubic's from octave 1 on, detail between 0.5x and 2x the truth's,
consistency PSNR >= 30 dB, seam PSNR >= 35 dB."""

BEFORE = {"memory_channels": 0, "memory_output": "false", "reconstruction_lowpass": "false",
          "detail_weight": 0, "detail_rms": "false", "warmup_fraction": 0, "skew_fraction": 0}
"""The method before spatial memory, planned schedule and detail-keeping losses."""

VARIANTS: dict[str, dict[str, object]] = {
    "before": BEFORE,
    "+memory": {**BEFORE, "memory_channels": 8, "memory_output": "true"},
    "+schedule": {k: v for k, v in BEFORE.items() if not k.endswith("_fraction")},
    "+losses": {**BEFORE, "reconstruction_lowpass": "true", "detail_weight": 50,
                "detail_rms": "true"},
    "all": {},
    "+fine-level": {"memory_output_levels": 1},
}
"""Ablation variants: ``--set`` overrides of `small` (the empty one is today's default). The
levers: the spatial memory (read by the network and added to the output), the schedule
planned in fractions of the run, and the losses (low-pass reconstruction + detail);
``+fine-level`` sets the memory level past the finest that holds the image's channels only
(``memory_output_levels = 1``, `small`'s default since it was measured: the same as ``all``
now)."""


def image_paths(out: Path, names: list[str]) -> dict[str, Path]:
    paths = {"he": SAMPLES / "he_1024.jpg", "bluemarble": SAMPLES / "blue_marble_1024.jpg"}
    if "retina" in names:
        import skimage
        from PIL import Image

        target = out / "data" / "retina_1024.png"
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(Path(skimage.__file__).parent / "data" / "retina.jpg") as im:
                w, h = im.size
                left, top = (w - 1024) // 2, (h - 1024) // 2
                im.convert("RGB").crop((left, top, left + 1024, top + 1024)).save(target)
        paths["retina"] = target
    unknown = sorted(set(names) - set(paths))
    if unknown:
        raise SystemExit(f"unknown image(s) {unknown}: choose from he, bluemarble, retina")
    return {n: paths[n] for n in names}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "napari_scalespace", *args]


def snapshot_loop(run: Path, into: Path, start: float, stop: threading.Event) -> None:
    """Copy each new checkpoint of ``run`` into ``into/step-N`` (a run folder of its own,
    with ``seconds.json``) until ``stop``."""
    seen: set[str] = set()
    while not stop.wait(2.0):
        latest = run / "latest"
        if not latest.is_file():
            continue
        name = latest.read_text().strip()
        if not name or name in seen:
            continue
        target = into / name
        try:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / "config.json", target / "config.json")
            shutil.copytree(run / "checkpoints" / name, target / "checkpoints" / name,
                            dirs_exist_ok=True)
            (target / "latest").write_text(name + "\n")
            (target / "seconds.json").write_text(json.dumps(time.monotonic() - start))
            seen.add(name)
        except OSError:  # removed while copying (an older checkpoint): try the next one
            shutil.rmtree(target, ignore_errors=True)


def train(run: Path, image: Path, budget: list[str], threads: int, sets: dict,
          resume: bool = False) -> float:
    """Train (or resume) ``run``; returns the wall seconds."""
    args = ["train", str(image), "--out", str(run), "--preset", "small", "--threads",
            str(threads), "--seed", "0", *budget]
    if resume:
        args.append("--resume")
    for k, v in sets.items():
        args += ["--set", f"{k}={v}"]
    stop = threading.Event()
    start = time.monotonic()
    snap = threading.Thread(target=snapshot_loop,
                            args=(run, run.with_name(run.name + "-snapshots"), start, stop),
                            daemon=True)
    if not resume:
        snap.start()
    try:
        subprocess.run(cli(*args), check=True)
    finally:
        stop.set()
        if snap.is_alive():
            snap.join()
    return time.monotonic() - start


def evaluate(run: Path, image: Path, report: Path, views: int, plots: Path | None = None
             ) -> dict:
    args = ["eval", str(run), "--truth", str(image), "--views", str(views), "--json",
            str(report), "--quiet"]
    if plots is not None:
        args += ["--plots", str(plots)]
    subprocess.run(cli(*args), check=True, stdout=subprocess.DEVNULL)
    return json.loads(report.read_text())


def octave_rows(report: dict) -> list[dict]:
    """Per data octave: the benchmark's figures and whether each meets its target."""
    rows = []
    for o in report["octaves"]:
        if not o["covered"]:
            continue
        k = o["octave"]
        truth = o.get("gradient_energy_truth") or 0.0
        detail = o["gradient_energy"] / truth if truth else None
        row = {"octave": k, "psnr": o["psnr"], "psnr_bicubic": o["psnr_bicubic"],
               "swd": o["swd"], "swd_bicubic": o["swd_bicubic"], "detail": detail,
               "consistency": o.get("consistency_psnr"), "seam": o.get("seam_psnr")}
        short = []
        if k == 0 and row["psnr"] < TARGETS["psnr_octave0"]:
            short.append(f"PSNR {row['psnr'] - TARGETS['psnr_octave0']:+.1f} dB vs 28")
        elif k > 0 and row["psnr"] <= row["psnr_bicubic"]:
            short.append(f"PSNR {row['psnr'] - row['psnr_bicubic']:+.1f} dB vs bicubic")
        if k > 0 and row["swd"] >= row["swd_bicubic"]:
            short.append(f"SWD {row['swd'] / row['swd_bicubic']:.2f}x bicubic")
        if detail is not None and not TARGETS["detail_low"] <= detail <= TARGETS["detail_high"]:
            short.append(f"detail {detail:.2f}x")
        if row["consistency"] is not None and row["consistency"] < TARGETS["consistency_psnr"]:
            short.append(f"consistency {row['consistency'] - 30:+.1f} dB vs 30")
        if row["seam"] is not None and row["seam"] < TARGETS["seam_psnr"]:
            short.append(f"seams {row['seam'] - 35:+.1f} dB vs 35")
        row["short"] = short
        rows.append(row)
    return rows


def _f(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def fidelity_table(results: dict[str, dict]) -> str:
    """Markdown: a row per image and data octave."""
    lines = ["| image | steps | model MB (f16) | octave | PSNR dB model / bicubic | "
             "SWD x1000 model / bicubic | detail model/truth | consistency dB | seam dB | "
             "short of the targets |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        mb = res["report"].get("compression") or {}
        size = _f(mb.get("generator_float16", 0) / 1e6 if mb else None, ".2f")
        for r in octave_rows(res["report"]):
            lines.append(
                f"| {name} | {res['steps']} | {size} | {r['octave']} | "
                f"{_f(r['psnr'], '.2f')} / {_f(r['psnr_bicubic'], '.2f')} | "
                f"{_f(r['swd'], '.1f')} / {_f(r['swd_bicubic'], '.1f')} | "
                f"{_f(r['detail'], '.2f')} | {_f(r['consistency'], '.1f')} | "
                f"{_f(r['seam'], '.1f')} | {'; '.join(r['short']) or 'met'} |")
    return "\n".join(lines)


def summary(report: dict) -> dict:
    rows = octave_rows(report)
    fine = [r for r in rows if r["octave"] > 0]
    return {
        "psnr_mean": float(np.mean([r["psnr"] for r in rows])),
        "psnr_octave0": rows[0]["psnr"],
        "psnr_over_bicubic": float(np.mean([r["psnr"] - r["psnr_bicubic"] for r in fine])),
        "swd_mean": float(np.mean([r["swd"] for r in rows])),
        "swd_ratio": float(np.mean([r["swd"] / r["swd_bicubic"] for r in fine])),
        "detail_min": min(r["detail"] for r in rows if r["detail"] is not None),
        "consistency_min": min(r["consistency"] for r in fine if r["consistency"] is not None),
        "targets_met": sum(not r["short"] for r in rows), "octaves": len(rows),
    }


def summary_table(results: dict[str, dict[str, dict]]) -> str:
    """Markdown: a row per variant and image (means over the data octaves)."""
    lines = ["| variant | image | steps | PSNR dB mean | octave 0 | PSNR - bicubic (oct. 1+) | "
             "SWD / bicubic (oct. 1+) | detail min | consistency min | octaves meeting all "
             "targets |", "|---|---|---|---|---|---|---|---|---|---|"]
    for variant, per_image in results.items():
        for name, res in per_image.items():
            s = summary(res["report"])
            lines.append(
                f"| {variant} | {name} | {res['steps']} | {s['psnr_mean']:.2f} | "
                f"{s['psnr_octave0']:.2f} | {s['psnr_over_bicubic']:+.2f} | "
                f"{s['swd_ratio']:.2f} | {s['detail_min']:.2f} | {s['consistency_min']:.1f} | "
                f"{s['targets_met']}/{s['octaves']} |")
    return "\n".join(lines)


def steps_of(run: Path) -> int:
    latest = (run / "latest").read_text().strip()
    return int(latest.split("-")[1])


def curve(run: Path, image: Path, views: int, points: int = 5) -> list[dict]:
    """Evaluate ``points`` snapshots of ``run`` evenly spread over its steps (the last one
    included): ``[{seconds, step, summary}]``."""
    snaps = sorted(run.with_name(run.name + "-snapshots").glob("step-*"))
    if len(snaps) > points:
        snaps = [snaps[round(i * (len(snaps) - 1) / (points - 1))] for i in range(points)]
    points = []
    for snap in snaps:
        report = evaluate(snap, image, snap / "report.json", views)
        points.append({"seconds": json.loads((snap / "seconds.json").read_text()),
                       "step": steps_of(snap), **summary(report)})
    return points


def resumed_point(points: list[dict], report: dict, steps: int, minutes: float) -> dict:
    """The curve's point for the run resumed for ``minutes`` after its last snapshot."""
    return {"seconds": points[-1]["seconds"] + 60 * minutes, "step": steps, "resumed": True,
            **summary(report)}


def plot_curve(points: list[dict], path: Path, title: str) -> None:
    """The fidelity figures against training minutes (a resumed point, if any, hollow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [p["seconds"] / 60 for p in points]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    for ax, key, label in zip(axes, ("psnr_mean", "swd_ratio", "detail_min", "consistency_min"),
                              ("mean PSNR dB (data octaves)", "SWD / bicubic (octaves 1+)",
                               "detail model/truth (lowest octave)",
                               "consistency PSNR dB (lowest octave)"), strict=True):
        ax.plot(minutes, [p[key] for p in points], "o-")
        later = [i for i, p in enumerate(points) if p.get("resumed")]
        if later:
            ax.plot([minutes[i] for i in later], [points[i][key] for i in later], "o",
                    mfc="white", ms=9, label="resumed")
            ax.legend(fontsize=8)
        target = {"detail_min": TARGETS["detail_low"],
                  "consistency_min": TARGETS["consistency_psnr"]}.get(key)
        if target is not None:
            ax.axhline(target, color="grey", ls="--", lw=0.8)
        ax.set_xlabel("training minutes")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", nargs="+", default=["he", "bluemarble", "retina"])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, default=20.0)
    budget.add_argument("--steps", type=int, help="a step budget instead of minutes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--views", type=int, default=32, help="views per octave in the evaluation")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "fidelity")
    p.add_argument("--ablation", action="store_true", help="every variant of VARIANTS")
    p.add_argument("--variants", nargs="+", help="only these variants (implies --ablation)")
    p.add_argument("--resume-minutes", type=float,
                   help="then resume each run for this many minutes and evaluate again")
    p.add_argument("--curve", action="store_true", help="evaluate every snapshot too")
    p.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = p.parse_args(argv)
    variants = (args.variants or list(VARIANTS)) if args.ablation or args.variants else ["all"]
    images = image_paths(args.out, args.images)
    budget = (["--steps", str(args.steps)] if args.steps else
              ["--steps", "1000000", "--time-limit", f"{args.minutes:g}"])
    results: dict[str, dict[str, dict]] = {}
    later: dict[str, dict[str, dict]] = {}
    for variant in variants:
        for name, image in images.items():
            run = args.out / variant / name
            if not (run / "latest").is_file():
                print(f"[fidelity] {variant} / {name}: training", flush=True)
                train(run, image, budget, args.threads, VARIANTS[variant])
            report = evaluate(run, image, run.with_name(name + ".json"), args.views,
                              plots=run.with_name(name + "-plots"))
            results.setdefault(variant, {})[name] = {"report": report, "steps": steps_of(run)}
            if args.curve:
                points = curve(run, image, args.views)
                run.with_name(name + "-curve.json").write_text(json.dumps(points, indent=1))
                plot_curve(points, run.with_name(name + "-curve.png"),
                           f"{name}: `small`, {variant}")
            if args.resume_minutes:
                longer = args.out / variant / f"{name}-longer"
                if not (longer / "latest").is_file():
                    shutil.copytree(run, longer, ignore=shutil.ignore_patterns(".training*"))
                    print(f"[fidelity] {variant} / {name}: {args.resume_minutes:g} more minutes",
                          flush=True)
                    train(longer, image, ["--steps", "1000000", "--time-limit",
                                          f"{args.resume_minutes:g}"],
                          args.threads, VARIANTS[variant], resume=True)
                again = evaluate(longer, image, longer.with_name(name + "-longer.json"),
                                 args.views)
                later.setdefault(variant, {})[name] = {"report": again,
                                                       "steps": steps_of(longer)}
                curve_json = run.with_name(name + "-curve.json")
                if curve_json.is_file():  # the curve, continued by the resumed run
                    points = [p for p in json.loads(curve_json.read_text())
                              if not p.get("resumed")]
                    points.append(resumed_point(points, again, steps_of(longer),
                                                args.resume_minutes))
                    curve_json.write_text(json.dumps(points, indent=1))
                    plot_curve(points, run.with_name(name + "-curve.png"),
                               f"{name}: `small`, {variant} (then resumed)")
    text = []
    for variant, per_image in results.items():
        text += [f"### {variant}", "", fidelity_table(per_image), ""]
    text += ["### means over the data octaves", "", summary_table(results), ""]
    if later:
        both = {**{f"{v}": r for v, r in results.items()},
                **{f"{v}, resumed": r for v, r in later.items()}}
        text += ["### resumed", "", summary_table(both), ""]
        for variant, per_image in later.items():
            text += [f"### {variant}, resumed", "", fidelity_table(per_image), ""]
    out = "\n".join(text)
    print(out)
    if args.markdown:
        args.markdown.write_text(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
