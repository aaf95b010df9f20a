"""OME-Zarr (NGFF 0.5, zarr v3) pyramids of a learned scale space and of its ground truth.

Both pyramids use the same :class:`geometry.PyramidGrid` (levels, shapes, tile size R), so
level i of both shows the same region of the scene:

- *learned*: level i tile (a, b) is the run's rendering of ``grid.tile_view(i, a, b)``
  (:class:`.renderer.Renderer`, seamless tiles);
- *truth*: the same view cut from the source image with exact area resampling
  (:func:`data.patches.area_patch`, the semantics of ``cut_patch``; edge replication outside
  the image).

Layout: one zarr v3 group; arrays ``"0"`` (finest) .. ``"L"`` of shape ``(C, H_i, W_i)``, chunks
``(C, R, R)`` (one tile), ``dimension_names`` c, y, x; axes c (channel), y, x (space, with the
source's physical ``unit`` when it has one); per level a scale ``[1, s_i, s_i]`` and a
translation ``[0, t_i, t_i]`` in physical units (:class:`.placement.Placement`: the pyramid
overlays its source image opened at its pixel size); uint8 for colour images, float32 in
[0, 1] for single-channel ones. The NGFF metadata is written with ome-zarr-py
(``write_multiscales_metadata``, ``FormatV05``); the group attributes also hold
``"napari_scalespace"``: the grid (octaves, tile, extent), the placement, the pyramid's origin
(and for learned pyramids the checkpoint, :mod:`.provenance`).

Safety: stores are created only where :func:`.output_guard.check_output` allows (a new or
empty folder, or a store of ours with ``overwrite``; never a run or the source), after the
cost was checked (:mod:`.budget`: octaves, disk space, memory).

Streaming: a level is written one band of tiles at a time (whole tile rows, or part of a row
when a row holds more than a batch; tiles rendered in batches of the renderer's measured or
given size), so memory stays at one band of tiles whatever the level size; a tqdm bar counts
tiles.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import zarr
from ome_zarr.format import FormatV05
from ome_zarr.writer import write_multiscales_metadata

from ..geometry import MAX_OCTAVES, PyramidGrid, scene_extent
from .budget import Budget, band_size, check_budget, estimate, measure_rate
from .output_guard import check_output
from .placement import Placement, image_placement, run_placement
from .provenance import checkpoint_identity
from .renderer import Renderer, tile_dtype

__all__ = [
    "DIMENSIONS",
    "axes",
    "band_pixels",
    "bands",
    "create_pyramid",
    "export_learned",
    "export_renderer",
    "export_truth",
    "finish_pyramid",
    "is_complete",
    "learned_attrs",
    "learned_budget",
    "learned_placement",
    "learned_steps",
    "open_pyramid",
    "pyramid_budget",
    "pyramid_steps",
    "store_band",
    "truth_batch",
    "truth_grid",
    "truth_steps",
    "truth_tiles",
    "write_band",
    "write_pyramid",
]

DIMENSIONS = ("c", "y", "x")


def axes(unit: str | None = None) -> list[dict]:
    """NGFF axes c (channel), y, x (space, in ``unit`` when given)."""
    space = {"type": "space", **({"unit": unit} if unit else {})}
    return [{"name": "c", "type": "channel"}, {"name": "y", **space}, {"name": "x", **space}]


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


def _protected(attrs: dict | None, protect: Iterable) -> list:
    """The paths a store must never touch: ``protect`` and the run and image recorded in
    ``attrs`` (when they are paths that exist)."""
    out = [p for p in protect if p is not None]
    for key in ("run", "image"):
        value = (attrs or {}).get(key)
        if isinstance(value, str | os.PathLike) and os.path.exists(value):
            out.append(value)
    return out


def create_pyramid(out_zarr: str | Path, grid: PyramidGrid, channels: int, dtype: np.dtype,
                   name: str = "scalespace", attrs: dict | None = None,
                   overwrite: bool = False, protect: Iterable = (),
                   placement: Placement | None = None) -> zarr.Group:
    """Create the store of a pyramid on ``grid``: empty level arrays, the NGFF metadata and
    our attributes with ``complete`` false (:func:`finish_pyramid` sets it). Only where
    :func:`.output_guard.check_output` allows (``overwrite`` replaces a store of ours; the
    run and image named in ``attrs`` and the paths in ``protect`` are never touched)."""
    dtype = np.dtype(dtype)
    check_output(out_zarr, overwrite, _protected(attrs, protect))
    placement = placement or Placement.of_grid(grid)
    r = grid.tile
    root = zarr.open_group(str(out_zarr), mode="w", zarr_format=3)
    for level in range(grid.n_levels):
        h, w = grid.level_shape(level)
        root.create_array(str(level), shape=(channels, h, w), dtype=dtype,
                          chunks=(channels, r, r), fill_value=0, dimension_names=DIMENSIONS)
    datasets = []
    for level in range(grid.n_levels):
        scale, translate = placement.transform(grid, level)
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, scale, scale]},
            {"type": "translation", "translation": [0.0, translate, translate]}]})
    write_multiscales_metadata(root, datasets=datasets, fmt=FormatV05(),
                               axes=axes(placement.unit), name=name,
                               metadata={"omero": omero(channels, dtype)})
    root.attrs["napari_scalespace"] = {
        "grid": {"octaves": grid.octaves, "tile": r, "extent": list(grid.extent)},
        "placement": placement.to_dict(), **(attrs or {}), "complete": False}
    return root


def finish_pyramid(out_zarr: str | Path) -> None:
    """Mark a store written to the end as complete."""
    root = zarr.open_group(str(out_zarr), mode="r+")
    root.attrs["napari_scalespace"] = {**root.attrs["napari_scalespace"], "complete": True}


def bands(grid: PyramidGrid, batch: int) -> list[tuple[int, int, int, int, int]]:
    """The work units of a pyramid, finest level first: ``(level, a0, a1, b0, b1)`` = tiles
    ``a0 <= a < a1``, ``b0 <= b < b1`` of a level, about ``batch`` tiles
    (:func:`.budget.band_size`; whole chunks: bands never share one)."""
    out = []
    for level in range(grid.n_levels):
        ny, nx = grid.n_tiles(level)
        rows, cols = band_size(ny, nx, batch)
        out += [(level, a0, min(ny, a0 + rows), b0, min(nx, b0 + cols))
                for a0 in range(0, ny, rows) for b0 in range(0, nx, cols)]
    return out


def write_band(arr: zarr.Array, grid: PyramidGrid, band: tuple[int, int, int, int, int],
               tiles: TileFn, batch: int) -> int:
    """Render the tiles of ``band`` (in generator calls of ``batch`` keys) into level array
    ``arr``; returns the number of tiles."""
    return store_band(arr, grid, band, band_pixels(arr, grid, band, tiles, batch))


def store_band(arr: zarr.Array, grid: PyramidGrid, band: tuple[int, int, int, int, int],
               pixels: np.ndarray) -> int:
    """Write a band's pixels (:func:`band_pixels`) into level array ``arr``; returns its
    number of tiles."""
    _, a0, a1, b0, b1 = band
    r = grid.tile
    arr[:, a0 * r:a1 * r, b0 * r:b1 * r] = pixels
    return (a1 - a0) * (b1 - b0)


def band_pixels(arr: zarr.Array, grid: PyramidGrid, band: tuple[int, int, int, int, int],
                tiles: TileFn, batch: int) -> np.ndarray:
    """The tiles of ``band`` (in calls of ``batch`` keys) as one ``[C, rows, cols]`` block of
    level array ``arr``'s dtype."""
    level, a0, a1, b0, b1 = band
    r = grid.tile
    zoom = grid.zoom_of_level(level)
    out = np.empty((arr.shape[0], (a1 - a0) * r, (b1 - b0) * r), dtype=arr.dtype)
    keys = [(zoom, a, b) for a in range(a0, a1) for b in range(b0, b1)]
    for k0 in range(0, len(keys), batch):
        part = keys[k0:k0 + batch]
        got = tiles(part)
        for key in part:
            _, a, b = key
            t = np.asarray(got[key])
            t = t[None] if t.ndim == 2 else np.moveaxis(t, -1, 0)
            out[:, (a - a0) * r:(a - a0 + 1) * r, (b - b0) * r:(b - b0 + 1) * r] = t
    return out


