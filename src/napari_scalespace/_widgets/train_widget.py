"""The Train dock widget: pick an image layer, a preset and a run folder; start, cancel, resume.

Options beyond the preset: the octaves with data, extra octaves rendered past them, and
positions (auto = known for the one image a widget trains on: the scale space reproduces it;
unknown = the published objective). Ticking two or more image layers in the collection list
trains one scale space on them instead, placed in zoom by their pixel sizes (read from each
layer's scale and units, editable; :mod:`._collection_table`); positions are then unknown.

Training runs in a napari thread worker; the worker never touches Qt and only *yields*
:class:`~napari_scalespace.train.trainer.StepEvent` s and preview images, which the widget shows
(progress bar, loss plot, a preview layer). Torch uses all cores but one by default, so the
viewer keeps a core.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils import progress
from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

from ..model.config import PRESETS
from ._collection_table import CollectionTable
from ._llvm_guard import block_triton_if_unsafe
from ._loss_plot import LossPlot
from ._worker import errors_returned, start

PREVIEW_LAYER = "scalespace preview"


POSITION_CHOICES = [("auto (known: one image)", "auto"), ("known", "known"),
                    ("unknown (published)", "unknown")]
POSITIONS_TIP = ("known: the render of each training patch's own view is also compared with the "
                 "patch, so the scale space reproduces the image where it has data; unknown: "
                 "the published objective (adversarial + scale consistency) only")


def default_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


def _train_steps(data, name, out: Path, preset_name: str, octaves: int, steps: int,
                 threads: int, resume: bool, preview_every: int, cancel: threading.Event,
                 positions: str = "auto", extra_octaves: int = 0, collection=None):
    """Generator run in a worker thread: yields ("step", event) and ("preview", image).

    ``octaves`` (0 = the preset's; for a collection, all the octaves its images span) are the
    octaves with data; ``extra_octaves`` more are rendered past them (issue 10).
    ``collection``: ``(data, name, PixelSize, path)`` per image to train on them as one
    collection instead of ``data`` (issue 11)."""
    import torch

    from ..data import open_source
    from ..data.collection import Collection, source_record
    from ..geometry import View
    from ..model.config import get_preset, with_feature_bins
    from ..render.image import to_unit
    from ..train.trainer import Trainer

    torch.set_num_threads(threads)
    if collection:
        sources = Collection([open_source(d, name=n) for d, n, _, _ in collection],
                             [size for _, _, size, _ in collection],
                             [path for *_, path in collection])
        first = sources.sources[0]
        info = source_record(sources, [p or n for _, n, _, p in collection])
    else:
        first = open_source(data, name=name)
        sources = [first]
        info = source_record(sources, [name])
    preset = None
    if not resume:
        overrides = {"channels": first.channels, "positions": positions}
        base = get_preset(preset_name)
        data_octaves = octaves if octaves > 0 else (
            sources.max_octaves(base.generator.resolution) if collection
            else base.generator.octaves)
        overrides["octaves"] = data_octaves + extra_octaves
        overrides["extra_octaves"] = extra_octaves
        if extra_octaves or collection:
            overrides = with_feature_bins(preset_name, overrides)
        preset = get_preset(preset_name, **overrides)
    trainer = Trainer(out, sources, preset, resume=resume, threads=threads, source_info=info)
    views = [View(z, 0.5, 0.5) for z in range(trainer.preset.generator.octaves + 1)]
    for event in trainer.run(steps, cancel=cancel):
        yield "step", event
        if event.step % preview_every == 0 or event.step == steps:
            with torch.inference_mode():
                imgs = trainer.G_ema.render(views, seed=None,
                                            extra=trainer.G_ema.cfg.tile_margin)
            yield "preview", to_unit(imgs).permute(0, 2, 3, 1).cpu().numpy()
    return trainer.step_count


class TrainWidget(QWidget):
    """Dock widget that trains a scale space on an image layer."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer = ComboBox(label="image", choices=self._image_layers)
        self.preset = ComboBox(label="preset", choices=sorted(PRESETS), value="small")
        self.octaves = SpinBox(label="octaves with data (0 = preset)", value=0, min=0, max=8,
                               tooltip="0: the preset's; for a collection, all the octaves "
                                       "its images span")
        self.extra_octaves = SpinBox(label="extra octaves past the data", value=0, min=0,
                                     max=4)
        self.positions = ComboBox(label="positions", value="auto", choices=POSITION_CHOICES,
                                  tooltip=POSITIONS_TIP)
        self.steps = SpinBox(label="steps", value=400, min=1, max=10_000_000)
        self.out = FileEdit(label="run folder", mode="d", value=Path.home() / "scalespace-run")
        self.threads = SpinBox(label="CPU threads", value=default_threads(), min=1,
                               max=os.cpu_count() or 1)
        self.resume = CheckBox(label="resume the run in the folder", value=False)
        self.preview_every = SpinBox(label="preview every (steps)", value=50, min=1)
        self.start_button = PushButton(text="Start")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.form = Container(widgets=[
            self.layer, self.preset, self.octaves, self.extra_octaves, self.positions,
            self.steps, self.out, self.threads, self.resume, self.preview_every,
            self.start_button, self.cancel_button])
        self.collection = CollectionTable(
            lambda: [x for x in self._image_layers() if x.name != PREVIEW_LAYER],
            lambda: PRESETS[self.preset.value].generator.resolution,
            lambda: self.octaves.value, on_change=self._collection_changed)
        self.preset.changed.connect(lambda _v: self.collection.validate())
        self.octaves.changed.connect(lambda _v: self.collection.validate())
        self.status = QLabel("idle")
        self.plot = LossPlot()
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.collection)
        layout.addWidget(self.status)
        layout.addWidget(self.plot)
        self.start_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda e: self.layer.reset_choices())
            event.connect(lambda e: self.collection.reset_layers())
        self.worker = None
        self._cancel = threading.Event()
        self._progress: progress | None = None
        self.steps_done = 0
        self._under = None

    def _collection_changed(self, active: bool) -> None:
        """A collection trains on the ticked layers with positions unknown: the single-image
        fields do not apply."""
        self.layer.enabled = self.positions.enabled = not active

    def _image_layers(self, _widget=None) -> list:
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def start(self) -> None:
        collection = None
        if self.collection.active:
            if not self.collection.validate():
                self.status.setText(self.collection.message.text())
                return
            collection = self.collection.entries()
            layer = self.viewer.layers[collection[0][1]]
        else:
            layer = self.layer.value
        if layer is None and not self.resume.value:
            self.status.setText("add an image layer first")
            return
        block_triton_if_unsafe()
        self._cancel.clear()
        data = layer.data if layer is not None else None
        name = layer.name if layer is not None else "resumed"
        self._under = layer  # the preview strip is shown under this layer, as wide as it
        self._progress = progress(total=self.steps.value, desc="training")
        start(self, errors_returned(_train_steps(
            data, name, Path(self.out.value), self.preset.value, self.octaves.value,
            self.steps.value, self.threads.value, self.resume.value, self.preview_every.value,
            self._cancel, self.positions.value, self.extra_octaves.value, collection)))

    def cancel(self) -> None:
        self._cancel.set()
        self.status.setText("cancelling after this step...")

    def _on_yield(self, item) -> None:
        kind, payload = item
        if kind == "step":
            self.steps_done = payload.step
            self._progress.n = payload.step
            self._progress.refresh()
            self.plot.add(payload.step, payload.losses)
            if payload.step % 5 == 0 or payload.step < 5:
                self.plot.redraw()
            losses = ", ".join(f"{k} {v:.3f}" for k, v in payload.losses.items())
            self.status.setText(f"step {payload.step}/{payload.total_steps}: {losses}, "
                                f"{payload.images_per_s:.1f} img/s")
        else:
            strip = np.concatenate(list(payload), axis=1)
            if PREVIEW_LAYER in self.viewer.layers:
                self.viewer.layers[PREVIEW_LAYER].data = strip
            else:
                scale, translate = (1.0, 1.0), (0.0, 0.0)
                if self._under is not None:  # zooms 0..L left to right, under the image
                    (y0, y1), (x0, x1) = self._under.extent.world[:, -2:].T
                    k = (x1 - x0) / strip.shape[1]
                    scale, translate = (k, k), (y1 + 0.05 * (y1 - y0), x0)
                units = None if self._under is None else self._under.units[-2:]
                self.viewer.add_image(strip, name=PREVIEW_LAYER, rgb=strip.shape[-1] == 3,
                                      scale=scale, translate=translate, units=units)

    def _on_done(self, step: int | tuple[str, str]) -> None:
        if isinstance(step, tuple):
            self._on_error(step[1])
            return
        self.status.setText(f"stopped at step {step}; checkpoint in {self.out.value}")

    def _on_error(self, message: str) -> None:
        self.status.setText(f"error: {message}")

    def _on_finished(self) -> None:
        self.plot.redraw()
        if self._progress is not None:
            self._progress.close()
        self.start_button.enabled, self.cancel_button.enabled = True, False
