"""The evaluation metrics on synthetic cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_scalespace.data import open_source
from napari_scalespace.eval import metrics
from napari_scalespace.eval.features import fid, kid
from napari_scalespace.eval.swd import swd
from napari_scalespace.eval.views import BicubicViews, TruthViews
from napari_scalespace.geometry import View, random_centres

RNG = np.random.default_rng(0)


def smooth_texture(h: int, w: int, seed: int = 0, blur: float = 3.0) -> np.ndarray:
    """A random RGB texture in [0, 1] with detail at all scales above ``blur`` pixels."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    img = gaussian_filter(rng.random((h, w, 3)), (blur, blur, 0))
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32)


@pytest.fixture(scope="module")
def texture():
    return open_source(smooth_texture(512, 768))


def views_at(zoom, extent, n, seed=0):
    cy, cx = random_centres(zoom, extent, n, np.random.default_rng(seed))
    return [View(zoom, float(y), float(x)) for y, x in zip(cy, cx, strict=True)]


def test_psnr_l1_and_ssim_have_their_textbook_values():
    a = RNG.random((3, 3, 16, 16))
    assert metrics.psnr(a, a) == math.inf and metrics.mean_abs(a, a) == 0
    assert metrics.psnr(np.zeros((1, 1, 8, 8)), np.full((1, 1, 8, 8), 0.1)) == pytest.approx(20)
    assert metrics.mean_abs(np.zeros((1, 1, 8, 8)), np.full((1, 1, 8, 8), 0.25)) == 0.25
    assert metrics.ssim(a, a) == pytest.approx(1.0)
    noisy = [metrics.ssim(a, np.clip(a + s * RNG.standard_normal(a.shape), 0, 1))
             for s in (0.05, 0.2)]
    assert 1 > noisy[0] > noisy[1]
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.psnr(a, a[:2])
    with pytest.raises(ValueError, match="7 x 7"):
        metrics.ssim(a[..., :5, :5], a[..., :5, :5])


