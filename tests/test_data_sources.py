"""Image sources: file and array round trips, layouts, value ranges, thumbnails, bad inputs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image
from skimage.measure import block_reduce

from napari_scalespace.data import SAMPLES, ImageSource, open_source, sample_path
from napari_scalespace.data import sources as sources_mod


def rgb8(h: int = 37, w: int = 53, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def chw(a: np.ndarray) -> np.ndarray:
    """(H, W[, C]) -> [C, H, W]."""
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


# --- round trips -------------------------------------------------------------------------------


def test_png_rgb_reads_back_as_uint8_over_255(tmp_path):
    a = rgb8()
    Image.fromarray(a).save(tmp_path / "x.png")
    src = open_source(tmp_path / "x.png")
    assert (src.height, src.width, src.channels, src.name) == (37, 53, 3, "x.png")
    assert src.value_range == (0.0, 255.0)
    out = src.read(3, 20, 5, 50)
    assert out.dtype == np.float32 and out.shape == (3, 17, 45)
    np.testing.assert_allclose(out, chw(a)[:, 3:20, 5:50] / 255.0, atol=1e-7)


def test_png_gray_8_and_16_bit_keep_one_channel_and_scale_by_dtype_maximum(tmp_path):
    rng = np.random.default_rng(1)
    g8 = rng.integers(0, 256, (20, 30), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g16).save(tmp_path / "g16.png")
    s8, s16 = open_source(tmp_path / "g8.png"), open_source(tmp_path / "g16.png")
    assert s8.channels == s16.channels == 1
    assert s16.value_range == (0.0, 65535.0)
    np.testing.assert_allclose(s8.read(0, 20, 0, 30)[0], g8 / 255.0, atol=1e-7)
    np.testing.assert_allclose(s16.read(0, 20, 0, 30)[0], g16 / 65535.0, atol=1e-7)


def test_jpeg_header_gives_the_size_and_pixels_decode_on_first_read(tmp_path):
    a = rgb8(40, 24)
    Image.fromarray(a).save(tmp_path / "x.jpg", quality=95)
    src = open_source(tmp_path / "x.jpg")
    assert src._levels[0].data._pixels is None  # nothing decoded at open time
    ref = np.asarray(Image.open(tmp_path / "x.jpg")) / 255.0
    np.testing.assert_allclose(src.read(0, 40, 0, 24), chw(ref), atol=1e-7)


def test_rgba_png_is_composited_over_white(tmp_path):
    a = np.zeros((2, 3, 4), np.uint8)
    a[..., :3] = [[[200, 100, 0]]]
    a[..., 3] = [[0, 255, 128], [255, 255, 255]]
    Image.fromarray(a, "RGBA").save(tmp_path / "x.png")
    src = open_source(tmp_path / "x.png")
    assert src.channels == 3
    out = src.read(0, 2, 0, 3)
    rgb = np.array([200, 100, 0]) / 255.0
    np.testing.assert_allclose(out[:, 0, 0], [1.0, 1.0, 1.0], atol=1e-6)  # transparent: white
    np.testing.assert_allclose(out[:, 0, 1], rgb, atol=1e-6)  # opaque: the colour
    alpha = 128 / 255
    np.testing.assert_allclose(out[:, 0, 2], rgb * alpha + (1 - alpha), atol=1e-6)


def test_gray_alpha_png_composites_to_one_channel(tmp_path):
    la = np.stack([np.full((2, 2), 50, np.uint8), np.array([[0, 255], [255, 0]], np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    src = open_source(tmp_path / "la.png")
    assert src.channels == 1
    np.testing.assert_allclose(src.read(0, 2, 0, 2)[0], [[1, 50 / 255], [50 / 255, 1]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiled_tiff_reads_regions_through_the_zarr_store(tmp_path, dtype):
    a = np.random.default_rng(2).integers(0, np.iinfo(dtype).max, (300, 200, 3)).astype(dtype)
    tifffile.imwrite(tmp_path / "x.tif", a, tile=(64, 64))
    with open_source(tmp_path / "x.tif") as src:
        assert (src.height, src.width, src.channels) == (300, 200, 3)
        assert isinstance(src._levels[0].data, zarr.Array)
        top = float(np.iinfo(dtype).max)
        np.testing.assert_allclose(src.read(70, 140, 130, 200), chw(a)[:, 70:140, 130:] / top)


def test_float_tiff_range_is_its_0_1_and_99_9_percentiles_and_reads_clip(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.normal(100.0, 10.0, (200, 150)).astype(np.float32)
    a[0, 0], a[1, 1] = -1e6, 1e6  # outliers do not stretch the range
    tifffile.imwrite(tmp_path / "f.tif", a)
    src = open_source(tmp_path / "f.tif")
    lo, hi = np.percentile(a.astype(np.float64), [0.1, 99.9])
    assert src.value_range == pytest.approx((lo, hi))
    out = src.read(0, 200, 0, 150)[0]
    np.testing.assert_allclose(out, np.clip((a - lo) / (hi - lo), 0, 1), atol=1e-5)
    assert out[0, 0] == 0.0 and out[1, 1] == 1.0


def test_float_range_comes_from_a_strided_sample_of_a_large_image():
    a = np.tile(np.linspace(0.0, 8.0, 3000, dtype=np.float32), (2100, 1))
    src = open_source(a)
    sample = a[::3, ::3]  # ceil(3000 / 1024) = 3
    assert src.value_range == pytest.approx(tuple(np.percentile(sample, [0.1, 99.9])))


def test_nan_reads_as_zero_and_infinities_clip():
    a = np.linspace(0, 1, 100, dtype=np.float64).reshape(10, 10)
    a[0, :3] = [np.nan, np.inf, -np.inf]
    src = open_source(a, value_range=(0.0, 1.0))
    np.testing.assert_array_equal(src.read(0, 1, 0, 3)[0, 0], [0.0, 1.0, 0.0])


def test_constant_float_image_reads_as_mid_gray():
    src = open_source(np.full((8, 8), 3.5))
    assert src.value_range == (3.0, 4.0)
    np.testing.assert_allclose(src.read(0, 8, 0, 8), 0.5)


def test_explicit_value_range_overrides_the_dtype_default():
    a = np.array([[0, 2048, 4095]], np.uint16)  # 12-bit data in uint16
    src = open_source(a, value_range=(0, 4095))
    np.testing.assert_allclose(src.read(0, 1, 0, 3)[0, 0], [0, 2048 / 4095, 1], atol=1e-7)


def test_bool_image_reads_zero_and_one():
    a = np.array([[True, False], [False, True]])
    np.testing.assert_array_equal(open_source(a).read(0, 2, 0, 2)[0], a.astype(np.float32))


def test_numpy_dask_zarr_and_multiscale_list_read_the_same(tmp_path):
    a = rgb8(64, 48)
    z = zarr.create_array(
        store=str(tmp_path / "a.zarr"), shape=a.shape, chunks=(16, 16, 3), dtype=a.dtype
    )
    z[:] = a
    ref = open_source(a).read(5, 60, 7, 41)
    for obj in (da.from_array(a, chunks=(16, 16, 3)), z, tmp_path / "a.zarr", [a, a[::2, ::2]]):
        src = open_source(obj)
        assert (src.height, src.width, src.channels) == (64, 48, 3)
        np.testing.assert_array_equal(src.read(5, 60, 7, 41), ref)


def _write_ome_zarr(path, levels, zarr_format):
    g = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    ms = [
        {
            "axes": [
                {"name": "c", "type": "channel"},
                {"name": "y", "type": "space"},
                {"name": "x", "type": "space"},
            ],
            "datasets": [{"path": str(i)} for i in range(len(levels))],
        }
    ]
    if zarr_format == 3:
        g.attrs["ome"] = {"version": "0.5", "multiscales": ms}
    else:
        g.attrs["multiscales"] = [{**ms[0], "version": "0.4"}]
    for i, lv in enumerate(levels):
        arr = g.create_array(str(i), shape=lv.shape, chunks=(3, 32, 32), dtype=lv.dtype)
        arr[:] = lv


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_opens_the_full_resolution_channel_first_dataset(tmp_path, zarr_format):
    a = rgb8(80, 64)
    full = a.transpose(2, 0, 1)  # OME-Zarr stores (c, y, x)
    _write_ome_zarr(tmp_path / "img.zarr", [full, full[:, ::2, ::2]], zarr_format)
    src = open_source(tmp_path / "img.zarr")
    assert (src.height, src.width, src.channels, src.n_levels) == (80, 64, 3, 2)
    np.testing.assert_allclose(src.read(10, 70, 3, 60), full[:, 10:70, 3:60] / 255.0)


def test_leading_singleton_axes_are_dropped():
    a = rgb8(10, 12)[..., 0]
    src = open_source(a[None, None])
    assert (src.height, src.width, src.channels) == (10, 12, 1)


def test_jpeg_compressed_tiff_falls_back_to_pillow_without_imagecodecs(tmp_path):
    a = rgb8(64, 48)
    Image.fromarray(a).save(tmp_path / "j.tif", compression="jpeg")
    src = open_source(tmp_path / "j.tif")
    ref = np.asarray(Image.open(tmp_path / "j.tif").convert("RGB")) / 255.0
    assert (src.height, src.width, src.channels) == (64, 48, 3)
    np.testing.assert_allclose(src.read(0, 64, 0, 48), chw(ref), atol=2 / 255)


# --- thumbnails --------------------------------------------------------------------------------


def test_thumbnail_with_integer_factor_is_the_block_mean():
    a = rgb8(64, 48)
    th = open_source(a).thumbnail(16)
    assert th.shape == (3, 16, 12) and th.dtype == np.float32
    ref = block_reduce(a / 255.0, (4, 4, 1), np.mean).transpose(2, 0, 1)
    np.testing.assert_allclose(th, ref, atol=1e-6)


def test_thumbnail_with_fractional_factor_matches_supersampled_area_average():
    a = rgb8(30, 20)
    th = open_source(a).thumbnail(12)  # factor 2.5 -> 12 x 8
    assert th.shape == (3, 12, 8)
    up = np.repeat(np.repeat(a / 255.0, 2, 0), 2, 1)  # half pixels: footprints are 5 x 5 of them
    np.testing.assert_allclose(
        th, block_reduce(up, (5, 5, 1), np.mean).transpose(2, 0, 1), atol=1e-6
    )


def test_thumbnail_never_upsamples_and_streams_strips(monkeypatch):
    a = rgb8(50, 40)
    src = open_source(a)
    np.testing.assert_allclose(src.thumbnail(1000), chw(a) / 255.0, atol=1e-6)
    whole = src.thumbnail(7)
    monkeypatch.setattr(sources_mod, "_STRIP_VALUES", 3 * 40 * 3)  # 3-row strips
    np.testing.assert_allclose(src.thumbnail(7), whole, atol=1e-6)


def test_thumbnail_reads_the_smallest_pyramid_level_that_is_large_enough(tmp_path):
    full = np.zeros((256, 256), np.uint8)
    half = np.full((128, 128), 255, np.uint8)  # a different picture, to see which one is read
    with tifffile.TiffWriter(tmp_path / "p.ome.tif") as w:
        w.write(full, subifds=1, tile=(64, 64))
        w.write(half, subfiletype=1, tile=(64, 64))
    with open_source(tmp_path / "p.ome.tif") as src:
        assert src.n_levels == 2
        assert np.all(src.thumbnail(100) == 1.0)  # from the 128-px level
        assert np.all(src.thumbnail(200) == 0.0)  # needs the full resolution
        assert np.all(src.read(0, 256, 0, 256) == 0.0)


# --- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        (np.zeros((2, 5, 32, 32)), r"4-D stack.*pass one 2-D image \(or RGB\) per scene"),
        (np.zeros((7, 32, 32)), r"3-D stack"),
        (np.zeros((32, 32, 2)), r"2 channels; expected 1 \(gray\), 3 \(RGB\) or 4 \(RGBA\)"),
        (np.zeros(32), r"1-D"),
        (np.zeros((0, 5)), r"empty image"),
        (np.zeros((4, 0, 3)), r"empty image"),
        (np.full((4, 4), np.nan), r"all NaN"),
        (np.zeros((4, 4), np.complex64), r"unsupported dtype"),
        (object(), r"cannot open object"),
        ([], r"empty list"),
    ],
)
def test_bad_arrays_raise_one_line_value_errors(obj, match):
    with pytest.raises(ValueError, match=match) as e:
        open_source(obj)
    assert "\n" not in str(e.value)


def test_missing_and_unreadable_files_raise_value_errors_naming_the_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.png: no such file"):
        open_source(tmp_path / "nope.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=r"junk\.png: cannot read image"):
        open_source(tmp_path / "junk.png")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(ValueError, match=r"bad\.tif"):
        open_source(tmp_path / "bad.tif")


def test_tiff_stack_and_zarr_group_of_many_arrays_are_rejected(tmp_path):
    tifffile.imwrite(tmp_path / "z.tif", np.zeros((5, 16, 16), np.uint8), metadata={"axes": "ZYX"})
    with pytest.raises(ValueError, match=r"z\.tif.*3-D stack \(z=5\).*per scene"):
        open_source(tmp_path / "z.tif")
    g = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    g.create_array("a", shape=(4, 4), dtype="u1")
    g.create_array("b", shape=(4, 4), dtype="u1")
    with pytest.raises(ValueError, match=r"2 arrays; pass the array"):
        open_source(tmp_path / "g.zarr")


def test_read_outside_the_image_and_bad_value_range_raise():
    src = open_source(rgb8(10, 10))
    with pytest.raises(ValueError, match=r"outside the 10x10 image"):
        src.read(0, 11, 0, 5)
    with pytest.raises(ValueError, match=r"r0 must be an integer"):
        src.read(0.5, 4, 0, 5)
    for bad in [(1.0, 1.0), (0.0, np.inf), "ab", (1, 2, 3)]:
        with pytest.raises(ValueError, match=r"value_range must be two finite numbers"):
            open_source(rgb8(), value_range=bad)


# --- bundled samples ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_open_as_1024_square_rgb_under_400_kb(name):
    path = sample_path(name)
    assert path.stat().st_size < 400 * 1024
    src = open_source(path)
    assert isinstance(src, ImageSource)
    assert (src.height, src.width, src.channels) == (1024, 1024, 3)
    th = src.thumbnail(64)
    assert th.shape == (3, 64, 64) and 0.05 < th.std()  # a real picture, not a flat field


def test_unknown_sample_name_raises():
    with pytest.raises(ValueError, match=r"unknown sample 'mars'"):
        sample_path("mars")


def test_an_ome_zarr_at_a_url_is_read_through_fsspec_with_its_pixel_size():
    """Any fsspec URL (here the in-memory file system; s3://, https:// alike with a network)."""
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscale

    from napari_scalespace.data.collection import parse_image_arg
    from napari_scalespace.data.pixel_size import PixelSize, read_pixel_size

    a = rgb8(64, 48)
    local = zarr.open_group("memory://slide.ome.zarr", mode="w", zarr_format=3)
    write_multiscale([a.transpose(2, 0, 1), a[::2, ::2].transpose(2, 0, 1)], local,
                     fmt=FormatV05(), axes=[{"name": "c", "type": "channel"},
                                            {"name": "y", "type": "space"},
                                            {"name": "x", "type": "space"}],
                     scale={"y": 0.25, "x": 0.25}, axes_units={"y": "micrometer",
                                                                "x": "micrometer"})
    src = open_source("memory://slide.ome.zarr")
    assert (src.name, src.height, src.width, src.n_levels) == ("slide.ome.zarr", 64, 48, 2)
    np.testing.assert_allclose(src.read(5, 60, 7, 41), chw(a)[:, 5:60, 7:41] / 255, atol=1e-7)
    assert read_pixel_size("memory://slide.ome.zarr").ratio(PixelSize(0.25, "um")) == \
        pytest.approx(1)
    assert parse_image_arg("s3://bucket/slide.ome.zarr") == ("s3://bucket/slide.ome.zarr", None)
    path, size = parse_image_arg("s3://bucket/slide.ome.zarr:0.5um")
    assert path == "s3://bucket/slide.ome.zarr" and size.ratio(PixelSize(0.5, "um")) == 1
