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


def _ome_zarr(path: Path, levels: list[np.ndarray], pixel_um: float) -> None:
    """An RGB OME-Zarr (NGFF 0.5, c y x) of ``levels`` with its pixel size in micrometres."""
    from napari_scalespace._widgets._run_image import save_levels
    from napari_scalespace.data.pixel_size import PixelSize

    save_levels(levels, path, PixelSize(pixel_um, "micrometer"))


def _levels(image: np.ndarray, n: int) -> list[np.ndarray]:
    out = [image]
    for _ in range(n):
        a = out[-1].astype(np.float32)
        h, w = a.shape[0] // 2, a.shape[1] // 2
        out.append(a[:2 * h, :2 * w].reshape(h, 2, w, 2, 3).mean(axis=(1, 3)).astype(np.uint8))
    return out


@pytest.mark.gui
def test_a_multiscale_layer_from_an_ome_zarr_trains_on_the_file_and_the_result_overlays_it(
        make_napari_viewer, qtbot, tmp_path):
    from napari_scalespace._widgets.train_widget import TrainWidget, training_layers
    from napari_scalespace.data import open_source
    from napari_scalespace.reader import scale_space_layer

    slide = tmp_path / "slide.ome.zarr"
    _ome_zarr(slide, _levels(texture(256), 2), 0.5)
    viewer = make_napari_viewer()
    viewer.open(str(slide), plugin="napari-ome-zarr")
    layers = training_layers(viewer.layers)
    assert layers and all(layer.multiscale for layer in layers)
    widget = TrainWidget(viewer)
    widget.layer.value = layers[0]  # napari-ome-zarr shows one layer per channel
    _train(widget, qtbot, tmp_path / "run", 1)
    assert widget.status.text().startswith("stopped at step 1"), widget.status.text()
    info = checkpoint.read_config(tmp_path / "run")[1]
    assert info["images"] == [str(slide.resolve())] and info["channels"] == 3
    assert open_source(info["images"][0]).n_levels == 3
    # the learned layer lies over the slide in micrometres: the same box, pixel edges included
    levels, kwargs, _ = scale_space_layer(tmp_path / "run")
    learned = viewer.add_image(levels, **kwargs)
    assert tuple(learned.units) == tuple(layers[0].units)

    def box(layer):
        half = np.asarray(layer.scale[-2:]) / 2
        return layer.extent.world + np.stack([-half, half])

    np.testing.assert_allclose(box(learned), box(layers[0]), atol=1e-6)
    np.testing.assert_allclose(box(layers[0]), [[-0.25, -0.25], [127.75, 127.75]])


@pytest.mark.gui
def test_an_in_memory_multiscale_layer_is_saved_as_an_ome_zarr_with_its_pixel_size(
        make_napari_viewer, qtbot, tmp_path):
    from napari_scalespace._widgets.train_widget import TrainWidget
    from napari_scalespace.data import open_source
    from napari_scalespace.data.pixel_size import PixelSize, read_pixel_size

    levels = _levels(texture(256), 2)
    viewer = make_napari_viewer()
    viewer.add_image(levels, multiscale=True, rgb=True, name="pyramid", scale=(0.25, 0.25),
                     units=("um", "um"))
    widget = TrainWidget(viewer)
    _train(widget, qtbot, tmp_path / "run", 1)
    saved = tmp_path / "run" / "source.ome.zarr"
    assert checkpoint.read_config(tmp_path / "run")[1]["images"] == [str(saved.resolve())]
    source = open_source(saved)
    assert source.n_levels == 3
    for k, level in enumerate(levels):
        h, w = level.shape[:2]
        np.testing.assert_allclose(source._read_level(k, 0, h, 0, w),
                                   level.transpose(2, 0, 1) / 255, atol=1e-6)
    assert read_pixel_size(saved).ratio(PixelSize(0.25, "um")) == pytest.approx(1)