def test_box_downsample_averages_blocks():
    x = np.arange(16, dtype=float).reshape(1, 1, 4, 4)
    np.testing.assert_allclose(metrics.box_downsample(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="multiple"):
        metrics.box_downsample(np.zeros((1, 1, 5, 4)), 2)


def test_area_resampled_truth_is_scale_consistent_to_the_numerical_limit(texture):
    """Exact area resampling is scale consistent by construction: the box-downsampled view at
    zoom l equals the centre of the view at l - 1 up to float32 round-off."""
    truth = TruthViews(texture, 32)
    for zoom in (1, 2, 3):
        cy, cx = random_centres(zoom - 1, truth.extent, 6, np.random.default_rng(zoom))
        fine = truth.render([View(zoom, y, x) for y, x in zip(cy, cx, strict=True)])
        coarse = truth.render([View(zoom - 1, y, x) for y, x in zip(cy, cx, strict=True)])
        p, l1 = metrics.consistency(fine, coarse)
        assert p > 110 and l1 < 1e-5  # float32 round-off
        # a scale space that brightens as you zoom in is not consistent
        p, l1 = metrics.consistency(np.clip(fine + 0.1, 0, 1), coarse)
        assert p < 25 and l1 > 0.05


def test_seam_overlap_agrees_for_one_scene_and_catches_per_view_offsets(texture):
    truth = TruthViews(texture, 32)
    vs = views_at(2, truth.extent, 8)
    a = truth.render(vs)
    bx = truth.render([v.moved(0, 0.5) for v in vs])
    by = truth.render([v.moved(0.5, 0) for v in vs])
    assert bx.shape == a.shape and vs[0].moved(0.5, 0).cy == vs[0].cy + 2.0**-2 / 2
    assert metrics.seam_overlap(a, bx, "x") > 110 and metrics.seam_overlap(a, by, "y") > 110
    # each view with its own brightness: the overlaps disagree
    offset = RNG.uniform(-0.1, 0.1, (8, 1, 1, 1))
    assert metrics.seam_overlap(a + offset, bx, "x") < 30
    with pytest.raises(ValueError, match="axis"):
        metrics.seam_overlap(a, bx, "z")


def test_seam_gradient_ratio_is_one_without_seams_and_catches_a_seamed_pyramid():
    img = smooth_texture(128, 128, seed=1).transpose(2, 0, 1)
    assert metrics.seam_gradient_ratio(img, 32) == pytest.approx(1.0, abs=0.1)
    seamed = img.copy()
    for a in range(4):  # tiles alternately 0.05 brighter and darker: a step at every border
        for b in range(4):
            seamed[:, a * 32:(a + 1) * 32, b * 32:(b + 1) * 32] += 0.05 * (-1) ** (a + b)
    assert metrics.seam_gradient_ratio(seamed, 32) > 3
    # a single tile has no border
    assert math.isnan(metrics.seam_gradient_ratio(img[:, :32, :32], 32))


def test_swd_of_a_set_with_itself_is_about_zero_and_grows_with_noise(texture):
    truth = TruthViews(texture, 32)
    a = torch.from_numpy(truth.render(views_at(2, truth.extent, 24, seed=1)))
    b = torch.from_numpy(truth.render(views_at(2, truth.extent, 24, seed=2)))
    same = np.mean(swd(a, a))
    other_views = np.mean(swd(a, b))
    noisy = [np.mean(swd(a, (b + s * torch.randn_like(b)).clamp(0, 1))) for s in (0.05, 0.2)]
    assert same == 0  # the same descriptors are drawn from both sets
    assert 0 < other_views < noisy[0] < noisy[1]


def test_bicubic_zoom_reproduces_zoom_0_and_blurs_fine_detail(texture):
    truth, bicubic = TruthViews(texture, 32), BicubicViews(texture, 32)
    top = [View(0, 0.5, x) for x in (0.5, 1.0)]  # the two zoom-0 tiles of the 1 x 1.5 scene
    assert metrics.psnr(bicubic.render(top), truth.render(top)) > 60
    fine = views_at(3, truth.extent, 8)
    t, b = truth.render(fine), bicubic.render(fine)
    # it has none of the detail finer than zoom 0: smoother than the truth
    assert np.abs(np.diff(b, axis=-1)).mean() < 0.5 * np.abs(np.diff(t, axis=-1)).mean()
    assert 15 < metrics.psnr(b, t) < 40


def test_fid_and_kid_know_equal_and_shifted_sets():
    a = RNG.standard_normal((400, 8))
    assert fid(a, a) == pytest.approx(0, abs=1e-6)
    shift = np.zeros(8)
    shift[0] = 2.0
    assert fid(a, a + shift) == pytest.approx(4.0, rel=1e-6)  # |mean difference|^2
    assert abs(kid(a, a, subsets=5, subset_size=200)) < 0.05
    assert kid(a, a + shift, subsets=5, subset_size=200) > 0.5


def test_gradient_energy_known_answers_and_its_fall_past_the_data(texture):
    ramp = np.tile(np.arange(8.0)[None, :] * 0.1, (8, 1))[None, None]  # dx = 0.1, dy = 0
    assert metrics.gradient_energy(ramp) == pytest.approx(0.01)
    assert metrics.gradient_energy(np.zeros((2, 3, 4, 4))) == 0
    checker = (np.indices((6, 6)).sum(0) % 2)[None, None].astype(float)
    assert metrics.gradient_energy(checker) == pytest.approx(2.0)  # dy^2 = dx^2 = 1
    per = metrics.gradient_energy(np.concatenate([ramp, 2 * ramp]), per_view=True)
    np.testing.assert_allclose(per, [0.01, 0.04])
    with pytest.raises(ValueError, match="gradient_energy"):
        metrics.gradient_energy(np.zeros((4, 4)))
    # bicubic zoom past the detail of zoom 0 loses most of the energy, the truth does not
    truth, bicubic = TruthViews(texture, 32), BicubicViews(texture, 32)
    fine = views_at(2, truth.extent, 8)
    assert metrics.gradient_energy(bicubic.render(fine)) < 0.5 * metrics.gradient_energy(
        truth.render(fine))
