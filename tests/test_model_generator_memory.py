"""A generator with a spatial memory: the memory shapes the render where it is read, tiles stay
seamless, and a generator without one is the published network."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from helpers import psnr
from napari_scalespace.model.config import PRESETS
from napari_scalespace.model.generator import Generator


def memory_generator(canvases=(0, 3)) -> Generator:
    cfg = dataclasses.replace(PRESETS["tiny"].generator, memory_channels=4, memory_levels=3,
                              memory_cells=4, memory_canvases=canvases,
                              memory_extent=(1.0, 1.25))
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    with torch.no_grad():
        for grid in G.memory.grids:
            grid.normal_()
    return G


def render(G, zoom, cy, cx, extra=0):
    z = torch.zeros(1, G.cfg.z_dim)
    with torch.inference_mode():
        return G(z, torch.tensor([zoom]), torch.tensor([cy]), torch.tensor([cx]),
                 extra=extra)[0].double()


def test_memory_channels_enter_the_listed_canvases_only():
    G = memory_generator()
    plain = Generator(PRESETS["tiny"].generator)
    assert G.appended[0] == plain.appended[0] + 4 and G.appended[3] == plain.appended[3] + 4
    assert [a - b for a, b in zip(G.appended, plain.appended, strict=True)] == [
        4 if i in (0, 3) else 0 for i in range(len(G.appended))]
    assert G.input_weight.shape[1] == G.appended[0]
    assert G.layers[3].in_channels == plain.layers[3].in_channels + 4
    assert plain.memory is None
    assert not any("memory" in k for k in plain.state_dict())


def test_the_render_depends_on_the_memory_where_the_view_reads_it():
    G = memory_generator()
    a = render(G, 1.0, 0.25, 0.25)
    with torch.no_grad():
        G.memory.grids[2][:, :6, :6] += 3.0  # cells under the view's top-left quarter
    b = render(G, 1.0, 0.25, 0.25)
    c = render(G, 1.0, 0.75, 1.0)  # far from the change
    with torch.no_grad():
        G.memory.grids[2][:, :6, :6] -= 3.0
    assert (a - b).abs().max() > 1e-3
    assert torch.allclose(c, render(G, 1.0, 0.75, 1.0))


@pytest.mark.parametrize("canvases", [(0,), (0, 3, 5)])
def test_overlapping_tiles_agree_with_a_memory(canvases):
    G = memory_generator(canvases)
    R, zoom, c, shift = G.cfg.resolution, 2.0, 0.4, 8
    side = 2**-zoom
    a = render(G, zoom, c, c, G.cfg.tile_margin)
    b = render(G, zoom, c + shift * side / R, c + shift * side / R, G.cfg.tile_margin)
    value = psnr(a[:, shift:, shift:], b[:, :-shift, :-shift], float(a.max() - a.min()))
    assert value >= 30


def test_gradients_reach_the_memory_in_training():
    G = memory_generator().train()
    z = torch.zeros(2, G.cfg.z_dim)
    out = G(z, torch.tensor([0.5, 2.0]), torch.tensor([0.3, 0.6]), torch.tensor([0.4, 0.9]))
    out.square().mean().backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in G.memory.grids)


def test_memory_fields_are_validated():
    base = PRESETS["tiny"].generator
    with pytest.raises(ValueError, match="memory_canvases"):
        dataclasses.replace(base, memory_channels=4, memory_canvases=(99,))
    with pytest.raises(ValueError, match="memory_extent"):
        dataclasses.replace(base, memory_channels=4, memory_extent=(1.0,))
    with pytest.raises(ValueError, match="at most"):
        dataclasses.replace(base, memory_channels=64, memory_cells=1024, memory_levels=8)


@pytest.mark.parametrize("canvases", [(0, 3), (0, 2)])
def test_the_memory_output_adds_the_memory_read_over_the_output_pixels(canvases):
    # (0, 3): canvas 3 has the output's rate, its read's centre is reused; (0, 2): read anew
    G = memory_generator(canvases)
    base = dataclasses.replace(G.cfg, memory_output=True)
    H = Generator(base).eval()
    H.load_state_dict(G.state_dict())  # the same weights: the option adds no parameter
    zoom, cy, cx = torch.tensor([1.5]), torch.tensor([0.4]), torch.tensor([0.7])
    R, C = G.cfg.resolution, G.cfg.channels
    with torch.inference_mode():
        read = H.memory(R, 0, zoom, cy, cx).double()[0, :C]
    assert torch.allclose(render(H, 1.5, 0.4, 0.7) - render(G, 1.5, 0.4, 0.7), read,
                          atol=1e-5)
    # tiles (canvases widened): the same base under the central pixels
    assert torch.allclose(render(H, 1.5, 0.4, 0.7, extra=8) - render(G, 1.5, 0.4, 0.7, extra=8),
                          read, atol=1e-5)
    # what the output adds is band-limited: the view read through a 2x finer canvas, then
    # averaged over 2 x 2 blocks, is the same read
    with torch.inference_mode():
        fine = H.memory(2 * R, 0, zoom, cy, cx).double()[0, :C]
    assert torch.allclose(torch.nn.functional.avg_pool2d(fine[None], 2)[0], read, atol=1e-6)


def test_overlapping_tiles_agree_with_the_memory_output():
    G = memory_generator()
    H = Generator(dataclasses.replace(G.cfg, memory_output=True)).eval()
    H.load_state_dict(G.state_dict())
    R, zoom, c, shift = H.cfg.resolution, 2.0, 0.4, 8
    side = 2**-zoom
    a = render(H, zoom, c, c, H.cfg.tile_margin)
    b = render(H, zoom, c + shift * side / R, c + shift * side / R, H.cfg.tile_margin)
    assert psnr(a[:, shift:, shift:], b[:, :-shift, :-shift], float(a.max() - a.min())) >= 30


def test_the_memory_output_needs_a_channel_per_image_channel():
    with pytest.raises(ValueError, match="memory_output"):
        dataclasses.replace(PRESETS["tiny"].generator, memory_channels=2, memory_output=True)
    # output levels need a memory that adds to the output; without one they are ignored
    plain = dataclasses.replace(PRESETS["tiny"].generator, memory_channels=4,
                                memory_levels=2, memory_cells=4, memory_output_levels=1)
    assert [g.shape[0] for g in Generator(plain).memory.grids] == [4, 4]
    G = Generator(dataclasses.replace(PRESETS["tiny"].generator, memory_channels=4,
                                      memory_levels=2, memory_cells=4, memory_output=True,
                                      memory_output_levels=1))
    assert [tuple(g.shape) for g in G.memory.grids] == [(4, 4, 4), (4, 8, 8), (3, 16, 16)]


def test_the_memory_output_without_a_memory_is_the_published_generator():
    cfg = dataclasses.replace(PRESETS["small"].generator, memory_channels=0)
    assert cfg.memory_output  # small's default, with its memory turned off
    G = Generator(cfg)
    assert G.memory is None and not any("memory" in k for k in G.state_dict())
