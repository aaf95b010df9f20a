"""Known positions and octaves beyond the data: the reconstruction loss and its
wiring, per-octave weights, the auto mode, extra-octave training views, resume in both
modes."""

import copy
import json

import numpy as np
import pytest
import torch

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.cli import main
from napari_scalespace.data import OctaveSchedule, PatchDataset, cut_patch, open_source
from napari_scalespace.geometry import View
from napari_scalespace.model.config import get_preset
from napari_scalespace.train import trainer as trainer_module
from napari_scalespace.train.losses import reconstruction, ssim
from napari_scalespace.train.trainer import Trainer


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
    kw = {"octaves": 1, "batch": 4, "checkpoint_every": 100, **kw}
    preset = get_preset("tiny", positions=positions, **kw)
    return Trainer(tmp_path / "run", sources, preset, seed=0)


def test_the_render_of_each_patchs_own_view_is_compared_with_the_patch(tmp_path, monkeypatch):
    tr = small_trainer(tmp_path, "known")
    drawn, compared = [], []
    real_draw = tr.dataset.draw
    monkeypatch.setattr(tr.dataset, "draw", lambda *a: drawn.append(real_draw(*a)) or drawn[-1])
    monkeypatch.setattr(trainer_module, "reconstruction",
                        lambda fake, real, w, pool=None: compared.append((fake.detach(), real))
                        or reconstruction(fake, real, w, pool))
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


def test_reconstruction_weights_samples_and_skips_zero_weights():
    g = torch.Generator().manual_seed(1)
    real = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    fake = real.clone()
    fake[1] += 0.5  # only sample 1 differs
    each = [reconstruction(fake[i:i + 1], real[i:i + 1]).item() for i in range(3)]
    assert each[0] == pytest.approx(0, abs=1e-6) and each[1] > 0.5
    w = torch.tensor([1.0, 2.0, 0.0])  # two samples take part
    assert reconstruction(fake, real, w).item() == pytest.approx(each[1], rel=1e-5)
    w = torch.tensor([0.0, 0.0, 1.0])
    assert reconstruction(fake, real, w).item() == pytest.approx(0, abs=1e-6)


def test_per_octave_reconstruction_factors():
    t = get_preset("tiny", reconstruction_octaves=[2, 1, 0.25]).train
    assert [t.reconstruction_factor(k) for k in range(5)] == [2, 1, 0.25, 0.25, 0.25]
    assert get_preset("tiny").train.reconstruction_factor(3) == 1.0
    for bad in ([-1], ["a"], 3):
        with pytest.raises(ValueError, match="reconstruction_octaves"):
            get_preset("tiny", reconstruction_octaves=bad)


def test_auto_positions_resolve_to_known_for_one_image_and_are_recorded(tmp_path):
    one = Trainer(tmp_path / "one", [open_source(texture())],
                  get_preset("tiny", octaves=1, batch=4), seed=0)
    two = Trainer(tmp_path / "two", [open_source(texture()), open_source(texture()[::-1])],
                  get_preset("tiny", octaves=1, batch=4), seed=0)
    assert get_preset("tiny").train.positions == "auto"
    assert one.known_positions and not two.known_positions
    assert checkpoint.read_config(tmp_path / "one")[0].train.positions == "known"
    assert checkpoint.read_config(tmp_path / "two")[0].train.positions == "unknown"
    assert "reconstruction" in one.step().losses


def test_a_run_from_before_positions_resumes_without_them(tmp_path):
    tr = small_trainer(tmp_path, "unknown")
    tr.save()
    tr.close()  # a trainer holds its run folder until its run ends or it is closed
    config = tmp_path / "run" / checkpoint.CONFIG
    data = json.loads(config.read_text())
    del data["train"]["positions"]  # as written before the field existed
    config.write_text(json.dumps(data))
    resumed = Trainer(tmp_path / "run", [open_source(texture())], resume=True)
    assert not resumed.known_positions


