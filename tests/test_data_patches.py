"""Patch cutting: exact area resampling against block means and supersampled references, edge
replication, reads limited to the view, and the summed-area-table path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.measure import block_reduce

from napari_scalespace.data import IntegralImage, cut_patch, cut_patches, open_source
from napari_scalespace.data._area import area_matrix
from napari_scalespace.geometry import View, source_pixel_edges

H, W = 48, 40  # S = 40: the scene is [0, 1.2) x [0, 1)
IMG = np.random.default_rng(0).random((H, W, 3)).astype(np.float32)
SRC = open_source(IMG, value_range=(0.0, 1.0))


def as01(patch: torch.Tensor) -> np.ndarray:
    assert patch.dtype == torch.float32
    return (patch.numpy().astype(np.float64) + 1.0) / 2.0


def eighth_view(qy: int, qx: int, m: int, r: int, s: int = min(H, W)) -> View:
    """The view whose footprints are ``m`` eighths of a source pixel, starting ``q`` eighths
    from the image's top left corner (so edges fall on the 1/8-pixel grid)."""
    side_px = r * m / 8
    return View(math.log2(s / side_px), (qy / 8 + side_px / 2) / s, (qx / 8 + side_px / 2) / s)


def supersampled_reference(img: np.ndarray, qy: int, qx: int, m: int, r: int) -> np.ndarray:
    """Nearest-upsample by 8 (edge-padded for views sticking out), then m x m block means."""
    up = np.repeat(np.repeat(img, 8, 0), 8, 1)
    pad = max(0, -qy, -qx, qy + r * m - up.shape[0], qx + r * m - up.shape[1])
    up = np.pad(up, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    region = up[qy + pad : qy + pad + r * m, qx + pad : qx + pad + r * m]
    return block_reduce(region, (m, m, 1), np.mean).transpose(2, 0, 1)


def test_zoom0_view_of_a_square_image_at_its_own_size_is_the_image_itself():
    img = IMG[:40]
    src = open_source(img, value_range=(0.0, 1.0))
    patch = cut_patch(src, View(0.0, 0.5, 0.5), 40)
    assert patch.shape == (3, 40, 40)
    np.testing.assert_allclose(as01(patch), img.transpose(2, 0, 1), atol=1e-6)


@pytest.mark.parametrize(("k", "r", "top", "left"), [(2, 8, 0, 0), (4, 10, 8, 0), (5, 8, 4, 0)])
def test_integer_aligned_view_with_integer_factor_is_the_block_mean(k, r, top, left):
    s = min(H, W)
    side_px = k * r
    view = View(math.log2(s / side_px), (top + side_px / 2) / s, (left + side_px / 2) / s)
    region = IMG[top : top + side_px, left : left + side_px]
    ref = block_reduce(region, (k, k, 1), np.mean).transpose(2, 0, 1)
    np.testing.assert_allclose(as01(cut_patch(SRC, view, r)), ref, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 24), st.integers(1, 12), st.data())
def test_fractional_footprints_match_the_supersampled_reference(m, r, data):
    qy = data.draw(st.integers(0, 8 * H - r * m)) if 8 * H >= r * m else 0
    qx = data.draw(st.integers(0, 8 * W - r * m)) if 8 * W >= r * m else 0
    view = eighth_view(qy, qx, m, r)
    ref = supersampled_reference(IMG, qy, qx, m, r)
    np.testing.assert_allclose(as01(cut_patch(SRC, view, r)), ref, atol=1e-5)


def test_beyond_native_zoom_is_piecewise_constant_sampling():
    # footprints of a quarter pixel, aligned on pixel edges: every source pixel -> 4 x 4 copies
    view = eighth_view(8 * 5, 8 * 7, 2, 16)
    patch = as01(cut_patch(SRC, view, 16))
    ref = np.repeat(np.repeat(IMG[5:9, 7:11], 4, 0), 4, 1).transpose(2, 0, 1)
    np.testing.assert_allclose(patch, ref, atol=1e-6)