def pyramid_budget(grid: PyramidGrid, channels: int, dtype: np.dtype, batch: int,
                   tiles: TileFn | None = None, probe: int = 0) -> Budget:
    """The :class:`.budget.Budget` of a pyramid; with ``probe > 0`` the rate is measured on
    that many tiles of the finest level (only when the octaves are within the limit)."""
    rate = None
    if tiles is not None and probe > 0 and grid.octaves <= MAX_OCTAVES:
        nx = grid.n_tiles(0)[1]
        zoom = grid.zoom_of_level(0)
        rate = measure_rate(tiles, [(zoom, 0, b) for b in range(min(nx, probe))])
    return estimate(grid, channels, dtype, batch, rate)


def pyramid_steps(
    out_zarr: str | Path,
    grid: PyramidGrid,
    channels: int,
    dtype: np.dtype,
    tiles: TileFn,
    batch: int = 16,
    name: str = "scalespace",
    attrs: dict | None = None,
    overwrite: bool = False,
    protect: Iterable = (),
    placement: Placement | None = None,
    workers: int = 1,
) -> Iterator[tuple[int, int]]:
    """Write the pyramid of ``grid`` whose tiles ``tiles(keys)`` returns (see the module
    docstring for the layout) into ``out_zarr`` (:func:`create_pyramid`: a new or empty
    folder, or a store of ours with ``overwrite``); a generator that yields
    ``(tiles written, total)`` after every band, so callers can show progress and stop early
    (closing the generator leaves a store whose ``napari_scalespace.complete`` is false).
    Refuses before writing anything a pyramid beyond :func:`.budget.check_budget`'s limits.

    ``workers > 1`` computes that many bands ahead in threads (``tiles`` must be thread-safe:
    the truth's are, reading and resampling release the GIL) while this thread stores them,
    in order; memory stays at ``workers + 1`` bands."""
    from concurrent.futures import ThreadPoolExecutor

    budget = estimate(grid, channels, dtype, batch)
    check_budget(budget, out_zarr, Path(out_zarr).name)
    root = create_pyramid(out_zarr, grid, channels, dtype, name, attrs, overwrite, protect,
                          placement)
    total, done = budget.tiles, 0
    work = bands(grid, batch)
    if workers <= 1:
        for band in work:
            done += write_band(root[str(band[0])], grid, band, tiles, batch)
            yield done, total
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="pyramid") as pool:
            def submit(band):
                return pool.submit(band_pixels, root[str(band[0])], grid, band, tiles, batch)

            ahead = [submit(band) for band in work[:workers]]
            for i, band in enumerate(work):
                pixels = ahead.pop(0).result()
                if i + workers < len(work):
                    ahead.append(submit(work[i + workers]))
                done += store_band(root[str(band[0])], grid, band, pixels)
                yield done, total
    finish_pyramid(out_zarr)


