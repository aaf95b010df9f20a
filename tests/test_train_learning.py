"""Training learns: the generated patches approach the real ones (sliced Wasserstein)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_scalespace.data import open_source, sample_path
from napari_scalespace.data.dataset import PatchDataset
from napari_scalespace.eval.swd import swd
from napari_scalespace.model.config import get_preset
from napari_scalespace.train.trainer import Trainer


def coarsest_octave_swd(trainer: Trainer, evalset: PatchDataset, n: int = 128) -> float:
    """Mean SWD over Laplacian levels between real patches and G_ema renders of the same
    views, at octave 0 (what a few minutes of CPU training can learn)."""
    batch = evalset.draw(n, 0.0)
    sel = batch.octave == 0
    z = trainer._latents(int(sel.sum()))
    with torch.no_grad():
        fake = trainer.G_ema(z, batch.zoom[sel], batch.cy[sel], batch.cx[sel])
    return float(np.mean(swd(batch.images[sel], fake)))


@pytest.mark.slow
def test_training_tiny_on_a_real_crop_reduces_the_coarse_swd(tmp_path):
    torch.manual_seed(0)
    source = open_source(sample_path("he"))
    trainer = Trainer(tmp_path / "run", [source], get_preset("tiny"), seed=0)
    g = trainer.preset.generator
    evalset = PatchDataset([source], g.octaves, g.resolution, seed=123)
    before = coarsest_octave_swd(trainer, evalset)
    for _ in trainer.run(300):
        pass
    after = coarsest_octave_swd(trainer, evalset)
    print(f"octave-0 SWD: {before:.1f} at initialisation, {after:.1f} after 300 steps "
          f"({100 * (1 - after / before):.0f}% lower)")
    assert after <= 0.7 * before
