"""The Train widget trains in a worker: progress advances, cancel stops within a step and
leaves a loadable checkpoint with the chosen options, the loss plot has points, and a preview
layer appears."""

from __future__ import annotations

import re

import numpy as np
import pytest

from napari_scalespace import checkpoint
from napari_scalespace.model.generator import Generator


@pytest.mark.gui
def test_train_widget_runs_cancels_and_leaves_a_checkpoint(make_napari_viewer, qtbot, tmp_path):
    from napari_scalespace._widgets.train_widget import PREVIEW_LAYER, TrainWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:96, :96] / 96
    img = (np.sin(14 * x + 5 * y)[..., None] * [60, 40, 70] + 128
           + rng.normal(0, 20, (96, 96, 3))).clip(0, 255).astype(np.uint8)
    viewer.add_image(img, name="texture", rgb=True)
    widget = TrainWidget(viewer)
    widget.layer.value = viewer.layers["texture"]
    widget.preset.value = "tiny"
    widget.octaves.value = 1
    widget.extra_octaves.value = 1
    assert widget.positions.value == "auto"
    widget.positions.value = "unknown"
    widget.steps.value = 500
    widget.preview_every.value = 2
    widget.threads.value = 1
    widget.out.value = tmp_path / "run"
    widget.start()
    qtbot.waitUntil(lambda: widget.steps_done >= 3, timeout=120_000)
    assert widget._progress.n >= 3
    widget.cancel()
    at_cancel = widget.steps_done
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=60_000)  # worker finished
    assert widget.steps_done <= at_cancel + 1  # stops within one step
    assert widget.plot.points >= 2 * 3  # D and G losses for each step
    assert PREVIEW_LAYER in viewer.layers
    _, _, state = checkpoint.load_generator(tmp_path / "run", lambda p: Generator(p.generator))
    assert state["step"] == widget.steps_done
    preset = checkpoint.read_config(tmp_path / "run")[0]  # the options reached the run
    assert (preset.train.positions, preset.data_octaves, preset.generator.octaves) == (
        "unknown", 1, 2)
    assert not widget.cancel_button.enabled
    # an image too small for the preset: the error is shown, the widget is ready again
    viewer.add_image(np.zeros((20, 20, 3), np.uint8), name="tiny image", rgb=True)
    widget.layer.value = viewer.layers["tiny image"]
    widget.out.value = tmp_path / "run2"
    widget.start()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=60_000)
    assert widget.status.text().startswith("error:"), widget.status.text()
    assert not (tmp_path / "run2").exists()  # its saved source.tif went with the failed start


