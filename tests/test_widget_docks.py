"""The three docks, stacked in napari's right dock area as the Plugins menu adds them, fit a
1280 x 800 screen: each scrolls instead of asking for its whole height, and the loss plot keeps
a readable height inside its scrolling dock."""

from __future__ import annotations

import pytest

SCREEN = (1280, 800)


@pytest.mark.gui
def test_three_docks_fit_a_1280_by_800_screen(make_napari_viewer, qtbot, tmp_path):
    from napari_scalespace._widgets._loss_plot import MIN_HEIGHT
    from napari_scalespace._widgets.compare_widget import CompareWidget
    from napari_scalespace._widgets.scale_space_widget import ScaleSpaceWidget
    from napari_scalespace._widgets.train_widget import TrainWidget

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    docks = {"Train": TrainWidget(viewer), "Scale space": ScaleSpaceWidget(viewer),
             "Export and compare": CompareWidget(viewer)}
    for name, widget in docks.items():
        viewer.window.add_dock_widget(widget, name=name, area="right")
    qtbot.wait(300)
    for name, widget in docks.items():
        assert widget.minimumSizeHint().height() < 700, name
        assert widget.isVisible() and widget.height() > 0, name
    assert window.minimumSizeHint().height() <= SCREEN[1]
    assert window.minimumSizeHint().width() <= SCREEN[0]
    assert window.width() <= SCREEN[0] and window.height() <= SCREEN[1]
    frame = window.frameGeometry()
    assert frame.width() <= SCREEN[0] + 20 and frame.height() <= SCREEN[1] + 40  # + decorations
    # the loss plot is not squeezed: the Train dock scrolls to show it at its minimum height
    train = docks["Train"]
    assert train.plot.height() >= MIN_HEIGHT
    assert train.scroll.verticalScrollBar().maximum() > 0  # the form is taller than the dock
