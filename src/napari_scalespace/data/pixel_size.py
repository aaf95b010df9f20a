"""Pixel sizes: physical units per pixel, parsed from text or read from an image's metadata.

A :class:`PixelSize` is a value and a unit. Lengths (``nm``, ``um``/``µm``/``micron``,
``mm``, ``cm``, ``m``, ``km``, ``inch``, ... and the OME / NGFF spellings such as
``micrometer``) are kept in metres, so that sizes in different units compare
(``0.5 um`` is half of ``1000 nm``); angles (``deg``, geographic GeoTIFFs) compare only with
angles; a bare number is *unitless* and compares only with other bare numbers (useful when all
images of a collection come from one instrument: ``a.png:4 b.png:1``).

Metadata read by :func:`read_pixel_size` (the x axis; a y size that differs is reported):

- OME-TIFF: ``Pixels PhysicalSizeX`` and ``PhysicalSizeXUnit`` (default µm);
- Aperio SVS: ``MPP = ...`` in the image description (µm per pixel);
- ImageJ TIFF: ``XResolution`` (pixels per unit) and the description's ``unit``;
- GeoTIFF: ``ModelPixelScaleTag`` (metres for projected, degrees for geographic rasters);
- other TIFFs: ``XResolution`` with ``ResolutionUnit`` inch or centimetre (not "none");
- OME-Zarr: the first dataset's ``scale`` transformation on the x axis and the axis's unit.

Pillow formats (PNG, JPEG) carry at most a print density (dpi), which says nothing about the
object: they have no pixel size; give one explicitly.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PixelSize", "parse_pixel_size", "read_pixel_size"]

_METRES = {
    "km": 1e3, "kilometer": 1e3, "kilometre": 1e3,
    "m": 1.0, "meter": 1.0, "metre": 1.0,
    "cm": 1e-2, "centimeter": 1e-2, "centimetre": 1e-2,
    "mm": 1e-3, "millimeter": 1e-3, "millimetre": 1e-3,
    "um": 1e-6, "\u00b5m": 1e-6, "\u03bcm": 1e-6, "micron": 1e-6, "microns": 1e-6,
    "micrometer": 1e-6, "micrometre": 1e-6,
    "nm": 1e-9, "nanometer": 1e-9, "nanometre": 1e-9,
    "pm": 1e-12, "picometer": 1e-12, "picometre": 1e-12,
    "a": 1e-10, "\u00c5": 1e-10, "angstrom": 1e-10,
    "in": 0.0254, "inch": 0.0254, "ft": 0.3048, "foot": 0.3048, "yd": 0.9144, "yard": 0.9144,
    "mi": 1609.344, "mile": 1609.344,
}
_DEGREES = {"deg": 1.0, "degree": 1.0, "degrees": 1.0, "\u00b0": 1.0}
_NONE = {"", "pixel", "pixels", "px", "none"}
# the unit names of OME-Zarr (NGFF, from UDUNITS-2) and napari (pint) for our spellings
_NAMES = {
    1e3: "kilometer", 1.0: "meter", 1e-2: "centimeter", 1e-3: "millimeter", 1e-6: "micrometer",
    1e-9: "nanometer", 1e-12: "picometer", 1e-10: "angstrom", 0.0254: "inch", 0.3048: "foot",
    0.9144: "yard", 1609.344: "mile",
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_SIZE = re.compile(rf"^\s*({_NUMBER})\s*([^\d\s][^\s]*)?\s*$")


def _unit_key(unit: str) -> str:
    u = unit.strip()
    return u if u in ("\u00c5",) else u.lower()


@dataclass(frozen=True)
class PixelSize:
    """``value`` physical units per pixel (> 0); ``unit`` as given (``None``: unitless)."""

    value: float
    unit: str | None = None

    def __post_init__(self) -> None:
        try:
            v = float(self.value)
        except (TypeError, ValueError):
            raise ValueError(f"pixel size must be a number, got {self.value!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"pixel size must be finite and > 0, got {self.value!r}")
        object.__setattr__(self, "value", v)
        unit = None if self.unit is None or _unit_key(str(self.unit)) in _NONE else str(self.unit)
        if unit is not None:
            key = _unit_key(unit)
            if key not in _METRES and key not in _DEGREES:
                raise ValueError(f"unknown unit {unit!r} (use a length such as nm, um, mm, m, "
                                 f"km, inch, or deg; or no unit)")
        object.__setattr__(self, "unit", unit)

    @property
    def dimension(self) -> str:
        """``"length"``, ``"angle"`` or ``"none"`` (unitless): sizes compare within one."""
        if self.unit is None:
            return "none"
        return "length" if _unit_key(self.unit) in _METRES else "angle"

    @property
    def base(self) -> float:
        """The size in the dimension's base unit: metres, degrees, or the bare number."""
        if self.unit is None:
            return self.value
        key = _unit_key(self.unit)
        return self.value * (_METRES.get(key) or _DEGREES[key])

    def ratio(self, other: PixelSize) -> float:
        """``self / other`` (how many of ``other``'s pixels span one of ours)."""
        if self.dimension != other.dimension:
            raise ValueError(f"cannot compare pixel sizes {self} and {other}: one is "
                             f"{self.dimension if self.dimension != 'none' else 'unitless'}, "
                             f"the other "
                             f"{other.dimension if other.dimension != 'none' else 'unitless'}")
        return self.base / other.base

    def __str__(self) -> str:
        return f"{self.value:g}" + (f" {self.unit}" if self.unit else "")

    @property
    def unit_name(self) -> str | None:
        """The unit's standard name (``"micrometer"``, ``"meter"``, ``"degree"``: what OME-Zarr
        axes and napari layers use), or None when unitless."""
        if self.unit is None:
            return None
        key = _unit_key(self.unit)
        return _NAMES[_METRES[key]] if key in _METRES else "degree"

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit}


