"""The generator renders views of one scene: shifted and overlapping views agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import psnr
from napari_scalespace.model.config import PRESETS
from napari_scalespace.model.fourier import bin_amplitude
from napari_scalespace.model.generator import Generator


@pytest.fixture(scope="module")
def tiny_generator():
    torch.manual_seed(0)
    return Generator(PRESETS["tiny"].generator).eval()


def render(G, zoom, cy, cx, extra=0):
    z = torch.randn(1, G.cfg.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        views = (torch.tensor([v]) for v in (zoom, cy, cx))
        return G(z, *views, extra=extra)[0].double()


def fractional_shift(img: torch.Tensor, dx: float) -> torch.Tensor:
    """Band-limited shift along x by dx pixels (content moves left for dx > 0)."""
    n = img.shape[-1]
    padded = torch.cat([img, img.flip(-1)], -1)  # symmetric extension: no wrap-around jump
    freq = torch.fft.fftfreq(2 * n, dtype=torch.float64)
    shifted = torch.fft.ifft(torch.fft.fft(padded, dim=-1) * torch.exp(2j * math.pi * freq * dx))
    return shifted.real[..., :n]


def test_subpixel_shifted_view_matches_the_shifted_render(tiny_generator):
    G, R = tiny_generator, tiny_generator.cfg.resolution
    zoom, c = 1.3, 0.5
    side = 2**-zoom
    a = render(G, zoom, c, c)
    b = render(G, zoom, c, c + 0.37 * side / R)  # view moved right by 0.37 px
    want = fractional_shift(a, 0.37)
    m = 6
    inner = (slice(None), slice(m, R - m), slice(m, R - m))
    value = psnr(b[inner], want[inner], float(a.max() - a.min()))
    print(f"sub-pixel translation PSNR {value:.1f} dB")
    assert value >= 30


def test_overlapping_views_agree_on_their_overlap(tiny_generator):
    """With canvases widened by ``tile_margin`` (how tiles are rendered) views agree on their
    overlap up to float round-off; the published canvases (no widening) do not quite."""
    G, R = tiny_generator, tiny_generator.cfg.resolution
    zoom, c = 2.0, 0.4
    side = 2**-zoom
    shift = 8
    values = {}
    for extra in (0, G.cfg.tile_margin):
        a = render(G, zoom, c, c, extra)
        b = render(G, zoom, c + shift * side / R, c + shift * side / R, extra)
        values[extra] = psnr(a[:, shift:, shift:], b[:, :-shift, :-shift],
                             float(a.max() - a.min()))
    print("overlap PSNR by canvas widening (px):", {k: round(v, 1) for k, v in values.items()})
    assert values[G.cfg.tile_margin] >= 30
    assert values[G.cfg.tile_margin] > values[0]


def test_widened_canvases_do_not_change_the_interior(tiny_generator):
    G = tiny_generator
    a, b = render(G, 1.7, 0.6, 0.45), render(G, 1.7, 0.6, 0.45, extra=G.cfg.tile_margin)
    inner = (slice(None), slice(10, -10), slice(10, -10))
    assert psnr(a[inner], b[inner], float(a.max() - a.min())) >= 60


def test_bins_fade_in_with_zoom():
    zoom = torch.tensor([0.0, 1.0, 2.0, 2.5, 3.0, 5.0])
    np.testing.assert_allclose(bin_amplitude(zoom, 0), 1)
    np.testing.assert_allclose(bin_amplitude(zoom, 1), [0, 0, 0, 0.5, 1, 1])


def test_batch_render_equals_single_renders(tiny_generator):
    G = tiny_generator
    z = torch.randn(3, G.cfg.z_dim, generator=torch.Generator().manual_seed(1))
    zoom, cy, cx = torch.tensor([0.0, 1.5, 3.0]), torch.tensor([0.5, 0.3, 0.9]), torch.rand(3)
    with torch.inference_mode():
        batch = G(z, zoom, cy, cx)
        singles = torch.cat([G(z[i:i + 1], zoom[i:i + 1], cy[i:i + 1], cx[i:i + 1])
                             for i in range(3)])
    torch.testing.assert_close(batch, singles, rtol=1e-4, atol=1e-5)


def test_fast_and_ref_ops_render_the_same_view(tiny_generator):
    G = tiny_generator
    a = render(G, 1.0, 0.5, 0.5)
    G.set_impl("ref")
    try:
        b = render(G, 1.0, 0.5, 0.5)
    finally:
        G.set_impl("auto")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_the_published_grouped_convolution_renders_the_same_batch(tiny_generator):
    """The benchmarks' reference (``ref`` ops + one grouped modulated convolution per layer)
    computes what the generator computes, batch and single view alike."""
    G = tiny_generator
    z = torch.randn(3, G.cfg.z_dim, generator=torch.Generator().manual_seed(2))
    zoom, cy, cx = torch.tensor([0.0, 1.0, 2.5]), torch.tensor([0.5, 0.2, 0.7]), torch.rand(3)
    with torch.inference_mode():
        fast = G(z, zoom, cy, cx)
        G.set_impl("ref", conv_form="grouped")
        try:
            published = G(z, zoom, cy, cx)
            single = G(z[:1], zoom[:1], cy[:1], cx[:1])
        finally:
            G.set_impl("auto", conv_form="auto")
    torch.testing.assert_close(published, fast, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(single, fast[:1], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="form must be one of"):
        from napari_scalespace.model.synthesis import modulated_conv2d

        modulated_conv2d(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2, 1, 1), torch.ones(1, 2),
                         form="other")


def test_the_fast_generator_traces_into_one_graph(tiny_generator):
    """``torch.compile`` sees the whole forward as one graph: under tracing the fast ops take
    their branch-free form (no data-dependent clamp skip, no ``out=`` writes, no ``nonzero``)
    and the traced function computes what eager does. (Compiling with inductor takes about a
    minute on two cores and gained 0.9-1.2x, docs/benchmarks.md, so it is not run here.)"""
    G = tiny_generator
    G.set_impl("fast")
    z = torch.randn(2, G.cfg.z_dim, generator=torch.Generator().manual_seed(3))
    args = (torch.tensor([1.0, 2.5]), torch.tensor([0.3, 0.4]), torch.tensor([0.5, 0.6]))
    try:
        with torch.inference_mode():
            explained = torch._dynamo.explain(G)(z, *args, extra=8)
            traced = torch.compile(G, backend="eager")(z, *args, extra=8)
            eager = G(z, *args, extra=8)
    finally:
        G.set_impl("auto")
        torch._dynamo.reset()
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    torch.testing.assert_close(traced, eager, rtol=1e-4, atol=1e-5)


def test_rendering_reuses_the_prepared_modulation_until_the_weights_change(tiny_generator):
    """Without autograd a layer keeps its modulation (styles, demodulation, folded weights)
    for the last ``w`` and reuses it for the next tiles of the same scene; an in-place change
    of the weights (an EMA update) or another ``w`` prepares it again."""
    G = tiny_generator
    layer = G.layers[1]
    a = render(G, 1.0, 0.4, 0.5)
    prepared = layer._prepared[2]
    torch.testing.assert_close(render(G, 1.0, 0.4, 0.5), a, rtol=0, atol=0)
    assert layer._prepared[2] is prepared
    saved = layer.weight.detach().clone()
    with torch.no_grad():  # (a scale alone would be demodulated away)
        layer.weight.add_(torch.randn(saved.shape, generator=torch.Generator().manual_seed(1)))
    try:
        changed = render(G, 1.0, 0.4, 0.5)
        assert layer._prepared[2] is not prepared
        z = torch.randn(1, G.cfg.z_dim, generator=torch.Generator().manual_seed(5))  # render's
        with torch.enable_grad():  # autograd on: nothing is reused
            fresh = G(z, 1.0, 0.4, 0.5)[0].detach().double()
    finally:
        with torch.no_grad():
            layer.weight.copy_(saved)
    torch.testing.assert_close(changed, fresh, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(changed, a, atol=1e-4)
    other = torch.randn(1, G.cfg.z_dim, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        G(other, 1.0, 0.4, 0.5)
    assert layer._prepared[2] is not prepared
