"""Known positions (issue 10, first part): the reconstruction loss and its wiring."""

import copy

import numpy as np
import pytest
import torch

from napari_scalespace import checkpoint
from napari_scalespace.cli import main
from napari_scalespace.data import open_source
from napari_scalespace.model.config import get_preset
from napari_scalespace.train import trainer as trainer_module
from napari_scalespace.train.losses import reconstruction, ssim
from napari_scalespace.train.trainer import Trainer
from test_train_trainer import texture


def test_ssim_and_reconstruction_known_answers():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 32, 32, generator=g)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    noisy = [ssim(a, (a + s * torch.randn(a.shape, generator=g)).clamp(0, 1)).item()
             for s in (0.05, 0.2)]
    assert 1 > noisy[0] > noisy[1]
    x = a * 2 - 1
    assert reconstruction(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.1).requires_grad_()
    loss = reconstruction(y, x)
    assert loss.item() > 0.1  # the L1 part alone is 0.1
    loss.backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def small_trainer(tmp_path, positions, images=1, **kw):
    sources = [open_source(np.roll(texture(), 7 * i, axis=1)) for i in range(images)]
    preset = get_preset("tiny", octaves=1, batch=4, positions=positions, checkpoint_every=100,
                        **kw)
    return Trainer(tmp_path / "run", sources, preset, seed=0)


def test_the_render_of_each_patchs_own_view_is_compared_with_the_patch(tmp_path, monkeypatch):
    tr = small_trainer(tmp_path, "known")
    drawn, compared = [], []
    real_draw = tr.dataset.draw
    monkeypatch.setattr(tr.dataset, "draw", lambda *a: drawn.append(real_draw(*a)) or drawn[-1])
    monkeypatch.setattr(trainer_module, "reconstruction",
                        lambda fake, real: compared.append((fake.detach(), real)) or
                        reconstruction(fake, real))
    G_before = copy.deepcopy(tr.G)
    event = tr.step()
    assert "reconstruction" in event.losses and len(compared) == 1
    batch, (fake, real) = drawn[0], compared[0]
    torch.testing.assert_close(real, batch.images)
    with torch.no_grad():  # the generator at those very views, with the scene's latent
        want = G_before(tr._latents(4), batch.zoom, batch.cy, batch.cx, update_emas=True)
    torch.testing.assert_close(fake, want)
    assert len(set(batch.zoom.tolist())) > 1 or len(set(batch.cy.tolist())) > 1


def test_unknown_positions_train_without_reconstruction(tmp_path, monkeypatch):
    tr = small_trainer(tmp_path, "unknown")
    monkeypatch.setattr(trainer_module, "reconstruction",
                        lambda *a: pytest.fail("reconstruction with unknown positions"))
    assert "reconstruction" not in tr.step().losses


def test_known_positions_need_one_scene(tmp_path):
    with pytest.raises(ValueError, match="one scene"):
        small_trainer(tmp_path, "known", images=2)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="positions must be one of"):
        get_preset("tiny", positions="maybe")


def test_known_positions_resume_from_the_cli(tmp_path):
    img = tmp_path / "t.png"
    from PIL import Image

    Image.fromarray(texture()).save(img)
    run = tmp_path / "run"
    common = ["--preset", "tiny", "--octaves", "1", "--batch", "4", "--threads", "1"]
    assert main(["train", str(img), "--out", str(run), "--steps", "2", "--positions", "known",
                 *common]) == 0
    preset, _ = checkpoint.read_config(run)
    assert preset.train.positions == "known"
    resumed = Trainer(run, [open_source(str(img))], resume=True)
    assert resumed.known_positions and resumed.step_count == 2
    assert np.isfinite(resumed.step().losses["reconstruction"])
