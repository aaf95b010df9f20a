"""`export` and `truth` subcommands write OME-Zarr pyramids on the same grid."""

from __future__ import annotations

import zarr

from helpers import tiny_run
from napari_scalespace.checkpoint import read_config
from napari_scalespace.cli import main


def test_export_and_truth_commands(tmp_path, capsys):
    run = tiny_run()
    image = read_config(run)[1]["images"][0]
    assert main(["export", str(run), "--out", str(tmp_path / "l.zarr"), "--octaves", "2",
                 "--device", "cpu", "--quiet"]) == 0
    assert main(["truth", image, "--out", str(tmp_path / "t.zarr"), "--view-size", "32",
                 "--octaves", "2", "--quiet"]) == 0
    assert "wrote" in capsys.readouterr().out
    shapes = []
    for name in ("l.zarr", "t.zarr"):
        g = zarr.open_group(str(tmp_path / name), mode="r")
        assert g.attrs["ome"]["version"] == "0.5"
        shapes.append([g[str(i)].shape for i in range(3)])
    assert shapes[0] == shapes[1] == [(3, 128, 192), (3, 64, 96), (3, 32, 64)]


def test_export_and_truth_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "x.zarr")]) == 2
    assert main(["truth", str(tmp_path / "missing.png"), "--out", str(tmp_path / "y.zarr"),
                 "--view-size", "32", "--octaves", "2"]) == 2
    assert main(["truth", str(tmp_path / "missing.png"), "--out", str(tmp_path / "y.zarr"),
                 "--view-size", "0", "--octaves", "2"]) == 2
    err = capsys.readouterr().err
    assert "export: error" in err and "truth: error" in err
