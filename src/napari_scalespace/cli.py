"""Command line: ``napari-scalespace COMMAND ...``, or ``python -m napari_scalespace COMMAND ...``.

Each subcommand is one ``cmd_<name>(args) -> int`` function plus one ``_add_<name>(subparsers)``
that declares its arguments and binds the function; adding a subcommand (``train``, ``render``,
``export``, ``eval``, ``bench``, ...) means writing that pair and listing the ``_add_`` function
in ``_SUBCOMMANDS``. Heavy imports (torch, the model) happen inside the ``cmd_`` functions so
that ``--help`` and ``--version`` stay instant; nothing here imports Qt or napari.
"""

from __future__ import annotations

import argparse
import platform
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from napari_scalespace import __version__

PROG = "napari-scalespace"


# --- info ---------------------------------------------------------------------------------------


def _add_info(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "info",
        help="show versions, threads, accelerators and the ops implementation in use",
        description="Show the package, Python and torch versions, torch's thread counts, CUDA "
        "and Triton availability, and which ops implementation impl='auto' picks.",
    )
    p.set_defaults(func=cmd_info)


def _triton_status() -> str:
    """Whether ``import triton`` works, tried in a fresh interpreter.

    Not in this process: triton's bundled LLVM segfaults when imported into a process that
    already holds Mesa's libLLVM (any process that has drawn an OpenGL canvas with llvmpipe,
    e.g. napari under Xvfb); a child process keeps ``info`` safe to call from anywhere.
    """
    if "triton" in sys.modules:
        return f"imported ({getattr(sys.modules['triton'], '__version__', 'unknown version')})"
    code = "import triton; print(getattr(triton, '__version__', 'unknown version'))"
    try:
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return "import timed out (120 s)"
    if res.returncode == 0:
        return f"importable ({res.stdout.strip()})"
    if res.returncode < 0:
        try:
            name = signal.Signals(-res.returncode).name
        except ValueError:
            name = f"signal {-res.returncode}"
        return f"import crashed ({name})"
    last = (res.stderr.strip().splitlines() or ["no message"])[-1]
    return f"not importable ({last})"


def cmd_info(args: argparse.Namespace) -> int:
    import torch

    from napari_scalespace.ops.dispatch import TRITON_OPS, resolve

    cuda = torch.cuda.is_available()
    if cuda:
        n, name = torch.cuda.device_count(), torch.cuda.get_device_name(0)
        cuda_line = f"cuda available: yes ({n} device(s), first: {name})"
    else:
        cuda_line = "cuda available: no"
    lines = [
        f"napari-scalespace {__version__}",
        f"python {platform.python_version()} ({sys.executable})",
        f"torch {torch.__version__}",
        f"torch threads: {torch.get_num_threads()} intra-op, "
        f"{torch.get_num_interop_threads()} inter-op",
        cuda_line,
        f"triton: {_triton_status()}",
        f"ops impl='auto' on cpu: {resolve('auto', torch.zeros(1))}",
    ]
    if cuda:
        t = torch.zeros(1, device="cuda")
        lines.append("ops impl='auto' on cuda: " + ", ".join(
            f"{op} {resolve('auto', t, op)}" for op in sorted(TRITON_OPS)))
    print("\n".join(lines))
    return 0


