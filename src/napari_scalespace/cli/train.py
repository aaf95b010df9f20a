"""``napari-scalespace train``: train a scale space from images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _add_train(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a scale space on one image (pseudo-reconstruction), a collection at several "
             "pixel sizes, or several images (generation)",
        description="Train the multiscale generator on patches cut at random zooms from IMAGE(s). "
        "One image gives one scale space that reproduces it; several images give a latent per "
        "scale space. A collection (--collection, IMAGE:PIXEL_SIZE arguments or a CSV) is one "
        "scale space learned from unregistered images at different pixel sizes: the largest "
        "field of view is zoom 0, the others are placed in zoom by their pixel sizes. --steps "
        "is the total: --resume continues up to it.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="PNG/JPEG/TIFF/SVS/OME-Zarr images (with --resume: default the run's); "
                        "IMAGE:SIZE gives a pixel size (e.g. field.png:0.25um, scene.tif:30m) "
                        "and makes a collection; a .csv file (columns image,pixel_size[,unit]) "
                        "lists a collection")
    p.add_argument("--collection", action="store_true",
                   help="the images are one collection; pixel sizes not given as IMAGE:SIZE "
                        "are read from their metadata (OME-TIFF, SVS, TIFF tags, OME-Zarr)")
    p.add_argument("--out", required=True, metavar="RUN", help="run directory")
    p.add_argument("--preset", help="tiny | small | paper6 | paper8 (default small)")
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
                        "by scale consistency (default 0). With N > 0 (and for collections) "
                        "the feature bins follow the octaves, ceil((octaves + 1) / 3), unless "
                        "--set num_bins=K")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with its recorded config and images; "
                        "--preset/--octaves/--batch/--set/IMAGE given with it must match the "
                        "run's (--set checkpoint_every=N applies to this session)")
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


def _explicit_overrides(args: argparse.Namespace) -> dict:
    """The config fields the command line sets (``--octaves`` aside: octaves with data)."""
    overrides = _parse_overrides(args.set)
    if args.extra_octaves is not None:
        if args.extra_octaves < 0:
            raise ValueError(f"--extra-octaves must be >= 0, got {args.extra_octaves}")
        overrides["extra_octaves"] = args.extra_octaves
    if args.batch is not None:
        overrides["batch"] = args.batch
    if args.positions is not None:
        overrides["positions"] = args.positions
    return overrides


def _new_preset(args: argparse.Namespace, channels: int | None = None,
                spanned_octaves: int | None = None):
    from napari_scalespace.model.config import run_preset

    return run_preset(args.preset or "small", octaves=args.octaves,
                      extra_octaves=args.extra_octaves, channels=channels,
                      spanned_octaves=spanned_octaves, overrides=_explicit_overrides(args))


def cmd_train(args: argparse.Namespace) -> int:
    from napari_scalespace import checkpoint
    from napari_scalespace._allocator import keep_large_allocations
    from napari_scalespace.data import open_source
    from napari_scalespace.data.collection import Collection, open_collection, source_record
    from napari_scalespace.data.pixel_size import PixelSize
    from napari_scalespace.train.distributed import from_environment
    from napari_scalespace.train.resume import resume_preset
    from napari_scalespace.train.trainer import Trainer

    keep_large_allocations()
    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise ValueError(f"--time-limit must be > 0 minutes, got {args.time_limit}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    images = list(args.images)
    preset, info = None, {}
    if args.resume:  # what was given must match what the run recorded
        given = [_abs_path(path) for path, _ in _collection_entries(images)] or None
        preset, notes = resume_preset(args.out, preset=args.preset,
                                      overrides=_explicit_overrides(args),
                                      data_octaves=args.octaves, images=given)
        for note in notes:
            print(note, file=sys.stderr)
        _, info = checkpoint.read_config(args.out)
        images = info.get("images", [])
        if not images:
            raise ValueError("--resume needs the images (none are recorded in the run)")
        entries = ([(e["image"], PixelSize(e["value"], e["unit"])) for e in info["collection"]]
                   if "collection" in info else None)
    elif not images:
        raise ValueError("give at least one IMAGE")
    else:
        _new_preset(args)  # a bad setting fails before any image is read
        entries = _collection_entries(images)
        if not (args.collection or len(entries) != len(images)
                or any(size is not None for _, size in entries)):
            entries = None  # plain images: one scene each
    if entries is not None:
        sources = open_collection(entries)
        images = [path for path, _ in entries]
    else:
        sources = [open_source(path) for path in images]
    if not args.resume:
        if isinstance(sources, Collection):
            spanned = sources.max_octaves(_new_preset(args).generator.resolution)
            preset = _new_preset(args, sources.channels, spanned)
        else:
            preset = _new_preset(args, sources[0].channels)
    if isinstance(sources, Collection):
        print(f"collection: {sources.describe(preset.generator.resolution)}", file=sys.stderr)
    info = source_record(sources, [_abs_path(i) for i in images])
    dist = from_environment(args.device)  # started by torchrun: one of several processes
    try:
        trainer = Trainer(args.out, sources, preset, seed=args.seed, device=args.device,
                          threads=args.threads, resume=args.resume, source_info=info,
                          dist=dist)
        try:
            for note in trainer.notes:
                print(note, file=sys.stderr)
            return _train_loop(trainer, args.steps, args.time_limit)
        finally:
            trainer.close()
    finally:
        if dist is not None:
            dist.close()


def _collection_entries(images: list[str]) -> list:
    """``(path, PixelSize | None)`` per image argument: ``IMAGE:SIZE`` parsed, a ``.csv``
    expanded to its rows."""
    from napari_scalespace.data.collection import parse_image_arg, read_collection_csv

    out = []
    for image in images:
        if image.lower().endswith(".csv") and Path(image).is_file():
            out += read_collection_csv(image)
        else:
            out.append(parse_image_arg(image))
    return out


def _abs_path(image: str) -> str:
    """Image paths are recorded absolute (a run is opened from other directories later)."""
    path = Path(image)
    return str(path.resolve()) if path.exists() else str(image)


def _train_loop(trainer, steps: int, time_limit: float | None = None) -> int:
    import threading

    from tqdm import tqdm

    start = trainer.step_count
    main = trainer.is_main  # with torchrun, rank 0 alone reports
    bar = tqdm(total=steps, initial=start, unit="step", dynamic_ncols=True, disable=not main)
    last = None
    stop = threading.Event()
    seconds = None if time_limit is None else 60 * time_limit
    try:
        for event in trainer.run(steps, cancel=stop, time_limit=seconds, plan=True):
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in event.losses.items()}
                            | {"img/s": f"{event.images_per_s:.1f}"})
            last = event
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
