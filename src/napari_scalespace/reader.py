"""Open runs and exported pyramids in napari (the npe2 reader).

- ``viewer.open(run_dir, plugin="napari-scalespace")`` -> one image layer whose ``octaves + 1``
  levels are tiles rendered by the run's EMA generator only when napari shows them, in the
  background (:mod:`.render.progressive`; the npe2 entry point, ``_widgets/reader_hook.py``,
  refreshes the layer as they land);
- ``viewer.open("learned.zarr", plugin="napari-scalespace")`` (a pyramid written by
  :mod:`.render.export`, learned or truth) -> one RGB (or grey) multiscale layer read lazily
  from the store, on the same pixel grid as the run's layer. (napari-ome-zarr opens the same
  stores as one layer per channel.)

Both layers carry ``scale``, ``translate`` and ``units`` (:mod:`.render.placement`): they
overlay the source image opened at its physical pixel size (or plainly, in pixels, when it
has none).

Deciding (:func:`get_reader`) reads a few small files and imports neither torch nor Qt: a run
is a folder with ``config.json`` and a ``latest`` file naming a checkpoint folder that holds a
``state.json`` (the layout of :mod:`.checkpoint`); a pyramid is a folder whose ``zarr.json``
is a group with our attributes. Anything else, malformed files included, is declined (None).
"""

from __future__ import annotations

import re
from pathlib import Path

from .render.output_guard import is_our_store

_STEP = re.compile(r"^step-\d{8,}$")


def is_run(path: str | Path) -> bool:
    """Whether ``path`` is a run folder with a complete checkpoint (file layout only)."""
    path = Path(path)
    try:
        if not (path / "config.json").is_file():
            return False
        name = (path / "latest").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return bool(_STEP.match(name)) and (path / "checkpoints" / name / "state.json").is_file()


def is_pyramid(path: str | Path) -> bool:
    """Whether ``path`` is an OME-Zarr pyramid written by :mod:`.render.export`."""
    try:
        return Path(path).is_dir() and is_our_store(path)
    except (OSError, ValueError):
        return False


def get_reader(path):
    """npe2 reader hook: a function for run directories and our pyramids, else ``None``."""
    if isinstance(path, list | tuple):
        if len(path) != 1:
            return None
        path = path[0]
    if not isinstance(path, str | Path):
        return None
    if is_pyramid(path):
        return read_pyramid
    return read_run if is_run(path) else None


def zarr_attrs(store: str | Path) -> dict:
    from .render.output_guard import store_attributes

    return store_attributes(store) or {}


def ngff_placement(attrs: dict) -> dict:
    """napari keywords ``scale``, ``translate`` (y, x) and ``units`` from the NGFF metadata of
    a store: the first dataset's scale and translation and the axes' unit (empty when the
    metadata lacks them)."""
    try:
        ms = attrs["ome"]["multiscales"][0]
        names = [a["name"] for a in ms["axes"]]
        iy, ix = names.index("y"), names.index("x")
        out: dict = {}
        for t in ms["datasets"][0].get("coordinateTransformations", []):
            if t.get("type") == "scale":
                out["scale"] = (float(t["scale"][iy]), float(t["scale"][ix]))
            elif t.get("type") == "translation":
                out["translate"] = (float(t["translation"][iy]), float(t["translation"][ix]))
        units = (ms["axes"][iy].get("unit"), ms["axes"][ix].get("unit"))
        if all(isinstance(u, str) and u for u in units):
            out["units"] = units
        return out
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return {}


def pyramid_layer(store: str | Path, name: str | None = None):
    """``(levels, kwargs, "image")`` of an exported pyramid: dask arrays ``[H, W, C]`` (or
    ``[H, W]`` for one channel), finest first, chunk = tile; placed in physical units."""
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
    kwargs.update(ngff_placement(zarr_attrs(store)))
    if not rgb and kind in ("learned", "truth"):
        kwargs["contrast_limits"] = (0.0, 1.0)
    return levels, kwargs, "image"


def read_pyramid(path) -> list:
    return [pyramid_layer(path)]


def scale_space_layer(run_dir: str | Path, seed: int | None = None, octaves: int | None = None,
                      device: str = "auto", cache_mb: int = 256, progressive: bool = False):
    """``(levels, kwargs, "image")``: the layer-data tuple of a run's scale space.

    ``progressive``: :mod:`.render.progressive` levels, whose reads never wait for the
    generator (missing tiles come from coarser cached tiles while a background thread renders
    them; the layer must be refreshed as they land, which ``_widgets/_progressive.py`` does:
    only the napari face asks for them, and gives the layer its refresher); by default dask
    arrays whose chunks are rendered when read (:mod:`.render.pyramid`), which need nothing
    else to show their tiles. The layer
    overlays the run's source image (:func:`.render.export.learned_placement`)."""
    from .render.export import learned_placement
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
    grid = renderer.grid(octaves)
    placement = learned_placement(renderer, grid)
    kwargs.update(placement.layer_kwargs(grid))
    kwargs["metadata"]["napari_scalespace"]["placement"] = placement.to_dict()
    if not kwargs["rgb"]:
        kwargs["contrast_limits"] = (0.0, 1.0)
    return levels, kwargs, "image"


def read_run(path) -> list:
    return [scale_space_layer(path)]