# --- train --------------------------------------------------------------------------------------


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a scale space on one image (pseudo-reconstruction) or several (generation)",
        description="Train the multiscale generator on patches cut at random zooms from IMAGE(s). "
        "One image gives one scale space that reproduces it; several images give a latent per "
        "scale space. --steps is the total: --resume continues up to it.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="PNG/JPEG/TIFF/SVS/OME-Zarr images (with --resume: default the run's)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory")
    p.add_argument("--preset", default="small", help="tiny | small | paper6 | paper8")
    p.add_argument("--octaves", type=int,
                   help="octaves with data (default: the preset's); the zoom range is "
                        "--octaves + --extra-octaves")
    p.add_argument("--steps", type=int, default=1000, help="total training steps")
    p.add_argument("--batch", type=int, help="batch size (default: the preset's)")
    p.add_argument("--positions", choices=["auto", "known", "unknown"],
                   help="known: also compare the render of each patch's own view with the "
                        "patch (one image only); unknown: adversarial and consistency losses "
                        "only (the published method); auto (default): known for one image")
    p.add_argument("--extra-octaves", type=int, metavar="N",
                   help="N more octaves past the data's finest one: no real patches there; "
                        "trained by the adversarial loss against the finest data octave and "
                        "by scale consistency (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--time-limit", type=float, metavar="MINUTES",
                   help="stop (with a checkpoint) after this many minutes of training")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any config field, e.g. --set g_lr=0.001 (repeatable)")
    p.set_defaults(func=cmd_train)


def _parse_overrides(items: list[str]) -> dict:
    import json

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from napari_scalespace import checkpoint
    from napari_scalespace._allocator import keep_large_allocations
    from napari_scalespace.data import open_source
    from napari_scalespace.geometry import scene_extent
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.train.distributed import from_environment
    from napari_scalespace.train.trainer import Trainer

    keep_large_allocations()
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise ValueError(f"--time-limit must be > 0 minutes, got {args.time_limit}")
    images = list(args.images)
    preset = None
    if args.resume:
        _, info = checkpoint.read_config(args.out)
        images = images or info.get("images", [])
        if not images:
            raise ValueError("--resume needs the images (none are recorded in the run)")
    elif not images:
        raise ValueError("give at least one IMAGE")
    sources = [open_source(path) for path in images]
    if not args.resume:
        overrides = _parse_overrides(args.set)
        if args.octaves is not None:
            overrides["octaves"] = args.octaves
        if args.extra_octaves:
            if args.extra_octaves < 0:
                raise ValueError(f"--extra-octaves must be >= 0, got {args.extra_octaves}")
            data = overrides.get("octaves", get_preset(args.preset).generator.octaves)
            overrides["octaves"] = data + args.extra_octaves
            overrides["extra_octaves"] = args.extra_octaves
        if args.batch is not None:
            overrides["batch"] = args.batch
        if args.positions is not None:
            overrides["positions"] = args.positions
        overrides.setdefault("channels", sources[0].channels)
        preset = get_preset(args.preset, **overrides)
    info = {"images": [_abs_path(i) for i in images], "scenes": len(sources),
            "value_range": [list(s.value_range) for s in sources],
            "channels": sources[0].channels,
            "extent": list(scene_extent(sources[0].height, sources[0].width))}
    dist = from_environment(args.device)  # started by torchrun: one of several processes
    try:
        trainer = Trainer(args.out, sources, preset, seed=args.seed, device=args.device,
                          threads=args.threads, resume=args.resume, source_info=info,
                          dist=dist)
        return _train_loop(trainer, args.steps, args.time_limit)
    finally:
        if dist is not None:
            dist.close()


def _abs_path(image: str) -> str:
    """Image paths are recorded absolute (a run is opened from other directories later)."""
    path = Path(image)
    return str(path.resolve()) if path.exists() else str(image)


def _train_loop(trainer, steps: int, time_limit: float | None = None) -> int:
    import threading
    import time

    from tqdm import tqdm

    start = trainer.step_count
    main = trainer.is_main  # with torchrun, rank 0 alone reports
    bar = tqdm(total=steps, initial=start, unit="step", dynamic_ncols=True, disable=not main)
    last = None
    stop = threading.Event()
    deadline = None if time_limit is None else time.monotonic() + 60 * time_limit
    try:
        for event in trainer.run(steps, cancel=stop):
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in event.losses.items()}
                            | {"img/s": f"{event.images_per_s:.1f}"})
            last = event
            if deadline is not None and time.monotonic() > deadline:
                stop.set()
    except KeyboardInterrupt:
        bar.close()
        if trainer.dist is not None:  # the other ranks may be gone: no collective save
            print(f"interrupted at step {trainer.step_count}; the last checkpoint stands",
                  file=sys.stderr)
            return 130
        path = trainer.save()
        print(f"interrupted at step {trainer.step_count}; saved {path}", file=sys.stderr)
        return 130
    bar.close()
    if not main:
        return 0
    if trainer.step_count < steps:
        print(f"time limit of {time_limit:g} min reached at step {trainer.step_count}; saved "
              f"{trainer.run_dir}", file=sys.stderr)
        return 0
    where = last.checkpoint if last and last.checkpoint else "(already complete)"
    print(f"trained {trainer.step_count - start} steps to step {trainer.step_count}: {where}")
    return 0