@pytest.mark.parametrize("positions", ["known", "unknown"])
def test_resume_from_the_cli_keeps_the_mode(tmp_path, positions):
    img = tmp_path / "t.png"
    from PIL import Image

    Image.fromarray(texture()).save(img)
    run = tmp_path / "run"
    common = ["--preset", "tiny", "--octaves", "1", "--batch", "4", "--threads", "1",
              "--extra-octaves", "1"]
    assert main(["train", str(img), "--out", str(run), "--steps", "2", "--positions",
                 positions, *common]) == 0
    preset, _ = checkpoint.read_config(run)
    assert preset.train.positions == positions
    assert (preset.generator.octaves, preset.train.extra_octaves, preset.data_octaves) == (2, 1, 1)
    assert preset.generator.num_bins == 1  # zooms 0-2: one bin suffices (bins_for_octaves)
    before = {k: v.clone() for k, v in Trainer(run, [open_source(str(img))],
                                               resume=True).G.state_dict().items()}
    assert main(["train", "--out", str(run), "--steps", "4", "--resume", "--threads", "1"]) == 0
    resumed = Trainer(run, [open_source(str(img))], resume=True)
    assert resumed.step_count == 4 and resumed.known_positions == (positions == "known")
    assert resumed.dataset.data_octaves == 1 and resumed.dataset.octaves == 2
    after = resumed.G.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained on
    seen = [resumed.step().losses for _ in range(3)]
    assert all(np.isfinite(losses["G"]) for losses in seen)
    # (a batch of only extra-octave views has nothing to reconstruct: look over three)
    assert any("reconstruction" in losses for losses in seen) == (positions == "known")


# -- octaves beyond the data ---------------------------------------------------------------


def test_feature_bins_follow_the_octaves_past_the_data(tmp_path):
    from napari_scalespace.model.config import bins_for_octaves, with_feature_bins

    assert [bins_for_octaves(n) for n in (1, 2, 3, 4, 5, 6, 8)] == [1, 1, 2, 2, 2, 3, 3]
    assert with_feature_bins("small", {"octaves": 6})["num_bins"] == 3
    assert with_feature_bins("small", {"octaves": 6, "num_bins": 1})["num_bins"] == 1  # asked
    assert with_feature_bins("paper8", {"octaves": 3})["num_bins"] == 3  # never fewer
    img = tmp_path / "t.png"
    from PIL import Image

    Image.fromarray(texture(128)).save(img)
    common = ["--preset", "tiny", "--batch", "4", "--threads", "1", "--steps", "1"]
    assert main(["train", str(img), "--out", str(tmp_path / "a"), "--octaves", "2",
                 "--extra-octaves", "3", *common]) == 0
    assert checkpoint.read_config(tmp_path / "a")[0].generator.num_bins == 2  # zooms 0-5
    assert main(["train", str(img), "--out", str(tmp_path / "b"), "--octaves", "2",
                 "--extra-octaves", "3", "--set", "num_bins=1", *common]) == 0
    assert checkpoint.read_config(tmp_path / "b")[0].generator.num_bins == 1
    assert main(["train", str(img), "--out", str(tmp_path / "c"), "--octaves", "2",
                 *common]) == 0  # no octaves past the data: the preset's bins
    assert checkpoint.read_config(tmp_path / "c")[0].generator.num_bins == 1


def test_one_function_builds_a_new_runs_preset_for_the_cli_and_the_widget():
    """``run_preset``: octaves with data from the choice, an override, a collection's span or
    the preset, in that order; extra octaves past them with feature bins for the range;
    channels from the images unless overridden."""
    from napari_scalespace.model.config import run_preset

    one = run_preset("small", channels=1)
    assert (one.generator.octaves, one.train.extra_octaves, one.generator.channels,
            one.generator.num_bins) == (4, 0, 1, 1)
    extra = run_preset("small", octaves=2, extra_octaves=3, overrides={"batch": 4})
    assert (extra.generator.octaves, extra.train.extra_octaves, extra.generator.num_bins,
            extra.train.batch) == (5, 3, 2, 4)
    assert run_preset("small", overrides={"octaves": 3}).generator.octaves == 3
    assert run_preset("small", overrides={"extra_octaves": 1}).generator.octaves == 5
    spanned = run_preset("small", spanned_octaves=6, channels=3)
    assert (spanned.generator.octaves, spanned.generator.num_bins) == (6, 3)
    assert run_preset("small", octaves=5, spanned_octaves=6).generator.octaves == 5
    assert run_preset("tiny", channels=1, overrides={"channels": 3}).generator.channels == 3
    with pytest.raises(ValueError, match="extra octaves"):
        run_preset("small", extra_octaves=-1)


