"""Open napari on a run: the three dock widgets, the run's lazy scale-space layer and, when an
export-and-compare folder is given, the learned and ground-truth pyramids side by side.

Used by ``napari-scalespace show`` (and so by the demo). With ``screenshot`` it waits until
the visible tiles are in, saves a picture of the whole window and closes (works headless under
Xvfb); otherwise it runs napari's event loop until the window is closed.
"""

from __future__ import annotations

from pathlib import Path


def _wait(seconds: float, until=None) -> None:
    import time

    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until is not None and until()):
        app.processEvents()
        time.sleep(0.02)


def open_viewer(run: str | Path, compare: str | Path | None = None,
                screenshot: str | Path | None = None, size: tuple[int, int] = (1500, 900)):
    """The viewer (or, with ``screenshot``, the path of the picture after closing it)."""
    import napari

    from ._llvm_guard import block_triton_if_unsafe
    from .compare_widget import CompareWidget
    from .scale_space_widget import ScaleSpaceWidget
    from .train_widget import TrainWidget

    block_triton_if_unsafe()
    viewer = napari.Viewer(show=True, title=f"napari-scalespace: {Path(run).name}")
    viewer.window.resize(*size)
    train = TrainWidget(viewer)
    train.out.value = Path(run)
    space = ScaleSpaceWidget(viewer)
    space.run.value = Path(run)
    cmp = CompareWidget(viewer)
    cmp.run.value = Path(run)
    if compare is not None:
        cmp.out.value = Path(compare)
    viewer.window.add_dock_widget(train, name="Train", area="right")
    viewer.window.add_dock_widget(space, name="Scale space", area="right", tabify=True)
    cmp_dock = viewer.window.add_dock_widget(cmp, name="Export and compare", area="right",
                                             tabify=True)
    layer = space.add_layer()
    if compare is not None:
        cmp.open_side_by_side()
        cmp.load_folder(compare)  # the evaluation of the folder, if it has one
        cmp_dock.raise_()
    if screenshot is None:
        return viewer
    refresher = getattr(layer, "_scalespace_refresher", None)
    _wait(60, until=lambda: refresher is None or refresher.scheduler.idle)
    _wait(1.0)
    viewer.screenshot(str(screenshot), canvas_only=False)
    viewer.close()
    return Path(screenshot)


def main(run: str | Path, compare: str | Path | None = None,
         screenshot: str | Path | None = None) -> int:
    import napari

    out = open_viewer(run, compare, screenshot)
    if screenshot is None:
        napari.run()
    else:
        print(f"wrote {out}")
    return 0
