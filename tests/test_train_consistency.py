"""The scale-consistency loss is zero for an exactly scale-consistent renderer, positive
otherwise, and its zoom-out factors follow the documented Beta law."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from napari_scalespace.train.consistency import (
    consistency_l1,
    downsample_into_teacher,
    zoom_out_exponent,
)

R = 32
A, B = (7.0, 1.0), (11.0, 0.4)  # sin(a y + b) * sin(c x + d): a smooth analytic scene


def box_render(zoom: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """Exact pixel area averages of the analytic scene: a perfectly scale-consistent renderer."""
    side = torch.exp2(-zoom.double())[:, None]
    edges = torch.arange(R + 1, dtype=torch.float64) / R - 0.5

    def axis(c, freq, phase):
        e = c.double()[:, None] + side * edges  # [B, R+1]
        prim = -torch.cos(freq * e + phase) / freq  # antiderivative of sin
        return (prim[:, 1:] - prim[:, :-1]) / (side / R)

    ys, xs = axis(cy, *A), axis(cx, *B)
    img = ys[:, :, None] * xs[:, None, :]
    return img[:, None].expand(-1, 3, -1, -1)


def point_render(zoom, cy, cx):
    """Point samples of a detailed scene: not consistent under area downsampling."""
    side = torch.exp2(-zoom.double())[:, None]
    u = (torch.arange(R, dtype=torch.float64) + 0.5) / R - 0.5
    y, x = cy.double()[:, None] + side * u, cx.double()[:, None] + side * u
    img = torch.sin(300 * y)[:, :, None] * torch.sin(250 * x)[:, None, :]
    return img[:, None].expand(-1, 3, -1, -1)


def losses(render, factor: torch.Tensor) -> float:
    zoom = torch.tensor([1.0, 2.5, 4.0, 6.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    cy, cx = torch.rand(4, generator=g, dtype=torch.float64), torch.rand(4, generator=g,
                                                                           dtype=torch.float64)
    student = render(zoom, cy, cx)
    teacher = render(zoom - torch.log2(factor), cy, cx)
    return float(consistency_l1(student, teacher, factor))


def test_consistency_loss_is_zero_for_an_exactly_consistent_renderer():
    """Box-averaged renders of an analytic scene nest exactly for integer zoom-out factors."""
    loss = losses(box_render, torch.tensor([2.0, 4.0, 8.0, 2.0], dtype=torch.float64))
    print(f"box renders, integer factors: consistency L1 {loss:.2e}")
    assert loss < 1e-12


def test_consistency_loss_separates_smooth_consistent_from_inconsistent_renders():
    """With the Beta-drawn (non-integer) factors, box-downsampling a box render is exact up to
    the sub-pixel straddling of student pixels: small for a smooth scene, large for point
    samples of fine detail (aliasing: not scale-consistent)."""
    zoom = np.array([1.0, 2.5, 4.0, 6.0])
    u = zoom_out_exponent(zoom, np.random.default_rng(0))
    factor = torch.from_numpy(np.exp2(u * zoom))
    smooth, aliased = losses(box_render, factor), losses(point_render, factor)
    print(f"consistency L1: smooth box renders {smooth:.2e}, aliased point samples {aliased:.2e}")
    assert smooth < 0.01 < 0.2 < aliased


def test_downsampling_preserves_the_mean_and_covers_the_centre():
    s = torch.rand(2, 3, R, R, dtype=torch.float64)
    down, mask = downsample_into_teacher(s, torch.tensor([2.0, 4.0], dtype=torch.float64))
    assert int(mask[0].sum()) == (R // 2) ** 2 and int(mask[1].sum()) == (R // 4) ** 2
    area = torch.tensor([4.0, 16.0], dtype=torch.float64)[:, None]  # student pixels per teacher
    torch.testing.assert_close(down.sum([2, 3]) * area, s.sum([2, 3]))
    # an integer factor is plain block averaging
    blocks = s[0].reshape(3, R // 2, 2, R // 2, 2).mean((2, 4))
    torch.testing.assert_close(down[0, :, R // 4: R // 4 + R // 2, R // 4: R // 4 + R // 2],
                               blocks)


@pytest.mark.parametrize("zoom", [0.5, 3.0, 7.0])
def test_zoom_out_exponent_follows_the_beta_law(zoom):
    n = max(zoom, 1.0)
    alpha = n**0.25
    beta = n * (alpha - 1) - alpha + 2
    u = zoom_out_exponent(np.full(4000, zoom), np.random.default_rng(1))
    assert stats.kstest(u, stats.beta(alpha, beta).cdf).pvalue > 1e-3


def test_the_teacher_is_the_concentric_view_f_times_larger():
    from napari_scalespace.geometry import zoomed_out

    zoom, u = np.array([0.0, 2.5, 6.0]), np.array([0.3, 0.5, 1.0])
    teacher, factor = zoomed_out(zoom, u)
    np.testing.assert_allclose(teacher, [0.0, 1.25, 0.0])
    np.testing.assert_allclose(np.exp2(-teacher), np.exp2(-zoom) * factor)


class Learner(torch.nn.Module):
    """A renderer with one learnable brightness: ``gain * box_render`` (consistent for any
    gain), counting the calls that build a graph."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
        self.graphs = 0

    def forward(self, z, zoom, cy, cx):
        self.graphs += torch.is_grad_enabled()
        return self.gain * box_render(zoom, cy, cx)


def test_the_consistency_loss_draws_renders_detaches_and_compares_in_one_place():
    from napari_scalespace.train.consistency import consistency_loss

    G = Learner()
    zoom = torch.tensor([1.0, 2.5, 4.0, 6.0])
    g = torch.Generator().manual_seed(0)
    cy, cx = torch.rand(4, generator=g), torch.rand(4, generator=g)
    student = G(None, zoom, cy, cx)
    rng = np.random.default_rng(0)
    learns = []
    for _ in range(20):
        G.graphs = 0
        before = rng.bit_generator.state
        loss = consistency_loss(G, None, zoom, cy, cx, student, rng)
        assert loss.item() < 0.01  # a consistent renderer, the Beta-drawn factors
        # the teacher builds a graph exactly when it is the side that learns
        replay = np.random.default_rng()
        replay.bit_generator.state = before
        zoom_out_exponent(zoom.numpy(), replay)
        teacher_learns = replay.random() < 0.5
        assert G.graphs == int(teacher_learns)
        assert loss.requires_grad  # through the teacher, or through the student
        learns.append(teacher_learns)
    assert 0 < sum(learns) < 20  # both directions occur
