"""Bundled sample images (see ``samples/README.md`` for origin, licence and how they were made).

``SAMPLES`` maps a sample name to ``(file name, description)``; :func:`sample_path` gives the
file's path inside the installed package, :func:`sample_run` the shipped pretrained run.
"""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

__all__ = ["PRETRAINED", "SAMPLES", "sample_path", "sample_run"]

SAMPLES: dict[str, tuple[str, str]] = {
    "blue_marble": (
        "blue_marble_1024.jpg",
        "NASA Blue Marble, 1024 x 1024 RGB at full resolution: Europe, Mediterranean, Sahara "
        "(public domain)",
    ),
    "he": (
        "he_1024.jpg",
        "H&E skin tissue (OpenSlide CMU-1-Small-Region), 1024 x 1024 RGB (CC0)",
    ),
}


def sample_path(name: str) -> Path:
    """Path of the bundled sample ``name`` (a key of :data:`SAMPLES`)."""
    if name not in SAMPLES:
        raise ValueError(f"name: unknown sample {name!r}; choose one of {sorted(SAMPLES)}")
    resource = files("napari_scalespace.data").joinpath("samples", SAMPLES[name][0])
    with as_file(resource) as path:  # a real file for a normal (non-zip) install
        return Path(path)


PRETRAINED = "tiny_he"
"""Folder (beside the images) of the shipped render-only ``tiny`` run trained on ``he``."""


def sample_run() -> Path:
    """Run directory of the shipped pretrained ``tiny`` run (config + the EMA generator of its
    last checkpoint only: it renders and exports, it cannot resume training)."""
    resource = files("napari_scalespace.data").joinpath("samples", PRETRAINED)
    with as_file(resource) as path:
        return Path(path)
