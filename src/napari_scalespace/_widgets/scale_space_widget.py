"""The Scale-space dock widget: open a run, choose the scale space (seed) and the number of
octaves, add the lazy multiscale layer, and jump the camera to a zoom.

Jumping works in the layer's world coordinates, where napari's camera lives: the view's side
in finest-level pixels times the layer's scale (a layer in physical units, µm or m, has a scale
far from 1), on the canvas's real size; the camera keeps its centre only if that lies on the
layer, else it centres on the layer, and a hidden layer is shown. (It used to set the zoom as if
world units were pixels around whatever centre the camera had: a view off the layer, or a
layer a few screen pixels wide, hence a black canvas.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, Container, FileEdit, FloatSlider, PushButton, SpinBox
from qtpy.QtWidgets import QLabel

from ..geometry import View
from ..reader import is_run, scale_space_layer
from ._dock import ScrollableDock
from ._llvm_guard import block_triton_if_unsafe
from ._napari_compat import viewer_camera
from ._progressive import attach, napari_async, set_napari_async


def canvas_pixels(viewer) -> float:
    """The canvas's shorter side in screen pixels."""
    size = getattr(getattr(viewer, "canvas", None), "size", None)  # napari >= 0.9
    if size is None:
        size = getattr(viewer, "_canvas_size", (600, 600))
    return float(min(size))


class ScaleSpaceWidget(ScrollableDock):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.run = FileEdit(label="run folder", mode="d", value=Path.home() / "scalespace-run")
        self.seed = SpinBox(label="seed (-1 = the run's scene)", value=-1, min=-1, max=2**31 - 1)
        self.octaves = SpinBox(label="octaves (0 = the run's)", value=0, min=0, max=12)
        self.async_slicing = CheckBox(
            label="async slicing (napari's setting, all layers)",
            value=napari_async())
        self.async_slicing.tooltip = (
            "napari's Preferences > Experimental > Render Layers Asynchronously. On: napari "
            "waits for tiles on a worker thread (smoothest). Off: tiles are drawn from coarser "
            "ones at once and refined in the background. Applies to layers added afterwards.")
        self.add_button = PushButton(text="Add scale-space layer")
        self.zoom = FloatSlider(label="jump to zoom", value=0.0, min=0.0, max=8.0, step=0.25)
        self.form = Container(widgets=[self.run, self.seed, self.octaves, self.async_slicing,
                                       self.add_button, self.zoom])
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.body.addWidget(self.form.native)
        self.body.addWidget(self.status)
        self.body.addStretch(1)
        self.add_button.changed.connect(self.add_layer)
        self.async_slicing.changed.connect(set_napari_async)
        self.zoom.changed.connect(self.jump_to_zoom)
        self.layer = None

    def add_layer(self):
        path = Path(self.run.value)
        if not is_run(path):
            self.status.setText(f"{path} is not a run folder with a checkpoint")
            return None
        block_triton_if_unsafe()
        seed = None if self.seed.value < 0 else self.seed.value
        octaves = self.octaves.value or None
        progressive = not napari_async()
        levels, kwargs, _ = scale_space_layer(path, seed=seed, octaves=octaves,
                                              progressive=progressive)
        self.layer = self.viewer.add_image(levels, **kwargs)
        if progressive:  # tiles render in the background; refresh the layer as they land
            attach(self.layer, self.viewer)
        self.zoom.max = float(len(levels) - 1)
        self.status.setText(f"{len(levels)} levels, finest {levels[0].shape[1]} x "
                            f"{levels[0].shape[0]} px")
        return self.layer

    def jump_to_zoom(self, zoom: float | None = None) -> None:
        """Show a view of side 2**-zoom (scene units) of the layer: around the camera's centre
        when that is on the layer, else around the layer's centre."""
        layer = self.layer
        if layer is None or layer not in self.viewer.layers:
            return
        zoom = self.zoom.value if zoom is None else zoom
        layer.visible = True
        grid = layer.metadata["renderer"].grid(len(layer.data) - 1)
        view_px = View(zoom, 0.0, 0.0).side / grid.pixel_size(0)  # in finest-level pixels
        side = view_px * float(np.min(np.abs(layer.scale[-2:])))  # in world units
        camera = viewer_camera(self.viewer)
        (y0, y1), (x0, x1) = layer.extent.world[:, -2:].T
        cy, cx = camera.center[-2:]
        if not (y0 <= cy <= y1 and x0 <= cx <= x1):
            camera.center = (*camera.center[:-2], (y0 + y1) / 2, (x0 + x1) / 2)
        camera.zoom = canvas_pixels(self.viewer) / side