def write_pyramid(out_zarr: str | Path, grid: PyramidGrid, channels: int, dtype: np.dtype,
                  tiles: TileFn, batch: int = 16, progress: bool = True,
                  name: str = "scalespace", attrs: dict | None = None,
                  overwrite: bool = False, placement: Placement | None = None) -> Path:
    """:func:`pyramid_steps` run to the end, with a tqdm bar counting tiles. Returns the path."""
    steps = pyramid_steps(out_zarr, grid, channels, dtype, tiles, batch, name, attrs,
                          overwrite, placement=placement)
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


def learned_placement(renderer: Renderer, grid: PyramidGrid) -> Placement:
    """Where the learned pyramid of ``renderer`` sits: over the run's source image
    (:func:`.placement.run_placement`), else level 0 pixels as world units."""
    return run_placement(renderer.info, renderer.run_dir) or Placement.of_grid(grid)


def learned_attrs(renderer: Renderer, attrs: dict | None = None) -> dict:
    """Our attributes of a learned store: kind, seed, run and the checkpoint it came from."""
    run = None if renderer.run_dir is None else str(renderer.run_dir)
    return {"kind": "learned", "seed": renderer.seed, "run": run,
            "checkpoint": None if run is None else checkpoint_identity(run), **(attrs or {})}


