"""The Train dock widget: pick an image layer, a preset and a run folder; start, cancel, resume.

Options beyond the preset: the octaves with data, extra octaves rendered past them, and
positions (auto = known for the one image a widget trains on: the scale space reproduces it;
unknown = the published objective). Ticking two or more image layers in the collection list
trains one scale space on them instead, placed in zoom by their pixel sizes (read from each
layer's scale and units, editable; :mod:`._collection_table`); positions are then unknown.

The image offered and chosen by default is a plain image layer: never a scale-space, pyramid
or preview layer of this plugin (their ``metadata["napari_scalespace"]``). A run records a file
path for its image (the layer's file, or the layer's data saved into the run folder:
:mod:`._run_image`), so the command line can resume and compare it; a resumed run trains on the
image it recorded, whatever layer is selected.

Training runs in a napari thread worker; the worker never touches Qt and only *yields*
:class:`~napari_scalespace.train.trainer.StepEvent` s and preview images, which the widget shows
(progress bar with elapsed time and ETA, the run's loss plot, a preview layer). Torch uses all
cores but one by default, so the viewer keeps a core. The form scrolls (:mod:`._dock`).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.utils import progress
from qtpy.QtWidgets import QLabel

from ..model.config import PRESETS
from ._collection_table import CollectionTable, layer_pixel_size
from ._dock import ScrollableDock
from ._llvm_guard import block_triton_if_unsafe
from ._loss_plot import LossPlot
from ._run_image import (
    SOURCE,
    layer_file,
    layer_image,
    recorded_images,
    save_image,
    save_levels,
)
from ._train_progress import TrainProgress
from ._worker import errors_returned, start

PREVIEW_LAYER = "scalespace preview"


POSITION_CHOICES = [("auto (known: one image)", "auto"), ("known", "known"),
                    ("unknown (published)", "unknown")]
POSITIONS_TIP = ("known: the render of each training patch's own view is also compared with the "
                 "patch, so the scale space reproduces the image where it has data; unknown: "
                 "the published objective (adversarial + scale consistency) only")


def default_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


def is_ours(layer) -> bool:
    """A layer this plugin made (scale space, exported pyramid, preview strip)."""
    return "napari_scalespace" in layer.metadata


def training_layers(layers) -> list:
    """The layers a scale space can be trained on: image layers, single-scale or multiscale
    (a whole slide: patches are read from its levels), that are not this plugin's own."""
    return [layer for layer in layers if isinstance(layer, Image) and not is_ours(layer)]


def used_folder_message(out: Path) -> str | None:
    """Why a new run cannot start in ``out`` (it holds a run with a checkpoint), or None (a
    config-only folder left by a killed start is replaced by the new run)."""
    from ..checkpoint import CONFIG
    from ..train.run_start import has_checkpoint

    if (out / CONFIG).is_file() and has_checkpoint(out):
        return (f"folder {out} already holds a run; tick Resume to continue it or choose "
                f"another folder")
    return None


def _saved(items, out: Path, saved: list[Path]):
    """``(data, name, PixelSize | None, path | None)`` items with every in-memory image saved
    into the run folder (``source.tif``, ``source-K.tif`` for several; a multiscale image,
    ``data`` a list of levels, as ``source.ome.zarr``, ``source-K.ome.zarr``); ``saved``
    collects the files written (removed again if the run does not start)."""
    many = len(items) > 1
    done = []
    for k, (data, name, size, path) in enumerate(items):
        if path is None:
            out.mkdir(parents=True, exist_ok=True)
            stem = f"source-{k}" if many else Path(SOURCE).stem
            if isinstance(data, list):
                file = out / f"{stem}.ome.zarr"
                path = save_levels(data, file, size)
            else:
                file = out / f"{stem}.tif"
                path = save_image(data, file, size)
            saved.append(file)
        done.append((path, name, size, path))
    return done


