"""Open a run directory in napari as a lazy multiscale layer (the npe2 reader).

``viewer.open(run_dir, plugin="napari-scalespace")`` -> one image layer whose ``octaves + 1``
levels are dask arrays of tiles rendered by the run's EMA generator only when napari asks for
them (:mod:`.render.pyramid`). No Qt or napari import is needed to build the layer data.
"""

from __future__ import annotations

from pathlib import Path

from . import checkpoint


def is_run(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / checkpoint.CONFIG).is_file() and (
        checkpoint.latest_checkpoint(path) is not None)


def get_reader(path):
    """npe2 reader hook: a function for run directories, ``None`` for anything else."""
    if isinstance(path, list):
        return None
    try:
        ok = is_run(path)
    except checkpoint.CheckpointError:
        return None
    return read_run if ok else None


def scale_space_layer(run_dir: str | Path, seed: int | None = None, octaves: int | None = None,
                      device: str = "auto", cache_mb: int = 256):
    """``(levels, kwargs, "image")``: the layer-data tuple of a run's scale space."""
    from .render.pyramid import dask_pyramid
    from .render.renderer import Renderer

    renderer = Renderer(run_dir, device=device, seed=seed, cache_mb=cache_mb)
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
