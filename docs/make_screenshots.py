"""Screenshots for the user guide (run under a display or ``xvfb-run -a``):

    xvfb-run -a .venv/bin/python docs/make_screenshots.py

- ``images/train_widget.png``: the Train widget after a short ``tiny`` run on the H&E sample.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import napari
import numpy as np
from PIL import Image

from napari_scalespace._widgets.train_widget import TrainWidget
from napari_scalespace.data import sample_path

HERE = Path(__file__).parent


def train_widget(path: Path) -> None:
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1300, 800)
    viewer.add_image(np.asarray(Image.open(sample_path("he"))), name="H&E sample", rgb=True)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.layer.value = viewer.layers["H&E sample"]
    widget.preset.value = "tiny"
    widget.steps.value = 40
    widget.preview_every.value = 20
    widget.out.value = Path(tempfile.mkdtemp()) / "run"
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    widget.start()
    widget.worker.finished.connect(lambda: QTimer.singleShot(500, loop.quit))
    loop.exec_()
    viewer.reset_view()
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    train_widget(HERE / "images" / "train_widget.png")
    print("wrote", HERE / "images" / "train_widget.png")
