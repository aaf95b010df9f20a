"""``python -m napari_scalespace``: the same command line as the ``napari-scalespace`` script."""

from napari_scalespace.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