def test_extra_octave_views_pair_a_finer_render_with_the_finest_real_octave():
    src = open_source(texture(128))  # 128 px at 32 px: two octaves of data
    ds = PatchDataset([src], octaves=4, resolution=32, seed=3, extra_octaves=2,
                      schedule=OctaveSchedule(4, warmup_kimg=0, boost_last=1))
    b = ds.draw(400)
    assert ds.data_octaves == 2
    extra = b.octave >= 2
    assert 0 < extra.sum() < 400 and torch.equal(b.has_truth, ~extra)
    # data octaves: the render is the real view
    torch.testing.assert_close(b.render_zoom[~extra], b.zoom[~extra], rtol=0, atol=0)
    # extra octaves: rendered in the drawn octave, real patch at the same fraction of octave 1
    assert torch.all(torch.floor(b.render_zoom).long() == b.octave)
    assert torch.all((b.zoom[extra] >= 1) & (b.zoom[extra] < 2))
    shift = (b.octave[extra] - 1).float()
    assert torch.equal(b.render_zoom[extra] - shift, b.zoom[extra])
    for i in np.flatnonzero(extra.numpy())[:5]:  # each image is the real view (zoom, c)
        want = cut_patch(src, View(float(b.zoom[i]), float(b.cy[i]), float(b.cx[i])), 32)
        np.testing.assert_allclose(b.images[i].numpy(), want.numpy(), atol=1e-5)
    for i in np.flatnonzero(extra.numpy()):  # the rendered view lies in the scene too
        y0, x0, y1, x1 = View(float(b.render_zoom[i]), float(b.cy[i]), float(b.cx[i])).bounds
        assert y0 >= 0 and x0 >= 0 and y1 <= 1 and x1 <= 1


def test_extra_octaves_need_data_for_the_other_octaves():
    src = open_source(texture(128))
    with pytest.raises(ValueError, match="supports at most 2 octaves"):
        PatchDataset([src], octaves=3, resolution=32)
    PatchDataset([src], octaves=5, resolution=32, extra_octaves=3)  # 2 with data: fine
    with pytest.raises(ValueError, match="extra_octaves"):
        PatchDataset([src], octaves=2, resolution=32, extra_octaves=2)
    with pytest.raises(ValueError, match="at least one octave with data"):
        get_preset("tiny", octaves=2, extra_octaves=2)


def test_extra_octave_fakes_are_rendered_finer_and_judged_as_the_finest_data(
        tmp_path, monkeypatch):
    tr = small_trainer(tmp_path, "known", octaves=3, extra_octaves=2,
                       reconstruction_octaves=[3.0], warmup_kimg=0, boost_last=1, batch=8)
    drawn, rendered, judged, weights = [], [], [], []
    real_draw = tr.dataset.draw
    monkeypatch.setattr(tr.dataset, "draw", lambda *a: drawn.append(real_draw(*a)) or drawn[-1])
    g_forward, d_forward = tr.G.forward, tr.D.forward
    monkeypatch.setattr(tr.G, "forward", lambda z, zoom, *a, **k: rendered.append(zoom) or
                        g_forward(z, zoom, *a, **k))
    monkeypatch.setattr(tr.D, "forward", lambda x, zoom: judged.append(zoom) or
                        d_forward(x, zoom))
    monkeypatch.setattr(trainer_module, "reconstruction",
                        lambda f, r, w, pool=None: weights.append(w)
                        or reconstruction(f, r, w, pool))
    for _ in range(6):
        drawn.clear(), rendered.clear(), judged.clear(), weights.clear()
        tr.step()
        b = drawn[0]
        if b.has_truth.all() or not b.has_truth.any():
            continue
        # D step: one render, real and fake judged with the real patches' zoom; G step: one
        # render (plus the consistency teacher), judged with the same labels
        torch.testing.assert_close(rendered[0], b.render_zoom)
        torch.testing.assert_close(rendered[1], b.render_zoom)
        assert all(torch.equal(z, b.zoom) for z in judged)
        assert torch.equal(weights[0], 3.0 * b.has_truth.float())
        return
    pytest.fail("no batch mixed data and extra octaves")