# --- render -------------------------------------------------------------------------------------


def _add_render(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "render",
        help="render one view of a trained scale space to an image file",
        description="Render the view of side 2**-ZOOM centred on (CY, CX) (scene units: the "
        "image's shorter side is 1, y down) with the run's EMA generator.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--zoom", type=float, nargs="+", required=True,
                   help="zoom in octaves (0 = whole scene); several give a strip of views")
    p.add_argument("--center", type=float, nargs=2, required=True, metavar=("CY", "CX"))
    p.add_argument("--seed", type=int, help="scale space to render (runs on several images)")
    p.add_argument("--out", required=True, help="output image (.png, .jpg, .tif)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from napari_scalespace._allocator import keep_large_allocations
    from napari_scalespace.geometry import View
    from napari_scalespace.render.image import render_views, save_image, strip

    keep_large_allocations()
    views = [View(zoom, *args.center) for zoom in args.zoom]
    images, _ = render_views(args.run, views, seed=args.seed, device=args.device)
    save_image(strip(images), args.out)
    print(f"wrote {args.out}")
    return 0


# --- export / truth -----------------------------------------------------------------------------


_SCHEDULER_HELP = ("run on a dask.distributed cluster: a scheduler address "
                   "(tcp://host:8786) or local:N for N worker processes on this machine")


def _scheduler(address: str | None):
    """A distributed.Client context for ``--scheduler`` (a null context without one)."""
    import contextlib

    if not address:
        return contextlib.nullcontext(None)
    from napari_scalespace.render.cluster import cluster_client

    return cluster_client(address)


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write the learned scale space of a run as an OME-Zarr pyramid",
        description="Render every tile of the run's pyramid (level 0 = finest = zoom OCTAVES) "
        "and write them as OME-Zarr (NGFF 0.5, zarr v3), one tile per chunk, streaming.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--out", required=True, help="output .zarr directory (overwritten)")
    p.add_argument("--octaves", type=int, help="pyramid octaves (default: the run's)")
    p.add_argument("--seed", type=int, help="scale space to render (runs on several images)")
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int,
                   help="tiles per generator call (default: measured while rendering)")
    p.add_argument("--scheduler", metavar="ADDRESS", help=_SCHEDULER_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from napari_scalespace._allocator import keep_large_allocations
    from napari_scalespace.render.export import export_learned

    keep_large_allocations()
    if args.octaves is not None and args.octaves < 0:
        raise ValueError(f"--octaves must be >= 0, got {args.octaves}")
    if args.scheduler:
        from napari_scalespace.render.cluster import cluster_client, distributed_learned_steps
        from napari_scalespace.render.export import run_steps

        with cluster_client(args.scheduler) as client:
            out = run_steps(distributed_learned_steps(
                client, args.run, args.out, octaves=args.octaves, seed=args.seed,
                device=args.device, batch=args.batch), args.out, not args.quiet)
    else:
        out = export_learned(args.run, args.out, octaves=args.octaves, seed=args.seed,
                             progress=not args.quiet, device=args.device,
                             max_batch=args.batch)
    print(f"wrote {out}")
    return 0


def _add_truth(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "truth",
        help="write the ground-truth OME-Zarr pyramid of an image on the learned pyramid's grid",
        description="Cut every tile of the pyramid grid (level i = zoom OCTAVES - i, tiles of "
        "VIEW_SIZE pixels) from IMAGE with exact area resampling and write them as OME-Zarr "
        "(NGFF 0.5, zarr v3): level i matches level i of `export` with the same settings.",
    )
    p.add_argument("image", metavar="IMAGE", help="PNG/JPEG/TIFF/SVS/OME-Zarr image")
    p.add_argument("--out", required=True, help="output .zarr directory (overwritten)")
    p.add_argument("--view-size", type=int, required=True, metavar="R",
                   help="tile size in pixels (the run's resolution)")
    p.add_argument("--octaves", type=int, required=True, help="pyramid octaves")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_truth)


