"""The Export-and-compare dock widget: write the learned and the ground-truth OME-Zarr pyramids
of a run on one grid, open them side by side (napari grid mode, one camera), and show the
per-level metrics (:mod:`napari_scalespace.eval.compare`).

The export runs in a napari thread worker (progress bar, cancel between bands); the worker
only yields progress and the metrics, the widget does all Qt and viewer work.
"""

from __future__ import annotations

import threading
from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton, SpinBox
from napari.layers import Image
from napari.utils import progress
from qtpy.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ._llvm_guard import block_triton_if_unsafe
from ._napari_compat import viewer_grid
from ._worker import errors_returned, start

RUN_IMAGE = "the run's image file"
COLUMNS = ["level", "zoom", "tiles", "SWD mean", "SWD fine", "SWD coarse", "mean learned",
           "mean truth"]


def _export_and_compare(run: Path, image, out: Path, octaves: int | None, seed: int | None,
                        tiles: int, reuse: bool, cancel: threading.Event):
    """Yields ("learned" | "truth", done, total) and finally ("metrics", [LevelMetrics]);
    returns "done" or "cancelled" (run in a worker by :func:`._worker.errors_returned`)."""
    from ..eval.compare import compare_steps

    steps = compare_steps(run, image, out, octaves=octaves, seed=seed, tiles=tiles,
                          reuse=reuse)
    try:
        for event in steps:
            yield event
            if cancel.is_set():
                return "cancelled"
    finally:
        steps.close()
    return "done"


class CompareWidget(QWidget):
    """Dock widget: export a run's learned pyramid and its ground truth, compare them."""

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.run = FileEdit(label="run folder", mode="d", value=Path.home() / "scalespace-run")
        self.image = ComboBox(label="ground truth", choices=self._image_choices)
        self.octaves = SpinBox(label="octaves (0 = the run's)", value=0, min=0, max=12)
        self.seed = SpinBox(label="seed (-1 = the run's scene)", value=-1, min=-1,
                            max=2**31 - 1)
        self.out = FileEdit(label="output folder (empty = RUN/compare)", mode="d", value="")
        self.tiles = SpinBox(label="tiles per level for metrics", value=64, min=1, max=4096)
        self.reuse = CheckBox(label="keep complete pyramids already there", value=True)
        self.start_button = PushButton(text="Export and compare")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.open_button = PushButton(text="Open side by side")
        self.form = Container(widgets=[self.run, self.image, self.octaves, self.seed, self.out,
                                       self.tiles, self.reuse, self.start_button,
                                       self.cancel_button, self.open_button])
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form.native)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        self.start_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.open_button.changed.connect(lambda: self.open_side_by_side())
        self.viewer.layers.events.inserted.connect(lambda e: self.image.reset_choices())
        self.viewer.layers.events.removed.connect(lambda e: self.image.reset_choices())
        self.worker = None
        self.metrics: list = []
        self.result: str | None = None
        self._cancel = threading.Event()
        self._progress: progress | None = None
        self._done = {"learned": 0, "truth": 0}
        self._total = {"learned": 0, "truth": 0}

    def _image_choices(self, _widget=None) -> list:
        layers = [(layer.name, layer) for layer in self.viewer.layers
                  if isinstance(layer, Image) and not layer.multiscale]
        return [(RUN_IMAGE, None), *layers]

    def out_dir(self) -> Path:
        value = str(self.out.value)
        return Path(value) if value not in ("", ".") else Path(self.run.value) / "compare"

    def start(self) -> None:
        from ..eval.compare import run_image
        from ..reader import is_run

        run = Path(self.run.value)
        if not is_run(run):
            self.status.setText(f"{run} is not a run folder with a checkpoint")
            return
        layer = self.image.value
        if layer is not None:
            from ..data import open_source

            try:
                image = open_source(layer.data, name=layer.name)
            except ValueError as exc:
                self.status.setText(f"error: {exc}")
                return
        else:
            image = run_image(run)
        if image is None:
            self.status.setText("the run names no image file that exists here: add the "
                                "ground-truth image as a layer and pick it")
            return
        block_triton_if_unsafe()
        self._cancel.clear()
        self.result = None
        self._done = {"learned": 0, "truth": 0}
        self._progress = progress(total=0, desc="export and compare")
        start(self, errors_returned(_export_and_compare(
            run, image, self.out_dir(), self.octaves.value or None,
            None if self.seed.value < 0 else self.seed.value, self.tiles.value,
            self.reuse.value, self._cancel)))

    def cancel(self) -> None:
        self._cancel.set()
        self.status.setText("cancelling after this band of tiles...")

    def _on_yield(self, event) -> None:
        kind = event[0]
        if kind == "metrics":
            self.metrics = event[1]
            self._fill_table()
            return
        _, done, total = event
        self._done[kind], self._total[kind] = done, total
        self._progress.total = max(1, sum(self._total.values()))
        self._progress.n = sum(self._done.values())
        self._progress.refresh()
        self.status.setText(f"writing {kind}: {done}/{total} tiles")

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.metrics))
        for row, m in enumerate(self.metrics):
            cells = [m.level, m.zoom, m.tiles, f"{m.swd_mean:.1f}", f"{m.swd[0]:.1f}",
                     f"{m.swd[-1]:.1f}", " ".join(f"{v:.2f}" for v in m.mean_learned),
                     " ".join(f"{v:.2f}" for v in m.mean_truth)]
            for col, value in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(str(value)))
        self.table.resizeColumnsToContents()

    def _on_done(self, result: str | tuple[str, str]) -> None:
        if isinstance(result, tuple):
            self._on_error(result[1])
            return
        self.result = result
        if result == "cancelled":
            self.status.setText(f"cancelled; the stopped pyramid in {self.out_dir()} is marked "
                                "incomplete and is written again next time")
            return
        self.open_side_by_side()
        self.status.setText(f"learned | truth in {self.out_dir()} (metrics.json): SWD x1000 "
                            "per level, lower is better")

    def _on_error(self, message: str) -> None:
        self.result = "error"
        self.status.setText(f"error: {message}")

    def _on_finished(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.start_button.enabled, self.cancel_button.enabled = True, False

    def open_side_by_side(self) -> list:
        """Add the two pyramids of the output folder (learned left, truth right) in grid mode;
        other layers are hidden (not removed). Returns the two layers."""
        from ..eval.compare import LEARNED, TRUTH
        from ..reader import pyramid_layer
        from ..render.export import is_complete

        out = self.out_dir()
        stores = [out / LEARNED, out / TRUTH]
        missing = [str(s) for s in stores if not is_complete(s)]
        if missing:
            self.status.setText(f"no complete pyramid at {', '.join(missing)}: export first")
            return []
        for layer in self.viewer.layers:
            layer.visible = False
        added = []
        for store, name in zip(stores, ("learned", "truth"), strict=True):  # left to right
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            data, kwargs, _ = pyramid_layer(store, name=name)
            added.append(self.viewer.add_image(data, **kwargs))
        grid = viewer_grid(self.viewer)
        grid.stride, grid.shape, grid.enabled = 1, (1, 2), True
        self.viewer.reset_view()
        return added

