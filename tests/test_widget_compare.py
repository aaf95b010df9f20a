"""The Export-and-compare widget writes both pyramids in a worker (progress, cancel), opens
them side by side in grid mode, evaluates and shows the table, the plots and the contact sheet;
napari-ome-zarr opens both stores."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_run
from napari_scalespace.eval.compare import CONTACT, LEARNED, METRICS, PLOT, TRUTH
from napari_scalespace.render.export import is_complete


@pytest.fixture(scope="module")
def run_dir() -> Path:
    return tiny_run()


@pytest.mark.gui
def test_export_and_compare_opens_learned_and_truth_side_by_side(make_napari_viewer, qtbot,
                                                                  run_dir, tmp_path):
    from napari_scalespace._widgets._napari_compat import viewer_grid
    from napari_scalespace._widgets.compare_widget import CompareWidget

    viewer = make_napari_viewer(show=True)
    viewer.add_image(np.zeros((8, 8)), name="other")
    widget = CompareWidget(viewer)
    widget.run.value = run_dir
    widget.octaves.value = 2
    widget.views.value = 4
    widget.out.value = tmp_path / "cmp"
    widget.start()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=240_000)
    assert widget.result == "done", widget.status.text()
    assert widget._progress is None  # the progress bar was closed
    assert is_complete(tmp_path / "cmp" / LEARNED) and is_complete(tmp_path / "cmp" / TRUTH)
    for name in (METRICS, PLOT, CONTACT):
        assert (tmp_path / "cmp" / name).is_file()
    # octaves 0..2: the model's and the baseline's SWD, a consistency PSNR from octave 1 on
    assert widget.table.rowCount() == 3
    header = [widget.table.horizontalHeaderItem(c).text() for c in range(14)]
    swd, cons = header.index("SWD model"), header.index("consistency PSNR model")
    assert all(float(widget.table.item(r, swd).text()) > 0 for r in range(3))
    assert widget.table.item(0, cons).text() == "-" and float(widget.table.item(2, cons).text())
    detail = header.index("detail model")
    assert all(float(widget.table.item(r, detail).text()) > 0 for r in range(3))
    assert not widget.plot.pixmap().isNull() and not widget.sheet.pixmap().isNull()
    assert widget.plot.pixmap().width() >= 300
    # the same folder shown by a fresh widget (as `show --compare` does)
    again = CompareWidget(viewer)
    assert again.load_folder(tmp_path / "cmp") and again.table.rowCount() == 3
    assert not again.load_folder(tmp_path)
    learned, truth = viewer.layers["learned"], viewer.layers["truth"]
    assert learned.multiscale and len(learned.data) == len(truth.data) == 3
    assert [d.shape for d in learned.data] == [d.shape for d in truth.data]
    grid = viewer_grid(viewer)
    assert grid.enabled and not viewer.layers["other"].visible
    assert widget.open_button.text == "Close side by side"
    # learned on the left, truth on the right of a 1 x 2 grid
    assert grid.position(viewer.layers.index(learned), viewer.layers) == (0, 0)
    assert grid.position(viewer.layers.index(truth), viewer.layers) == (0, 1)
    qtbot.wait(300)
    shot = viewer.screenshot(canvas_only=True)
    half = shot.shape[1] // 2
    assert shot[:, :half, :3].std() > 1 and shot[:, half:, :3].std() > 1
    docs = Path(__file__).parents[1] / "docs" / "images"
    out = (docs if os.environ.get("NAPARI_SCALESPACE_DOCS") else tmp_path) / "compare.png"
    from PIL import Image

    Image.fromarray(shot).save(out)

    # napari-ome-zarr, the standard OME-Zarr reader, opens both with the same levels and shapes
    opened = [viewer.open(str(tmp_path / "cmp" / s), plugin="napari-ome-zarr")
              for s in (LEARNED, TRUTH)]
    assert [len(layers) for layers in opened] == [3, 3]  # R, G, B
    assert [[d.shape for d in layer.data] for layer in opened[0]] == [
        [d.shape for d in layer.data] for layer in opened[1]]
    assert [len(layer.data) for layer in opened[0]] == [3, 3, 3]
    # opening other layers ended the comparison: the grid is off, "other" is shown again
    assert not grid.enabled and viewer.layers["other"].visible
    assert widget.open_button.text == "Open side by side"
    # reopened and closed with the button: the pyramids are hidden, the rest is as before
    zarr_layers = [x for x in viewer.layers if x.name not in ("other", "learned", "truth")]
    for layer in zarr_layers[1:]:
        layer.visible = False
    widget.open_button.changed.emit(True)
    assert grid.enabled and not viewer.layers["other"].visible and learned.visible
    assert [x.name for x in viewer.layers].count("learned") == 1  # the same layers, reused
    widget.open_button.changed.emit(True)
    qtbot.wait(200)
    assert not grid.enabled and viewer.layers["other"].visible and zarr_layers[0].visible
    assert not learned.visible and not truth.visible
    assert not any(x.visible for x in zarr_layers[1:])  # hidden by the user: left hidden


@pytest.mark.gui
def test_side_by_side_is_undone_when_the_comparison_ends(make_napari_viewer):
    """Only the layers it hid are shown again (one hidden before stays hidden), the grid gets
    its earlier settings back; removing a pyramid or adding a layer ends the comparison."""
    from napari_scalespace._widgets._napari_compat import viewer_grid
    from napari_scalespace._widgets._side_by_side import SideBySide

    viewer = make_napari_viewer()
    shown = viewer.add_image(np.zeros((8, 8)), name="shown")
    hidden = viewer.add_image(np.zeros((8, 8)), name="hidden before", visible=False)
    grid = viewer_grid(viewer)
    grid.shape, grid.stride = (2, 3), 2  # the user's settings, grid mode off
    sbs = SideBySide(viewer)
    pair = [(np.ones((16, 16)), {"name": "learned"}), (np.ones((16, 16)), {"name": "truth"})]
    learned, truth = sbs.open(pair)
    assert grid.enabled and tuple(grid.shape) == (1, 2) and grid.stride == 1
    assert not shown.visible and learned.visible and truth.visible
    sbs.close()  # the pyramids are hidden, not removed (napari 0.9.2's grid-mode crash)
    assert [x.name for x in viewer.layers] == ["shown", "hidden before", "learned", "truth"]
    assert (grid.enabled, tuple(grid.shape), grid.stride) == (False, (2, 3), 2)
    assert shown.visible and not hidden.visible and not learned.visible
    # reopening reuses the layers of the same names with the new data
    again = sbs.open([(np.full((16, 16), 2.0), {"name": "learned"}), pair[1]])
    assert again[0] is learned and learned.visible and learned.data[0, 0] == 2
    # removing one of the pyramids ends it; the other stays
    viewer.layers.remove(learned)
    assert not grid.enabled and shown.visible and not sbs.active and truth in viewer.layers
    # so does adding a layer; learned is left of truth again whichever layer was reused
    learned, truth = sbs.open(pair)
    assert [x.name for x in viewer.layers] == ["shown", "hidden before", "learned", "truth"]
    assert grid.position(2, viewer.layers) == (0, 0) and grid.position(3, viewer.layers) == (0, 1)
    viewer.add_image(np.zeros((4, 4)), name="new")
    assert not grid.enabled and shown.visible and viewer.layers["new"].visible


@pytest.mark.gui
def test_cancel_stops_the_export_and_reports_bad_input(make_napari_viewer, qtbot, run_dir,
                                                       tmp_path):
    from napari_scalespace._widgets.compare_widget import CompareWidget

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((8, 8)), name="scalespace preview",
                     metadata={"napari_scalespace": {"preview": "run"}})
    widget = CompareWidget(viewer)
    assert list(widget.image.choices) == [None]  # the run's image only: ours are not offered
    widget.run.value = tmp_path  # not a run
    widget.start()
    assert "not a run folder" in widget.status.text() and widget.worker is None
    widget.run.value = run_dir
    widget.octaves.value = 5  # 1 + 4 + ... + 1024 x 1.5 tiles: minutes of work
    widget.out.value = tmp_path / "cmp"
    widget.start()
    qtbot.waitUntil(lambda: widget._done["learned"] > 0, timeout=120_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=60_000)
    assert widget.result == "cancelled"
    assert widget._done["learned"] < widget._total["learned"]
    assert not is_complete(tmp_path / "cmp" / LEARNED)
    assert widget.open_side_by_side() == [] and "export first" in widget.status.text()
    # a ground-truth layer of another shape: a clear error from the worker, nothing written
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="square", rgb=True)
    widget.image.value = viewer.layers["square"]
    widget.out.value = tmp_path / "other"
    widget.start()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=60_000)
    assert widget.result == "error"
    assert "square (64 x 64 px)" in widget.status.text()
    assert "not the image it was trained on" in widget.status.text()
