"""Where a pyramid sits in physical (napari world) coordinates: over its source image.

A :class:`Placement` holds what places the scene: the length of one scene unit ``U`` (the
source's shorter side S times its pixel size p) and of one source pixel ``p``, in ``unit``
(``"micrometer"``, ``"meter"``, ``"degree"``; None: the source's pixels, for images without a
physical size). Level i of a pyramid on a :class:`geometry.PyramidGrid` then has the scale
and translation of :func:`geometry.level_world_transform`, so that the learned layer, the
ground-truth pyramid and the source image opened at its physical size (scale p, no
translation) overlay; without a physical size, the source opened plainly (pixel units).

The source's pixel size comes from what the run recorded (a collection's pixel sizes), else
from the image's metadata (:func:`..data.pixel_size.read_pixel_size`). No Qt, no torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..geometry import PyramidGrid, level_world_transform, scene_to_world, scene_unit_length

__all__ = ["Placement", "image_placement", "run_placement"]


@dataclass(frozen=True)
class Placement:
    """``scene_unit``: world length of one scene unit; ``source_pixel``: of one source pixel;
    ``unit``: their unit's name (None: pixels)."""

    scene_unit: float
    source_pixel: float
    unit: str | None = None

    @classmethod
    def of_grid(cls, grid: PyramidGrid) -> Placement:
        """The placement without a source: level 0 pixels are world units (scale 1, no
        translation), the layout of a pyramid with no known source."""
        q = grid.pixel_size(0)
        return cls(1.0 / q, 1.0, None)

    def transform(self, grid: PyramidGrid, level: int) -> tuple[float, float]:
        """``(scale, translate)`` of ``level`` (the same on y and x)."""
        return level_world_transform(grid, level, self.scene_unit, self.source_pixel)

    def world(self, y):
        """World coordinates of scene coordinates ``y`` (:func:`geometry.scene_to_world`)."""
        return scene_to_world(y, self.scene_unit, self.source_pixel)

    def layer_kwargs(self, grid: PyramidGrid) -> dict[str, Any]:
        """napari layer keywords (``scale``, ``translate``, ``units``) of a multiscale layer
        whose level 0 is level 0 of ``grid`` (napari derives the other levels' scales)."""
        scale, translate = self.transform(grid, 0)
        out: dict[str, Any] = {"scale": (scale, scale), "translate": (translate, translate)}
        if self.unit is not None:
            out["units"] = (self.unit, self.unit)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"scene_unit": self.scene_unit, "source_pixel": self.source_pixel,
                "unit": self.unit}

    @classmethod
    def from_dict(cls, d: Any) -> Placement | None:
        """The placement recorded in a store's attributes, or None if malformed."""
        try:
            p = cls(float(d["scene_unit"]), float(d["source_pixel"]),
                    None if d.get("unit") is None else str(d["unit"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        return p if p.scene_unit > 0 and p.source_pixel > 0 else None


def _placement(shorter_side: int, size) -> Placement:
    """From the source's shorter side (pixels) and its PixelSize (None or unitless: pixel
    units, so that the source opened plainly is overlaid)."""
    unit = None if size is None else size.unit_name
    p = 1.0 if unit is None else size.value
    return Placement(scene_unit_length(shorter_side, p), p, unit)


def image_placement(image: Any, pixel_size=None) -> Placement | None:
    """The placement of a pyramid of ``image`` (a path or an open ImageSource): its pixel
    size ``pixel_size`` (a PixelSize or text), else the one in its metadata, else pixel
    units. None when the image cannot be opened."""
    from ..data import ImageSource, open_source
    from ..data.pixel_size import parse_pixel_size, read_pixel_size

    try:
        source = image if isinstance(image, ImageSource) else open_source(image)
    except (ValueError, OSError):
        return None
    size = None if pixel_size is None else parse_pixel_size(pixel_size)
    if size is None and isinstance(image, str | os.PathLike):
        try:
            size = read_pixel_size(image)
        except (ValueError, OSError):
            size = None
    return _placement(min(source.height, source.width), size)


def run_placement(info: dict, run_dir: str | Path | None = None) -> Placement | None:
    """The placement of a run's pyramids from its recorded source (``config.json``'s
    ``source``): a collection's reference image (the largest field of view, the scene box)
    with its recorded pixel size; a single image with the pixel size in its metadata. None
    when the image is not a file here (e.g. trained from a napari layer)."""
    from ..checkpoint import recorded_file
    from ..data.pixel_size import PixelSize

    entries = info.get("collection")
    if entries:
        from ..data.collection import open_collection

        try:
            paths = [recorded_file(str(e["image"]), run_dir) for e in entries]
            if any(p is None for p in paths):
                return None
            coll = open_collection([(p, PixelSize(e["value"], e["unit"]))
                                    for p, e in zip(paths, entries, strict=True)])
        except (ValueError, OSError, KeyError, TypeError):
            return None
        ref = coll.sources[coll.reference]
        return _placement(min(ref.height, ref.width), coll.pixel_sizes[coll.reference])
    images = info.get("images") or []
    if not images or not isinstance(images[0], str):
        return None
    path = recorded_file(images[0], run_dir)
    return None if path is None else image_placement(path)
