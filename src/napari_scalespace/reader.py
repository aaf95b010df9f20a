"""Open runs and exported pyramids in napari (the npe2 reader).

- ``viewer.open(run_dir, plugin="napari-scalespace")`` -> one image layer whose ``octaves + 1``
  levels are tiles rendered by the run's EMA generator only when napari shows them, in the
  background (:mod:`.render.progressive`; the npe2 entry point, ``_widgets/reader_hook.py``,
  refreshes the layer as they land);
- ``viewer.open("learned.zarr", plugin="napari-scalespace")`` (a pyramid written by
  :mod:`.render.export`, learned or truth) -> one RGB (or grey) multiscale layer read lazily
  from the store, on the same pixel grid as the run's layer. (napari-ome-zarr opens the same
  stores as one layer per channel.)

No Qt or napari import is needed to build the layer data.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import checkpoint


def is_run(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / checkpoint.CONFIG).is_file() and (
        checkpoint.latest_checkpoint(path) is not None)


def is_pyramid(path: str | Path) -> bool:
    """Whether ``path`` is an OME-Zarr pyramid written by :mod:`.render.export`."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        return False
    try:
        attrs = json.loads((path / "zarr.json").read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return "napari_scalespace" in attrs and "ome" in attrs


def get_reader(path):
    """npe2 reader hook: a function for run directories and our pyramids, else ``None``."""
    if isinstance(path, list):
        return None
    if is_pyramid(path):
        return read_pyramid
    try:
        ok = is_run(path)
    except checkpoint.CheckpointError:
        return None
    return read_run if ok else None


def pyramid_layer(store: str | Path, name: str | None = None):
    """``(levels, kwargs, "image")`` of an exported pyramid: dask arrays ``[H, W, C]`` (or
    ``[H, W]`` for one channel), finest first, chunk = tile."""
    import dask.array as da

    from .render.export import open_pyramid

    arrays, ours = open_pyramid(store)
    levels = [da.from_zarr(a) for a in arrays]
    rgb = levels[0].shape[0] > 1
    levels = [da.moveaxis(lv, 0, -1) if rgb else lv[0] for lv in levels]
    kind = ours.get("kind", "pyramid")
    kwargs = {
        "name": name or f"{kind} {Path(store).name}",
        "multiscale": True,
        "rgb": rgb,
        "metadata": {"napari_scalespace": {"store": str(store), **ours}},
    }
    if not rgb:
        kwargs["contrast_limits"] = (0.0, 1.0)
    return levels, kwargs, "image"


def read_pyramid(path) -> list:
    return [pyramid_layer(path)]


def scale_space_layer(run_dir: str | Path, seed: int | None = None, octaves: int | None = None,
                      device: str = "auto", cache_mb: int = 256, progressive: bool = True):
    """``(levels, kwargs, "image")``: the layer-data tuple of a run's scale space.

    ``progressive`` (default): :mod:`.render.progressive` levels, whose reads never wait for the
    generator (missing tiles come from coarser cached tiles while a background thread renders
    them; the layer must be refreshed as they land, which ``_widgets/_progressive.py`` does);
    else dask arrays whose chunks are rendered when read (:mod:`.render.pyramid`)."""
    from .render.renderer import Renderer

    renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=cache_mb)
    if progressive:
        from .render.progressive import progressive_pyramid

        levels = progressive_pyramid(renderer, octaves)
    else:
        from .render.pyramid import dask_pyramid

        levels = dask_pyramid(renderer, octaves)
    name = Path(run_dir).name + ("" if seed is None else f" (seed {seed})")
    kwargs = {
        "name": f"scale space {name}",
        "multiscale": True,
        "rgb": levels[0].ndim == 3,
        "metadata": {"napari_scalespace": {"run": str(run_dir), "seed": seed},
                     "renderer": renderer},
    }
    if not kwargs["rgb"]:
        kwargs["contrast_limits"] = (0.0, 1.0)
    return levels, kwargs, "image"


def read_run(path) -> list:
    return [scale_space_layer(path)]
