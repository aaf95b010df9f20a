"""``eval`` and ``compare``: runs against their ground truth, per octave."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import _SCHEDULER_HELP, _drive, _scheduler

_EVAL_HELP = (
    "Per octave: sliced Wasserstein distance (x1000) of random views of the learned scale space "
    "and of the truth, PSNR and SSIM against the truth, scale consistency (zoom k "
    "box-downsampled vs zoom k-1, same centre), seams (half-overlapping views; gradient across "
    "tile borders of the dask pyramid), each beside the baseline: bicubic zoom of the coarsest "
    "ground-truth view. Octaves finer than the data have no truth metrics.")


def _add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--octaves", type=int, help="octaves to evaluate (default: the run's)")
    p.add_argument("--seed", type=int, help="scale space to render (runs on several images)")
    p.add_argument("--views", type=int, default=64,
                   help="random views per octave and metric (default 64)")
    p.add_argument("--inception", metavar="PT",
                   help="local FID Inception-v3 weights for FID/KID: a .pth state dict or "
                   ".safetensors (read as tensors only; never downloaded; without it FID/KID "
                   "are skipped)")
    p.add_argument("--device", default="auto")
    p.add_argument("--scheduler", metavar="ADDRESS", help=_SCHEDULER_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_eval_args(args: argparse.Namespace) -> None:
    if args.octaves is not None and args.octaves < 0:
        raise ValueError(f"--octaves must be >= 0, got {args.octaves}")
    if args.views < 2:
        raise ValueError(f"--views must be >= 2, got {args.views}")


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate runs against their ground truth, per octave, with the bicubic baseline",
        description=_EVAL_HELP + " Also the detail (gradient energy) at every octave and the "
        "model's size against the truth pyramid's. Prints the table; --json writes it, --plots "
        "writes metrics.png and contact_sheet.png (learned | truth | bicubic at every zoom). "
        "Several RUNs (e.g. known and unknown positions) are evaluated against the same truth "
        "and printed in one table; --json and --plots are then folders (a report and a plot "
        "folder per run, named after it, plus comparison.png and contact_sheet.png with a "
        "column per run). A run trained on a collection (without --truth) is evaluated against "
        "its images' patches: SWD per zoom and image beside the overview zoomed in.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directory (or several)")
    p.add_argument("--truth", metavar="IMAGE",
                   help="ground-truth image (default: the first run's training image)")
    p.add_argument("--json", metavar="FILE", help="write the report as JSON")
    p.add_argument("--plots", metavar="DIR", help="write metrics.png and contact_sheet.png")
    p.add_argument("--center", nargs=2, type=float, metavar=("CY", "CX"),
                   help="contact sheet centre in scene units (default: the busiest region)")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as markdown (model / bicubic in each cell)")
    _add_eval_options(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from napari_scalespace._allocator import keep_large_allocations
    from napari_scalespace.eval.compare import eval_steps, run_collection, run_image
    from napari_scalespace.eval.evaluate import (
        compression_line,
        format_table,
        markdown_table,
        side_by_side_markdown,
    )

    keep_large_allocations()
    _check_eval_args(args)
    if args.truth is None and run_collection(args.runs[0]) is not None:
        return _eval_collection(args)
    image = args.truth or run_image(args.runs[0])
    if image is None:
        raise ValueError(f"{args.runs[0]}: the run names no image file that exists; pass "
                         f"--truth")
    several = len(args.runs) > 1
    labels = [Path(run).resolve().name for run in args.runs]
    if several and len(set(labels)) != len(labels):
        raise ValueError(f"the runs need distinct folder names (reports are named after "
                         f"them), got {labels}")
    reports, written = [], []
    with _scheduler(args.scheduler) as client:
        for run, label in zip(args.runs, labels, strict=True):
            json_path = args.json and (Path(args.json) / f"{label}.json" if several
                                       else args.json)
            plots = args.plots and (Path(args.plots) / label if several else args.plots)
            steps = eval_steps(run, image, json_path, plots, views=args.views,
                               octaves=args.octaves, seed=args.seed, device=args.device,
                               inception=args.inception,
                               centre=tuple(args.center) if args.center else None,
                               client=client)
            _, report, files = _drive(steps, args.quiet, {"eval": "step"})
            reports.append(report)
            written += files.values()
    if several:
        print(side_by_side_markdown(reports, labels))
        if args.plots:
            from napari_scalespace.eval.compare import CONTACT, comparison_sheet
            from napari_scalespace.eval.plots import plot_comparison

            written.append(plot_comparison(reports, labels,
                                           Path(args.plots) / "comparison.png"))
            written.append(comparison_sheet(
                args.runs, labels, image, Path(args.plots) / CONTACT, args.octaves,
                tuple(args.center) if args.center else None, args.device))
    else:
        r = reports[0]
        if args.markdown:
            print(markdown_table(r) + (f"\n\n{compression_line(r)}" if r.compression else ""))
        else:
            print(format_table(r))
    for path in written:
        print(f"wrote {path}")
    return 0


def _eval_collection(args: argparse.Namespace) -> int:
    """``eval`` of a run trained on a collection: SWD against each image's patches."""
    from napari_scalespace.eval.collection import collection_markdown
    from napari_scalespace.eval.compare import collection_eval_steps

    if len(args.runs) > 1:
        raise ValueError("evaluate runs trained on a collection one at a time")
    if args.inception or args.scheduler:
        raise ValueError("--inception and --scheduler are not supported for collections")
    steps = collection_eval_steps(args.runs[0], None, args.json, args.plots, views=args.views,
                                  octaves=args.octaves, seed=args.seed, device=args.device,
                                  centre=tuple(args.center) if args.center else None)
    _, report, files = _drive(steps, args.quiet, {"eval": "zoom"})
    print(collection_markdown(report))
    for path in files.values():
        print(f"wrote {path}")
    return 0


