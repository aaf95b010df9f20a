"""Command line: ``napari-scalespace COMMAND ...``, or ``python -m napari_scalespace COMMAND ...``.

Each subcommand is one ``cmd_<name>(args) -> int`` function plus one ``_add_<name>(subparsers)``
that declares its arguments and binds the function, in a module of this package named after
the command (``export`` also holds ``render`` and ``truth``, ``evaluate`` holds ``eval`` and
``compare``); adding a subcommand means writing that pair and listing the ``_add_`` function in
``_SUBCOMMANDS``. Heavy imports (torch, the model) happen inside the ``cmd_`` functions so that
``--help`` and ``--version`` stay instant; nothing here imports Qt or napari.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence

from napari_scalespace import __version__

from .evaluate import _add_compare, _add_eval
from .export import _add_export, _add_render, _add_truth
from .info import _add_info
from .show import _add_show
from .train import _add_train

PROG = "napari-scalespace"

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
    line, ``napari-scalespace COMMAND: error: ...``, with exit status 2; warnings as one line
    each, ``napari-scalespace COMMAND: warning: ...``."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # warnings as one line each, like errors
        warnings.showwarning = _warning_line(args.command)
        try:
            return args.func(args)
        except (ValueError, OSError) as exc:
            print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
            return 2


def _warning_line(command: str):
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"{PROG} {command}: warning: {text}", file=sys.stderr)

    return show


if __name__ == "__main__":
    raise SystemExit(main())
