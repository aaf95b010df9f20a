"""Resource estimates before export: the store's bytes, memory per band and the tile count /
time are known before anything is written; exports beyond sane limits are refused with the
numbers, at once."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import tiny_run
from napari_scalespace.cli import main
from napari_scalespace.geometry import MAX_OCTAVES, PyramidGrid
from napari_scalespace.render import budget as budget_mod
from napari_scalespace.render.budget import check_budget, estimate
from napari_scalespace.render.export import bands


@pytest.fixture(scope="module")
def run_dir():
    return tiny_run()


def test_the_estimate_counts_levels_tiles_and_bytes():
    grid = PyramidGrid(2, 32, (1.0, 1.5))
    b = estimate(grid, 3, np.uint8, batch=16, rate=10.0)
    assert b.levels == 3 and b.tiles == 8 * 12 // 4 + 2 * 3 + 1 * 2 == 32
    assert b.tile_bytes == 3 * 32 * 32 and b.store_bytes == 32 * 3 * 32 * 32
    assert b.band_bytes == 12 * 3 * 32 * 32  # level 0: rows of 6 tiles, two rows per band
    assert b.seconds == pytest.approx(3.2)
    assert "3 levels, 32 tiles" in b.describe() and "about 3 s" in b.describe()
    # float32 grey: 4 bytes a pixel
    assert estimate(grid, 1, np.float32, 16).tile_bytes == 4 * 32 * 32


def test_24_octaves_are_counted_without_enumerating_them():
    t0 = time.perf_counter()
    b = estimate(PyramidGrid(24, 32, (1.0, 1.5)), 3, np.uint8, batch=16)
    assert time.perf_counter() - t0 < 0.1
    assert b.tiles > 4**24 and b.band_bytes == 16 * 3 * 32 * 32  # a band is one batch


def test_bands_cover_every_tile_once_and_hold_about_a_batch():
    grid = PyramidGrid(3, 32, (1.0, 1.5))  # level 0: 8 x 12 tiles, more than a batch a row
    for batch in (1, 5, 16, 40):
        seen = []
        for level, a0, a1, b0, b1 in bands(grid, batch):
            assert (a1 - a0) * (b1 - b0) <= max(batch, grid.n_tiles(level)[1])
            seen += [(level, a, b) for a in range(a0, a1) for b in range(b0, b1)]
        want = [(lv, a, b) for lv in range(4) for a in range(grid.n_tiles(lv)[0])
                for b in range(grid.n_tiles(lv)[1])]
        assert sorted(seen) == sorted(want)


@pytest.mark.parametrize("octaves", [24, 20, MAX_OCTAVES + 1])
def test_export_refuses_more_octaves_than_a_scale_space_spans(run_dir, tmp_path, capsys,
                                                              octaves):
    out = tmp_path / "big.zarr"
    t0 = time.perf_counter()
    assert main(["export", str(run_dir), "--out", str(out), "--octaves", str(octaves),
                 "--device", "cpu", "--quiet"]) == 2
    assert time.perf_counter() - t0 < 30
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{octaves} octaves is more than the {MAX_OCTAVES}" in err
    assert "tiles" in err and not out.exists()
    assert main(["truth", str(run_dir.parent / "img.png"), "--out", str(out), "--view-size",
                 "32", "--octaves", str(octaves), "--quiet"]) == 2
    assert f"{octaves} octaves" in capsys.readouterr().err and not out.exists()


def test_export_refuses_what_the_disk_or_memory_cannot_hold(run_dir, tmp_path, capsys,
                                                           monkeypatch):
    out = tmp_path / "l.zarr"
    args = ["export", str(run_dir), "--out", str(out), "--octaves", "2", "--device", "cpu",
            "--quiet"]
    monkeypatch.setattr(budget_mod, "free_disk", lambda path: 1000)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "needs up to 98.3 KB (32 tiles) but 1.0 KB is free" in err and not out.exists()
    monkeypatch.undo()
    monkeypatch.setattr(budget_mod, "available_memory", lambda: 100)
    assert main(args) == 2
    assert "of memory but 100 B is available" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(ValueError, match="free"):
        monkeypatch.setattr(budget_mod, "free_disk", lambda path: 0)
        check_budget(estimate(PyramidGrid(1, 32), 3, np.uint8, 16), tmp_path)


def test_export_prints_its_estimate_before_writing(run_dir, tmp_path, capsys):
    out = tmp_path / "l.zarr"
    assert main(["export", str(run_dir), "--out", str(out), "--octaves", "2", "--device",
                 "cpu", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"export {out}: 3 levels, 32 tiles, 98.3 KB at most")
    assert "tiles/s)" in lines[0] and lines[-1] == f"wrote {out}"
