"""OME-Zarr export: learned and ground-truth pyramids are NGFF 0.5 on zarr v3, on the same grid,
tile for tile the renderer's tiles and the area-resampled source views."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Multiscales, Reader

from helpers import tiny_run
from napari_scalespace.checkpoint import read_config
from napari_scalespace.data import cut_patch, open_source
from napari_scalespace.geometry import PyramidGrid
from napari_scalespace.render.export import export_learned, export_truth
from napari_scalespace.render.renderer import Renderer


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    run = tiny_run()
    out = tmp_path_factory.mktemp("export")
    image = read_config(run)[1]["images"][0]
    learned = export_learned(run, out / "learned.zarr", octaves=2, progress=False,
                             device="cpu")
    truth = export_truth(image, out / "truth.zarr", view_size=32, octaves=2, progress=False)
    return run, image, learned, truth


def read(path):
    loc = parse_url(str(path))
    assert loc is not None and loc.version == "0.5"
    node = next(iter(Reader(loc)()))
    assert any(isinstance(s, Multiscales) for s in node.specs)
    return node


def test_both_stores_are_ngff_05_with_the_same_levels(stores):
    _, _, learned, truth = stores
    grid = PyramidGrid(2, 32, (1.0, 1.5))
    shapes = []
    for path in (learned, truth):
        node = read(path)
        assert [a["name"] for a in node.metadata["axes"]] == ["c", "y", "x"]
        shapes.append([tuple(d.shape) for d in node.data])
        attrs = zarr.open_group(str(path), mode="r").attrs
        assert attrs["ome"]["version"] == "0.5"
        ds = attrs["ome"]["multiscales"][0]["datasets"]
        # the 256 x 384 source has no pixel size: world units are its pixels, and a level-0
        # pixel (2**-2 / 32 scene units) spans 256 * 2**-2 / 32 = 2 of them
        assert [d["coordinateTransformations"][0]["scale"] for d in ds] == [
            [1.0, 2.0 * 2**i, 2.0 * 2**i] for i in range(3)]
        assert [d["coordinateTransformations"][1]["translation"] for d in ds] == [
            [0.0, (2.0 * 2**i - 1) / 2, (2.0 * 2**i - 1) / 2] for i in range(3)]
        assert attrs["napari_scalespace"]["grid"] == {"octaves": 2, "tile": 32,
                                                      "extent": [1.0, 1.5]}
        arr = zarr.open_array(str(path / "0"), mode="r")
        assert arr.metadata.zarr_format == 3 and arr.chunks == (3, 32, 32)
        assert arr.dtype == np.uint8
    assert shapes[0] == shapes[1] == [(3, *grid.level_shape(i)) for i in range(3)]


def test_truth_tiles_are_area_resampled_views(stores):
    _, image, _, truth = stores
    source = open_source(image)
    grid = PyramidGrid(2, 32, (1.0, 1.5))
    for level, a, b in [(0, 1, 4), (0, 3, 5), (2, 0, 1)]:
        got = zarr.open_array(str(truth / str(level)), mode="r")[
            :, 32 * a: 32 * a + 32, 32 * b: 32 * b + 32]
        ref = cut_patch(source, grid.tile_view(level, a, b), 32).numpy()
        ref = np.round((ref + 1) / 2 * 255)
        assert np.abs(got.astype(float) - ref).max() <= 1


def test_learned_tiles_are_the_renderers(stores):
    run, _, learned, _ = stores
    r = Renderer(run, device="cpu")
    for level, a, b in [(0, 2, 3), (1, 1, 2), (2, 0, 0)]:
        got = zarr.open_array(str(learned / str(level)), mode="r")[
            :, 32 * a: 32 * a + 32, 32 * b: 32 * b + 32]
        t = r.tile(2 - level, a, b)
        assert np.abs(got.transpose(1, 2, 0).astype(int) - t).max() <= 1


def test_napari_ome_zarr_opens_both_with_the_same_levels_and_shapes(stores):
    """The standard napari reader for OME-Zarr (napari-ome-zarr) reads both stores: one layer
    split into R, G, B channels (our OMERO metadata), three levels, identical shapes."""
    from napari_ome_zarr import napari_get_reader

    _, _, learned, truth = stores
    shapes = []
    for path, name in ((learned, "learned"), (truth, "truth")):
        reader = napari_get_reader(str(path))
        assert reader is not None
        (data, meta, kind), = reader()
        assert kind == "image" and meta["channel_axis"] == 0
        assert meta["name"] == [f"{name}: R", f"{name}: G", f"{name}: B"]
        assert meta["contrast_limits"] == [[0.0, 255.0]] * 3
        assert [tuple(d.shape) for d in data] == [tuple(zarr.open_array(
            str(path / str(i)), mode="r").shape) for i in range(3)]
        assert np.array_equal(np.asarray(data[2]), zarr.open_array(str(path / "2"),
                                                                   mode="r")[:])
        shapes.append([tuple(d.shape) for d in data])
    assert shapes[0] == shapes[1] and len(shapes[0]) == 3


def test_our_reader_opens_a_pyramid_as_one_rgb_layer(stores):
    from napari_scalespace.reader import get_reader, is_pyramid

    run, _, learned, truth = stores
    assert is_pyramid(learned) and is_pyramid(truth) and not is_pyramid(run)
    (levels, kwargs, kind), = get_reader(str(truth))(str(truth))
    assert kind == "image" and kwargs["rgb"] and kwargs["multiscale"]
    arr = zarr.open_array(str(truth / "1"), mode="r")[:]
    assert np.array_equal(np.asarray(levels[1]), arr.transpose(1, 2, 0))
    assert kwargs["metadata"]["napari_scalespace"]["kind"] == "truth"
