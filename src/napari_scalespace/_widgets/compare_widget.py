"""The Export-and-compare dock widget: write the learned and the ground-truth OME-Zarr pyramids
of a run on one grid, open them side by side (napari grid mode, one camera), evaluate the run
(:mod:`napari_scalespace.eval`) and show the per-octave table, the metric plots and the contact
sheet (learned | truth | bicubic at every zoom) in tabs.

"Open side by side" is undone when the comparison ends (:mod:`._side_by_side`); the form
scrolls (:mod:`._dock`).

Export and evaluation run in a napari thread worker (progress bar, cancel between bands of
tiles and between units of the evaluation); the worker only yields progress and the report, the
widget does all Qt and viewer work.
"""

from __future__ import annotations

import threading
from pathlib import Path

from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, PushButton, SpinBox
from napari.layers import Image
from napari.utils import progress
from qtpy.QtCore import Qt
from qtpy.QtGui import QPixmap
from qtpy.QtWidgets import (
    QLabel,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
)

from ._dock import ScrollableDock
from ._llvm_guard import block_triton_if_unsafe
from ._side_by_side import SideBySide
from ._worker import errors_returned, start

RUN_IMAGE = "the run's image file"
# (header, OctaveResult field, format)
COLUMNS = [("octave", "octave", "d"), ("data", "covered", ""),
           ("SWD model", "swd", ".1f"), ("SWD bicubic", "swd_bicubic", ".1f"),
           ("PSNR model", "psnr", ".2f"), ("PSNR bicubic", "psnr_bicubic", ".2f"),
           ("SSIM model", "ssim", ".3f"), ("SSIM bicubic", "ssim_bicubic", ".3f"),
           ("consistency PSNR model", "consistency_psnr", ".2f"),
           ("consistency PSNR bicubic", "consistency_psnr_bicubic", ".2f"),
           ("seam PSNR", "seam_psnr", ".2f"), ("seam gradient", "seam_gradient_ratio", ".2f"),
           ("detail model", "gradient_energy", ".2e"),
           ("detail truth", "gradient_energy_truth", ".2e")]
UNITS = {"learned": "tiles", "truth": "tiles", "eval": "steps"}


def _export_and_compare(run: Path, image, out: Path, octaves: int | None, seed: int | None,
                        views: int, reuse: bool, cancel: threading.Event):
    """Yields ("learned" | "truth" | "eval", done, total) and finally ("report", EvalReport,
    files); returns "done" or "cancelled" (run in a worker by
    :func:`._worker.errors_returned`)."""
    from ..eval.compare import compare_steps

    steps = compare_steps(run, image, out, octaves=octaves, seed=seed, views=views,
                          reuse=reuse)
    try:
        for event in steps:
            yield event
            if cancel.is_set():
                return "cancelled"
    finally:
        steps.close()
    return "done"


