"""Export and evaluate on a dask.distributed cluster.

``--scheduler ADDRESS`` connects to a running scheduler (``tcp://host:8786``, a SLURM or
Kubernetes deployment); ``--scheduler local:N`` starts a ``LocalCluster`` of N single-threaded
worker processes on this machine. Work is cut into independent units and sent to the workers:

- **export**: one unit per band of tiles (:func:`.export.bands`, whole chunks, so no two
  units write the same chunk). The client creates the store; each worker renders its bands and
  writes them straight into the zarr store (which must be on a file system all workers see),
  then the client marks the store complete. Units are the single-process export's bands,
  rendered in the same generator calls, so the bytes are the same.
- **eval**: one unit per octave (:func:`..eval.evaluate.evaluate_octave`, random draws seeded
  per octave, so the report is the same as in one process, but for round-off in the last
  digit of seam PSNRs over 90 dB: workers run torch with fewer threads).

Each worker process loads a run's checkpoint once and keeps its renderer (and opened images)
for all the units it is given (:func:`worker_renderer`). Workers set torch to as many threads
as dask gives them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["cluster_client", "distributed_learned_steps", "worker_renderer", "worker_source"]

_cache: dict = {}
_lock = threading.Lock()


@contextlib.contextmanager
def cluster_client(scheduler: str):
    """A ``distributed.Client`` for ``scheduler`` (``local:N`` or an address), closed after."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ValueError("--scheduler needs the 'distributed' package") from exc
    if scheduler.startswith("local:"):
        try:
            n = int(scheduler.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"--scheduler local:N needs N >= 1 workers, got {scheduler!r}")
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    with Client(scheduler) as client:
        yield client


def _threads() -> None:
    import torch

    try:
        from distributed import get_worker

        n = get_worker().state.nthreads
    except (ImportError, ValueError):
        return
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def worker_renderer(run_dir: str, seed: int | None, device: str, max_batch: int | None):
    """This process's renderer of ``run_dir`` (created, i.e. the checkpoint loaded, once)."""
    from .renderer import Renderer

    key = ("renderer", str(run_dir), seed, device, max_batch)
    with _lock:
        if key not in _cache:
            _threads()
            _cache[key] = Renderer(run_dir, device=device, seed=seed, cache_mb=0,
                                   max_batch=max_batch)
        return _cache[key]


def worker_source(image: str):
    """This process's opened image source of ``image`` (opened once)."""
    from ..data import open_source

    key = ("source", str(image))
    with _lock:
        if key not in _cache:
            _cache[key] = open_source(image)
        return _cache[key]


def _export_band(run_dir: str, seed: int | None, device: str, batch: int | None, out_zarr: str,
                 grid, band: tuple[int, int, int, int, int]) -> int:
    import zarr

    from .export import write_band

    renderer = worker_renderer(run_dir, seed, device, batch)
    arr = zarr.open_array(str(Path(out_zarr) / str(band[0])), mode="r+")
    return write_band(arr, grid, band, renderer.render_tiles, renderer.max_batch)


def distributed_learned_steps(client, run_dir: str | Path, out_zarr: str | Path,
                              octaves: int | None = None, seed: int | None = None,
                              device: str = "cpu", batch: int | None = None,
                              overwrite: bool = False) -> Iterator[tuple[int, int]]:
    """:func:`.export.learned_steps` with the bands rendered and written by the cluster's
    workers; yields ``(tiles written, total)`` as bands finish (in any order). Closing the
    generator cancels the bands not yet done and leaves the store incomplete. The store is
    created as :func:`.export.create_pyramid` allows (``overwrite``: replace a store of ours),
    after :func:`.budget.check_budget`."""
    from distributed import as_completed

    from .budget import check_budget, estimate
    from .export import bands, create_pyramid, finish_pyramid, learned_attrs, learned_placement
    from .output_guard import check_output
    from .renderer import Renderer

    check_output(out_zarr, overwrite, [run_dir])  # before loading the checkpoint
    local = Renderer(run_dir, device="cpu", seed=seed, cache_mb=0, max_batch=batch)
    grid = local.grid(octaves)
    out = str(Path(out_zarr).resolve())
    budget = estimate(grid, local.channels, local.dtype, local.max_batch)
    check_budget(budget, out, Path(out).name)
    create_pyramid(out, grid, local.channels, local.dtype, name="learned",
                   attrs=learned_attrs(local), overwrite=overwrite,
                   placement=learned_placement(local, grid))
    units = bands(grid, local.max_batch)
    del local
    total = budget.tiles
    futures = [client.submit(_export_band, str(Path(run_dir).resolve()), seed, device, batch,
                             out, grid, band, pure=False) for band in units]
    done = 0
    try:
        for future in as_completed(futures):
            done += future.result()
            yield done, total
    finally:
        client.cancel([f for f in futures if not f.done()])
    finish_pyramid(out)