def _train_steps(data, name, out: Path, preset_name: str, octaves: int, steps: int,
                 threads: int, resume: bool, preview_every: int, cancel: threading.Event,
                 positions: str = "auto", extra_octaves: int = 0, collection=None,
                 path: str | None = None, pixel_size=None, time_limit: float | None = None):
    """Generator run in a worker thread: yields ("step", event) and ("preview", image).

    ``octaves`` (0 = the preset's; for a collection, all the octaves its images span) are the
    octaves with data; ``extra_octaves`` more are rendered past them.
    ``collection``: ``(data, name, PixelSize, path)`` per image to train on them as one
    collection instead of ``data``. ``path``: the file of ``data``, recorded by the
    run; None saves ``data`` (with ``pixel_size``) into the run folder first.
    ``time_limit`` (seconds, counted from here, as the progress line counts it from Start)
    stops the run early, with a checkpoint."""
    from ..checkpoint import CONFIG

    deadline = None if time_limit is None else time.monotonic() + time_limit
    out = Path(out)
    created = not out.exists()
    saved: list[Path] = []
    try:
        if collection and not resume:
            collection = _saved(collection, out, saved)
        elif not resume:
            (data, name, _, path), = _saved([(data, name, pixel_size, path)], out, saved)
        trainer, views = _trainer(data, name, out, preset_name, octaves, threads, resume,
                                  positions, extra_octaves, collection)
    except BaseException:
        if not (out / CONFIG).is_file():  # no run was created: leave the folder as it was
            for file in saved:
                if file.is_dir():
                    shutil.rmtree(file)
                else:
                    file.unlink(missing_ok=True)
            if created and out.is_dir() and not any(out.iterdir()):
                out.rmdir()
        raise
    return (yield from _steps(trainer, views, steps, preview_every, cancel, deadline))


def _trainer(data, name, out: Path, preset_name: str, octaves: int, threads: int,
             resume: bool, positions: str, extra_octaves: int, collection):
    import torch

    from ..data import open_source
    from ..data.collection import Collection, source_record
    from ..geometry import View
    from ..model.config import get_preset, run_preset
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
        info = source_record(sources, [data if isinstance(data, str) else name])
    preset = None
    if not resume:
        spanned = (sources.max_octaves(get_preset(preset_name).generator.resolution)
                   if collection else None)
        preset = run_preset(preset_name, octaves=octaves or None, extra_octaves=extra_octaves,
                            channels=first.channels, spanned_octaves=spanned,
                            overrides={"positions": positions})
    trainer = Trainer(out, sources, preset, resume=resume, threads=threads, source_info=info)
    return trainer, [View(z, 0.5, 0.5) for z in range(trainer.preset.generator.octaves + 1)]


def _steps(trainer, views, steps: int, preview_every: int, cancel: threading.Event,
           deadline: float | None):
    import torch

    from ..render.image import to_unit

    left = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
    for event in trainer.run(steps, cancel=cancel, time_limit=left, plan=True):
        yield "step", event
        if event.step % preview_every == 0 or event.step == steps:
            with torch.inference_mode():
                imgs = trainer.G_ema.render(views, seed=None,
                                            extra=trainer.G_ema.cfg.tile_margin)
            yield "preview", to_unit(imgs).permute(0, 2, 3, 1).cpu().numpy()
    return trainer.step_count


