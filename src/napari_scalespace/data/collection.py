"""A collection: several unregistered images of one scale space, each with its pixel size.

A slide imaged with a 4x, a 10x and a 40x objective at unrelated positions; satellite scenes
at several ground resolutions; one overview and a few high-magnification fields. Their
positions are unknown to each other; their pixel sizes say how they relate in scale. The
image with the largest field of view (shorter side in physical units) is the collection's
zoom 0 and its scene box; every image then has real patches for a range of collection zooms
(``geometry`` "Collections"): its own sub-crops, area-resampled, from a view of its whole
shorter side down to its native resolution. Training draws a zoom, then one of the images
whose range holds it (uniformly), then a random position in that image.

Made by :func:`open_collection` from ``(image, pixel size)`` pairs (a missing pixel size is
read from the image's metadata, :func:`.pixel_size.read_pixel_size`), from
``IMAGE:PIXEL_SIZE`` strings (:func:`parse_image_arg`) or from a CSV file
(:func:`read_collection_csv`). :meth:`Collection.check` says which octaves no image covers.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..geometry import collection_zoom_range, scene_extent, zoom_offset
from .pixel_size import PixelSize, parse_pixel_size, read_pixel_size
from .sources import ImageSource, open_source

__all__ = ["Collection", "open_collection", "parse_image_arg", "read_collection_csv",
           "source_record"]

_TOLERANCE = 1e-6  # zoom round-off (log2 of ratios of decimal pixel sizes)


class Collection:
    """Images of one scale space with their pixel sizes (see the module docstring).

    ``sources``: open ImageSources (same channel count); ``pixel_sizes``: one
    :class:`PixelSize` each, all lengths, all angles or all unitless. ``paths``: where each image
    came from (recorded in runs so that ``--resume`` and ``eval`` reopen them), or None.
    """

    def __init__(self, sources: Sequence[ImageSource], pixel_sizes: Sequence[PixelSize],
                 paths: Sequence[str | None] | None = None) -> None:
        if len(sources) < 1:
            raise ValueError("a collection needs at least one image")
        if len(pixel_sizes) != len(sources):
            raise ValueError(f"{len(sources)} images but {len(pixel_sizes)} pixel sizes")
        self.sources = list(sources)
        self.pixel_sizes = [parse_pixel_size(p) for p in pixel_sizes]
        self.paths = list(paths) if paths is not None else [None] * len(self.sources)
        dims = {p.dimension for p in self.pixel_sizes}
        if len(dims) > 1:
            desc = ", ".join(f"{s.name}: {p}" for s, p in zip(self.sources, self.pixel_sizes,
                                                               strict=True))
            raise ValueError(f"pixel sizes must all be lengths, all angles or all unitless "
                             f"numbers ({desc})")
        channels = {s.channels for s in self.sources}
        if len(channels) > 1:
            desc = ", ".join(f"{s.name}: {s.channels}" for s in self.sources)
            raise ValueError(f"images have different channel counts ({desc})")
        fov = [min(s.height, s.width) * p.base for s, p in zip(self.sources, self.pixel_sizes,
                                                                strict=True)]
        self.reference = int(np.argmax(fov))
        self.offsets = [zoom_offset(f, fov[self.reference]) for f in fov]
        ref = self.sources[self.reference]
        self.extent = scene_extent(ref.height, ref.width)

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def channels(self) -> int:
        return self.sources[0].channels

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def zoom_ranges(self, resolution: int) -> list[tuple[float, float]]:
        """Per image: the collection zooms it has ``resolution``-px patches for."""
        return [collection_zoom_range(o, s.height, s.width, resolution)
                for o, s in zip(self.offsets, self.sources, strict=True)]

    def span(self, resolution: int) -> float:
        """The finest zoom with real patches (the finest image's native zoom)."""
        return max(hi for _, hi in self.zoom_ranges(resolution))

    def max_octaves(self, resolution: int) -> int:
        """The most octaves with data: ``floor(span)``."""
        return math.floor(self.span(resolution) + _TOLERANCE)

    def gaps(self, octaves: int, resolution: int) -> list[tuple[float, float]]:
        """Zoom intervals inside ``[0, octaves)`` no image has patches for, in order."""
        ranges = sorted((lo, hi) for lo, hi in self.zoom_ranges(resolution) if hi >= lo)
        out, reached = [], 0.0
        for lo, hi in ranges:
            if lo > reached + _TOLERANCE and reached < octaves:
                out.append((reached, min(lo, float(octaves))))
            reached = max(reached, hi)
        if reached + _TOLERANCE < octaves:
            out.append((reached, float(octaves)))
        return out

    def check(self, octaves: int, resolution: int) -> None:
        """Raise ValueError unless every zoom in ``[0, octaves)`` has real patches: images
        smaller than the view, more octaves than the collection spans, gaps between images
        (naming the octaves they leave without data)."""
        r = resolution
        small = [f"{s.name} ({s.height}x{s.width})" for s in self.sources
                 if min(s.height, s.width) < r]
        if small:
            raise ValueError(f"images smaller than the {r}-px view: {', '.join(small)}")
        span, most = self.span(r), self.max_octaves(r)
        if octaves > most:
            finest = self.names[int(np.argmax([hi for _, hi in self.zoom_ranges(r)]))]
            raise ValueError(f"the collection has data up to zoom {span:.2f} at {r} px (its "
                             f"finest image, {finest}, at one pixel per pixel): at most {most} "
                             f"octaves with data, got {octaves}")
        gaps = self.gaps(octaves, r)
        if gaps:
            parts = []
            for a, b in gaps:
                ks = range(math.floor(a + _TOLERANCE), math.ceil(b - _TOLERANCE))
                which = ", ".join(str(k) for k in ks)
                parts.append(f"zooms {a:.2f} to {b:.2f} (octave{'s' if len(ks) > 1 else ''} "
                             f"{which})")
            raise ValueError(
                "no image has real patches for " + "; ".join(parts) + ". Each image covers "
                "zooms from log2(largest field of view / its field of view) to its native zoom: "
                + self.describe(r) + ". Add images with pixel sizes in between, or larger "
                "fields (they start at coarser zooms)")

    def covering(self, zoom: np.ndarray, resolution: int) -> np.ndarray:
        """``[B, n]`` bool: which images have patches at each collection ``zoom``."""
        z = np.asarray(zoom, dtype=np.float64)[:, None]
        ranges = np.array(self.zoom_ranges(resolution), dtype=np.float64)
        return (z >= ranges[:, 0] - _TOLERANCE) & (z <= ranges[:, 1] + _TOLERANCE)

    def describe(self, resolution: int) -> str:
        """One clause per image: name, pixel size, zoom range."""
        return "; ".join(
            f"{s.name} ({p}/px, zooms {lo:.2f}-{hi:.2f})" for s, p, (lo, hi) in
            zip(self.sources, self.pixel_sizes, self.zoom_ranges(resolution), strict=True))

    def info(self) -> list[dict[str, Any]]:
        """What a run records to reopen the collection: path, pixel size value and unit."""
        return [{"image": path, "name": s.name, **p.to_dict()}
                for path, s, p in zip(self.paths, self.sources, self.pixel_sizes, strict=True)]


def _image_path(obj: Any) -> str | None:
    if isinstance(obj, str | os.PathLike):
        p = Path(obj)
        return str(p.resolve()) if p.exists() else str(p)
    return None


def open_collection(items: Sequence[Any]) -> Collection:
    """A :class:`Collection` of ``items``: ``(image, pixel size or None)`` pairs,
    ``"IMAGE[:PIXEL_SIZE]"`` strings, or a :class:`Collection` (returned as is). Images are
    anything :func:`open_source` opens; a missing pixel size is read from the metadata and
    every image without one is named in the error."""
    if isinstance(items, Collection):
        return items
    pairs = [parse_image_arg(i) if isinstance(i, str) else tuple(i) for i in items]
    sources, sizes, paths, missing = [], [], [], []
    for obj, size in pairs:
        src = open_source(obj)
        if size is None:
            size = read_pixel_size(obj if not isinstance(obj, ImageSource) else None)
        if size is None:
            missing.append(src.name)
        sources.append(src)
        sizes.append(None if size is None else parse_pixel_size(size))
        paths.append(_image_path(obj))
    if missing:
        raise ValueError(
            f"no pixel size for {', '.join(missing)}: none in the metadata (OME-TIFF, SVS, "
            f"ImageJ/GeoTIFF, TIFF resolution tags, OME-Zarr scale); give it as IMAGE:SIZE "
            f"(e.g. overview.png:2um) or in a CSV with columns image,pixel_size")
    return Collection(sources, sizes, paths)


def parse_image_arg(text: str) -> tuple[str, PixelSize | None]:
    """``"a.tif:0.5um"`` -> ``("a.tif", 0.5 um)``; a path that exists as written (or has no
    ``:SIZE`` suffix) -> ``(path, None)``."""
    if os.path.exists(text):
        return text, None
    path, sep, size = text.rpartition(":")
    if not sep or not path or "/" in size:  # no suffix, or a URL's "://"
        return text, None
    try:
        return path, parse_pixel_size(size)
    except ValueError:
        raise ValueError(f"{text}: no such file, and {size!r} after the last ':' is not a "
                         f"pixel size (e.g. 0.5um)") from None


def read_collection_csv(path: str | os.PathLike) -> list[tuple[str, PixelSize | None]]:
    """Rows of a CSV with a header: ``image`` (relative paths are relative to the CSV),
    ``pixel_size`` (a number, or a number and unit; empty = from the metadata) and an optional
    ``unit`` column."""
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise ValueError(f"{p}: cannot read ({e})") from None
    if not rows or "image" not in rows[0]:
        raise ValueError(f"{p}: expected a header with the columns image,pixel_size[,unit]")
    out = []
    for n, row in enumerate(rows, start=2):
        image = (row.get("image") or "").strip()
        if not image:
            raise ValueError(f"{p}, line {n}: no image")
        full = image if os.path.isabs(image) else str(p.parent / image)
        size_text = (row.get("pixel_size") or "").strip()
        unit = (row.get("unit") or "").strip()
        try:
            size = parse_pixel_size(f"{size_text} {unit}".strip()) if size_text else None
        except ValueError as e:
            raise ValueError(f"{p}, line {n}: {e}") from None
        out.append((full, size))
    return out


def source_record(sources: Collection | Sequence[ImageSource], images: Sequence[str]) -> dict:
    """What a run records about its data (``config.json``'s ``source``): the image paths or
    names, the scene count, value ranges, channels, the scene extent and, for a collection,
    its images' paths and pixel sizes (:meth:`Collection.info`)."""
    if isinstance(sources, Collection):
        return {"images": list(images), "scenes": 1, "collection": sources.info(),
                "value_range": [list(s.value_range) for s in sources.sources],
                "channels": sources.channels, "extent": list(sources.extent)}
    return {"images": list(images), "scenes": len(sources),
            "value_range": [list(s.value_range) for s in sources],
            "channels": sources[0].channels,
            "extent": list(scene_extent(sources[0].height, sources[0].width))}
