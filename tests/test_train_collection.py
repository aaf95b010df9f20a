"""Training on and evaluating a collection: the trainer (one scene, positions
unknown), the CLI (IMAGE:SIZE, --collection from metadata, CSV, resume), the zoomed-overview
baseline and the per-image evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from helpers import texture
from napari_scalespace import checkpoint
from napari_scalespace.cli import main
from napari_scalespace.data import open_source
from napari_scalespace.data.collection import Collection
from napari_scalespace.data.pixel_size import PixelSize
from napari_scalespace.eval.collection import collection_markdown, evaluate_collection_steps
from napari_scalespace.eval.compare import run_image
from napari_scalespace.eval.views import SourceZoomViews, TruthViews
from napari_scalespace.geometry import View
from napari_scalespace.model.config import get_preset
from napari_scalespace.model.generator import Generator
from napari_scalespace.render.renderer import Renderer
from napari_scalespace.train.trainer import Trainer


def collection(overview_px=64, field_px=64):
    """An overview at 4 um/px and two fields at 1 um/px (a quarter of its field of view):
    at 16 px the overview covers zooms 0-2, the fields 2-4."""
    overview = open_source(texture(overview_px), name="overview")
    fields = [open_source(np.roll(texture(field_px), 11 * i, axis=0), name=f"field{i}")
              for i in (1, 2)]
    return Collection([overview, *fields], [PixelSize(4, "um"), PixelSize(1, "um"),
                                            PixelSize(1, "um")])


def test_a_collection_trains_as_one_scene_with_unknown_positions(tmp_path):
    preset = get_preset("tiny", octaves=4, batch=4, checkpoint_every=100, resolution=16)
    tr = Trainer(tmp_path / "run", collection(), preset, seed=0)
    assert tr.single_scene and not tr.known_positions
    assert tr.cfg.positions == "unknown"  # auto resolves to unknown and is recorded
    labels = []
    real_d = tr.D.forward
    tr.D.forward = lambda x, zoom: labels.append(zoom.clone()) or real_d(x, zoom)
    events = list(tr.run(2))
    assert len(events) == 2 and all(np.isfinite(v) for e in events for v in e.losses.values())
    assert labels and all(float(z.min()) >= 0 and float(z.max()) < 4 for z in labels)
    assert checkpoint.read_config(tmp_path / "run")[0].train.positions == "unknown"
    with pytest.raises(ValueError, match="got a collection"):
        Trainer(tmp_path / "run2", collection(),
                get_preset("tiny", octaves=4, positions="known", resolution=16), seed=0)


def test_the_zoomed_overview_is_exact_to_its_native_zoom_then_interpolates():
    y, x = np.mgrid[:32, :48].astype(np.float32)
    ramp = open_source(np.stack([(x + y) / 80.0] * 3, axis=-1), value_range=(0.0, 1.0))
    zoomed, truth = SourceZoomViews(ramp, 8), TruthViews(ramp, 8)
    coarse = [View(1.0, 0.5, 0.7), View(2.0, 0.4, 0.9)]  # native zoom log2(32 / 8) = 2
    np.testing.assert_array_equal(zoomed.render(coarse), truth.render(coarse))
    fine = View(4.0, 0.5, 0.75)  # 2 source pixels across 8 rendered pixels
    out = zoomed.render([fine])[0, 0]
    # bicubic interpolation of a ramp: close to the ramp at every rendered pixel centre and
    # strictly rising (nearest-neighbour would give plateaus: 2 source pixels over 8)
    s = 32
    centres = (np.arange(8) + 0.5) / 8 - 0.5
    yy = s * (0.5 + 2.0**-4 * centres)[:, None]
    xx = s * (0.75 + 2.0**-4 * centres)[None, :]
    ramp_values = (yy - 0.5 + xx - 0.5) / 80.0
    np.testing.assert_allclose(out, ramp_values, atol=2e-3)
    assert np.all(np.diff(out, axis=1) > 0) and np.all(np.diff(out, axis=0) > 0)
    # past the native zoom it has no detail of its own: far less than the area cut's
    noise = open_source(np.random.default_rng(0).random((32, 32)).astype(np.float32),
                        value_range=(0.0, 1.0))
    from napari_scalespace.eval.metrics import gradient_energy

    views = [View(4.0, 0.5, 0.5)]
    assert gradient_energy(SourceZoomViews(noise, 8).render(views)) < 0.3 * gradient_energy(
        TruthViews(noise, 8).render([View(2.0, 0.5, 0.5)]))


def test_evaluation_compares_each_image_where_it_has_data(tmp_path):
    preset = get_preset("tiny", octaves=4, batch=4, checkpoint_every=100, resolution=16)
    c = collection()
    Trainer(tmp_path / "run", c, preset, seed=0).save()
    renderer = Renderer(tmp_path / "run", device="cpu", cache_mb=0)
    events = list(evaluate_collection_steps(renderer, c, views=6))
    assert [e[1] for e in events[:-1]] == [1, 2, 3, 4, 5]
    report = events[-1][1]
    by_zoom = {o.octave: o for o in report.octaves}
    assert report.overview == "overview"
    assert by_zoom[0].images == ["overview"] and by_zoom[1].images == ["overview"]
    assert by_zoom[2].images == ["overview", "field1", "field2"]
    assert by_zoom[3].images == by_zoom[4].images == ["field1", "field2"]
    for o in report.octaves:
        assert set(o.per_image) == set(o.images)
    # where the overview has data the baseline is the data itself; an untrained model is not
    assert by_zoom[0].swd_overview < 0.5 * by_zoom[0].swd
    assert by_zoom[0].per_image["overview"]["swd_overview"] == by_zoom[0].swd_overview
    # past its native zoom the zoomed overview loses its own detail (~4x per octave)
    assert by_zoom[4].gradient_energy_overview < 0.5 * by_zoom[2].gradient_energy_overview
    table = collection_markdown(report)
    assert "| 4 | 2 |" in table and "field1" in table
    data = json.loads(report.save(tmp_path / "r.json").read_text())
    assert data["kind"] == "collection" and len(data["octaves"]) == 5


def _write_images(tmp_path):
    Image.fromarray(texture(64)).save(tmp_path / "overview.png")
    for i in (1, 2):
        tifffile.imwrite(tmp_path / f"field{i}.tif", np.roll(texture(64), 9 * i, axis=1),
                         photometric="rgb", resolution=(1e4, 1e4), resolutionunit="CENTIMETER")


def test_cli_trains_resumes_and_evaluates_a_collection(tmp_path, capsys):
    _write_images(tmp_path)
    run = tmp_path / "run"
    common = ["--preset", "tiny", "--octaves", "4", "--batch", "4", "--set", "resolution=16",
              "--threads", "1"]
    # the PNG has no pixel size: named in the error
    assert main(["train", "--collection", str(tmp_path / "overview.png"),
                 str(tmp_path / "field1.tif"), "--out", str(run), "--steps", "1", *common]) == 2
    assert "no pixel size for overview.png" in capsys.readouterr().err
    # the fields' sizes from their resolution tags (1e4 px/cm = 1 um), the overview's given
    assert main(["train", f"{tmp_path / 'overview.png'}:4um", str(tmp_path / "field1.tif"),
                 str(tmp_path / "field2.tif"), "--collection", "--out", str(run), "--steps",
                 "2", *common]) == 0
    assert "overview.png (4 um/px, zooms 0.00-2.00)" in capsys.readouterr().err
    preset, info = checkpoint.read_config(run)
    assert preset.train.positions == "unknown" and info["scenes"] == 1
    assert preset.generator.num_bins == 2  # zooms 0-4: bins follow the octaves
    assert run_image(run) is None  # no one image is a collection's truth
    assert [(e["name"], e["value"], e["unit"]) for e in info["collection"]] == [
        ("overview.png", 4.0, "um"), ("field1.tif", 1e-4, "cm"), ("field2.tif", 1e-4, "cm")]
    assert main(["train", "--resume", "--out", str(run), "--steps", "3"]) == 0
    assert checkpoint.load_generator(run, lambda p: Generator(p.generator))[2]["step"] == 3
    capsys.readouterr()
    assert main(["eval", str(run), "--views", "4", "--json", str(tmp_path / "e.json"),
                 "--plots", str(tmp_path / "plots"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "SWD x1e3 learned / overview" in out and "field2.tif" in out
    report = json.loads((tmp_path / "e.json").read_text())
    assert [len(o["images"]) for o in report["octaves"]] == [1, 1, 3, 2, 2]
    assert (tmp_path / "plots" / "contact_sheet.png").stat().st_size > 10_000
    # a CSV lists the same collection; a gap between the images is refused, naming octaves
    (tmp_path / "c.csv").write_text("image,pixel_size,unit\noverview.png,16,um\n"
                                    "field1.tif,,\n")
    assert main(["train", str(tmp_path / "c.csv"), "--out", str(tmp_path / "run3"),
                 "--steps", "1", *common]) == 2
    assert "zooms 2.00 to 4.00 (octaves 2, 3)" in capsys.readouterr().err