@pytest.mark.parametrize(("qy", "qx"), [(-20, 0), (0, -33), (8 * H - 30, 8 * W - 10), (-200, 300)])
def test_views_sticking_out_of_the_source_are_edge_replicated(qy, qx):
    m, r = 11, 6
    ref = supersampled_reference(IMG, qy, qx, m, r)
    np.testing.assert_allclose(as01(cut_patch(SRC, eighth_view(qy, qx, m, r), r)), ref, atol=1e-5)


def test_only_the_source_pixels_under_the_view_are_read(monkeypatch):
    boxes = []
    read = SRC._read_level

    def spy(level, r0, r1, c0, c1):
        boxes.append((level, r0, r1, c0, c1))
        return read(level, r0, r1, c0, c1)

    monkeypatch.setattr(SRC, "_read_level", spy)
    # rows 10.375 .. 17.875, columns 4.625 .. 12.125: pixels 10..17 and 4..12 of level 0
    cut_patch(SRC, eighth_view(8 * 10 + 3, 8 * 4 + 5, 12, 5), 5)
    assert boxes == [(0, 10, 18, 4, 13)]


def test_cut_patches_stacks_cut_patch_and_spans_minus_one_to_one():
    views = [View(0.0, 0.6, 0.5), View(1.3, 0.4, 0.7), eighth_view(3, 9, 5, 8)]
    batch = cut_patches(SRC, views, 8)
    assert batch.shape == (3, 3, 8, 8) and batch.dtype == torch.float32
    for b, v in zip(batch, views, strict=True):
        torch.testing.assert_close(b, cut_patch(SRC, v, 8))
    black = open_source(np.zeros((8, 8), np.uint8))
    white = open_source(np.full((8, 8), 255, np.uint8))
    assert torch.all(cut_patch(black, View(0, 0.5, 0.5), 4) == -1.0)
    assert torch.all(cut_patch(white, View(0, 0.5, 0.5), 4) == 1.0)


@given(st.lists(st.floats(-5.0, 60.0), min_size=2, max_size=12, unique=True), st.integers(1, 50))
def test_area_weights_are_overlaps_over_footprint_length_and_rows_sum_to_one(edges, n):
    e = np.sort(np.array(edges))
    lo, hi, w = area_matrix(e, n, np.float64)
    dense = w.toarray()
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-12)
    for j in range(len(e) - 1):  # brute force: overlap with each pixel, folded at the borders
        ref = np.zeros(n)
        for p in range(math.floor(e[j]) - 1, math.ceil(e[j + 1]) + 1):
            ov = max(0.0, min(e[j + 1], p + 1) - max(e[j], p))
            ref[min(max(p, 0), n - 1)] += ov / (e[j + 1] - e[j])
        np.testing.assert_allclose(dense[j], ref[lo:hi], atol=1e-12)
        assert ref[:lo].sum() == ref[hi:].sum() == 0


# --- summed-area table -------------------------------------------------------------------------

TABLE = IntegralImage.from_source(SRC)


def test_integral_image_is_the_summed_area_table():
    ref = np.zeros((H + 1, W + 1, 3))
    ref[1:, 1:] = IMG.astype(np.float64).cumsum(0).cumsum(1)
    np.testing.assert_allclose(TABLE.table, ref, atol=1e-9)
    assert IntegralImage.nbytes_for(SRC) == TABLE.table.nbytes


@settings(max_examples=50, deadline=None)
@given(st.floats(0.0, 5.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(1, 16))
def test_integral_image_box_means_equal_cut_patch(zoom, u, v, r):
    side = 2.0**-zoom
    view = View(zoom, side / 2 + u * (H / W - side), side / 2 + v * (1 - side))
    ye, xe = source_pixel_edges(view.zoom, view.cy, view.cx, r, H, W)
    means = TABLE.box_means(ye[None], xe[None])[0]
    np.testing.assert_allclose(means, as01(cut_patch(SRC, view, r)), atol=2e-6)


def test_integral_image_rejects_footprints_outside_the_image():
    ye, xe = source_pixel_edges(0.0, 0.5, 0.45, 4, H, W)
    with pytest.raises(ValueError, match=r"xe: footprints reach .* outside the image"):
        TABLE.box_means(ye[None], xe[None])
