"""Collections: pixel sizes parsed and read from metadata, zoom labels derived from
them (mixed units, napari layer scales), patches cut from the right image at the right zoom,
and the coverage check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile
import torch

from napari_scalespace.data import PatchDataset, cut_patch, open_source
from napari_scalespace.data.collection import (
    Collection,
    open_collection,
    parse_image_arg,
    read_collection_csv,
)
from napari_scalespace.data.pixel_size import PixelSize, parse_pixel_size, read_pixel_size
from napari_scalespace.geometry import View, scene_extent

RNG = np.random.default_rng(0)


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# --- pixel sizes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, metres", [
    ("0.5um", 0.5e-6), ("0.5 µm", 0.5e-6), ("0.5 μm", 0.5e-6), ("500nm", 0.5e-6),
    ("0.0005 mm", 0.5e-6), ("5e-5 cm", 0.5e-6), ("30m", 30.0), ("0.03 km", 30.0),
    ("1 inch", 0.0254), ("2 micrometer", 2e-6), ("3 Å", 3e-10),
])
def test_lengths_in_any_unit_compare_in_metres(text, metres):
    size = parse_pixel_size(text)
    assert size.dimension == "length"
    assert size.base == pytest.approx(metres, rel=1e-12)


def test_unitless_angles_and_bad_sizes():
    assert parse_pixel_size("4") == PixelSize(4.0, None)
    assert parse_pixel_size(2) == PixelSize(2.0)
    assert PixelSize(1.0, "pixel").unit is None  # napari's default unit is no unit
    assert parse_pixel_size("0.25 deg").dimension == "angle"
    assert parse_pixel_size("1um").ratio(parse_pixel_size("250nm")) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="unitless"):
        parse_pixel_size("1um").ratio(parse_pixel_size("4"))
    with pytest.raises(ValueError, match="angle"):
        parse_pixel_size("1um").ratio(parse_pixel_size("1deg"))
    for bad, match in (("0um", "> 0"), ("-1 nm", "> 0"), ("1 parsec", "unknown unit"),
                       ("um", "cannot read"), ("nan", "cannot read"), ("", "cannot read")):
        with pytest.raises(ValueError, match=match):
            parse_pixel_size(bad)


def test_pixel_sizes_are_read_from_each_kind_of_metadata(tmp_path):
    a = rgb(40, 50)
    tifffile.imwrite(tmp_path / "ome.ome.tif", a, ome=True, photometric="rgb",
                     metadata={"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "nm"})
    tifffile.imwrite(tmp_path / "cm.tif", a, photometric="rgb", resolution=(2e4, 2e4),
                     resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "inch.tif", a, photometric="rgb", resolution=(254, 254),
                     resolutionunit="INCH")
    tifffile.imwrite(tmp_path / "none.tif", a, photometric="rgb", resolution=(3, 3),
                     resolutionunit="NONE")
    tifffile.imwrite(tmp_path / "plain.tif", a, photometric="rgb")
    tifffile.imwrite(tmp_path / "imagej.tif", a[..., 0], imagej=True, resolution=(4, 4),
                     metadata={"unit": "um"})
    tifffile.imwrite(tmp_path / "svs.tif", a, photometric="rgb",
                     description="Aperio Image Library v11\n46000x32914 |AppMag = 20|MPP = 0.4990")
    keys = [1, 1, 0, 1, 1024, 0, 1, 1]  # GeoKeyDirectory: GTModelTypeGeoKey = projected
    tifffile.imwrite(tmp_path / "geo.tif", a, photometric="rgb", extratags=[
        (33550, 12, 3, (30.0, 30.0, 0.0), True), (34735, 3, len(keys), keys, True)])
    from PIL import Image

    Image.fromarray(a).save(tmp_path / "a.png", dpi=(300, 300))  # a print density: no size
    got = {p: read_pixel_size(tmp_path / p) for p in (
        "ome.ome.tif", "cm.tif", "inch.tif", "none.tif", "plain.tif", "imagej.tif",
        "geo.tif", "a.png")}
    assert got["ome.ome.tif"].base == pytest.approx(0.25e-9)
    assert got["cm.tif"].base == pytest.approx(0.5e-6)  # 2e4 px per cm
    assert got["inch.tif"].base == pytest.approx(1e-4)  # 254 px per inch
    assert got["imagej.tif"].base == pytest.approx(0.25e-6)
    assert got["geo.tif"] == PixelSize(30.0, "m")
    assert got["none.tif"] is got["plain.tif"] is got["a.png"] is None
    assert read_pixel_size(tmp_path / "svs.tif") == PixelSize(0.499, "um")  # Aperio's MPP


def test_pixel_size_of_an_ome_zarr_comes_from_its_scale_and_axis_unit(tmp_path):
    import zarr

    root = zarr.open_group(str(tmp_path / "img.zarr"), mode="w")
    root.create_array("0", data=rgb(32, 32).transpose(2, 0, 1).copy())
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": "c", "type": "channel"},
                 {"name": "y", "type": "space", "unit": "micrometer"},
                 {"name": "x", "type": "space", "unit": "micrometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, 0.65, 0.65]}]}]}]
    size = read_pixel_size(tmp_path / "img.zarr")
    assert size.base == pytest.approx(0.65e-6)
    assert open_collection([(tmp_path / "img.zarr", None)]).pixel_sizes[0] == size
    # NGFF 0.5 (attributes under "ome") as ome-zarr-py writes it
    from ome_zarr.writer import write_image

    v05 = zarr.open_group(str(tmp_path / "v05.zarr"), mode="w")
    with pytest.warns(UserWarning, match="Scale value not provided"):  # for the channel axis
        write_image(rgb(32, 32).transpose(2, 0, 1).copy(), v05, axes="cyx", scale_factors=[2],
                    scale={"y": 250, "x": 250}, axes_units={"y": "nanometer", "x": "nanometer"})
    assert read_pixel_size(tmp_path / "v05.zarr").base == pytest.approx(0.25e-6)
    plain = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    write_image(rgb(32, 32).transpose(2, 0, 1).copy(), plain, axes="cyx", scale_factors=[2])
    assert read_pixel_size(tmp_path / "plain.zarr") is None  # no unit: not a physical size


# --- zoom labels --------------------------------------------------------------------------------


def test_zoom_offsets_follow_fields_of_view_whatever_the_units():
    overview = open_source(rgb(128, 192), name="overview")  # shorter side 128 px
    field = open_source(rgb(64, 64, 1), name="field")
    tall = open_source(rgb(100, 60, 2), name="tall")
    # overview 128 px x 2 um = 256 um; field 64 px x 0.5 um = 32 um (log2 8 = 3 octaves finer);
    # tall 60 px x 1.0667 um = 64 um (2 octaves)
    for sizes in (["2um", "500nm", "1.0666666667um"], ["0.002mm", "5e-5cm", "1066.6666667nm"]):
        c = Collection([overview, field, tall], [parse_pixel_size(s) for s in sizes])
        assert c.reference == 0 and c.extent == scene_extent(128, 192)
        assert c.offsets == pytest.approx([0.0, 3.0, 2.0], abs=1e-6)
        lo_hi = c.zoom_ranges(16)
        assert lo_hi[0] == pytest.approx((0.0, 3.0))  # log2(128 / 16)
        assert lo_hi[1] == pytest.approx((3.0, 5.0))  # field: 3 + log2(64 / 16)
        assert lo_hi[2] == pytest.approx((2.0, 2.0 + math.log2(60 / 16)))
        assert c.span(16) == pytest.approx(5.0)


def test_napari_layer_scales_and_units_give_pixel_sizes():
    # what the Train widget reads from a layer: scale[-1] and str(units[-1])
    assert PixelSize(0.5, "micrometer").base == pytest.approx(0.5e-6)
    assert PixelSize(2.0, "pixel").dimension == "none"  # napari's default: unitless
    overview = open_source(rgb(64, 64), name="a")
    field = open_source(rgb(64, 64, 1), name="b")
    c = Collection([overview, field], [PixelSize(4.0, "pixel"), PixelSize(1.0, "pixel")])
    assert c.offsets == pytest.approx([0.0, 2.0])  # unitless sizes compare with each other


def test_images_without_pixel_size_are_named_and_arguments_parse(tmp_path):
    from PIL import Image

    Image.fromarray(rgb(40, 40)).save(tmp_path / "a.png")
    Image.fromarray(rgb(40, 40)).save(tmp_path / "b.png")
    with pytest.raises(ValueError, match=r"no pixel size for a\.png, b\.png"):
        open_collection([str(tmp_path / "a.png"), str(tmp_path / "b.png")])
    assert parse_image_arg(f"{tmp_path}/a.png:0.5um") == (f"{tmp_path}/a.png",
                                                          PixelSize(0.5, "um"))
    assert parse_image_arg(f"{tmp_path}/a.png") == (f"{tmp_path}/a.png", None)
    with pytest.raises(ValueError, match="not a pixel size"):
        parse_image_arg(f"{tmp_path}/a.png:fast")
    (tmp_path / "c.csv").write_text("image,pixel_size,unit\na.png,2,um\nb.png,500,nm\n")
    rows = read_collection_csv(tmp_path / "c.csv")
    assert rows == [(str(tmp_path / "a.png"), PixelSize(2.0, "um")),
                    (str(tmp_path / "b.png"), PixelSize(500.0, "nm"))]
    c = open_collection(rows)
    assert c.offsets == pytest.approx([0.0, 2.0])
    assert c.info()[1] == {"image": str(tmp_path / "b.png"), "name": "b.png",
                           "value": 500.0, "unit": "nm"}
    (tmp_path / "bad.csv").write_text("image,pixel_size\na.png,fast\n")
    with pytest.raises(ValueError, match="line 2"):
        read_collection_csv(tmp_path / "bad.csv")


# --- coverage -----------------------------------------------------------------------------------


def test_the_coverage_check_names_the_octaves_without_data():
    overview = open_source(rgb(64, 64), name="overview")  # zooms 0-2 at 16 px
    field = open_source(rgb(64, 64, 1), name="field")
    # field 16x finer: zooms 4-6; zooms 2-4 (octaves 2, 3) have no image
    gap = Collection([overview, field], [PixelSize(16.0, "um"), PixelSize(1.0, "um")])
    assert gap.gaps(6, 16) == [pytest.approx((2.0, 4.0))]
    with pytest.raises(ValueError, match=r"zooms 2\.00 to 4\.00 \(octaves 2, 3\)"):
        gap.check(6, 16)
    with pytest.raises(ValueError, match="at most 6 octaves"):
        gap.check(7, 16)
    # 4x finer: zooms 2-4, contiguous with the overview
    ok = Collection([overview, field], [PixelSize(4.0, "um"), PixelSize(1.0, "um")])
    ok.check(4, 16)
    assert ok.gaps(4, 16) == []
    with pytest.raises(ValueError, match="at most 4 octaves"):
        ok.check(5, 16)
    with pytest.raises(ValueError, match="smaller than the 128-px view"):
        ok.check(1, 128)
    with pytest.raises(ValueError, match="lengths, all angles or all unitless"):
        Collection([overview, field], [PixelSize(4.0, "um"), PixelSize(1.0)])
    with pytest.raises(ValueError, match=r"zooms 2\.00 to 4\.00"):  # the dataset checks too
        PatchDataset(gap, octaves=6, resolution=16)


# --- patches ------------------------------------------------------------------------------------


def test_patches_are_cut_from_an_image_covering_their_zoom_at_its_own_zoom():
    overview = open_source(rgb(96, 128), name="overview")  # zooms 0 - log2(96/16)
    fields = [open_source(rgb(64, 64, s), name=f"field{s}") for s in (1, 2)]
    c = Collection([overview, *fields],
                   [PixelSize(3.0, "um"), PixelSize(1.5, "um"), PixelSize(1.5, "um")])
    # overview 288 um, fields 96 um: offset log2(3) = 1.585, zooms 1.585 - 3.585
    ds = PatchDataset(c, octaves=3, resolution=16, seed=0)
    assert ds.scenes == 1
    v = ds.draw_views(4000, kimg=2000.0)
    ranges = np.array(c.zoom_ranges(16))
    z = v.zoom.astype(np.float64)
    assert np.all(z >= ranges[v.source, 0] - 1e-6) and np.all(z <= ranges[v.source, 1] + 1e-6)
    offsets = np.array(c.offsets)[v.source]
    np.testing.assert_allclose(v.source_zoom, z - offsets, atol=1e-5)
    assert np.all(v.scene == 0)
    # every image is drawn, uniformly among those covering the zoom
    both = (z >= ranges[1, 0]) & (z <= ranges[0, 1])
    share = np.bincount(v.source[both], minlength=3) / both.sum()
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.05)
    assert np.all(v.source[z < ranges[1, 0]] == 0) and np.all(v.source[z > ranges[0, 1]] > 0)
    # the rendered views lie in the collection's scene (the overview's box)
    ey, ex = c.extent
    half = np.exp2(-z) / 2
    assert np.all(v.cy >= half - 1e-6) and np.all(v.cy <= ey - half + 1e-6)
    assert np.all(v.cx >= half - 1e-6) and np.all(v.cx <= ex - half + 1e-6)
    # a batch's patch is its image's area cut at the image's own view
    ds2 = PatchDataset(c, octaves=3, resolution=16, seed=5)
    b = ds2.draw(32, kimg=2000.0)
    ds3 = PatchDataset(c, octaves=3, resolution=16, seed=5)
    v3 = ds3.draw_views(32, kimg=2000.0)
    assert torch.equal(b.source, torch.from_numpy(v3.source))
    for i in range(32):
        src = c.sources[int(v3.source[i])]
        want = cut_patch(src, View(float(v3.source_zoom[i]), float(v3.sy[i]), float(v3.sx[i])),
                         16)
        torch.testing.assert_close(b.images[i], want, atol=2e-5, rtol=0)
