"""Screenshots for the user guide (run under a display or ``xvfb-run -a``):

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py [--run RUN]

Windows are 1280 x 800 (or 1280 x 1000 for the Train widget, whose whole form then shows), the
smallest screen the docks are made to fit (issue 20).

- ``images/train_widget.png``: the Train widget after a short ``tiny`` run on the H&E sample
  (its progress bar, elapsed time and the run's loss curve);
- ``images/train_collection.png``: the Train widget on the H&E collection of
  ``scripts/make_collections.py`` (``--collection DIR``, default ``runs/collections/he``): the
  overview and four fields as layers at their physical pixel sizes, ticked, after a short run;
- ``images/scale_space_widget.png``: the Scale space widget and the lazy layer of RUN, zoomed;
- ``images/compare_widget.png`` (and ``compare_widget_plots.png``, its plots tab): the
  Export-and-compare widget after exporting RUN's learned pyramid and its ground truth (into
  RUN/compare when --run is given), shown side by side, and evaluating the run;
- ``images/demo_napari.png`` (README): what ``napari-scalespace show RUN --compare FOLDER``
  shows: the three docks, the scale-space layer and the comparison of the ``compare`` job.

RUN defaults to the pretrained ``tiny`` run shipped with the package, which made the pictures
of issue 20 (``--run runs/demo-he`` uses the demo's run instead); ``train_collection`` needs
the collection of ``scripts/make_collections.py`` (downloaded images) and was not retaken then.
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
    viewer.window.resize(1280, 1000)
    viewer.add_image(np.asarray(Image.open(sample_path("he"))), name="H&E sample", rgb=True)
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.layer.value = viewer.layers["H&E sample"]
    widget.preset.value = "tiny"
    widget.steps.value = 40
    widget.preview_every.value = 20
    _train_and_shoot(viewer, widget, path)


def _train_and_shoot(viewer, widget: TrainWidget, path: Path) -> None:
    """Train in a throw-away folder until the worker ends, then save the window."""
    from qtpy.QtCore import QEventLoop, QTimer

    widget.out.value = Path(tempfile.mkdtemp()) / "run"
    loop = QEventLoop()
    widget.start()
    widget.worker.finished.connect(lambda: QTimer.singleShot(500, loop.quit))
    loop.exec_()
    viewer.reset_view()
    bar = widget.scroll.verticalScrollBar()  # the dock scrolls: show its progress and plot
    bar.setValue(bar.maximum())
    _wait(0.5)
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


def train_collection(folder: Path, path: Path) -> None:
    from napari_scalespace.data import open_source
    from napari_scalespace.data.pixel_size import read_pixel_size

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1280, 1000)
    x = 0.0
    for f in sorted(folder.glob("*.tif"), key=lambda p: (not p.name.startswith("overview"), p)):
        um = read_pixel_size(f).base * 1e6
        src = open_source(f)
        data = (src.read(0, src.height, 0, src.width).transpose(1, 2, 0) * 255).astype(np.uint8)
        viewer.add_image(data, name=f.name.split(".")[0], rgb=True, scale=(um, um),
                         units=("um", "um"), translate=(0, x))
        x += src.width * um + 40
    widget = TrainWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Train", area="right")
    widget.collection.set_ticked([layer.name for layer in viewer.layers])
    widget.preset.value = "tiny"
    widget.steps.value = 30
    widget.preview_every.value = 30
    _train_and_shoot(viewer, widget, path)


def _wait(seconds: float, until=None) -> None:
    from napari_scalespace._widgets.show import _wait as wait

    wait(seconds, until)


def scale_space_widget(run: Path, path: Path) -> None:
    from napari_scalespace._widgets.scale_space_widget import ScaleSpaceWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1280, 800)
    widget = ScaleSpaceWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Scale space", area="right")
    widget.run.value = run
    layer = widget.add_layer()
    levels = len(layer.data)
    widget.zoom.value = max(0.0, levels - 4.0)  # 4-octave demo: half the scene
    refresher = getattr(layer, "_scalespace_refresher", None)
    _wait(120, until=lambda: refresher is None or refresher.scheduler.idle)
    _wait(1.5)
    viewer.screenshot(str(path), canvas_only=False)
    viewer.close()


def compare_widget(run: Path, path: Path, out: Path) -> Path:
    """The widget after export and evaluation (table tab), then its plots tab (``*_plots``);
    complete pyramids of this checkpoint already in ``out`` are kept. Returns ``out``."""
    from napari_scalespace._widgets.compare_widget import CompareWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1280, 800)
    widget = CompareWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Export and compare", area="right")
    widget.run.value = run
    widget.out.value = out
    widget.start()
    _wait(3600, until=lambda: widget.result is not None and widget.start_button.enabled)
    _wait(1.5)
    viewer.screenshot(str(path), canvas_only=False)
    widget.tabs.setCurrentIndex(1)
    _wait(1.0)
    viewer.screenshot(str(path.with_name(path.stem + "_plots.png")), canvas_only=False)
    viewer.close()
    return out


def demo(run: Path, compare: Path, path: Path) -> None:
    """The README's picture: ``napari-scalespace show RUN --compare FOLDER``."""
    from napari_scalespace._widgets.show import open_viewer

    open_viewer(run, compare, screenshot=path, size=(1280, 800))


if __name__ == "__main__":
    import argparse

    from napari_scalespace.data.samples import sample_run

    p = argparse.ArgumentParser()
    p.add_argument("--run", type=Path, default=None, help="run (default: the shipped one)")
    p.add_argument("--collection", type=Path, default=Path("runs/collections/he"),
                   help="folder of scripts/make_collections.py's H&E collection")
    p.add_argument("--only", nargs="*",
                   default=["train", "train_collection", "scale_space", "compare", "demo"])
    args = p.parse_args()
    run = args.run or sample_run()
    images = HERE / "images"
    compare = args.run / "compare" if args.run else Path(tempfile.mkdtemp()) / "compare"
    jobs = {"train": lambda: train_widget(images / "train_widget.png"),
            "train_collection": lambda: train_collection(args.collection,
                                                         images / "train_collection.png"),
            "scale_space": lambda: scale_space_widget(run, images / "scale_space_widget.png"),
            "compare": lambda: compare_widget(run, images / "compare_widget.png", compare),
            "demo": lambda: demo(run, compare, images / "demo_napari.png")}
    for name in args.only:
        jobs[name]()
        print("wrote", name)
