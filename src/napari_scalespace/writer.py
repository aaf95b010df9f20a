"""Save an image layer as an OME-Zarr pyramid (the npe2 writer; NGFF 0.5, zarr v3).

``write_image(path, data, meta)`` takes napari's layer data and metadata:

- a learned scale-space layer (its metadata holds the renderer): the learned pyramid of its
  levels, every tile rendered (:func:`.render.export.learned_steps`; not the placeholder
  tiles a progressive level shows while rendering);
- any other 2-D image (grey or RGB(A)), one array or the levels of a multiscale layer: the
  levels as they are, or for one array the array and its 2 x 2 mean reductions down to
  :data:`SMALLEST` pixels.

The layer's ``scale``, ``translate`` and ``units`` are kept: per level the NGFF scale and
translation (level i, f = shape_0 / shape_i times smaller:
:func:`geometry.reduced_level_transform`) and the axes' unit; arrays carry ``dimension_names``.
Stores are created only where :func:`.render.output_guard.check_output` allows (a new or
empty folder, or a store of ours, which is replaced: napari's save dialog has asked). No Qt.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SMALLEST", "write_image"]

SMALLEST = 256
"""A saved pyramid's coarsest level has at most this many pixels on its longer side."""
CHUNK = 256
BAND_ROWS = 1024


def _unit(units: Any) -> str | None:
    """The spatial unit name of napari's ``units`` (pint units or strings), None for pixels."""
    if not units:
        return None
    name = str(units[-1])
    return None if name in ("pixel", "", "None") else name


def _levels(data: Any, meta: dict) -> list:
    levels = list(data) if meta.get("multiscale") else [data]
    if meta.get("multiscale"):
        return levels
    lv = np.asarray(levels[0])
    out = [lv]
    while max(lv.shape[:2]) > SMALLEST and min(lv.shape[:2]) >= 2:
        h, w = lv.shape[0] // 2 * 2, lv.shape[1] // 2 * 2
        q = lv[:h, :w].reshape(h // 2, 2, w // 2, 2, *lv.shape[2:]).astype(np.float64)
        mean = q.mean(axis=(1, 3))
        lv = np.round(mean).astype(lv.dtype) if np.issubdtype(lv.dtype, np.integer) \
            else mean.astype(lv.dtype)
        out.append(lv)
    return out


def _window(meta: dict, dtype: np.dtype) -> tuple[float, float]:
    lim = meta.get("contrast_limits")
    if lim is not None and len(lim) == 2:
        return float(lim[0]), float(lim[1])
    if np.issubdtype(dtype, np.integer):
        return 0.0, float(np.iinfo(dtype).max)
    return 0.0, 1.0


def _placement(meta: dict) -> tuple[list[float], list[float]]:
    """The layer's spatial scale and translate (the last two axes)."""
    scale = [float(s) for s in (meta.get("scale") or (1.0, 1.0))][-2:]
    translate = [float(t) for t in (meta.get("translate") or (0.0, 0.0))][-2:]
    if not all(math.isfinite(v) for v in (*scale, *translate)) or min(scale) <= 0:
        raise ValueError(f"the layer's scale {scale} and translate {translate} must be finite "
                         f"(scale > 0)")
    return scale, translate


def write_image(path: str, data: Any, meta: dict) -> list[str]:
    """npe2 writer of one image layer (see the module docstring); returns ``[path]``."""
    from .render.output_guard import check_output, is_our_store

    renderer = (meta.get("metadata") or {}).get("renderer")
    overwrite = is_our_store(path)
    if renderer is not None and hasattr(renderer, "render_tiles"):
        from .render.export import learned_steps, run_steps

        steps = learned_steps(renderer, path, octaves=len(data) - 1, overwrite=overwrite)
        run_steps(steps, path, progress=False)
        return [str(path)]
    levels = _levels(data, meta)
    rgb = bool(meta.get("rgb"))
    ndim = levels[0].ndim - (1 if rgb else 0)
    if ndim != 2:
        raise ValueError(f"{path}: only 2-D images can be saved as a scale-space pyramid, "
                         f"got {ndim} dimensions")
    _placement(meta)
    check_output(path, overwrite)
    _write(Path(path), levels, rgb, meta)
    return [str(path)]


def _write(path: Path, levels: list, rgb: bool, meta: dict) -> None:
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    from .geometry import reduced_level_transform
    from .render.export import DIMENSIONS, axes, omero

    scale, translate = _placement(meta)
    unit = _unit(meta.get("units"))
    first = levels[0]
    dtype = np.dtype(first.dtype)
    channels = first.shape[2] if rgb else 1
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    datasets = []
    for i, level in enumerate(levels):
        h, w = level.shape[:2]
        arr = root.create_array(str(i), shape=(channels, h, w), dtype=dtype,
                                chunks=(channels, CHUNK, CHUNK), fill_value=0,
                                dimension_names=DIMENSIONS)
        for r0 in range(0, h, BAND_ROWS):
            band = np.asarray(level[r0:r0 + BAND_ROWS])
            arr[:, r0:r0 + band.shape[0], :] = np.moveaxis(band, -1, 0) if rgb else band[None]
        f = [first.shape[0] / h, first.shape[1] / w]
        placed = [reduced_level_transform(s, t, k)
                  for s, t, k in zip(scale, translate, f, strict=True)]
        datasets.append({"path": str(i), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] + [sc for sc, _ in placed]},
            {"type": "translation", "translation": [0.0] + [tr for _, tr in placed]}]})
    om = omero(channels, dtype)
    lo, hi = _window(meta, dtype)
    for c in om["channels"]:
        c["window"] = {"min": min(lo, c["window"]["min"]), "max": max(hi, c["window"]["max"]),
                       "start": lo, "end": hi}
    write_multiscales_metadata(root, datasets=datasets, fmt=FormatV05(), axes=axes(unit),
                               name=str(meta.get("name") or path.stem),
                               metadata={"omero": om})
    root.attrs["napari_scalespace"] = {"kind": "layer", "name": meta.get("name"),
                                       "complete": True}