def parse_pixel_size(text: str | float | PixelSize) -> PixelSize:
    """``"0.5um"``, ``"0.5 µm"``, ``"30 m"``, ``"4"`` (unitless) or a number -> PixelSize."""
    if isinstance(text, PixelSize):
        return text
    if isinstance(text, int | float) and not isinstance(text, bool):
        return PixelSize(float(text))
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"cannot read a pixel size from {text!r} (expected a number and an "
                         f"optional unit, e.g. 0.5um or 30m)")
    return PixelSize(float(m.group(1)), m.group(2))


# --- metadata ------------------------------------------------------------------------------------


def read_pixel_size(obj: Any) -> PixelSize | None:
    """The pixel size recorded in ``obj``'s metadata (see the module docstring), or None.

    ``obj``: a path (TIFF family, ``.zarr`` directory), a zarr store's URL or a zarr group;
    anything else has none. Raises ValueError for metadata that is there but unreadable (a zero
    or negative size).
    """
    if isinstance(obj, str) and "://" in obj:  # an OME-Zarr through fsspec
        import zarr

        try:
            return _zarr_size(zarr.open(obj, mode="r"))
        except ValueError:
            raise
        except Exception:
            return None
    if isinstance(obj, str | os.PathLike):
        p = Path(obj)
        if p.is_dir():
            import zarr

            try:
                return _zarr_size(zarr.open(str(p), mode="r"))
            except ValueError:
                raise
            except Exception:
                return None
        if not p.is_file():
            raise ValueError(f"{p}: no such file")
        with open(p, "rb") as f:
            magic = f.read(4)
        if magic[:2] in (b"II", b"MM"):
            return _tiff_size(p)
        return None
    if type(obj).__module__.startswith("zarr."):
        return _zarr_size(obj)
    return None


def _tiff_size(p: Path) -> PixelSize | None:
    import tifffile

    try:
        tif = tifffile.TiffFile(str(p))
    except Exception:
        return None
    with tif:
        page = tif.pages[0]
        if tif.is_ome and tif.ome_metadata:
            size = _ome_xml_size(tif.ome_metadata)
            if size is not None:
                return size
        desc = page.description or ""
        mpp = re.search(rf"\|\s*MPP\s*=\s*({_NUMBER})", desc)
        if tif.is_svs and mpp:
            return PixelSize(float(mpp.group(1)), "um")
        geo = tif.geotiff_metadata if tif.is_geotiff else None
        if geo and geo.get("ModelPixelScale"):
            unit = "deg" if geo.get("GTModelTypeGeoKey") in (2, "ModelType.Geographic") else "m"
            return PixelSize(float(geo["ModelPixelScale"][0]), unit)
        tag = page.tags.get("XResolution")
        if tag is None:
            return None
        num, den = tag.value
        if not (num > 0 and den > 0):
            return None
        per_pixel = den / num
        if tif.is_imagej:
            unit = (tif.imagej_metadata or {}).get("unit")
            if unit and _unit_key(str(unit).replace("\\u00B5", "\u00b5")) not in _NONE:
                return PixelSize(per_pixel, str(unit).replace("\\u00B5", "\u00b5"))
            return None
        res_unit = page.tags.get("ResolutionUnit")
        code = int(res_unit.value) if res_unit is not None else 2  # TIFF default: inch
        return {2: PixelSize(per_pixel, "inch"), 3: PixelSize(per_pixel, "cm")}.get(code)


def _ome_xml_size(xml: str) -> PixelSize | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Pixels" and "PhysicalSizeX" in el.attrib:
            return PixelSize(float(el.attrib["PhysicalSizeX"]),
                             el.attrib.get("PhysicalSizeXUnit", "\u00b5m"))
    return None


def _zarr_size(node: Any) -> PixelSize | None:
    attrs = dict(getattr(node, "attrs", {}))
    ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not (isinstance(ms, list) and ms):
        return None
    first = ms[0]
    axes = first.get("axes") or []
    names = [str(a.get("name") if isinstance(a, dict) else a).lower() for a in axes]
    if "x" not in names:
        return None
    ix = names.index("x")
    datasets = first.get("datasets") or []
    if not datasets:
        return None
    scale = 1.0
    for t in list(first.get("coordinateTransformations") or []) + list(
            datasets[0].get("coordinateTransformations") or []):
        if t.get("type") == "scale" and len(t.get("scale", [])) == len(names):
            scale *= float(t["scale"][ix])
    unit = axes[ix].get("unit") if isinstance(axes[ix], dict) else None
    if unit is None:
        return None
    return PixelSize(scale, unit)
