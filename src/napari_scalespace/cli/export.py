"""``render``, ``export`` and ``truth``: a run's views and pyramids, and the truth's."""

from __future__ import annotations

import argparse

from ._common import _SCHEDULER_HELP


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


def _add_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="write the learned scale space of a run as an OME-Zarr pyramid",
        description="Render every tile of the run's pyramid (level 0 = finest = zoom OCTAVES) "
        "and write them as OME-Zarr (NGFF 0.5, zarr v3), one tile per chunk, streaming.",
    )
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--out", required=True,
                   help="output .zarr folder: new or empty (never the run or inside it)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a pyramid this command wrote before at --out")
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
    from napari_scalespace.render.budget import check_budget
    from napari_scalespace.render.export import export_renderer, learned_budget
    from napari_scalespace.render.output_guard import check_output
    from napari_scalespace.render.renderer import Renderer

    keep_large_allocations()
    if args.octaves is not None and args.octaves < 0:
        raise ValueError(f"--octaves must be >= 0, got {args.octaves}")
    check_output(args.out, args.overwrite, [args.run])  # before loading anything
    if args.scheduler:
        from napari_scalespace.render.cluster import cluster_client, distributed_learned_steps
        from napari_scalespace.render.export import run_steps

        with cluster_client(args.scheduler) as client:
            out = run_steps(distributed_learned_steps(
                client, args.run, args.out, octaves=args.octaves, seed=args.seed,
                device=args.device, batch=args.batch, overwrite=args.overwrite), args.out,
                not args.quiet)
    else:
        renderer = Renderer(args.run, device=args.device, seed=args.seed, cache_mb=0,
                            max_batch=args.batch)
        budget = learned_budget(renderer, args.octaves)
        check_budget(budget, args.out, args.out)
        print(budget.describe(f"export {args.out}"), flush=True)
        out = export_renderer(renderer, args.out, octaves=args.octaves,
                              progress=not args.quiet, overwrite=args.overwrite)
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
    p.add_argument("--out", required=True,
                   help="output .zarr folder: new or empty (never the image or its folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a pyramid this command wrote before at --out")
    p.add_argument("--view-size", type=int, required=True, metavar="R",
                   help="tile size in pixels (the run's resolution)")
    p.add_argument("--octaves", type=int, required=True, help="pyramid octaves")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_truth)


def cmd_truth(args: argparse.Namespace) -> int:
    from napari_scalespace.data import open_source
    from napari_scalespace.render.budget import check_budget
    from napari_scalespace.render.export import (
        export_truth,
        pyramid_budget,
        truth_batch,
        truth_grid,
        truth_tiles,
    )
    from napari_scalespace.render.output_guard import check_output

    if args.view_size < 1:
        raise ValueError(f"--view-size must be >= 1, got {args.view_size}")
    if args.octaves < 0:
        raise ValueError(f"--octaves must be >= 0, got {args.octaves}")
    check_output(args.out, args.overwrite, [args.image])
    source = open_source(args.image)
    grid = truth_grid(source, args.view_size, args.octaves)
    dtype = "float32" if source.channels == 1 else "uint8"
    budget = pyramid_budget(grid, source.channels, dtype, truth_batch(grid.tile),
                            truth_tiles(source, grid), 4)
    check_budget(budget, args.out, args.out)
    print(budget.describe(f"truth {args.out}"), flush=True)
    out = export_truth(args.image, args.out, args.view_size, args.octaves,
                       progress=not args.quiet, overwrite=args.overwrite)
    print(f"wrote {out}")
    return 0