def _add_compare(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="export a run's learned pyramid and its ground truth on one grid, then evaluate",
        description="Write OUT/learned.zarr (the run's scale space) and OUT/truth.zarr (IMAGE "
        "cut on the same grid) to open side by side in napari, then evaluate as `eval` does "
        "into OUT/metrics.json, OUT/metrics.png and OUT/contact_sheet.png. " + _EVAL_HELP,
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--image", help="ground-truth image (default: the run's training image)")
    p.add_argument("--out", required=True,
                   help="output folder (not the run folder; other files in it are kept)")
    p.add_argument("--reuse", action="store_true",
                   help="keep complete pyramids already in OUT made on the same grid from the "
                   "same checkpoint; export stale ones again")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the pyramids already in OUT (written by this command)")
    _add_eval_options(p)
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    from napari_scalespace._allocator import keep_large_allocations
    from napari_scalespace.eval.compare import compare_steps, run_image
    from napari_scalespace.eval.evaluate import format_table

    keep_large_allocations()
    _check_eval_args(args)
    image = args.image or run_image(args.run)
    if image is None:
        raise ValueError(f"{args.run}: the run names no image file that exists; pass --image")
    with _scheduler(args.scheduler) as client:
        steps = compare_steps(args.run, image, args.out, octaves=args.octaves, seed=args.seed,
                              device=args.device, views=args.views, reuse=args.reuse,
                              inception=args.inception, client=client,
                              overwrite=args.overwrite,
                              notify=lambda text: print(text, file=sys.stderr, flush=True))
        _, report, files = _drive(steps, args.quiet, {"learned": "tile", "truth": "tile"})
    print(format_table(report))
    print(f"wrote {Path(args.out) / 'learned.zarr'}, {Path(args.out) / 'truth.zarr'}, "
          + ", ".join(str(p) for p in files.values()))
    return 0
