"""Physical units everywhere: the learned layer of a run, its exported pyramid and the ground
truth carry scale, translate and units that overlay the source image opened at its physical
pixel size (µm here), or plainly (pixels) when it has none; exports are valid NGFF 0.5 with
axis units and zarr v3 dimension names, and napari-ome-zarr reads them in µm."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile
import zarr

from helpers import SHAPE, texture, tiny_run
from napari_scalespace.geometry import PyramidGrid, scene_extent
from napari_scalespace.reader import pyramid_layer, scale_space_layer
from napari_scalespace.render.export import export_learned, export_truth
from napari_scalespace.render.placement import run_placement

UM = "micrometer"


def _with_source(run: str, root, source: dict):
    """A copy of ``run`` whose config records ``source`` (what the run was trained on)."""
    copy = root / "run"
    shutil.copytree(run, copy)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["source"] = {**cfg["source"], **source}
    (copy / "config.json").write_text(json.dumps(cfg))
    return copy


@pytest.fixture(scope="module")
def um_run(tmp_path_factory):
    """The tiny run (256 x 384 texture, 32-px tiles) as if trained on a 0.5 µm/px ImageJ TIFF."""
    root = tmp_path_factory.mktemp("um")
    tif = root / "tissue.tif"
    tifffile.imwrite(tif, texture(SHAPE), imagej=True, resolution=(2.0, 2.0),
                     metadata={"unit": "um"})
    return _with_source(tiny_run(), root, {"images": [str(tif)]}), tif


def test_the_run_layer_is_placed_in_micrometres(um_run):
    run, _ = um_run
    _, kwargs, _ = scale_space_layer(run, device="cpu", progressive=False)
    # 3 octaves of 32-px tiles on a 256-px shorter side: a level-0 pixel is one source pixel
    assert kwargs["scale"] == pytest.approx((0.5, 0.5))
    assert kwargs["translate"] == pytest.approx((0.0, 0.0))
    assert kwargs["units"] == (UM, UM)
    _, kwargs, _ = scale_space_layer(run, octaves=5, device="cpu", progressive=False)
    assert kwargs["scale"] == pytest.approx((0.125, 0.125))  # 4 pixels per source pixel
    assert kwargs["translate"] == pytest.approx((-0.1875, -0.1875))  # (0.125 - 0.5) / 2


def _validate(store):
    """ome_zarr_models accepts the store as an NGFF 0.5 image; arrays have dimension names."""
    import ome_zarr_models
    from ome_zarr_models.v05.image import Image

    group = zarr.open_group(str(store), mode="r")
    model = ome_zarr_models.open_ome_zarr(group)
    assert isinstance(model, Image)
    for d in model.attributes.ome.multiscales[0].datasets:
        assert zarr.open_array(str(store / d.path), mode="r").metadata.dimension_names == (
            "c", "y", "x")
    return group.attrs.asdict()["ome"]["multiscales"][0]


def test_exports_are_valid_ngff_in_micrometres(um_run, tmp_path):
    run, tif = um_run
    learned = export_learned(run, tmp_path / "learned.zarr", octaves=2, progress=False,
                             device="cpu")
    truth = export_truth(str(tif), tmp_path / "truth.zarr", view_size=32, octaves=2,
                         progress=False)
    metas = [_validate(s) for s in (learned, truth)]
    for ms in metas:
        assert [a.get("unit") for a in ms["axes"]] == [None, UM, UM]
        ts = [d["coordinateTransformations"] for d in ms["datasets"]]
        # level i pixel: 256 px * 2**-(2 - i) / 32 = 2**(i + 1) source pixels of 0.5 µm
        assert [t[0]["scale"] for t in ts] == [[1.0, 2.0**i, 2.0**i] for i in range(3)]
        assert [t[1]["translation"] for t in ts] == [
            [0.0, (2.0**i - 0.5) / 2, (2.0**i - 0.5) / 2] for i in range(3)]
    assert metas[0]["datasets"] == metas[1]["datasets"]  # the same placement


def test_napari_ome_zarr_reads_the_units_and_scale(um_run, tmp_path):
    from napari_ome_zarr import napari_get_reader

    run, _ = um_run
    store = export_learned(run, tmp_path / "learned.zarr", octaves=2, progress=False,
                           device="cpu")
    (data, meta, kind), = napari_get_reader(str(store))()
    assert kind == "image" and meta["units"] == (UM, UM)
    assert meta["scale"] == pytest.approx([1.0, 1.0]) and len(data) == 3


def test_a_collection_is_placed_by_its_largest_field_of_view(tmp_path):
    """Collection in µm: the scene is the reference image (largest field of view)."""
    big, small = tmp_path / "overview.png", tmp_path / "detail.png"
    from PIL import Image

    Image.fromarray(texture(SHAPE)).save(big)  # 256 x 384 at 2 µm: a 512 µm field
    Image.fromarray(texture(SHAPE)[:128, :128]).save(small)  # 128 x 128 at 0.5 µm: 64 µm
    info = {"images": [str(big), str(small)], "extent": list(scene_extent(256, 384)),
            "collection": [{"image": str(big), "name": "overview.png", "value": 2.0,
                            "unit": "um"},
                           {"image": str(small), "name": "detail.png", "value": 0.5,
                            "unit": "µm"}]}
    p = run_placement(info)
    assert (p.scene_unit, p.source_pixel, p.unit) == (512.0, 2.0, UM)
    grid = PyramidGrid(4, 32, scene_extent(256, 384))
    kw = p.layer_kwargs(grid)
    assert kw["scale"] == pytest.approx((1.0, 1.0))  # 512 µm * 2**-4 / 32
    assert kw["translate"] == pytest.approx((-0.5, -0.5)) and kw["units"] == (UM, UM)


@pytest.mark.gui
@pytest.mark.parametrize("physical", [True, False], ids=["micrometres", "pixels"])
def test_learned_layer_overlays_the_source_image(make_napari_viewer, um_run, tmp_path,
                                                  physical):
    """The source opened at its physical size (scale 0.5 µm) or, without one, plainly: the
    learned layer of the run and the truth pyramid cover the same world box, and a scene
    point is at the same world position in all three."""
    run, tif = um_run
    if not physical:
        from PIL import Image

        png = tmp_path / "tissue.png"
        Image.fromarray(texture(SHAPE)).save(png)
        run = _with_source(run, tmp_path, {"images": [str(png)]})
        tif = png
    p, units = (0.5, (UM, UM)) if physical else (1.0, None)
    viewer = make_napari_viewer()
    src = viewer.add_image(texture(SHAPE), rgb=True, scale=(p, p), name="source",
                           **({"units": units} if units else {}))
    levels, kwargs, _ = scale_space_layer(run, octaves=5, device="cpu", progressive=False)
    learned = viewer.add_image(levels, **kwargs)
    truth_store = export_truth(str(tif), tmp_path / "truth.zarr", view_size=32, octaves=5,
                               progress=False)
    data, tkw, _ = pyramid_layer(truth_store)
    truth = viewer.add_image(data, **tkw)
    for layer in (learned, truth):
        if units:
            assert tuple(str(u) for u in layer.units) == units
        # the same box: the outer pixel edges of level 0 and of the source
        h, w = layer.level_shapes[0][:2]
        assert np.allclose(layer.data_to_world((-0.5, -0.5)), src.data_to_world((-0.5, -0.5)))
        assert np.allclose(layer.data_to_world((h - 0.5, w - 0.5)),
                           src.data_to_world((256 - 0.5, 384 - 0.5)))
        # scene point (0.3, 0.7) (scene unit = 256 source pixels): level-0 pixel
        # (0.3, 0.7) * 2**5 * 32 - 1/2 of the 5-octave pyramid, source pixel * 256 - 1/2
        y, x = 0.3, 0.7
        at_src = src.data_to_world((y * 256 - 0.5, x * 256 - 0.5))
        at_layer = layer.data_to_world((y * 1024 - 0.5, x * 1024 - 0.5))
        assert np.allclose(at_src, at_layer), (at_src, at_layer)
