"""A run started in the Train widget is a run of the command line's: it records a file for its
image (the layer's file, or the layer's data saved into the run folder with its pixel size),
so ``train --resume`` and ``compare`` work on it; a used folder gets a human message; a resumed
run trains on the image it recorded, whatever layer is selected."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.model.generator import Generator


def _train(widget, qtbot, out: Path, steps: int) -> None:
    widget.preset.value = "tiny"
    widget.octaves.value = 1
    widget.threads.value = 1
    widget.preview_every.value = 100
    widget.steps.value = steps
    widget.out.value = out
    widget.start()
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=120_000)


@pytest.mark.gui
def test_an_in_memory_layer_is_saved_in_the_run_and_the_cli_resumes_it(make_napari_viewer,
                                                                        qtbot, tmp_path):
    from napari_scalespace._widgets.train_widget import TrainWidget
    from napari_scalespace.cli import main
    from napari_scalespace.data.pixel_size import PixelSize, read_pixel_size
    from napari_scalespace.eval.compare import run_image

    viewer = make_napari_viewer()
    img = texture()
    viewer.add_image(img, name="in memory", rgb=True, scale=(0.5, 0.5), units=("um", "um"))
    widget = TrainWidget(viewer)
    run = tmp_path / "run"
    _train(widget, qtbot, run, 2)
    assert widget.status.text().startswith("stopped at step 2"), widget.status.text()
    source = run / "source.tif"
    assert checkpoint.read_config(run)[1]["images"] == [str(source.resolve())]
    import tifffile

    assert np.array_equal(tifffile.imread(source), img)
    size = read_pixel_size(source)
    assert size is not None and size.ratio(PixelSize(0.5, "um")) == pytest.approx(1)
    assert run_image(run) == str(source.resolve())  # what `compare RUN` uses
    # the command line continues the widget's run on its image
    assert main(["train", "--out", str(run), "--steps", "3", "--resume", "--threads", "1"]) == 0
    _, _, state = checkpoint.load_generator(run, lambda p: Generator(p.generator))
    assert state["step"] == 3


@pytest.mark.gui
def test_a_layer_from_a_file_records_the_file(make_napari_viewer, qtbot, tmp_path):
    from PIL import Image

    from napari_scalespace._widgets.train_widget import TrainWidget

    png = tmp_path / "texture.png"
    Image.fromarray(texture()).save(png)
    viewer = make_napari_viewer()
    viewer.open(str(png))
    widget = TrainWidget(viewer)
    assert widget.layer.value is viewer.layers["texture"]
    _train(widget, qtbot, tmp_path / "run", 1)
    assert checkpoint.read_config(tmp_path / "run")[1]["images"] == [str(png.resolve())]
    assert not (tmp_path / "run" / "source.tif").exists()


@pytest.mark.gui
def test_a_used_folder_is_refused_in_words_and_resume_keeps_the_runs_image(
        make_napari_viewer, qtbot, tmp_path):
    from napari_scalespace._widgets.train_widget import TrainWidget

    viewer = make_napari_viewer()
    viewer.add_image(texture(), name="first", rgb=True)
    widget = TrainWidget(viewer)
    run = tmp_path / "run"
    _train(widget, qtbot, run, 1)
    # a new run into the same folder: a message, nothing started
    widget.start()
    assert widget.status.text() == (f"folder {run} already holds a run; tick Resume to "
                                    f"continue it or choose another folder")
    assert widget.start_button.enabled and widget.steps_done == 1
    # resuming with another layer selected (too small to train on): the run's image is used
    viewer.add_image(np.zeros((20, 20, 3), np.uint8), name="other", rgb=True)
    widget.layer.value = viewer.layers["other"]
    widget.resume.value = True
    assert not widget.layer.enabled and not widget.preset.enabled
    widget.steps.value = 3
    widget.start()
    assert widget.status.text() == "resuming run on its image source.tif"
    qtbot.waitUntil(lambda: widget.start_button.enabled, timeout=120_000)
    assert widget.status.text().startswith("stopped at step 3"), widget.status.text()
    info = checkpoint.read_config(run)[1]
    assert info["images"] == [str((run / "source.tif").resolve())]
    # resuming a folder without a run says so
    widget.out.value = tmp_path / "empty"
    widget.start()
    assert widget.status.text().startswith(f"no run in {tmp_path / 'empty'} to resume")
    widget.resume.value = False
    assert widget.layer.enabled