class TrainWidget(ScrollableDock):
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
        self.time_limit = FloatSpinBox(label="time limit (minutes, 0 = none)", value=0.0,
                                       min=0.0, max=1e6, step=1.0,
                                       tooltip="stop with a checkpoint after this long, "
                                               "even before the last step")
        self.out = FileEdit(label="run folder", mode="d", value=Path.home() / "scalespace-run")
        self.threads = SpinBox(label="CPU threads", value=default_threads(), min=1,
                               max=os.cpu_count() or 1)
        self.resume = CheckBox(label="resume the run in the folder (on its own image)",
                               value=False)
        self.preview_every = SpinBox(label="preview every (steps)", value=50, min=1)
        self.start_button = PushButton(text="Start")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.form = Container(widgets=[
            self.layer, self.preset, self.octaves, self.extra_octaves, self.positions,
            self.steps, self.time_limit, self.out, self.threads, self.resume,
            self.preview_every, self.start_button, self.cancel_button])
        self.collection = CollectionTable(
            self._image_layers,
            lambda: PRESETS[self.preset.value].generator.resolution,
            lambda: self.octaves.value, on_change=lambda _active: self._enable())
        self.preset.changed.connect(lambda _v: self.collection.validate())
        self.octaves.changed.connect(lambda _v: self.collection.validate())
        self.resume.changed.connect(lambda _v: self._enable())
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.progress = TrainProgress()
        self.plot = LossPlot()
        for widget in (self.form.native, self.collection, self.progress, self.status,
                       self.plot):
            self.body.addWidget(widget)
        self.start_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda e: self.layer.reset_choices())
            event.connect(lambda e: self.collection.reset_layers())
        self.worker = None
        self._cancel = threading.Event()
        self._cancelled = False  # by the user (else a time limit stopped the run early)
        self._progress: progress | None = None
        self.steps_done = 0
        self._under = None
        self._plotted_run: Path | None = None

    def _enable(self) -> None:
        """A collection trains on the ticked layers with positions unknown, a resumed run on
        its own image(s) with its own options: the fields that do not apply are greyed out."""
        table = getattr(self, "collection", None)  # None while the table is being built
        active, resume = table is not None and table.active, self.resume.value
        self.layer.enabled = not (active or resume)
        self.positions.enabled = not (active or resume)
        for widget in (self.preset, self.octaves, self.extra_octaves):
            widget.enabled = not resume
        if table is not None:
            table.setEnabled(not resume)

    def _image_layers(self, _widget=None) -> list:
        return training_layers(self.viewer.layers)

    def start(self) -> None:
        out = Path(self.out.value)
        resume = self.resume.value
        data = name = path = size = collection = None
        if resume:
            recorded, message = recorded_images(out, self.viewer.layers)
            if message is not None:
                self.status.setText(message)
                return
            if isinstance(recorded, list):
                collection = recorded
                first = recorded[0][0]
            else:
                first = data = name = recorded
                if not Path(recorded).exists():  # a layer name recorded by an older version
                    data = self.viewer.layers[recorded].data
            under = [x for x in self.viewer.layers if getattr(x.source, "path", None)
                     and str(Path(x.source.path).resolve()) == str(Path(first).resolve())]
            self._under = under[0] if under else None
        else:
            message = used_folder_message(out)
            if message is not None:
                self.status.setText(message)
                return
            if self.collection.active:
                if not self.collection.validate():
                    self.status.setText(self.collection.message.text())
                    return
                collection = [(d, n, s, layer_file(self.viewer.layers[n]))
                              for d, n, s, _ in self.collection.entries()]
                layer = self.viewer.layers[collection[0][1]]
            else:
                layer = self.layer.value
                if layer is None:
                    self.status.setText("add an image layer first")
                    return
                data, name = layer_image(layer), layer.name
                path, size = layer_file(layer), layer_pixel_size(layer)
            self._under = layer  # the preview strip is shown under this layer, as wide as it
        block_triton_if_unsafe()
        self._cancel.clear()
        self._cancelled = False
        limit = self.time_limit.value * 60 or None
        if not (resume and self._plotted_run == out):  # a new run: a new curve
            self.plot.start_run(out.name)
        self._plotted_run = out
        self.progress.begin(self.steps.value, limit)
        self._progress = progress(total=self.steps.value, desc="training")
        start(self, errors_returned(_train_steps(
            data, name, out, self.preset.value, self.octaves.value,
            self.steps.value, self.threads.value, resume, self.preview_every.value,
            self._cancel, self.positions.value, self.extra_octaves.value, collection,
            path=path, pixel_size=size, time_limit=limit)))
        if resume:
            self.status.setText(f"resuming {out.name} on its image {Path(first).name}")

    def cancel(self) -> None:
        self._cancel.set()
        self._cancelled = True
        self.status.setText("cancelling after this step...")

    def _on_yield(self, item) -> None:
        kind, payload = item
        if kind == "step":
            self.steps_done = payload.step
            self._progress.n = payload.step
            self._progress.refresh()
            self.progress.step(payload.step)
            self.plot.add(payload.step, payload.losses)
            if payload.step % 5 == 0 or payload.step < 5:
                self.plot.redraw()
            losses = ", ".join(f"{k} {v:.3f}" for k, v in payload.losses.items())
            self.status.setText(f"{losses}, {payload.images_per_s:.1f} img/s")
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
                                      scale=scale, translate=translate, units=units,
                                      metadata={"napari_scalespace": {
                                          "preview": str(self.out.value)}})

    def _on_done(self, step: int | tuple[str, str]) -> None:
        if isinstance(step, tuple):
            self._on_error(step[1])
            return
        why = ("" if step >= self.steps.value or self._cancelled
               else "time limit reached; ")
        self.status.setText(f"{why}stopped at step {step}; checkpoint in {self.out.value}")

    def _on_error(self, message: str) -> None:
        self.status.setText(f"error: {message}")

    def _on_finished(self) -> None:
        self.plot.redraw()
        self.progress.end()
        if self._progress is not None:
            self._progress.close()
        self.start_button.enabled, self.cancel_button.enabled = True, False
