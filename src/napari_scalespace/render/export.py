"""OME-Zarr (NGFF 0.5, zarr v3) pyramids of a learned scale space and of its ground truth.

Both pyramids use the same :class:`geometry.PyramidGrid` (levels, shapes, tile size R), so
level i of both shows the same region of the scene:

- *learned*: level i tile (a, b) is the run's rendering of ``grid.tile_view(i, a, b)``
  (:class:`.renderer.Renderer`, seamless tiles);
- *truth*: the same view cut from the source image with exact area resampling
  (:func:`data.patches.area_patch`, the semantics of ``cut_patch``; edge replication outside
  the image).

Layout: one zarr v3 group; arrays ``"0"`` (finest) .. ``"L"`` of shape ``(C, H_i, W_i)``, chunks
``(C, R, R)`` (one tile), axes c (channel), y, x (space), scale transform ``[1, 2**i, 2**i]``;
uint8 for colour images, float32 in [0, 1] for single-channel ones. The NGFF metadata is
written with ome-zarr-py (``write_multiscales_metadata``, ``FormatV05``); the group attributes
also hold ``"napari_scalespace"``: the grid (octaves, tile, extent) and the pyramid's origin.

Streaming: a level is written one band of tile rows at a time (tiles rendered in batches of
the renderer's measured or given size), so memory stays at one band of tiles whatever the
level size; a tqdm bar counts tiles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_multiscales_metadata

from ..geometry import PyramidGrid, scene_extent
from .renderer import Renderer

__all__ = [
    "AXES",
    "bands",
    "create_pyramid",
    "export_learned",
    "export_renderer",
    "export_truth",
    "finish_pyramid",
    "is_complete",
    "learned_steps",
    "open_pyramid",
    "pyramid_steps",
    "truth_steps",
    "write_band",
    "write_pyramid",
]

AXES = [
    {"name": "c", "type": "channel"},
    {"name": "y", "type": "space"},
    {"name": "x", "type": "space"},
]

TileFn = Callable[[Sequence[tuple[int, int, int]]], dict]
"""keys ``(zoom, a, b)`` -> ``{key: tile}``, tiles ``[R, R]`` or ``[R, R, C]``."""


def omero(channels: int, dtype: np.dtype) -> dict:
    """OMERO rendering settings so OME-Zarr viewers (napari-ome-zarr) show the pyramid as it is
    meant: R, G, B channels added up with windows 0..255, or one grey channel in 0..1."""
    if channels == 1:
        return {"rdefs": {"model": "greyscale"}, "channels": [
            {"label": "value", "color": "FFFFFF", "active": True,
             "window": {"min": 0.0, "max": 1.0, "start": 0.0, "end": 1.0}}]}
    hi = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
    colours = ["FF0000", "00FF00", "0000FF"] + ["FFFFFF"] * max(0, channels - 3)
    labels = ["R", "G", "B"] + [f"c{i}" for i in range(3, channels)]
    return {"rdefs": {"model": "color"}, "channels": [
        {"label": labels[i], "color": colours[i], "active": True,
         "window": {"min": 0.0, "max": hi, "start": 0.0, "end": hi}}
        for i in range(channels)]}


def create_pyramid(out_zarr: str | Path, grid: PyramidGrid, channels: int, dtype: np.dtype,
                   name: str = "scalespace", attrs: dict | None = None) -> zarr.Group:
    """Create (overwriting) the store of a pyramid on ``grid``: empty level arrays, the NGFF
    metadata and our attributes with ``complete`` false (:func:`finish_pyramid` sets it)."""
    dtype = np.dtype(dtype)
    r = grid.tile
    root = zarr.open_group(str(out_zarr), mode="w", zarr_format=3)
    for level in range(grid.n_levels):
        h, w = grid.level_shape(level)
        root.create_array(str(level), shape=(channels, h, w), dtype=dtype,
                          chunks=(channels, r, r), fill_value=0)
    datasets = [{"path": str(level), "coordinateTransformations": [
        {"type": "scale", "scale": [1.0, grid.scale(level), grid.scale(level)]}]}
        for level in range(grid.n_levels)]
    write_multiscales_metadata(root, datasets=datasets, fmt=FormatV05(), axes=AXES, name=name,
                               metadata={"omero": omero(channels, dtype)})
    root.attrs["napari_scalespace"] = {
        "grid": {"octaves": grid.octaves, "tile": r, "extent": list(grid.extent)},
        **(attrs or {}), "complete": False}
    return root


def finish_pyramid(out_zarr: str | Path) -> None:
    """Mark a store written to the end as complete."""
    root = zarr.open_group(str(out_zarr), mode="r+")
    root.attrs["napari_scalespace"] = {**root.attrs["napari_scalespace"], "complete": True}


def bands(grid: PyramidGrid, batch: int) -> list[tuple[int, int, int]]:
    """The work units of a pyramid, finest level first: ``(level, a0, a1)`` = tile rows
    ``a0..a1-1`` of a level, about ``batch`` tiles (whole chunks: bands never share one)."""
    out = []
    for level in range(grid.n_levels):
        ny, nx = grid.n_tiles(level)
        step = max(1, batch // nx)
        out += [(level, a0, min(ny, a0 + step)) for a0 in range(0, ny, step)]
    return out


def write_band(arr: zarr.Array, grid: PyramidGrid, band: tuple[int, int, int], tiles: TileFn,
               batch: int) -> int:
    """Render the tiles of ``band`` (in generator calls of ``batch`` keys) into level array
    ``arr``; returns the number of tiles."""
    level, a0, a1 = band
    r, (_, nx) = grid.tile, grid.n_tiles(level)
    zoom = grid.zoom_of_level(level)
    out = np.empty((arr.shape[0], (a1 - a0) * r, nx * r), dtype=arr.dtype)
    keys = [(zoom, a, b) for a in range(a0, a1) for b in range(nx)]
    for k0 in range(0, len(keys), batch):
        part = keys[k0:k0 + batch]
        got = tiles(part)
        for key in part:
            _, a, b = key
            t = np.asarray(got[key])
            t = t[None] if t.ndim == 2 else np.moveaxis(t, -1, 0)
            out[:, (a - a0) * r:(a - a0 + 1) * r, b * r:(b + 1) * r] = t
    arr[:, a0 * r:a1 * r, :] = out
    return len(keys)


def pyramid_steps(
    out_zarr: str | Path,
    grid: PyramidGrid,
    channels: int,
    dtype: np.dtype,
    tiles: TileFn,
    batch: int = 16,
    name: str = "scalespace",
    attrs: dict | None = None,
) -> Iterator[tuple[int, int]]:
    """Write the pyramid of ``grid`` whose tiles ``tiles(keys)`` returns (see the module
    docstring for the layout), overwriting ``out_zarr``; a generator that yields
    ``(tiles written, total)`` after every band, so callers can show progress and stop early
    (closing the generator leaves a store whose ``napari_scalespace.complete`` is false)."""
    root = create_pyramid(out_zarr, grid, channels, dtype, name, attrs)
    total = int(sum(np.prod(grid.n_tiles(level)) for level in range(grid.n_levels)))
    done = 0
    for band in bands(grid, batch):
        done += write_band(root[str(band[0])], grid, band, tiles, batch)
        yield done, total
    finish_pyramid(out_zarr)


def write_pyramid(out_zarr: str | Path, grid: PyramidGrid, channels: int, dtype: np.dtype,
                  tiles: TileFn, batch: int = 16, progress: bool = True,
                  name: str = "scalespace", attrs: dict | None = None) -> Path:
    """:func:`pyramid_steps` run to the end, with a tqdm bar counting tiles. Returns the path."""
    steps = pyramid_steps(out_zarr, grid, channels, dtype, tiles, batch, name, attrs)
    return run_steps(steps, out_zarr, progress)


def run_steps(steps: Iterator[tuple[int, int]], out_zarr: str | Path, progress: bool) -> Path:
    """Run a ``*_steps`` generator to the end with a tqdm bar counting tiles."""
    from tqdm import tqdm

    with tqdm(unit="tile", desc=f"export {Path(out_zarr).name}", disable=not progress,
              dynamic_ncols=True) as bar:
        for done, total in steps:
            bar.total = total
            bar.update(done - bar.n)
    return Path(out_zarr)


def open_pyramid(store: str | Path) -> tuple[list[zarr.Array], dict]:
    """The level arrays (finest first) and our attributes of a pyramid written by
    :mod:`.render.export`. Raises ValueError for anything else."""
    try:
        root = zarr.open_group(str(store), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise ValueError(f"{store}: not a zarr group") from exc
    attrs = root.attrs.asdict()
    ours = attrs.get("napari_scalespace")
    if "ome" not in attrs or ours is None:
        raise ValueError(f"{store}: not a napari-scalespace OME-Zarr pyramid")
    paths = [d["path"] for d in attrs["ome"]["multiscales"][0]["datasets"]]
    return [root[p] for p in paths], ours


def is_complete(store: str | Path) -> bool:
    """Whether ``store`` is a pyramid written to the end by this module."""
    try:
        attrs = zarr.open_group(str(store), mode="r").attrs.asdict()
    except (FileNotFoundError, ValueError, KeyError, zarr.errors.GroupNotFoundError):
        return False
    return bool(attrs.get("napari_scalespace", {}).get("complete", False))


def learned_steps(renderer: Renderer, out_zarr: str | Path, octaves: int | None = None,
                  attrs: dict | None = None) -> Iterator[tuple[int, int]]:
    """:func:`pyramid_steps` of the learned pyramid of ``renderer`` (``octaves`` default the
    run's)."""
    grid = renderer.grid(octaves)
    meta = {"kind": "learned", "seed": renderer.seed,
            "run": None if renderer.run_dir is None else str(renderer.run_dir), **(attrs or {})}
    return pyramid_steps(out_zarr, grid, renderer.channels, renderer.dtype,
                         renderer.render_tiles, batch=renderer.max_batch, name="learned",
                         attrs=meta)


def truth_steps(image: object, out_zarr: str | Path, grid: PyramidGrid,
                batch: int = 16) -> Iterator[tuple[int, int]]:
    """:func:`pyramid_steps` of the ground truth of ``image`` (a path, an array or a
    :class:`data.ImageSource`) on ``grid``: tile = the area-resampled view (edge replication
    outside the image)."""
    from ..data import ImageSource, open_source
    from ..data.patches import area_patch

    source = image if isinstance(image, ImageSource) else open_source(image)
    channels = source.channels
    dtype = np.dtype(np.float32 if channels == 1 else np.uint8)
    level_of = {grid.zoom_of_level(lv): lv for lv in range(grid.n_levels)}

    def tiles(keys):
        return {key: truth_tile(area_patch(source, grid.tile_view(level_of[key[0]], *key[1:]),
                                           grid.tile))
                for key in keys}

    src = str(image) if isinstance(image, str | Path) else source.name
    return pyramid_steps(out_zarr, grid, channels, dtype, tiles, batch=batch, name="truth",
                         attrs={"kind": "truth", "image": src})


def export_renderer(renderer: Renderer, out_zarr: str | Path, octaves: int | None = None,
                    progress: bool = True, attrs: dict | None = None) -> Path:
    """Write the learned pyramid of ``renderer`` (``octaves`` default the run's)."""
    return run_steps(learned_steps(renderer, out_zarr, octaves, attrs), out_zarr, progress)


def export_learned(run_dir: str | Path, out_zarr: str | Path, octaves: int | None = None,
                   seed: int | None = None, progress: bool = True, device: str = "auto",
                   max_batch: int | None = None) -> Path:
    """Write the learned scale space of ``run_dir`` as an OME-Zarr pyramid (no tile cache:
    every tile is rendered once)."""
    renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=0, max_batch=max_batch)
    return export_renderer(renderer, out_zarr, octaves=octaves, progress=progress)


def export_truth(image: object, out_zarr: str | Path, view_size: int, octaves: int,
                 progress: bool = True, batch: int = 16) -> Path:
    """Write the ground-truth pyramid of ``image`` (a path or a :class:`data.ImageSource`) on
    ``PyramidGrid(octaves, view_size, scene_extent(H, W))``: tile = area-resampled view."""
    from ..data import ImageSource, open_source

    source = image if isinstance(image, ImageSource) else open_source(image)
    grid = PyramidGrid(octaves, view_size, scene_extent(source.height, source.width))
    steps = truth_steps(image if isinstance(image, str | Path) else source, out_zarr, grid,
                        batch)
    return run_steps(steps, out_zarr, progress)


def truth_tile(patch: np.ndarray) -> np.ndarray:
    """``[C, R, R]`` float in [0, 1] -> a tile like the renderer's: ``[R, R]`` float32 for one
    channel, else ``[R, R, C]`` uint8."""
    if patch.shape[0] == 1:
        return patch[0].astype(np.float32, copy=False)
    return np.round(np.clip(patch, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