@pytest.mark.gui
def test_triton_is_blocked_once_mesa_llvm_is_loaded_in_a_fresh_napari(tmp_path):
    """In a fresh process that has drawn a napari canvas with llvmpipe, the guard blocks
    triton so that building an optimizer (which imports torch._dynamo) does not crash."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, napari, torch\n"
        "v = napari.Viewer(show=True); v.add_image(np.random.rand(32, 32))\n"
        "v.screenshot(canvas_only=True)\n"
        "from napari_scalespace._widgets._llvm_guard import block_triton_if_unsafe\n"
        "print('blocked', block_triton_if_unsafe())\n"
        "torch.optim.Adam([torch.zeros(1, requires_grad=True)])\n"
        "print('optimizer ok')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-2000:]
    assert "optimizer ok" in res.stdout


@pytest.mark.gui
def test_train_widget_trains_a_collection_of_layers_at_their_scales(make_napari_viewer, qtbot,
                                                                     tmp_path):
    from napari_scalespace._widgets.train_widget import TrainWidget
    from test_train_trainer import texture

    viewer = make_napari_viewer()
    viewer.add_image(texture(128), name="overview", rgb=True, scale=(4, 4), units=("um", "um"))
    for i in (1, 2):
        viewer.add_image(np.roll(texture(128), 17 * i, axis=0), name=f"field{i}", rgb=True,
                         units=("um", "um"))
    widget = TrainWidget(viewer)
    widget.preset.value = "tiny"  # 32-px views: overview zooms 0-2, fields 2-4
    table = widget.collection
    assert not table.active
    table.set_ticked(["overview", "field1", "field2"])
    assert table.active and table.table.rowCount() == 3
    assert not widget.layer.enabled and not widget.positions.enabled  # not for a collection
    rows = [[table.table.item(r, c).text() for c in range(4)] for r in range(3)]
    assert rows[0] == ["overview", "4", "micrometer", "0.00 - 2.00"]
    assert rows[1] == ["field1", "1", "micrometer", "2.00 - 4.00"]
    assert "zoom 0 = overview" in table.message.text()
    # a field 10x finer leaves zooms 4-5.32 without data: said before anything trains
    table.set_pixel_size("field2", "100", "nm")
    assert table.message.text().startswith("error: no image has real patches for zooms "
                                           "4.00 to 5.32 (octaves 4, 5)")
    widget.out.value = tmp_path / "bad"
    widget.start()
    assert widget.status.text().startswith("error:") and not (tmp_path / "bad").exists()
    table.set_pixel_size("field2", "0.001", "mm")  # = 1 um, in another unit
    assert "zoom 0 = overview" in table.message.text()
    widget.steps.value = 500
    widget.threads.value = 1
    widget.preview_every.value = 1
    widget.out.value = tmp_path / "run"
    widget.start()
    qtbot.waitUntil(lambda: widget.steps_done >= 2, timeout=120_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=60_000)
    preset, info = checkpoint.read_config(tmp_path / "run")
    assert (preset.train.positions, preset.generator.octaves) == ("unknown", 4)
    assert preset.generator.num_bins == 2  # bins follow a collection's octaves
    # the preview strip is not offered as a collection image; unticking ends the collection
    assert "scalespace preview" in viewer.layers
    listed = [table.layer_list.item(i).text() for i in range(table.layer_list.count())]
    assert listed == ["overview", "field1", "field2"]
    table.set_ticked(["overview"])
    assert not table.active and widget.layer.enabled and widget.positions.enabled
    assert [(e["name"], e["value"], e["unit"]) for e in info["collection"]] == [
        ("overview", 4.0, "micrometer"), ("field1", 1.0, "micrometer"), ("field2", 0.001, "mm")]


@pytest.fixture(scope="module")
def render_run():
    from test_render_renderer import tiny_run

    return tiny_run()


@pytest.mark.gui
def test_image_defaults_to_a_plain_layer_and_scale_space_layers_are_never_offered(
        make_napari_viewer, render_run):
    from napari_scalespace._widgets.train_widget import TrainWidget
    from napari_scalespace.reader import scale_space_layer
    from test_train_trainer import texture

    viewer = make_napari_viewer()
    levels, kwargs, _ = scale_space_layer(render_run, progressive=False)
    viewer.add_image(levels, **kwargs)  # the first layer is a scale space
    viewer.add_image(np.zeros((8, 8)), name="ours, single scale",
                     metadata={"napari_scalespace": {"preview": "x"}})
    viewer.add_image(texture(), name="texture", rgb=True)
    widget = TrainWidget(viewer)
    assert widget.layer.value is viewer.layers["texture"]
    assert [layer.name for layer in widget.layer.choices] == ["texture"]
    listed = [widget.collection.layer_list.item(i).text()
              for i in range(widget.collection.layer_list.count())]
    assert listed == ["texture"]
    viewer.add_image(texture(64), name="second", rgb=True)  # added later: offered too
    assert [layer.name for layer in widget.layer.choices] == ["texture", "second"]


@pytest.mark.gui
def test_progress_bar_elapsed_and_eta_and_a_loss_curve_per_run(make_napari_viewer, qtbot,
                                                                tmp_path):
    from napari_scalespace._widgets._loss_plot import MIN_HEIGHT
    from napari_scalespace._widgets.train_widget import TrainWidget
    from test_train_trainer import texture

    viewer = make_napari_viewer()
    viewer.add_image(texture(), name="texture", rgb=True)
    widget = TrainWidget(viewer)
    assert widget.plot.minimumHeight() == MIN_HEIGHT
    widget.preset.value = "tiny"
    widget.octaves.value = 1
    widget.threads.value = 1
    widget.preview_every.value = 100
    widget.steps.value = 4
    widget.out.value = tmp_path / "run1"
    widget.start()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=120_000)
    bar = widget.progress.bar
    assert (bar.value(), bar.maximum()) == (4, 4), widget.status.text()
    assert re.fullmatch(r"step 4/4 · \d+:\d\d elapsed", widget.progress.label.text())
    assert widget.plot.series["G"][0] == [1, 2, 3, 4]
    # a second run, limited in time: the ETA is the limit's; its curve starts afresh
    widget.steps.value = 100_000
    widget.time_limit.value = 0.15  # 9 s
    widget.out.value = tmp_path / "run2"
    widget.start()
    assert widget.plot.points == 0 and widget.plot.title == "run2"
    qtbot.waitUntil(lambda: widget.steps_done >= 2, timeout=120_000)
    text = widget.progress.label.text()
    assert re.fullmatch(r"step \d+/100000 · \d+:\d\d elapsed · ETA 0:0\d \(time limit\)", text)
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=120_000)
    assert widget.status.text().startswith("time limit reached; stopped at step")
    assert bar.value() == widget.steps_done < 100_000
    assert widget.plot.series["G"][0][0] == 1  # not joined to run1's steps 1-4
    assert len(widget.plot.series["G"][0]) == widget.steps_done


def test_eta_extrapolates_this_sessions_steps_and_a_time_limit_caps_it():
    from napari_scalespace._widgets._train_progress import clock, progress_text

    assert clock(59.6) == "1:00" and clock(3725) == "1:02:05"
    assert progress_text(10, 110, 30, 2.0) == "step 10/110 · 0:30 elapsed · ETA 3:20"
    assert progress_text(1, 110, 5, None).endswith("ETA after the next step")
    assert progress_text(10, 110, 30, 2.0, time_limit=60) == (
        "step 10/110 · 0:30 elapsed · ETA 0:30 (time limit)")
    assert progress_text(10, 110, 30, 2.0, time_limit=600).endswith("ETA 3:20")
    assert progress_text(110, 110, 222, 2.0, done=True) == "step 110/110 · 3:42 elapsed"
