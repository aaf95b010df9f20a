"""napari side of progressive levels (:mod:`napari_scalespace.render.progressive`): when the
background scheduler has rendered a batch of tiles, slice the layer again, on the UI thread.

A refresh re-slices and redraws the whole view, so refreshes are spaced by at least
``interval_ms`` and by three times the last refresh's duration: the UI thread spends at most
about a quarter of its time showing new tiles, the rest on the user's input."""

from __future__ import annotations

import time

from qtpy.QtCore import QObject, QTimer, Signal

from ..render.progressive import ProgressiveLevel


class LayerRefresher(QObject):
    """Refreshes ``layer`` (whose level 0 is a :class:`ProgressiveLevel`) when tiles land."""

    tiles_ready = Signal()

    def __init__(self, layer, interval_ms: int = 50) -> None:
        super().__init__()
        self.layer = layer
        self.scheduler = layer.data[0].scheduler
        self.refreshes = 0
        self.interval_ms = interval_ms
        self.last_refresh_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._refresh)
        # emitted from the scheduler's thread; delivered (queued) on this object's UI thread
        self.tiles_ready.connect(self._schedule)
        self.scheduler.add_listener(self.tiles_ready.emit)

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start(int(max(self.interval_ms, 3 * self.last_refresh_ms)))

    def _refresh(self) -> None:
        self.refreshes += 1
        t0 = time.perf_counter()
        self.layer.refresh()
        self.last_refresh_ms = (time.perf_counter() - t0) * 1000

    def detach(self) -> None:
        self.scheduler.remove_listener(self.tiles_ready.emit)
        self.scheduler.close()
        self._timer.stop()


def is_progressive(layer) -> bool:
    return bool(getattr(layer, "multiscale", False)) and isinstance(layer.data[0],
                                                                     ProgressiveLevel)


def attach(layer, viewer=None) -> LayerRefresher | None:
    """Refresh ``layer`` as its tiles arrive; detached when the layer leaves ``viewer``."""
    if not is_progressive(layer):
        return None
    if isinstance(getattr(layer, "_scalespace_refresher", None), LayerRefresher):
        return layer._scalespace_refresher
    refresher = LayerRefresher(layer)
    layer._scalespace_refresher = refresher
    if viewer is not None:
        def _on_removed(event) -> None:
            if event.value is layer:
                refresher.detach()
                viewer.layers.events.removed.disconnect(_on_removed)

        viewer.layers.events.removed.connect(_on_removed)
    return refresher


def watch_viewer(viewer) -> None:
    """Give every progressive layer of ``viewer`` a refresher: those there now and any added
    later, however they are added (reader, sample, widget, script). Idempotent: one watcher
    per viewer."""
    if viewer is None:
        return
    for layer in list(viewer.layers):
        attach(layer, viewer)
    if getattr(viewer, "_scalespace_watched", False):
        return

    def _on_inserted(event) -> None:
        attach(event.value, viewer)

    viewer.layers.events.inserted.connect(_on_inserted)
    viewer._scalespace_watched = True


def attach_when_added(viewer, level0: ProgressiveLevel | None = None) -> None:
    """Attach a refresher to progressive layers once ``viewer`` adds them (for layers napari
    creates from a reader's or a sample's layer data): :func:`watch_viewer`."""
    watch_viewer(viewer)


def napari_async() -> bool:
    """Whether napari slices layers off the UI thread (its experimental "async" setting).

    With it on, lazy dask levels are best (napari's slicing thread waits for the tiles; worst UI
    stall 66 ms in ``benchmarks/bench_ui_stall.py``); with it off, progressive levels keep the
    viewer usable (worst stall 0.3-0.5 s instead of tens of seconds). See docs/benchmarks.md.
    """
    from napari.settings import get_settings

    return bool(get_settings().experimental.async_)


def use_progressive() -> bool:
    """The level kind for a new scale-space layer under the current napari settings."""
    return not napari_async()


def set_napari_async(on: bool) -> None:
    """Turn napari's async slicing on or off (a global napari preference, also in
    Preferences > Experimental > "Render Layers Asynchronously")."""
    from napari.settings import get_settings

    get_settings().experimental.async_ = bool(on)