class CompareWidget(ScrollableDock):
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
        self.views = SpinBox(label="views per octave for metrics", value=32, min=2, max=4096)
        self.reuse = CheckBox(label="keep complete pyramids already there", value=True)
        self.start_button = PushButton(text="Export and compare")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.open_button = PushButton(text="Open side by side",
                                      tooltip="learned | truth alone in a 1 x 2 grid; other "
                                              "layers are hidden until it is closed")
        self.form = Container(widgets=[self.run, self.image, self.octaves, self.seed, self.out,
                                       self.views, self.reuse, self.start_button,
                                       self.cancel_button, self.open_button])
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
        self.plot = QLabel("no evaluation yet")
        self.sheet = QLabel("no evaluation yet")
        self.tabs = QTabWidget()
        self.tabs.setMinimumHeight(240)
        self.tabs.addTab(self.table, "table")
        for label, name in ((self.plot, "plots"), (self.sheet, "contact sheet")):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            scroll = QScrollArea()
            scroll.setWidget(label)
            scroll.setWidgetResizable(True)
            self.tabs.addTab(scroll, name)
        for widget in (self.form.native, self.status, self.tabs):
            self.body.addWidget(widget)
        self.side_by_side = SideBySide(self.viewer)
        self.start_button.changed.connect(self.start)
        self.cancel_button.changed.connect(self.cancel)
        self.open_button.changed.connect(self.toggle_side_by_side)
        self.viewer.layers.events.inserted.connect(lambda e: self._show_open_state())
        self.viewer.layers.events.removed.connect(lambda e: self._show_open_state())
        self.viewer.layers.events.inserted.connect(lambda e: self.image.reset_choices())
        self.viewer.layers.events.removed.connect(lambda e: self.image.reset_choices())
        self.worker = None
        self.report = None  # the EvalReport shown
        self.result: str | None = None
        self._cancel = threading.Event()
        self._progress: progress | None = None
        self._done = dict.fromkeys(UNITS, 0)
        self._total = dict.fromkeys(UNITS, 0)

    def _image_choices(self, _widget=None) -> list:
        layers = [(layer.name, layer) for layer in self.viewer.layers  # not our own layers
                  if isinstance(layer, Image) and not layer.multiscale
                  and "napari_scalespace" not in layer.metadata]
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
            from ..checkpoint import read_config

            if read_config(run)[1].get("collection"):
                self.status.setText("the run was trained on a collection: no image is its "
                                    "pixel truth. `napari-scalespace eval RUN` compares it "
                                    "with each image's patches")
            else:
                self.status.setText("the run names no image file that exists here: add the "
                                    "ground-truth image as a layer and pick it")
            return
        block_triton_if_unsafe()
        self.side_by_side.end()  # another action: the previous comparison's view is undone
        self._show_open_state()
        self._cancel.clear()
        self.result = None
        self._done = dict.fromkeys(UNITS, 0)
        self._total = dict.fromkeys(UNITS, 0)
        self._progress = progress(total=0, desc="export and compare")
        start(self, errors_returned(_export_and_compare(
            run, image, self.out_dir(), self.octaves.value or None,
            None if self.seed.value < 0 else self.seed.value, self.views.value,
            self.reuse.value, self._cancel)))

    def cancel(self) -> None:
        self._cancel.set()
        self.status.setText("cancelling after this band of tiles or evaluation step...")

    def _on_yield(self, event) -> None:
        kind = event[0]
        if kind == "report":
            self.show_report(event[1], event[2])
            return
        _, done, total = event
        self._done[kind], self._total[kind] = done, total
        # the evaluation's total is known only when it starts: count it as about as much work
        # as the two exports
        self._progress.total = max(1, sum(self._total.values()))
        self._progress.n = sum(self._done.values())
        self._progress.refresh()
        what = "evaluating" if kind == "eval" else f"writing {kind}"
        self.status.setText(f"{what}: {done}/{total} {UNITS[kind]}")

    def show_report(self, report, files: dict) -> None:
        """Show an :class:`EvalReport` in the table and the pictures ``files["plot"]`` and
        ``files["contact_sheet"]`` (paths; missing ones are skipped)."""
        self.report = report
        self.table.setRowCount(len(report.octaves))
        for row, o in enumerate(report.octaves):
            for col, (_, name, fmt) in enumerate(COLUMNS):
                v = getattr(o, name)
                text = "-" if v is None else ("yes" if v else "no") if fmt == "" else \
                    format(v, fmt)
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        for label, key in ((self.plot, "plot"), (self.sheet, "contact_sheet")):
            path = files.get(key)
            if path is not None and Path(path).is_file():
                pix = QPixmap(str(path))
                width = max(300, self.tabs.width() - 40)  # fit the dock's width
                if pix.width() > width:
                    pix = pix.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
                label.setPixmap(pix)
            else:
                label.setText("no picture")

    def load_folder(self, folder: str | Path) -> bool:
        """Show the evaluation saved in ``folder`` by ``compare``, if there is one."""
        from ..eval.compare import CONTACT, METRICS, PLOT
        from ..eval.evaluate import EvalReport

        folder = Path(folder)
        try:
            report = EvalReport.load(folder / METRICS)
        except (OSError, ValueError):
            return False
        self.show_report(report, {"plot": folder / PLOT, "contact_sheet": folder / CONTACT})
        return True

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
        self.status.setText(f"learned | truth in {self.out_dir()} (other layers hidden until "
                            "Close side by side); per octave: model vs bicubic zoom of zoom 0 "
                            "(metrics.json, metrics.png, contact_sheet.png)")

    def _on_error(self, message: str) -> None:
        self.result = "error"
        self.status.setText(f"error: {message}")

    def _on_finished(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self.start_button.enabled, self.cancel_button.enabled = True, False

    def toggle_side_by_side(self) -> None:
        if self.side_by_side.active:
            self.close_side_by_side()
        else:
            self.open_side_by_side()

    def _show_open_state(self) -> None:
        self.open_button.text = ("Close side by side" if self.side_by_side.active
                                 else "Open side by side")

    def open_side_by_side(self) -> list:
        """Show the two pyramids of the output folder (learned left, truth right) alone in a
        1 x 2 grid (:class:`.SideBySide`). Returns the two layers."""
        from ..eval.compare import LEARNED, TRUTH
        from ..reader import pyramid_layer
        from ..render.export import is_complete

        out = self.out_dir()
        stores = [out / LEARNED, out / TRUTH]
        missing = [str(s) for s in stores if not is_complete(s)]
        if missing:
            self.status.setText(f"no complete pyramid at {', '.join(missing)}: export first")
            return []
        pairs = []
        for store, name in zip(stores, ("learned", "truth"), strict=True):  # left to right
            data, kwargs, _ = pyramid_layer(store, name=name)
            pairs.append((data, kwargs))
        added = self.side_by_side.open(pairs)
        self._show_open_state()
        return added

    def close_side_by_side(self) -> None:
        """Hide the two pyramids, set the grid back and show the layers hidden for them."""
        self.side_by_side.close()
        self._show_open_state()
        self.status.setText("closed the comparison; the grid and the other layers are as "
                            "before")
