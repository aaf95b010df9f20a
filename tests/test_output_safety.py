"""Output stores never destroy data: a store is created only in a new or empty folder, or over
a store of ours with --overwrite; never over or inside a run, never over the source image."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from helpers import tiny_run
from napari_scalespace.cli import main
from napari_scalespace.eval.compare import compare_steps, run_image
from napari_scalespace.render.export import export_learned, is_complete
from napari_scalespace.render.output_guard import check_output, is_our_store


@pytest.fixture(scope="module")
def run_dir():
    return tiny_run()


def tree(path) -> dict:
    """Every file under ``path`` with its bytes (a snapshot to compare)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert f" {command}: error: " in err and "\n" not in err, err
    return err


def test_export_refuses_a_folder_of_other_files(run_dir, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    assert main(["export", str(run_dir), "--out", str(notes), "--octaves", "1", "--device",
                 "cpu", "--quiet", "--overwrite"]) == 2
    assert "choose a new or empty folder" in one_line_error(capsys, "export")
    assert tree(notes) == {"todo.txt": b"keep me"}


@pytest.mark.parametrize("where", ["run", "inside", "parent"])
def test_export_never_writes_over_inside_or_around_the_run(run_dir, tmp_path, capsys, where):
    run = tmp_path / "runs" / "r"
    shutil.copytree(run_dir, run)
    before = tree(run)
    out = {"run": run, "inside": run / "learned.zarr", "parent": tmp_path / "runs"}[where]
    for flags in ([], ["--overwrite"]):
        assert main(["export", str(run), "--out", str(out), "--octaves", "1", "--device",
                     "cpu", "--quiet", *flags]) == 2
        assert "run" in one_line_error(capsys, "export")
    assert tree(run) == before and not (run / "learned.zarr").exists()


def test_truth_never_writes_over_its_image_or_the_folder_holding_it(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.mkdir()
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(victim / "good.png")
    before = tree(victim)
    for out in (victim, victim / "good.png", victim / "good.png" / "x.zarr"):
        for flags in ([], ["--overwrite"]):
            assert main(["truth", str(victim / "good.png"), "--out", str(out), "--view-size",
                         "32", "--octaves", "1", "--quiet", *flags]) == 2
            one_line_error(capsys, "truth")
    assert tree(victim) == before


def test_our_store_is_replaced_only_with_overwrite(run_dir, tmp_path, capsys):
    out = tmp_path / "learned.zarr"
    args = ["export", str(run_dir), "--out", str(out), "--octaves", "1", "--device", "cpu",
            "--quiet"]
    assert main(args) == 0 and is_our_store(out) and is_complete(out)
    capsys.readouterr()
    assert main(args) == 2
    assert "--overwrite" in one_line_error(capsys, "export")
    assert main([*args, "--overwrite"]) == 0 and is_complete(out)
    # a store of ours into which someone put their own file is not ours alone any more
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main([*args, "--overwrite"]) == 2
    assert "notes.txt" in one_line_error(capsys, "export")
    assert (out / "notes.txt").read_text() == "mine"


def test_a_foreign_zarr_store_is_never_replaced(tmp_path):
    import zarr

    other = tmp_path / "other.zarr"
    zarr.open_group(str(other), mode="w").create_array("a", shape=(4,), dtype="u1")
    before = tree(other)
    with pytest.raises(ValueError, match="not a napari-scalespace store"):
        check_output(other, overwrite=True)
    assert tree(other) == before


def test_a_missing_or_empty_folder_is_fine_and_files_are_not(tmp_path):
    assert check_output(tmp_path / "new" / "x.zarr") == (tmp_path / "new" / "x.zarr").resolve()
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_output(tmp_path / "f", overwrite=True)


def test_compare_and_the_cluster_export_follow_the_same_rule(run_dir, tmp_path):
    image = run_image(run_dir)
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    before = tree(run)
    with pytest.raises(ValueError, match="inside the run folder"):
        next(compare_steps(run, image, run, octaves=1, device="cpu", views=2))
    with pytest.raises(ValueError, match="inside the run folder"):
        next(compare_steps(run, image, run, octaves=1, device="cpu", views=2, reuse=True,
                           overwrite=True))
    assert tree(run) == before
    # an existing store of ours in the compare folder needs --overwrite (or --reuse)
    out = tmp_path / "cmp"
    export_learned(run, out / "learned.zarr", octaves=1, progress=False, device="cpu")
    with pytest.raises(ValueError, match="--overwrite"):
        next(compare_steps(run, image, out, octaves=1, device="cpu", views=2))
    from napari_scalespace.render.cluster import distributed_learned_steps

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("a")
    # refused before any worker is asked: no client needed
    with pytest.raises(ValueError, match="choose a new or empty folder"):
        next(distributed_learned_steps(None, run, notes, octaves=1))
    with pytest.raises(ValueError, match="run folder"):
        next(distributed_learned_steps(None, run, run / "x.zarr", octaves=1, overwrite=True))
    assert tree(notes) == {"a.txt": b"a"} and tree(run) == before


def test_the_runs_compare_folder_is_the_one_place_inside_a_run(run_dir, tmp_path):
    """RUN/compare/ (the compare widget's and the demo's default) holds no file of the run;
    stores may go there, and nowhere else inside the run."""
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    assert check_output(run / "compare" / "learned.zarr", protect=[run])
    for bad in (run / "compare", run / "checkpoints" / "x.zarr", run / "x.zarr"):
        with pytest.raises(ValueError, match="run"):
            check_output(bad, overwrite=True, protect=[run])
