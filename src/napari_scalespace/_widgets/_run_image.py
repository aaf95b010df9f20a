"""What a run started in napari records about its image, and which image a resumed run trains
on. Qt-free.

A run records file paths, so that ``napari-scalespace train --resume`` and ``compare`` find its
image outside napari: a layer opened from a file this package reads records that file; a layer
without one (in-memory data, a sample, a file napari split into channels) is saved into the run
folder as an OME-TIFF (``source.tif``; ``source-K.tif`` per collection image) with its pixel
size from the layer's scale and units. A resumed run trains on the image it recorded, whatever
layer is selected.

Multiscale layers (a whole slide opened by napari-ome-zarr or a pyramidal TIFF reader) train on
their levels, so patches come from the level that serves them (:mod:`..data.sources`). A reader
that shows each channel of an RGB file as its own layer (napari-ome-zarr does) gives one-channel
layers of a three-channel file: the run trains on the file, all its channels. A multiscale layer
without a file is saved as an OME-Zarr (``source.ome.zarr``), streamed level by level.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.pixel_size import PixelSize

SOURCE = "source.tif"


def layer_image(layer):
    """What ``layer`` holds as one image: its array, or for a multiscale layer the list of its
    levels, full resolution first (:func:`..data.open_source` reads both)."""
    return list(layer.data) if getattr(layer, "multiscale", False) else layer.data


def layer_file(layer) -> str | None:
    """The file ``layer`` was opened from, absolute, if this package reads it as the same image
    (same height, width and channels as the layer's data; a one-channel multiscale layer of a
    colour file: a reader's channel split, see the module docstring); else None."""
    from ..data import open_source

    path = getattr(getattr(layer, "source", None), "path", None)
    if not path or not Path(path).exists():
        return None
    try:
        src = open_source(str(path))
    except ValueError:
        return None
    multiscale = getattr(layer, "multiscale", False)
    shape = np.shape(layer.data[0] if multiscale else layer.data)
    channels = shape[2] if len(shape) == 3 else 1
    if (src.height, src.width) != (shape[0], shape[1]):
        return None
    if src.channels != channels and not (multiscale and channels == 1):
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


def save_levels(levels: list, path: Path, pixel_size: PixelSize | None = None) -> str:
    """Write a multiscale image (``levels``: ``[H_k, W_k]`` or ``[H_k, W_k, C]`` arrays, full
    resolution first, numpy or dask) as an OME-Zarr at ``path`` (ome-zarr-py, NGFF 0.5, chunks
    of 512 px; dask levels are streamed), level 0's pixel size ``pixel_size`` in its unit;
    returns the absolute path."""
    import shutil

    import dask.array as da
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscale

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    colour = np.ndim(levels[0]) == 3
    arrays = [da.asarray(a) for a in levels]
    if colour:
        arrays = [a.transpose(2, 0, 1) for a in arrays]
    arrays = [a.rechunk((-1, 512, 512) if colour else (512, 512)) for a in arrays]
    unit = None if pixel_size is None else pixel_size.unit
    axes = ([{"name": "c", "type": "channel"}] if colour else []) + [
        {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    size = 1.0 if pixel_size is None else pixel_size.value
    root = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    # each level's scale (and centring translation) from its shape against level 0's
    write_multiscale(arrays, root, fmt=FormatV05(), axes=axes, scale={"y": size, "x": size},
                     axes_units={"y": unit, "x": unit} if unit else None)
    shutil.rmtree(path, ignore_errors=True)
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