def cmd_truth(args: argparse.Namespace) -> int:
    from napari_scalespace.render.export import export_truth

    if args.view_size < 1:
        raise ValueError(f"--view-size must be >= 1, got {args.view_size}")
    if args.octaves < 0:
        raise ValueError(f"--octaves must be >= 0, got {args.octaves}")
    out = export_truth(args.image, args.out, args.view_size, args.octaves,
                       progress=not args.quiet)
    print(f"wrote {out}")
    return 0


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
                   help="local TorchScript Inception weights for FID/KID (never downloaded; "
                   "without it FID/KID are skipped)")
    p.add_argument("--device", default="auto")
    p.add_argument("--scheduler", metavar="ADDRESS", help=_SCHEDULER_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _check_eval_args(args: argparse.Namespace) -> None:
    if args.octaves is not None and args.octaves < 0:
        raise ValueError(f"--octaves must be >= 0, got {args.octaves}")
    if args.views < 2:
        raise ValueError(f"--views must be >= 2, got {args.views}")


def _drive(steps, quiet: bool, units: dict[str, str]):
    """Run a generator of ``(kind, done, total)`` progress events with one tqdm bar per kind;
    return its final event."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    try:
        for event in steps:
            kind, *rest = event
            if kind == "report":
                return event
            done, total = rest
            bar = bars.get(kind) or bars.setdefault(kind, tqdm(
                total=total, unit=units.get(kind, "step"), desc=kind, disable=quiet,
                dynamic_ncols=True))
            bar.update(done - bar.n)
    finally:
        for bar in bars.values():
            bar.close()
    raise RuntimeError("the evaluation ended without a report")


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
        "column per run).",
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
    from napari_scalespace.eval.compare import eval_steps, run_image
    from napari_scalespace.eval.evaluate import (
        compression_line,
        format_table,
        markdown_table,
        side_by_side_markdown,
    )

    keep_large_allocations()
    _check_eval_args(args)
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
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--reuse", action="store_true",
                   help="keep complete pyramids already in OUT instead of writing them again")
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
                              inception=args.inception, client=client)
        _, report, files = _drive(steps, args.quiet, {"learned": "tile", "truth": "tile"})
    print(format_table(report))
    print(f"wrote {Path(args.out) / 'learned.zarr'}, {Path(args.out) / 'truth.zarr'}, "
          + ", ".join(str(p) for p in files.values()))
    return 0


def _add_show(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "show",
        help="open napari on a run: the widgets, its scale space and learned vs truth",
        description="Open napari with the Train, Scale space and Export-and-compare widgets, "
        "the run's lazy scale-space layer and, with --compare, the learned and ground-truth "
        "pyramids of that folder side by side. --screenshot saves a picture of the window "
        "once the visible tiles are in and exits (use xvfb-run without a display).",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--compare", metavar="DIR", help="folder written by `compare`")
    p.add_argument("--screenshot", metavar="PNG", help="save the window and exit")
    p.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    from napari_scalespace.reader import is_run

    if not is_run(args.run):
        raise ValueError(f"{args.run}: not a run directory with a checkpoint")
    from napari_scalespace._widgets.show import main as show

    return show(args.run, args.compare, args.screenshot)


# --- parser -------------------------------------------------------------------------------------

_SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_info,
    _add_train,
    _add_render,
    _add_export,
    _add_truth,
    _add_eval,
    _add_compare,
    _add_show,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Learn a continuous, zoomable scale space from ordinary images.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", required=True
    )
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Bad input (``ValueError``, including ``CheckpointError``, and ``OSError``) is reported as one
    line, ``napari-scalespace COMMAND: error: ...``, with exit status 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
