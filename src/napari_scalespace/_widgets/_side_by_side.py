"""Learned | truth side by side in napari's grid mode, undone when the comparison
ends.

Opening the comparison shows the two pyramids alone in a 1 x 2 grid: the layers that were
visible are hidden (grid mode gives every visible layer a cell; two cells with a third layer
would put it over one of the pyramids), and the grid's previous settings are remembered.
The comparison ends, and exactly those layers are shown again and the grid set back, when

- it is closed (``close()``, the widget's **Close side by side**), which also hides the two
  pyramid layers;
- one of the two pyramid layers is removed;
- another layer is added to the viewer (the user has moved on: it is shown as usual);
- a new export starts.

Layers the user shows or hides meanwhile are left as they are; a layer hidden before the
comparison stays hidden after it.

The plugin never removes a layer itself once grid mode has been on: napari 0.9.2 can crash (a
segmentation fault in the OpenGL draw, seen with Mesa's llvmpipe) when a layer is removed after
grid mode has drawn it (napari PR #9283 fixes deletion in grid view). So closing hides the
pyramids, and reopening reuses layers of the same names with the new data.
"""

from __future__ import annotations

from ._napari_compat import viewer_grid


class SideBySide:
    """The comparison state of one viewer."""

    def __init__(self, viewer) -> None:
        self.viewer = viewer
        self.layers: list = []  # the pyramid layers shown, left to right
        self._hidden: list = []  # the layers hidden for the comparison
        self._grid: tuple | None = None  # (enabled, shape, stride) before it
        self._opening = False
        viewer.layers.events.inserted.connect(self._on_inserted)
        viewer.layers.events.removed.connect(self._on_removed)

    @property
    def active(self) -> bool:
        return bool(self.layers)

    def open(self, layer_data: list[tuple]) -> list:
        """Show ``(data, kwargs)`` pairs left to right, alone in a 1 x len grid; returns the
        layers added (a layer of the same name is replaced)."""
        self.end()
        self._opening = True
        try:
            self._hidden = [layer for layer in self.viewer.layers if layer.visible]
            for layer in self._hidden:
                layer.visible = False
            grid = viewer_grid(self.viewer)
            self._grid = (grid.enabled, tuple(grid.shape), grid.stride)
            added = []
            for data, kwargs in layer_data:
                added.append(self._layer(data, kwargs))
            self._hidden = [x for x in self._hidden if not any(x is y for y in added)]
            layers = self.viewer.layers
            for layer in added:  # on top, in order: the grid places them left to right
                layers.move(layers.index(layer), len(layers))
            grid.stride, grid.shape, grid.enabled = 1, (1, len(added)), True
            self.viewer.reset_view()
        finally:
            self._opening = False
        self.layers = added
        return added

    def _layer(self, data, kwargs: dict):
        """A new image layer, or the layer of that name given the new data (not removed and
        added again: see the module's note on napari 0.9.2)."""
        name = kwargs["name"]
        old = self.viewer.layers[name] if name in self.viewer.layers else None
        if old is None or old.multiscale != kwargs.get("multiscale", old.multiscale) or \
                old.rgb != kwargs.get("rgb", old.rgb):
            return self.viewer.add_image(data, **kwargs)
        old.data = data
        old.metadata = kwargs.get("metadata", {})
        old.visible = True
        return old

    def end(self) -> None:
        """Set the grid back and show the layers hidden for the comparison; the pyramid layers
        stay."""
        if not self.active:
            return
        enabled, shape, stride = self._grid
        grid = viewer_grid(self.viewer)
        grid.stride, grid.shape, grid.enabled = stride, shape, enabled
        for layer in self._hidden:
            if layer in self.viewer.layers:
                layer.visible = True
        self.layers, self._hidden, self._grid = [], [], None

    def close(self) -> None:
        """End the comparison and hide its pyramid layers."""
        layers = list(self.layers)
        self.end()
        for layer in layers:
            layer.visible = False

    def _on_inserted(self, _event) -> None:
        if not self._opening:
            self.end()

    def _on_removed(self, event) -> None:
        if not self._opening and any(event.value is layer for layer in self.layers):
            self.end()
