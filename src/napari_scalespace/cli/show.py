"""``napari-scalespace show``: napari on a run."""

from __future__ import annotations

import argparse


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