def learned_budget(renderer: Renderer, octaves: int | None = None, probe: int = 4) -> Budget:
    """The cost of the learned pyramid of ``renderer`` (the rate measured on ``probe``
    tiles; 0: not measured)."""
    grid = renderer.grid(octaves)
    return pyramid_budget(grid, renderer.channels, renderer.dtype, renderer.max_batch,
                          renderer.render_tiles, probe)


def learned_steps(renderer: Renderer, out_zarr: str | Path, octaves: int | None = None,
                  attrs: dict | None = None, overwrite: bool = False,
                  placement: Placement | None = None) -> Iterator[tuple[int, int]]:
    """:func:`pyramid_steps` of the learned pyramid of ``renderer`` (``octaves`` default the
    run's), placed over the run's source (or ``placement``)."""
    grid = renderer.grid(octaves)
    return pyramid_steps(out_zarr, grid, renderer.channels, renderer.dtype,
                         renderer.render_tiles, batch=renderer.max_batch, name="learned",
                         attrs=learned_attrs(renderer, attrs), overwrite=overwrite,
                         placement=placement or learned_placement(renderer, grid))


def truth_tiles(source, grid: PyramidGrid) -> TileFn:
    """Tiles of the ground truth of ``source`` on ``grid``: the area-resampled views. A
    rectangle of tiles of one level (a band) is resampled in one read
    (:meth:`data.ImageSource.area`, from the stored level that serves it: level 0 copied, a
    coarser one block-averaged where the grid falls on its pixels), then cut into tiles."""
    from ..geometry import source_pixel_edges

    level_of = {grid.zoom_of_level(lv): lv for lv in range(grid.n_levels)}
    r = grid.tile

    def edges(level: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        v = grid.tile_view(level, a, b)
        return source_pixel_edges(v.zoom, v.cy, v.cx, r, source.height, source.width)

    def block(zoom: float, rows: list[int], cols: list[int]) -> dict:
        level = level_of[zoom]
        ye = np.concatenate([edges(level, a, cols[0])[0][:-1] for a in rows]
                            + [edges(level, rows[-1], cols[0])[0][-1:]])
        xe = np.concatenate([edges(level, rows[0], b)[1][:-1] for b in cols]
                            + [edges(level, rows[0], cols[-1])[1][-1:]])
        v = source.area(ye, xe)
        return {(zoom, a, b): truth_tile(v[:, i * r:(i + 1) * r, j * r:(j + 1) * r])
                for i, a in enumerate(rows) for j, b in enumerate(cols)}

    def tiles(keys):
        out = {}
        for zoom in {k[0] for k in keys}:
            mine = {k for k in keys if k[0] == zoom}
            rows = sorted({a for _, a, _ in mine})
            cols = sorted({b for _, _, b in mine})
            whole = (len(mine) == len(rows) * len(cols) and rows[-1] - rows[0] == len(rows) - 1
                     and cols[-1] - cols[0] == len(cols) - 1)
            if whole:
                out.update(block(zoom, rows, cols))
            else:
                for _, a, b in mine:
                    out.update(block(zoom, [a], [b]))
        return out

    return tiles


TRUTH_WORKERS = min(4, os.cpu_count() or 1)
"""Threads computing truth bands ahead of the writer (reading and resampling release the
GIL)."""


def truth_batch(tile: int) -> int:
    """Tiles per band of a truth pyramid: about 1024 x 1024 pixels (a band is one read)."""
    return max(16, (1024 // tile) ** 2)


def truth_steps(image: object, out_zarr: str | Path, grid: PyramidGrid,
                batch: int | None = None, overwrite: bool = False,
                placement: Placement | None = None) -> Iterator[tuple[int, int]]:
    """:func:`pyramid_steps` of the ground truth of ``image`` (a path, an array or a
    :class:`data.ImageSource`) on ``grid``: tile = the area-resampled view (edge replication
    outside the image); placed at the image's physical pixel size (``placement``, else its
    metadata's)."""
    from ..data import ImageSource, open_source

    source = image if isinstance(image, ImageSource) else open_source(image)
    channels = source.channels
    dtype = tile_dtype(channels)
    path = isinstance(image, str | Path)
    src = str(image) if path else source.name
    if placement is None:
        placement = (image_placement(image) if path else None) or image_placement(source)
    return pyramid_steps(out_zarr, grid, channels, dtype, truth_tiles(source, grid),
                         batch=batch or truth_batch(grid.tile), name="truth",
                         attrs={"kind": "truth", "image": src},
                         overwrite=overwrite, placement=placement, workers=TRUTH_WORKERS)


def export_renderer(renderer: Renderer, out_zarr: str | Path, octaves: int | None = None,
                    progress: bool = True, attrs: dict | None = None,
                    overwrite: bool = False) -> Path:
    """Write the learned pyramid of ``renderer`` (``octaves`` default the run's)."""
    return run_steps(learned_steps(renderer, out_zarr, octaves, attrs, overwrite), out_zarr,
                     progress)


def export_learned(run_dir: str | Path, out_zarr: str | Path, octaves: int | None = None,
                   seed: int | None = None, progress: bool = True, device: str = "auto",
                   max_batch: int | None = None, overwrite: bool = False) -> Path:
    """Write the learned scale space of ``run_dir`` as an OME-Zarr pyramid (no tile cache:
    every tile is rendered once)."""
    check_output(out_zarr, overwrite, [run_dir])  # before loading the checkpoint
    renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=0, max_batch=max_batch)
    return export_renderer(renderer, out_zarr, octaves=octaves, progress=progress,
                           overwrite=overwrite)


def truth_grid(source, view_size: int, octaves: int) -> PyramidGrid:
    """The grid of a ground-truth pyramid of ``source`` (``PyramidGrid(octaves, R,
    scene_extent(H, W))``), the learned pyramid's grid for a run on the same image."""
    return PyramidGrid(octaves, view_size, scene_extent(source.height, source.width))


def export_truth(image: object, out_zarr: str | Path, view_size: int, octaves: int,
                 progress: bool = True, batch: int | None = None,
                 overwrite: bool = False) -> Path:
    """Write the ground-truth pyramid of ``image`` (a path or a :class:`data.ImageSource`) on
    :func:`truth_grid`: tile = area-resampled view."""
    from ..data import ImageSource, open_source

    source = image if isinstance(image, ImageSource) else open_source(image)
    grid = truth_grid(source, view_size, octaves)
    steps = truth_steps(image if isinstance(image, str | Path) else source, out_zarr, grid,
                        batch, overwrite)
    return run_steps(steps, out_zarr, progress)


def truth_tile(patch: np.ndarray) -> np.ndarray:
    """``[C, R, R]`` float in [0, 1] -> a tile like the renderer's: ``[R, R]`` float32 for one
    channel, else ``[R, R, C]`` uint8."""
    if patch.shape[0] == 1:
        return patch[0].astype(np.float32, copy=False)
    return np.round(np.clip(patch, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0)
