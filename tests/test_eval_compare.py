"""Evaluation of a run against its image (``eval``) and export-and-compare (``compare``):
progress, the report's metrics per octave, the files, reuse, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from helpers import tiny_run
from napari_scalespace.cli import main
from napari_scalespace.eval.compare import (
    CONTACT,
    LEARNED,
    METRICS,
    PLOT,
    TRUTH,
    compare_steps,
    eval_steps,
    run_image,
)
from napari_scalespace.eval.evaluate import EvalReport, OctaveResult, markdown_table
from napari_scalespace.geometry import PyramidGrid
from napari_scalespace.render.export import is_complete

JSON_KEYS = {"octave", "swd", "swd_bicubic", "consistency_psnr", "seam_psnr", "psnr", "ssim"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    run = tiny_run()
    out = tmp_path_factory.mktemp("compare")
    events = list(compare_steps(run, run_image(run), out, octaves=2, device="cpu", views=6))
    return run, out, events


def test_compare_writes_both_pyramids_then_evaluates(pair):
    _, out, events = pair
    grid = PyramidGrid(2, 32, (1.0, 1.5))  # the run's image is 256 x 384
    n_tiles = sum(int(np.prod(grid.n_tiles(lv))) for lv in range(3))
    kinds = [e[0] for e in events]
    assert kinds[-1] == "report" and set(kinds[:-1]) == {"learned", "truth", "eval"}
    assert kinds.index("eval") > max(i for i, k in enumerate(kinds) if k != "eval" and
                                     k != "report")
    for kind in ("learned", "truth", "eval"):
        done = [e[1] for e in events if e[0] == kind]
        total = {e[2] for e in events if e[0] == kind}
        assert done == sorted(done) and len(total) == 1 and done[-1] == total.pop()
    assert [e[1] for e in events if e[0] == "learned"][-1] == n_tiles
    assert is_complete(out / LEARNED) and is_complete(out / TRUTH)
    _, report, files = events[-1]
    assert files == {"json": out / METRICS, "plot": out / PLOT, "contact_sheet": out / CONTACT}
    assert all(p.stat().st_size > 1000 for p in files.values())
    assert EvalReport.load(out / METRICS) == report
    saved = json.loads((out / METRICS).read_text())
    assert [o["octave"] for o in saved["octaves"]] == [0, 1, 2]
    assert all(JSON_KEYS <= set(o) for o in saved["octaves"])


def test_the_report_tells_an_untrained_generator_from_the_truth(pair):
    report: EvalReport = pair[2][-1][1]
    o: list[OctaveResult] = report.octaves
    assert report.data_zoom == 3.0 and all(x.covered for x in o)  # 256 px / 32 px = 2**3
    # bicubic zoom of the zoom-0 view is nearly the zoom-0 truth; the 2-step generator is not
    assert o[0].psnr_bicubic > 35 and o[0].psnr < 20 and o[0].ssim < o[0].ssim_bicubic
    assert all(x.swd > x.swd_bicubic for x in o[:2])
    assert o[0].consistency_psnr is None and all(x.consistency_psnr is not None for x in o[1:])
    # the generator renders world coordinates: overlapping views agree, tiles join
    assert all(x.seam_psnr > 35 for x in o)
    assert all(0.5 < x.seam_gradient_ratio < 1.5 for x in o)
    assert all(x.fid is None for x in o) and "FID/KID skipped" in report.notes[0]
    md = markdown_table(report).splitlines()
    assert len(md) == 2 + len(o) and md[3].startswith("| 1 | yes | ")
    assert f"{o[1].swd:.1f} / {o[1].swd_bicubic:.1f}" in md[3]


def test_reuse_keeps_complete_stores_and_rewrites_incomplete(pair, tmp_path):
    run, out, _ = pair
    mtime = (out / TRUTH / "zarr.json").stat().st_mtime_ns
    events = list(compare_steps(run, run_image(run), out, octaves=2, device="cpu", views=2,
                                reuse=True))
    assert [e for e in events if e[0] in ("learned", "truth")] == [("learned", 1, 1),
                                                                     ("truth", 1, 1)]
    assert (out / TRUTH / "zarr.json").stat().st_mtime_ns == mtime
    steps = compare_steps(run, run_image(run), tmp_path, octaves=2, device="cpu", views=2)
    next(steps)
    steps.close()  # a stopped export is incomplete: reuse writes it again
    assert not is_complete(tmp_path / LEARNED)
    with pytest.warns(UserWarning, match="exporting again: it is incomplete"):
        events = list(compare_steps(run, run_image(run), tmp_path, octaves=2, device="cpu",
                                    views=2, reuse=True))
    assert [e for e in events if e[0] == "learned"][-1][1] > 1 and is_complete(
        tmp_path / LEARNED)


def test_evaluation_refuses_other_images(pair, tmp_path):
    run, _, _ = pair
    square = tmp_path / "square.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(square)
    with pytest.raises(ValueError, match="not the image it was trained on"):
        next(compare_steps(run, square, tmp_path / "x", device="cpu"))
    with pytest.raises(ValueError, match="not the image it was trained on"):
        next(eval_steps(run, square, device="cpu"))


def test_cli_eval_writes_json_plots_and_contact_sheet(pair, tmp_path, capsys):
    run, _, _ = pair
    out = tmp_path / "report.json"
    assert main(["eval", str(run), "--json", str(out), "--plots", str(tmp_path / "plots"),
                 "--views", "4", "--octaves", "4", "--center", "0.5", "0.7", "--quiet",
                 "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "SWD model/bicubic" in text and "FID/KID skipped" in text and str(out) in text
    saved = json.loads(out.read_text())
    octs = saved["octaves"]
    assert [o["octave"] for o in octs] == [0, 1, 2, 3, 4] and saved["views"] == 4
    assert all(JSON_KEYS <= set(o) for o in octs)
    # octave 4 is finer than the 256-px image holds for 32-px views: no truth to compare with
    assert octs[4]["covered"] is False and octs[4]["psnr"] is None and octs[4]["swd"] is None
    assert octs[4]["consistency_psnr"] is not None and octs[3]["psnr"] is not None
    sheet = np.asarray(Image.open(tmp_path / "plots" / CONTACT))
    assert sheet.shape[0] > sheet.shape[1]  # 5 zooms down, 3 columns across
    assert (tmp_path / "plots" / PLOT).is_file()
    assert main(["eval", str(run), "--views", "1"]) == 2
    assert "--views must be >= 2" in capsys.readouterr().err


def test_cli_compare(pair, tmp_path, capsys):
    run, _, _ = pair
    assert main(["compare", str(run), "--out", str(tmp_path), "--octaves", "1", "--views",
                 "3", "--quiet", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "SWD model/bicubic" in text and "metrics.json" in text
    assert len(json.loads((tmp_path / METRICS).read_text())["octaves"]) == 2


def test_the_report_records_the_mode_detail_and_compression(pair):
    from napari_scalespace.checkpoint import read_config
    from napari_scalespace.eval.compression import generator_bytes, pyramid_bytes
    from napari_scalespace.render.renderer import Renderer

    run, out, events = pair
    report: EvalReport = events[-1][1]
    train = read_config(run)[0].train
    assert (report.positions, report.extra_octaves) == (train.positions, train.extra_octaves)
    assert all(o.gradient_energy > 0 and o.gradient_energy_truth > 0 for o in report.octaves)
    c = report.compression
    G = Renderer(run, device="cpu").G
    n = sum(p.numel() for p in G.parameters())
    assert 2 * n <= c["generator_float16"] == generator_bytes(G)["float16"]
    assert c["generator_float32"] == 2 * c["generator_float16"]
    # the run's image is 256 x 384 at 32 px: 3 octaves of data, levels of 8x12, 4x6, 2x3 and
    # 1x2 tiles of 32 x 32 x 3 bytes
    assert c["octaves"] == 3
    assert c["truth_uncompressed"] == (96 + 24 + 6 + 2) * 32 * 32 * 3
    assert c["truth_uncompressed"] == pyramid_bytes(PyramidGrid(3, 32, (1.0, 1.5)), 3)
    assert 0 < c["truth_zarr"] < c["truth_uncompressed"]  # the export compresses
    assert c["ratio_uncompressed_float16"] == pytest.approx(
        c["truth_uncompressed"] / c["generator_float16"], rel=1e-3)
    assert EvalReport.load(out / METRICS).compression == c


def test_cli_eval_of_several_runs_prints_one_table(pair, tmp_path, capsys):
    run, _, _ = pair
    image = run_image(run)
    other = tmp_path / "other-run"
    assert main(["train", image, "--out", str(other), "--preset", "tiny", "--steps", "1",
                 "--octaves", "2", "--batch", "2", "--threads", "1", "--positions",
                 "unknown"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(other), "--truth", image, "--views", "4", "--octaves",
                 "1", "--json", str(tmp_path / "json"), "--plots", str(tmp_path / "plots"),
                 "--quiet", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    names = [run.name, "other-run"]
    reports = [EvalReport.load(tmp_path / "json" / f"{n}.json") for n in names]
    assert reports[1].positions == "unknown"
    lines = text.splitlines()
    assert f"PSNR dB ({names[0]} / other-run / bicubic)" in lines[0]
    o = [r.octaves[1] for r in reports]
    assert lines[3].startswith("| 1 | yes | ")
    assert f"{o[0].psnr:.2f} / {o[1].psnr:.2f} / {o[0].psnr_bicubic:.2f}" in lines[3]
    assert f"{o[0].swd:.1f} / {o[1].swd:.1f} / {o[0].swd_bicubic:.1f}" in lines[3]
    assert "mean PSNR over the octaves with data" in text and "size: generator" in text
    for n in names:
        assert (tmp_path / "plots" / n / PLOT).is_file()
    assert (tmp_path / "plots" / "comparison.png").stat().st_size > 1000
    sheet = np.asarray(Image.open(tmp_path / "plots" / CONTACT))
    assert sheet.shape[1] > sheet.shape[0]  # 2 zooms down; 2 runs, truth, bicubic across
    assert main(["eval", str(run), str(run), "--truth", image]) == 2  # names must differ
    assert "distinct folder names" in capsys.readouterr().err


def test_reuse_keeps_only_a_learned_pyramid_of_the_same_checkpoint(pair, tmp_path):
    """The learned store records the checkpoint it was rendered from (step and the hash of the
    generator's weights, as state.json lists them); --reuse keeps it only while they match."""
    import shutil

    import zarr

    from napari_scalespace.checkpoint import latest_checkpoint
    from napari_scalespace.render.provenance import checkpoint_identity

    run, out, _ = pair
    state = json.loads((latest_checkpoint(run) / "state.json").read_text())
    current = {"step": state["step"],
               "generator_sha256": state["files"]["generator_ema.safetensors"]["sha256"]}
    assert checkpoint_identity(run) == current
    cmp = tmp_path / "cmp"
    shutil.copytree(out, cmp)
    group = zarr.open_group(str(cmp / LEARNED), mode="r+")
    assert group.attrs["napari_scalespace"]["checkpoint"] == current
    # the stored pyramid came from an older checkpoint of the run
    group.attrs["napari_scalespace"] = {**group.attrs["napari_scalespace"],
                                        "checkpoint": {"step": 1, "generator_sha256": "0" * 64}}
    notes = []
    events = list(compare_steps(run, run_image(run), cmp, octaves=2, device="cpu", views=2,
                                reuse=True, notify=notes.append))
    learned = [e for e in events if e[0] == "learned"]
    assert learned[-1][1] == learned[-1][2] > 1  # rendered again, tile by tile
    assert [e for e in events if e[0] == "truth"] == [("truth", 1, 1)]  # still valid
    assert notes == [f"{LEARNED}: exporting again: it was made from checkpoint step 1, the "
                     f"run's is step {current['step']}"]
    recorded = zarr.open_group(str(cmp / LEARNED), mode="r").attrs["napari_scalespace"]
    assert recorded["checkpoint"] == current and recorded["complete"]
    # same checkpoint now: kept, nothing said
    notes.clear()
    events = list(compare_steps(run, run_image(run), cmp, octaves=2, device="cpu", views=2,
                                reuse=True, notify=notes.append))
    assert [e for e in events if e[0] == "learned"] == [("learned", 1, 1)] and notes == []


def test_cli_compare_says_when_it_exports_again_and_needs_a_flag_to_replace(pair, tmp_path,
                                                                             capsys):
    run, _, _ = pair
    args = ["compare", str(run), "--out", str(tmp_path), "--octaves", "1", "--views", "2",
            "--quiet", "--device", "cpu"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2  # stores of ours are there: --reuse or --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_a_large_truth_pyramids_zarr_bytes_are_estimated_from_sampled_tiles(tmp_path):
    from helpers import texture
    from napari_scalespace.data import open_source
    from napari_scalespace.eval.compression import sampled_zarr_bytes, store_bytes
    from napari_scalespace.render.export import export_truth, truth_grid

    source = open_source(texture((256, 384)))
    grid = truth_grid(source, 32, 3)
    written = store_bytes(export_truth(source, tmp_path / "t.zarr", 32, 3, progress=False))
    tiles = sum(ny * nx for ny, nx in (grid.n_tiles(lv) for lv in range(grid.n_levels)))
    chunks = sum(p.stat().st_size for p in (tmp_path / "t.zarr").rglob("c/*/*/*"))
    # every tile compressed: the chunks' bytes; a tenth of them: within a few percent
    assert sampled_zarr_bytes(source, grid, tiles) == chunks
    assert abs(sampled_zarr_bytes(source, grid, tiles // 10) / chunks - 1) < 0.05
    assert chunks < written < chunks + 20_000  # the rest is metadata
