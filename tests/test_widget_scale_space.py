"""A run opens in napari as a lazy multiscale layer: only the tiles napari shows are rendered,
showing the same view again renders nothing, and the layer is not blank."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_run
from napari_scalespace._widgets._napari_compat import viewer_camera
from napari_scalespace.render.batching import BatchSizer


@pytest.fixture(scope="module")
def run_dir() -> Path:
    return tiny_run()


@pytest.mark.gui
def test_opening_a_run_gives_a_lazy_multiscale_layer(make_napari_viewer, qtbot, run_dir,
                                                     tmp_path):
    viewer = make_napari_viewer(show=True)
    layers = viewer.open(str(run_dir), plugin="napari-scalespace")
    layer = layers[0]
    renderer = layer.metadata["renderer"]
    grid = renderer.grid()
    assert layer.multiscale and len(layer.data) == grid.n_levels == 4
    assert [tuple(d.shape[:2]) for d in layer.data] == [grid.level_shape(i)
                                                        for i in range(grid.n_levels)]
    # tiles render in the background; the reader's hook refreshes the layer as they land
    refresher = layer._scalespace_refresher
    qtbot.waitUntil(lambda: refresher.refreshes >= 1 and refresher.scheduler.idle,
                    timeout=60_000)
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=True)
    assert shot[..., :3].std() > 1, "the scale-space layer is blank"
    # NAPARI_SCALESPACE_DOCS=1 refreshes the picture in docs/images (kept out of normal runs so
    # that running the tests does not modify the working tree)
    docs = Path(__file__).parents[1] / "docs" / "images"
    out = (docs if os.environ.get("NAPARI_SCALESPACE_DOCS") else tmp_path) / "scale_space_layer.png"
    from PIL import Image

    Image.fromarray(shot).save(out)



@pytest.mark.gui
@pytest.mark.parametrize("progressive", [True, False], ids=["progressive", "dask"])
def test_zooming_in_renders_only_the_tiles_in_view_and_revisits_are_free(
        make_napari_viewer, qtbot, run_dir, progressive):
    import threading

    from napari_scalespace._widgets._progressive import attach
    from napari_scalespace.reader import scale_space_layer

    viewer = make_napari_viewer(show=True)
    # 6 octaves: the finest level (2048 x 3072) is far larger than the canvas
    levels, kwargs, _ = scale_space_layer(run_dir, octaves=6, device="cpu",
                                          progressive=progressive)
    renderer = kwargs["metadata"]["renderer"]
    # a fixed batch, so that coalescing shows in the call counts (the measured size starts at
    # one tile per call and grows: tests/test_render_batching.py)
    renderer.sizer = BatchSizer(fixed=16)
    on_ui_thread = []
    real = renderer._render

    def spy(*args):
        on_ui_thread.append(threading.current_thread() is threading.main_thread())
        return real(*args)

    renderer._render = spy
    layer = viewer.add_image(levels, **kwargs)
    refresher = attach(layer, viewer)
    assert (refresher is not None) == progressive

    def settle():
        if progressive:
            qtbot.waitUntil(lambda: refresher.scheduler.idle, timeout=60_000)
        qtbot.wait(500)

    R = renderer.grid(6).tile
    settle()
    assert layer.data_level > 0  # the whole scene is shown from a coarse level
    renderer.reset_stats()
    # the layer overlays its source image (world units = source pixels or physical units)
    viewer_camera(viewer).center = tuple(layer.data_to_world((R * 20.5, R * 30.5)))
    px = float(layer.scale[-1])  # world units per finest-level pixel
    viewer_camera(viewer).zoom = 8.0 / px  # 8 screen pixels per finest-level pixel: a few tiles
    settle()
    assert layer.data_level == 0
    calls, tiles = renderer.stats.generator_calls, renderer.stats.tiles_rendered
    (r0, c0), (r1, c1) = np.asarray(layer.corner_pixels)[:, :2]
    rows, cols = r1 // R - r0 // R + 1, c1 // R - c0 // R + 1
    visible, with_ring = rows * cols, (rows + 2) * (cols + 2)
    print(f"finest-level view: {tiles} tiles in {calls} generator calls; "
          f"{visible} tiles visible, {with_ring} with a ring")
    assert 1 <= tiles <= with_ring
    assert calls < tiles  # napari's chunk requests were coalesced into batches
    renderer.reset_stats()
    viewer_camera(viewer).zoom = 4.0 / px
    viewer_camera(viewer).zoom = 8.0 / px  # the same view again
    settle()
    assert renderer.stats.generator_calls == 0
    # progressive: the generator ran only on the scheduler's thread (reads never render)
    assert on_ui_thread and not (progressive and any(on_ui_thread))
    shot = viewer.screenshot(canvas_only=True)
    assert shot[..., :3].std() > 1  # the finest tiles are shown, not a blank canvas


@pytest.mark.gui
def test_scale_space_widget_adds_the_layer_and_jumps_to_a_zoom(make_napari_viewer, qtbot,
                                                                run_dir, tmp_path):
    from napari_scalespace._widgets.scale_space_widget import ScaleSpaceWidget

    viewer = make_napari_viewer(show=True)
    widget = ScaleSpaceWidget(viewer)
    widget.run.value = tmp_path  # not a run: a clear message, no layer
    assert widget.add_layer() is None and "not a run" in widget.status.text()
    widget.run.value = run_dir
    widget.octaves.value = 7
    layer = widget.add_layer()
    assert len(layer.data) == 8 and widget.zoom.max == 7
    widget.jump_to_zoom(7.0)  # one tile across the canvas: the finest level
    qtbot.wait(300)
    assert layer.data_level == 0
    widget.jump_to_zoom(0.0)  # the whole scene (4096 finest pixels) on the canvas: coarse
    qtbot.wait(300)
    assert layer.data_level >= 2


@pytest.mark.gui
def test_level_kind_follows_napari_async_slicing(make_napari_viewer, run_dir):
    """napari's async slicing off (its default): progressive levels, refreshed as tiles land;
    on (ticked in the widget): plain lazy dask levels that napari slices off the UI thread."""
    import dask.array as da
    from napari.settings import get_settings

    from napari_scalespace._widgets.scale_space_widget import ScaleSpaceWidget
    from napari_scalespace.render.progressive import ProgressiveLevel

    viewer = make_napari_viewer()
    widget = ScaleSpaceWidget(viewer)
    widget.run.value = run_dir
    assert widget.async_slicing.value is False
    layer = widget.add_layer()
    assert isinstance(layer.data[0], ProgressiveLevel)
    assert layer._scalespace_refresher is not None
    widget.async_slicing.value = True
    try:
        assert get_settings().experimental.async_ is True
        layer2 = widget.add_layer()
        assert isinstance(layer2.data[0], da.Array)
        assert getattr(layer2, "_scalespace_refresher", None) is None
        viewer._layer_slicer.wait_until_idle(120)  # napari's slicing thread renders its tiles
    finally:
        widget.async_slicing.value = False
    assert get_settings().experimental.async_ is False
    # removing a progressive layer stops its scheduler
    scheduler = layer._scalespace_refresher.scheduler
    viewer.layers.remove(layer)
    assert scheduler._closed


@pytest.mark.gui
def test_jump_to_zoom_shows_the_layer_in_world_units_from_anywhere(make_napari_viewer, qtbot,
                                                                   run_dir, tmp_path):
    """The camera lives in world coordinates: a layer in metres (scale 1e-6) and a camera
    centred off the layer used to give a black canvas after a jump."""
    from napari_scalespace._widgets.scale_space_widget import ScaleSpaceWidget, canvas_pixels

    viewer = make_napari_viewer(show=True)
    widget = ScaleSpaceWidget(viewer)
    widget.run.value = run_dir
    widget.octaves.value = 4
    layer = widget.add_layer()
    layer.scale = (1e-6, 1e-6)  # 1 um pixels, in metres
    camera = viewer_camera(viewer)
    camera.center = (0.0, -5.0, -5.0)  # far off the layer
    layer.visible = False
    refresher = layer._scalespace_refresher
    for zoom in (1.0, 3.0):
        widget.jump_to_zoom(zoom)
        assert layer.visible
        (y0, y1), (x0, x1) = layer.extent.world[:, -2:].T
        cy, cx = camera.center[-2:]
        assert y0 <= cy <= y1 and x0 <= cx <= x1
        # the canvas spans a view of side 2**-zoom of the scene (tiny, 4 octaves: 512 finest
        # pixels of 1e-6 m per scene unit)
        assert 1 / layer.metadata["renderer"].grid(4).pixel_size(0) == pytest.approx(512)
        side = canvas_pixels(viewer) / camera.zoom
        assert side == pytest.approx(512 * 2.0**-zoom * 1e-6, rel=1e-6)
        qtbot.waitUntil(lambda: refresher.scheduler.idle, timeout=60_000)
        qtbot.wait(300)
        shot = viewer.screenshot(canvas_only=True)
        assert shot[..., :3].std() > 1 and shot[..., :3].mean() > 10, f"black at zoom {zoom}"
    # keeps a centre on the layer
    camera.center = (0.0, y0 + 0.25 * (y1 - y0), x0 + 0.25 * (x1 - x0))
    widget.jump_to_zoom(2.0)
    assert camera.center[-2:] == pytest.approx((y0 + 0.25 * (y1 - y0), x0 + 0.25 * (x1 - x0)))
