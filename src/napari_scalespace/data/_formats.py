"""File and array readers: each returns the planes of one image (level 0 = full resolution,
then any stored lower-resolution pyramid levels, used only for thumbnails) and a closer.

- PNG, JPEG and other Pillow formats: decoded on the first read (the formats have no random
  access); the header alone gives size and mode at open time.
- TIFF, OME-TIFF, SVS: tifffile's zarr store, which decodes only the tiles or strips a read
  touches; the pyramid levels of the first series are kept. When tifffile cannot decode the
  pixels (JPEG-compressed tiles without the optional ``imagecodecs`` package, as in most SVS
  files) the first page is read with Pillow instead (whole image, on first read).
- Zarr (a ``.zarr`` directory, a zarr array or group): an OME-Zarr multiscale group gives its
  full-resolution dataset (and the others as pyramid levels), with axes from its metadata.
- A URL (``s3://``, ``https://``, ``gs://``, ``memory://``, any fsspec protocol with its
  package installed): a zarr store read through fsspec, chunk by chunk, like a local one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._plane import Plane, axes_from_shape, plane_from_axes

__all__ = ["is_url", "open_array", "open_levels", "open_path", "open_url", "open_zarr"]

Opened = tuple[list[Plane], Callable[[], None] | None]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def open_array(data: Any, name: str) -> Plane:
    """A plane of an in-memory or lazy array (numpy, dask, zarr, anything with ``shape``,
    ``dtype`` and numpy-style slicing), axes inferred from its shape."""
    return plane_from_axes(data, axes_from_shape(tuple(data.shape), name), name)


def open_levels(levels: Sequence[Any], name: str) -> list[Plane]:
    """The planes of a multiscale list of arrays (napari's multiscale layer data)."""
    return [open_array(a, f"{name}[{i}]") for i, a in enumerate(levels)]


def is_url(path: Any) -> bool:
    """Whether ``path`` is a URL (``protocol://...``) rather than a local path."""
    return isinstance(path, str) and "://" in path


def open_url(url: str) -> list[Plane]:
    """The planes of a zarr store (an OME-Zarr) at an fsspec URL."""
    import zarr

    try:
        node = zarr.open(url, mode="r")
    except Exception as e:  # fsspec and zarr raise many types (no network, no package)
        raise ValueError(f"{url}: cannot open as a zarr store ({e})") from None
    return open_zarr(node, url)


def open_path(path: str | os.PathLike[str]) -> tuple[list[Plane], Callable[[], None] | None]:
    if is_url(path):
        return open_url(path), None
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: no such file or directory")
    if p.is_dir():
        import zarr

        try:
            node = zarr.open(str(p), mode="r")
        except Exception as e:  # zarr raises several types for a non-zarr directory
            raise ValueError(f"{p}: not a readable zarr store ({e})") from None
        return open_zarr(node, str(p)), None
    try:
        with open(p, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ValueError(f"{p}: cannot read file ({e})") from None
    if magic in _TIFF_MAGIC:
        return _open_tiff(p)
    return [_open_pillow(p)], None


# --- zarr --------------------------------------------------------------------------------------


def _multiscales(attrs: dict[str, Any]) -> list[dict[str, Any]] | None:
    ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    return ms if isinstance(ms, list) and ms else None


def _axis_letter(axis: Any) -> str:
    n = str(axis.get("name") if isinstance(axis, dict) else axis).lower()
    return n if n in ("y", "x", "c") else "s"


def open_zarr(node: Any, name: str) -> list[Plane]:
    """Planes of a zarr array, or of a group: OME-Zarr multiscales (all datasets of the first
    multiscale, full resolution first) or a group holding exactly one array."""
    import zarr

    if isinstance(node, zarr.Array):
        return [open_array(node, name)]
    ms = _multiscales(dict(node.attrs))
    if ms is None:
        arrays = list(node.array_keys())
        if len(arrays) != 1:
            raise ValueError(
                f"{name}: zarr group without OME-Zarr multiscales metadata holds "
                f"{len(arrays)} arrays; pass the array to use"
            )
        return [open_array(node[arrays[0]], f"{name}/{arrays[0]}")]
    first = ms[0]
    datasets = [d["path"] for d in first.get("datasets", [])]
    if not datasets:
        raise ValueError(f"{name}: OME-Zarr multiscales metadata lists no datasets")
    axes_meta = first.get("axes")
    planes = []
    for path in datasets:
        arr = node[path]
        if axes_meta is not None:
            axes = "".join(_axis_letter(a) for a in axes_meta)
        else:  # OME-Zarr 0.1/0.2: always 5-D t, c, z, y, x
            axes = "scsyx" if arr.ndim == 5 else axes_from_shape(tuple(arr.shape), name)
        planes.append(plane_from_axes(arr, axes, f"{name}/{path}"))
    return planes


# --- TIFF --------------------------------------------------------------------------------------


def _tiff_axes(axes: str, shape: tuple[int, ...]) -> str:
    out = []
    for a, n in zip(axes.upper(), shape, strict=True):
        if a in "YX":
            out.append(a.lower())
        elif a in "SC" and n > 1:
            out.append("c")
        elif a in "SC":
            out.append("s")
        else:  # t, z, ...: must be a singleton (plane_from_axes checks and names it)
            out.append(a.lower())
    return "".join(out)


def _open_tiff(p: Path) -> Opened:
    import tifffile
    import zarr

    try:
        tif = tifffile.TiffFile(str(p))
    except Exception as e:  # tifffile.TiffFileError, struct errors on truncated files, ...
        raise ValueError(f"{p}: cannot read TIFF ({e})") from None
    try:
        series = tif.series[0]
        axes = _tiff_axes(series.axes, tuple(series.shape))
        planes = [
            plane_from_axes(zarr.open(series.aszarr(level=k), mode="r"), axes, str(p))
            for k in range(len(series.levels))
        ]
    except ValueError:
        tif.close()
        raise
    except Exception as e:
        tif.close()
        raise ValueError(f"{p}: cannot read TIFF ({e})") from None
    try:
        planes[0].read(0, 1, 0, 1)  # decodes one tile/strip: are the codecs there?
    except Exception as e:
        tif.close()
        try:
            return [_open_pillow(p)], None
        except ValueError as pe:
            raise ValueError(f"{p}: tifffile cannot decode it ({e}); {pe}") from None
    return planes, tif.close


# --- Pillow ------------------------------------------------------------------------------------

# Pillow mode -> (mode to convert to, channels incl. alpha, dtype of np.asarray)
_MODES: dict[str, tuple[str, int, str]] = {
    "1": ("1", 1, "bool"),
    "L": ("L", 1, "uint8"),
    "LA": ("LA", 2, "uint8"),
    "La": ("LA", 2, "uint8"),
    "P": ("RGB", 3, "uint8"),
    "PA": ("RGBA", 4, "uint8"),
    "RGB": ("RGB", 3, "uint8"),
    "RGBA": ("RGBA", 4, "uint8"),
    "RGBa": ("RGBA", 4, "uint8"),
    "I": ("I", 1, "int32"),
    "F": ("F", 1, "float32"),
}
_MODES.update({m: (m, 1, "uint16") for m in ("I;16", "I;16L", "I;16B", "I;16N")})


class _PillowArray:
    """A lazily decoded Pillow image as an array: ``shape`` and ``dtype`` from the header,
    the pixels decoded (and cached) on the first indexing."""

    def __init__(self, path: Path) -> None:
        from PIL import Image

        self.path = path
        try:
            with Image.open(path) as im:
                mode, (w, h) = im.mode, im.size
                if mode == "P" and "transparency" in im.info:
                    mode = "PA"
        except Exception as e:  # UnidentifiedImageError, OSError, DecompressionBombError
            raise ValueError(f"{path}: cannot read image ({e})") from None
        self.mode, channels, dtype = _MODES.get(mode, ("RGB", 3, "uint8"))
        self.shape = (h, w) if channels == 1 else (h, w, channels)
        self.dtype = np.dtype(dtype)
        self._pixels: np.ndarray | None = None
        self._lock = threading.Lock()  # threads reading it first decode it once

    def _decode(self) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(self.path) as im:
                im.seek(0)
                if im.mode == "P" and self.mode == "RGBA":
                    im = im.convert("RGBA")
                elif im.mode != self.mode:
                    im = im.convert(self.mode)
                a = np.asarray(im)
        except Exception as e:
            raise ValueError(f"{self.path}: cannot decode image ({e})") from None
        return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("=")))

    def __getitem__(self, key: Any) -> np.ndarray:
        if self._pixels is None:
            with self._lock:
                if self._pixels is None:
                    self._pixels = self._decode()
        return self._pixels[key]


def _open_pillow(p: Path) -> Plane:
    arr = _PillowArray(p)
    axes = "yx" if len(arr.shape) == 2 else "yxc"
    return plane_from_axes(arr, axes, str(p), gray_alpha=True)
