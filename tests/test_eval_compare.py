"""Export-and-compare: both pyramids on one grid, per-level SWD that tells a pyramid from
itself and from a different one, metrics.json, reuse, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from PIL import Image

from napari_scalespace.cli import main
from napari_scalespace.eval.compare import (
    LEARNED,
    METRICS,
    TRUTH,
    compare_pyramids,
    compare_steps,
    read_metrics,
    run_image,
)
from napari_scalespace.geometry import PyramidGrid
from napari_scalespace.render.export import is_complete
from test_render_renderer import tiny_run


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    run = tiny_run()
    out = tmp_path_factory.mktemp("compare")
    events = list(compare_steps(run, run_image(run), out, octaves=2, device="cpu", tiles=8))
    return run, out, events


def test_compare_writes_both_pyramids_progress_and_metrics(pair):
    _, out, events = pair
    grid = PyramidGrid(2, 32, (1.0, 1.5))  # the run's image is 256 x 384
    n_tiles = [int(np.prod(grid.n_tiles(lv))) for lv in range(3)]
    kinds = [e[0] for e in events]
    assert kinds[-1] == "metrics" and set(kinds[:-1]) == {"learned", "truth"}
    for kind in ("learned", "truth"):
        done = [e[1] for e in events if e[0] == kind]
        total = {e[2] for e in events if e[0] == kind}
        assert done == sorted(done) and total == {sum(n_tiles)} and done[-1] == sum(n_tiles)
    assert is_complete(out / LEARNED) and is_complete(out / TRUTH)
    metrics = events[-1][1]
    assert [m.level for m in metrics] == [0, 1, 2] and [m.zoom for m in metrics] == [2, 1, 0]
    assert [m.tiles for m in metrics] == [min(8, n) for n in n_tiles]
    assert read_metrics(out / METRICS) == metrics
    saved = json.loads((out / METRICS).read_text())
    assert [lv["swd"] for lv in saved["levels"]] == [m.swd for m in metrics]
    assert saved["grid"]["octaves"] == 2 and saved["grid"]["tile"] == 32


def test_swd_tells_the_truth_from_an_untrained_generator(pair):
    _, out, events = pair
    # truth against itself: only the sampling of descriptors differs (small, not zero)
    same = compare_pyramids(out / TRUTH, out / TRUTH, tiles=8)
    assert all(m.mean_learned == m.mean_truth for m in same)
    # the untrained (2-step) generator is far from the texture at every level
    learned = events[-1][1]
    assert all(m.swd_mean > 2.5 * s.swd_mean for m, s in zip(learned, same, strict=True))
    # the mean colours are the tiles' means
    arr = zarr.open_array(str(out / TRUTH / "2"), mode="r")
    assert np.allclose(same[2].mean_truth, arr[:].mean(axis=(1, 2)) / 255, atol=1e-4)


def test_reuse_keeps_complete_stores_and_rewrites_incomplete(pair, tmp_path):
    run, out, _ = pair
    mtime = (out / TRUTH / "zarr.json").stat().st_mtime_ns
    events = list(compare_steps(run, run_image(run), out, octaves=2, device="cpu", tiles=4,
                                reuse=True))
    assert [e for e in events if e[0] != "metrics"] == [("learned", 1, 1), ("truth", 1, 1)]
    assert (out / TRUTH / "zarr.json").stat().st_mtime_ns == mtime
    # a stopped export is incomplete: reuse writes it again, compare refuses it
    steps = compare_steps(run, run_image(run), tmp_path, octaves=2, device="cpu", tiles=4)
    next(steps)
    steps.close()
    assert not is_complete(tmp_path / LEARNED)
    with pytest.raises(ValueError, match="did not finish"):
        compare_pyramids(tmp_path / LEARNED, out / TRUTH)


def test_compare_refuses_other_grids_and_images(pair, tmp_path):
    run, out, _ = pair
    other = tmp_path / "other"
    list(compare_steps(run, run_image(run), other, octaves=1, device="cpu", tiles=2))
    with pytest.raises(ValueError, match="same grid"):
        compare_pyramids(out / LEARNED, other / TRUTH)
    square = tmp_path / "square.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(square)
    with pytest.raises(ValueError, match="not the image it was trained on"):
        next(compare_steps(run, square, tmp_path / "x", device="cpu"))


def test_cli_compare(pair, tmp_path, capsys):
    run, _, _ = pair
    assert main(["compare", str(run), "--out", str(tmp_path), "--octaves", "1", "--tiles",
                 "3", "--quiet", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "SWD mean" in text and "metrics.json" in text
    assert len(json.loads((tmp_path / METRICS).read_text())["levels"]) == 2
    assert main(["compare", str(run), "--out", str(tmp_path), "--tiles", "0"]) == 2
    assert "--tiles must be >= 1" in capsys.readouterr().err
