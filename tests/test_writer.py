"""The writer contribution: an image layer (numpy, or our multiscale layer) saved with napari's
``layers.save`` as an OME-Zarr pyramid in the layer's physical units."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from helpers import SHAPE, texture, tiny_run
from napari_scalespace.reader import get_reader, pyramid_layer, scale_space_layer
from napari_scalespace.render.export import export_learned, is_complete, open_pyramid
from napari_scalespace.writer import SMALLEST, write_image

PLUGIN = "napari-scalespace"


def _valid(store):
    import ome_zarr_models
    from ome_zarr_models.v05.image import Image

    assert isinstance(ome_zarr_models.open_ome_zarr(zarr.open_group(str(store), mode="r")),
                      Image)


@pytest.mark.gui
def test_saving_a_numpy_layer_keeps_its_pixels_and_units(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    img = np.repeat(np.repeat(texture(SHAPE), 2, axis=0), 2, axis=1)  # 512 x 768 RGB
    layer = viewer.add_image(img, rgb=True, scale=(0.25, 0.25), translate=(10.0, 20.0),
                             units=("um", "um"), name="tissue")
    out = tmp_path / "tissue.zarr"
    written = viewer.layers.save(str(out), selected=False, plugin=PLUGIN)
    assert written == [str(out)]
    _valid(out)
    (levels, kwargs, _), = get_reader(str(out))(str(out))
    assert np.array_equal(np.asarray(levels[0]), img)
    assert max(levels[-1].shape[:2]) <= SMALLEST < max(levels[-2].shape[:2])
    assert kwargs["scale"] == pytest.approx((0.25, 0.25))
    assert kwargs["translate"] == pytest.approx((10.0, 20.0))
    assert kwargs["units"] == ("micrometer", "micrometer")
    back = viewer.add_image(levels, **kwargs)
    assert np.allclose(back.data_to_world((3, 4)), layer.data_to_world((3, 4)))
    # level 1 pixel k's centre is the mean of level-0 pixels 2k, 2k+1: (f - 1) / 2 further
    ms = zarr.open_group(str(out), mode="r").attrs["ome"]["multiscales"][0]
    t1 = ms["datasets"][1]["coordinateTransformations"]
    assert t1[0]["scale"] == [1.0, 0.5, 0.5] and t1[1]["translation"] == [0.0, 10.125, 20.125]
    assert [a.get("unit") for a in ms["axes"]] == [None, "micrometer", "micrometer"]


def test_saving_a_grey_float_layer(tmp_path):
    data = np.linspace(0, 3, 64 * 80, dtype=np.float32).reshape(64, 80)
    out = tmp_path / "grey.zarr"
    assert write_image(str(out), data, {"name": "grey", "contrast_limits": [0, 3]}) == [
        str(out)]
    _valid(out)
    arrays, _ = open_pyramid(out)
    assert len(arrays) == 1 and np.array_equal(arrays[0][0], data)
    _, kwargs, _ = pyramid_layer(out)
    assert "units" not in kwargs and kwargs["scale"] == (1.0, 1.0)


def test_saving_our_multiscale_layer_renders_every_tile(tmp_path):
    """A run's layer (whose levels may show placeholders while tiles render) is saved as the
    learned pyramid, tile for tile what `export` writes."""
    run = tiny_run()
    levels, kwargs, _ = scale_space_layer(run, octaves=2, device="cpu", progressive=True)
    meta = {**kwargs, "metadata": kwargs["metadata"]}
    out = tmp_path / "saved.zarr"
    write_image(str(out), levels, meta)
    ref = export_learned(run, tmp_path / "ref.zarr", octaves=2, progress=False, device="cpu")
    assert is_complete(out)
    _valid(out)
    got, ours = open_pyramid(out)
    want, _ = open_pyramid(ref)
    assert ours["kind"] == "learned"
    for a, b in zip(got, want, strict=True):
        assert np.abs(a[:].astype(int) - b[:].astype(int)).max() <= 1
    levels[0].scheduler.close()


def test_the_writer_never_writes_over_other_data(tmp_path):
    notes = tmp_path / "notes.zarr"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep")
    with pytest.raises(ValueError, match="choose a new or empty folder"):
        write_image(str(notes), np.zeros((8, 8), np.uint8), {})
    assert [p.name for p in notes.iterdir()] == ["todo.txt"]
    with pytest.raises(ValueError, match="2-D"):
        write_image(str(tmp_path / "v.zarr"), np.zeros((2, 8, 8), np.uint8), {})
