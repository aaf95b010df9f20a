"""The Scale-space dock widget: open a run, choose the scale space (seed) and the number of
octaves, add the lazy multiscale layer, and jump the camera to a zoom."""

from __future__ import annotations

from pathlib import Path

from magicgui.widgets import CheckBox, Container, FileEdit, FloatSlider, PushButton, SpinBox
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..geometry import View
from ..reader import is_run, scale_space_layer
from ._llvm_guard import block_triton_if_unsafe
from ._napari_compat import viewer_camera
from ._progressive import attach, napari_async, set_napari_async


class ScaleSpaceWidget(QWidget):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.run = FileEdit(label="run folder", mode="d", value=Path.home() / "scalespace-run")
        self.seed = SpinBox(label="seed (-1 = the run's scene)", value=-1, min=-1, max=2**31 - 1)
        self.octaves = SpinBox(label="octaves (0 = the run's)", value=0, min=0, max=12)
        self.async_slicing = CheckBox(
            label="slice layers off the UI thread (napari's async setting, for all layers)",
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
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.status)
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
        """Show a view of side 2**-zoom (scene units) around the current centre."""
        if self.layer is None:
            return
        zoom = self.zoom.value if zoom is None else zoom
        grid = self.layer.metadata["renderer"].grid(len(self.layer.data) - 1)
        view_px = View(zoom, 0.0, 0.0).side / grid.pixel_size(0)  # in finest-level pixels
        canvas = min(getattr(self.viewer, "_canvas_size", (600, 600)))
        viewer_camera(self.viewer).zoom = canvas / view_px
