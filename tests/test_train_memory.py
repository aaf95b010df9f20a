"""Training with a spatial memory: it starts from the image's pyramid, covers the image's
extent, is refused without known positions, and a run with it checkpoints and resumes
bit-identically, and a run written before the memory existed still loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.data import open_source
from napari_scalespace.data.patches import cut_patches
from napari_scalespace.geometry import View
from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator
from napari_scalespace.train.trainer import Trainer

MEMORY = {"memory_channels": 4, "memory_levels": 3, "memory_cells": 8,
          "memory_canvases": (0, 3)}


def preset(**kw):
    return get_preset("tiny", **{"octaves": 2, "batch": 4, "checkpoint_every": 2,
                                 "positions": "known", **MEMORY, **kw})


def wide_texture() -> np.ndarray:
    return np.concatenate([texture(128), texture(128)[:, :64]], 1)  # extent 1 x 1.5


def test_the_memory_covers_the_image_and_starts_from_its_pyramid(tmp_path):
    source = open_source(wide_texture())
    trainer = Trainer(tmp_path / "run", [source], preset(), seed=0)
    memory = trainer.G.memory
    assert trainer.preset.generator.memory_extent == (1.0, 1.5)
    recorded, _ = checkpoint.read_config(tmp_path / "run")
    assert recorded.generator.memory_extent == (1.0, 1.5)
    assert [tuple(g.shape) for g in memory.grids] == [(4, 8, 12), (4, 16, 24), (4, 32, 48)]
    # the memory's read over the pixels of a view is close to the image's area patch there
    views = [View(1.0, 0.5, 0.75), View(2.0, 0.3, 1.1)]
    want = cut_patches(source, views, 32)
    with torch.no_grad():
        got = memory(32, 0, torch.tensor([v.zoom for v in views]),
                     torch.tensor([v.cy for v in views]), torch.tensor([v.cx for v in views]))
    assert got[:, 3].abs().max() == 0  # channels past the image's start at zero
    err = (got[:, :3] - want).square().mean().item()
    assert err < 0.1 * want.var().item()
    trainer.close()


def test_unknown_positions_train_without_a_memory_and_say_so(tmp_path):
    source = open_source(texture(128))
    trainer = Trainer(tmp_path / "run", [source, source], preset(positions="unknown"), seed=0)
    assert trainer.G.memory is None
    assert any("no spatial memory" in note for note in trainer.notes)
    recorded, _ = checkpoint.read_config(tmp_path / "run")
    assert recorded.generator.memory_channels == 0
    trainer.close()


def test_automatic_levels_follow_the_data_octaves_and_are_recorded(tmp_path):
    source = open_source(texture(128))
    trainer = Trainer(tmp_path / "run", [source], preset(memory_levels=0), seed=0)
    # 2 data octaves -> 3 levels: 8, 16, 32 cells per scene unit (a cell per 4 pixels of 128)
    assert [g.shape[1] for g in trainer.G.memory.grids] == [8, 16, 32]
    assert checkpoint.read_config(tmp_path / "run")[0].generator.memory_levels == 3
    trainer.close()


def test_the_automatic_finest_grid_is_capped():
    from napari_scalespace.model.config import MEMORY_MAX_CELLS

    cfg = get_preset("small", octaves=8).generator
    assert cfg.memory_levels == 0 and cfg.memory_cells == 16
    assert cfg.memory_grid_levels(4) == 5
    assert 16 * 2 ** (cfg.memory_grid_levels(8) - 1) == MEMORY_MAX_CELLS


def test_a_run_with_memory_resumes_bit_identically(tmp_path):
    source = open_source(texture(128))
    straight = Trainer(tmp_path / "a", [source], preset(), seed=3)
    for _ in straight.run(4):
        pass
    straight.close()
    first = Trainer(tmp_path / "b", [source], preset(), seed=3)
    for _ in first.run(2):
        pass
    first.close()
    resumed = Trainer(tmp_path / "b", [source], resume=True)
    assert resumed.step_count == 2
    for _ in resumed.run(4):
        pass
    resumed.close()
    a = checkpoint.latest_checkpoint(tmp_path / "a")
    b = checkpoint.latest_checkpoint(tmp_path / "b")
    for name in ("generator.safetensors", "generator_ema.safetensors",
                 "discriminator.safetensors"):
        want, got = load_file(a / name), load_file(b / name)
        assert want.keys() == got.keys()
        assert all(torch.equal(want[k], got[k]) for k in want), name
    assert any(k.startswith("memory.") for k in load_file(a / "generator.safetensors"))
    G = Trainer(tmp_path / "b", [source], resume=True).G
    assert G.memory is not None and any(g.abs().sum() > 0 for g in G.memory.grids)


def test_a_run_without_memory_still_loads():
    """A run written before the memory existed (its config has no memory fields)."""
    import json

    run = Path(__file__).parent / "data" / "run_before_memory"
    assert not any(k.startswith("memory") for k in
                   json.loads((run / "config.json").read_text())["generator"])
    preset_, _ = checkpoint.read_config(run)
    assert preset_.generator.memory_channels == 0
    G, _, _ = checkpoint.load_generator(run, lambda p: Generator(p.generator))
    assert G.memory is None
    assert G.render([View(1.0, 0.5, 0.5)]).std() > 0


@pytest.mark.parametrize("output_levels", [0, 1])
def test_each_memory_level_reads_back_its_image_over_its_own_cells(tmp_path, output_levels):
    """Also a level past the finest that holds the image's channels only
    (``memory_output_levels``): it starts as the image's next Laplacian band, and the
    low-pass reconstruction averages over its (finer) cells."""
    from napari_scalespace.data.patches import area_grid
    from napari_scalespace.geometry import grid_position
    from napari_scalespace.model.memory import footprint_mean

    source = open_source(texture(128))
    trainer = Trainer(tmp_path / "run", [source],
                      preset(memory_output=True, memory_output_levels=output_levels,
                             reconstruction_lowpass=True), seed=0)
    memory = trainer.G.memory
    assert memory.levels == 3 + output_levels
    assert [g.shape[0] for g in memory.grids] == [4] * 3 + [3] * output_levels
    # the finest cell spans 128 / (8 * 2**(levels - 1)) image pixels: 4, or 2 with a fine level
    pool = trainer._rec_pool(torch.tensor([2]))
    assert pool.tolist() == [4 >> output_levels]
    for k, grid in enumerate(memory.grids):
        g = memory.cells_per_unit(k)
        want = area_grid(source, tuple(grid.shape[1:]), g).double()
        ey, ex = ((torch.arange(n + 1, dtype=torch.float64) / g)[None] for n in grid.shape[1:])
        got = sum(footprint_mean(memory.grids[j][:3].detach().double(),
                                 grid_position(ey, memory.cells_per_unit(j)),
                                 grid_position(ex, memory.cells_per_unit(j)))[0]
                  for j in range(k + 1))
        # solved, not copied: the blur of the bilinear read is undone (float32 grids)
        assert (got - want).abs().max() < 1e-3 * (want.max() - want.min())
    trainer.close()
