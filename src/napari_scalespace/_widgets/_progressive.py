"""napari side of progressive levels (:mod:`napari_scalespace.render.progressive`): when the
background scheduler has rendered a batch of tiles, slice the layer again, on the UI thread,
at most every ``interval_ms``."""

from __future__ import annotations

from qtpy.QtCore import QObject, QTimer, Signal

from ..render.progressive import ProgressiveLevel


class LayerRefresher(QObject):
    """Refreshes ``layer`` (whose level 0 is a :class:`ProgressiveLevel`) when tiles land."""

    tiles_ready = Signal()

    def __init__(self, layer, interval_ms: int = 40) -> None:
        super().__init__()
        self.layer = layer
        self.scheduler = layer.data[0].scheduler
        self.refreshes = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._refresh)
        # emitted from the scheduler's thread; delivered (queued) on this object's UI thread
        self.tiles_ready.connect(self._schedule)
        self.scheduler.add_listener(self.tiles_ready.emit)

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _refresh(self) -> None:
        self.refreshes += 1
        self.layer.refresh()

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


def attach_when_added(viewer, level0: ProgressiveLevel) -> None:
    """Attach a refresher to the layer whose level 0 is ``level0`` once ``viewer`` adds it (for
    layers napari creates from a reader's layer data)."""
    def _on_inserted(event) -> None:
        layer = event.value
        if is_progressive(layer) and layer.data[0] is level0:
            viewer.layers.events.inserted.disconnect(_on_inserted)
            attach(layer, viewer)

    viewer.layers.events.inserted.connect(_on_inserted)
