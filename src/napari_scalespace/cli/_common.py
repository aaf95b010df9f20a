"""What several subcommands share: the cluster option and progress bars."""

from __future__ import annotations

_SCHEDULER_HELP = ("run on a dask.distributed cluster: a scheduler address "
                   "(tcp://host:8786) or local:N for N worker processes on this machine")


def _scheduler(address: str | None):
    """A distributed.Client context for ``--scheduler`` (a null context without one)."""
    import contextlib

    if not address:
        return contextlib.nullcontext(None)
    from napari_scalespace.render.cluster import cluster_client

    return cluster_client(address)


def _drive(steps, quiet: bool, units: dict[str, str]):
    """Run a generator of ``(kind, done, total)`` progress events with one tqdm bar per kind;
    return its final event."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    try:
        for event in steps:
            kind, *rest = event
            if kind == "report":
                return event
            done, total = rest
            bar = bars.get(kind) or bars.setdefault(kind, tqdm(
                total=total, unit=units.get(kind, "step"), desc=kind, disable=quiet,
                dynamic_ncols=True))
            bar.update(done - bar.n)
    finally:
        for bar in bars.values():
            bar.close()
    raise RuntimeError("the evaluation ended without a report")
