"""What a run started in napari records about its image, and which image a resumed run trains
on. Qt-free.

A run records file paths, so that ``napari-scalespace train --resume`` and ``compare`` find its
image outside napari: a layer opened from a file this package reads records that file; a layer
without one (in-memory data, a sample, a file napari split into channels) is saved into the run
folder as an OME-TIFF (``source.tif``; ``source-K.tif`` per collection image) with its pixel
size from the layer's scale and units. A resumed run trains on the image it recorded, whatever
layer is selected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.pixel_size import PixelSize

SOURCE = "source.tif"


def layer_file(layer) -> str | None:
    """The file ``layer`` was opened from, absolute, if this package reads it as the same image
    (same height, width and channels as the layer's data); else None."""
    from ..data import open_source

    path = getattr(getattr(layer, "source", None), "path", None)
    if not path or not Path(path).exists():
        return None
    try:
        src = open_source(str(path))
    except ValueError:
        return None
    shape = np.shape(layer.data)
    channels = shape[2] if len(shape) == 3 else 1
    if (src.height, src.width, src.channels) != (shape[0], shape[1], channels):
        return None
    return str(Path(path).resolve())


def _ome_unit(unit: str | None) -> str | None:
    """The OME symbol of a unit napari names in full (``micrometer`` -> ``µm``)."""
    if unit is None:
        return None
    try:
        import pint

        return f"{pint.Unit(unit):~}" or None
    except Exception:  # not a pint unit name: keep it as given
        return unit


def save_image(data, path: Path, pixel_size: PixelSize | None = None) -> str:
    """Write ``data`` (``[H, W]`` or ``[H, W, C]``) as an OME-TIFF at ``path``, with its pixel
    size when it has one; returns the absolute path."""
    import tifffile

    arr = np.asarray(data)
    metadata: dict = {"axes": "YXS" if arr.ndim == 3 else "YX"}
    unit = None if pixel_size is None else _ome_unit(pixel_size.unit)
    if unit is not None:
        for axis in "XY":
            metadata[f"PhysicalSize{axis}"] = pixel_size.value
            metadata[f"PhysicalSize{axis}Unit"] = unit
    photometric = "rgb" if arr.ndim == 3 and arr.shape[2] in (3, 4) else "minisblack"
    tmp = path.with_name(path.name + ".tmp")
    tifffile.imwrite(tmp, arr, ome=True, photometric=photometric, metadata=metadata)
    tmp.replace(path)
    return str(path.resolve())


def recorded_images(run: Path, layers) -> tuple[str | list, str | None]:
    """What a resumed run trains on: ``(path, None)`` for one image, or ``(entries, None)``
    for a collection (``(path, name, PixelSize, path)`` each), or ``(None, message)`` saying
    why it cannot. ``layers``: the viewer's layers; a run of an older version recorded a layer
    name, and a layer of that name is used."""
    from ..checkpoint import CONFIG, read_config

    if not (run / CONFIG).is_file():
        return None, (f"no run in {run} to resume: untick Resume to start a new run there, "
                      f"or choose the folder of a run")
    info = read_config(run)[1]
    if info.get("collection"):
        entries = info["collection"]
        missing = [e.get("name") or str(e["image"]) for e in entries
                   if not e["image"] or not Path(e["image"]).exists()]
        if missing:
            return None, (f"the run's collection images {', '.join(missing)} are not files "
                          f"here (moved?): it cannot be resumed")
        return [(e["image"], e.get("name"), PixelSize(e["value"], e["unit"]), e["image"])
                for e in entries], None
    images = info.get("images") or []
    if len(images) != 1:
        return None, (f"the run trained on {len(images)} images: resume it with "
                      f"`napari-scalespace train --resume --out {run}`")
    image = images[0]
    if Path(image).exists():
        return image, None
    if image in [layer.name for layer in layers]:
        return image, None  # a layer name (runs started in napari before they recorded files)
    return None, (f"the run's image {image} is neither a file here nor a layer: open it to "
                  f"resume the run")
