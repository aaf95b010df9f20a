"""The package as a napari plugin: manifest discovery, real rendering, and a Qt-free core."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files

import numpy as np
import pytest

PLUGIN = "napari-scalespace"


def test_manifest_file_validates():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(str(files("napari_scalespace") / "napari.yaml"))
    assert manifest.name == PLUGIN
    assert manifest.display_name == "napari scalespace"


def test_manifest_discovered_by_npe2():
    from npe2 import PluginManager, PluginManifest

    manifest = PluginManifest.from_distribution(PLUGIN)
    assert manifest.name == PLUGIN
    assert manifest.package_metadata is not None
    assert manifest.package_metadata.name == PLUGIN
    manifest.validate_imports()  # every python_name the manifest names can be imported

    pm = PluginManager()  # a private manager: the global instance is napari's business
    pm.discover()
    assert PLUGIN in {m.name for m in pm.iter_manifests()}
    assert pm.get_manifest(PLUGIN).display_name == "napari scalespace"


@pytest.mark.gui
def test_viewer_renders_under_xvfb(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    gradient = np.tile(np.linspace(0.0, 1.0, 256, dtype=np.float32), (128, 1))
    viewer.add_image(gradient, colormap="gray", contrast_limits=(0.0, 1.0))
    viewer.reset_view()

    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert shot.ndim == 3
    assert shot.shape[2] in (3, 4)
    rgb = shot[..., :3].astype(np.int32)
    assert rgb.max() > 200, "screenshot is black: nothing was rendered"
    # a grey ramp, not a flat colour: the rendered rows run through many intensities, left to right
    row = rgb[rgb.shape[0] // 2, :, 0]
    assert len(np.unique(row)) > 50
    lit = row[row > 0]
    assert np.all(np.diff(lit) >= -1), "the ramp should brighten from left to right"


@pytest.mark.gui
def test_sample_data_opens_the_crops_and_the_pretrained_scale_space(make_napari_viewer, qtbot):
    from napari_scalespace.data import sample_path
    from napari_scalespace.data.samples import sample_run
    from napari_scalespace.reader import is_run

    viewer = make_napari_viewer(show=True)
    he = viewer.open_sample(PLUGIN, "he")[0]
    assert he.rgb and he.data.shape == (1024, 1024, 3)
    from PIL import Image

    assert np.array_equal(he.data, np.asarray(Image.open(sample_path("he")).convert("RGB")))
    assert viewer.open_sample(PLUGIN, "blue_marble")[0].data.shape == (1024, 1024, 3)
    # the shipped run is render-only but complete for rendering: a 4-level lazy layer
    assert is_run(sample_run())
    layer = viewer.open_sample(PLUGIN, "pretrained_he")[0]
    assert layer.multiscale and len(layer.data) == 4
    renderer = layer.metadata["renderer"]
    tile = renderer.tile(0, 0, 0)  # the whole scene at 32 px: H&E colours (pink/purple)
    r, g, b = tile.reshape(-1, 3).mean(axis=0)
    assert r > g and b > g, (r, g, b)


@pytest.mark.gui
def test_show_command_writes_a_screenshot_of_widgets_and_pyramids(tmp_path):
    """`napari-scalespace show RUN --compare DIR --screenshot PNG`, as the demo runs it
    headless (pytest-xvfb's display is inherited by the subprocess)."""
    import os

    from PIL import Image

    from napari_scalespace.cli import main
    from napari_scalespace.data.samples import sample_run

    assert main(["compare", str(sample_run()), "--out", str(tmp_path / "cmp"), "--octaves", "2",
                 "--views", "4", "--quiet", "--device", "cpu"]) == 0
    png = tmp_path / "napari.png"
    res = subprocess.run([sys.executable, "-m", "napari_scalespace", "show", str(sample_run()),
                          "--compare", str(tmp_path / "cmp"), "--screenshot", str(png)],
                         capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    shot = np.asarray(Image.open(png))
    assert shot.shape[0] > 400 and shot.shape[1] > 800
    assert shot[..., :3].std() > 10


# --- the reader claims only what it reads ----------------------------------------------------


def _layout(tmp_path):
    """A plain image of each kind, a plain folder, a malformed store, a foreign store, a folder
    that looks like a run without a checkpoint, and a copy of the shipped run."""
    import shutil

    from PIL import Image

    from napari_scalespace.data.samples import sample_run

    img = np.zeros((8, 8, 3), np.uint8)
    for name in ("a.jpg", "b.tif", "c.png"):
        Image.fromarray(img).save(tmp_path / name)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.png").write_bytes((tmp_path / "c.png").read_bytes())
    for name, text in (("bad.zarr", "{not json"), ("list.zarr", "[1, 2]"),
                       ("foreign.zarr", '{"zarr_format": 3, "node_type": "group", '
                                        '"attributes": {"ome": {}}}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "zarr.json").write_text(text)
    (tmp_path / "half_run").mkdir()
    (tmp_path / "half_run" / "config.json").write_text("{}")
    (tmp_path / "half_run" / "latest").write_text("step-00000100\n")  # names nothing
    shutil.copytree(sample_run(), tmp_path / "run")
    return tmp_path


def test_reader_patterns_claim_no_image_file(tmp_path):
    """npe2 offers our reader no file (no filename pattern: everything we read is a folder).
    For folders npe2 applies no pattern at all (it lists every reader that accepts
    directories: napari's and napari-ome-zarr's as well), so a plain folder's choice is not
    ours to make; our reader then declines it at once."""
    from npe2 import PluginManager

    root = _layout(tmp_path)
    pm = PluginManager()
    pm.discover()
    for name in ("a.jpg", "b.tif", "c.png", "x.zarr", "notes.txt"):
        readers = {r.plugin_name for r in pm.iter_compatible_readers([str(root / name)])}
        assert PLUGIN not in readers, name
    folder = {r.plugin_name for r in pm.iter_compatible_readers([str(root / "plain")])}
    assert {"napari", "napari-ome-zarr"} <= folder  # listed without us: not our dialog


def test_reader_declines_everything_but_runs_and_our_stores(tmp_path):
    from napari_scalespace._widgets.reader_hook import get_reader

    root = _layout(tmp_path)
    for name in ("a.jpg", "b.tif", "c.png", "plain", "bad.zarr", "list.zarr", "foreign.zarr",
                 "half_run", "missing"):
        assert get_reader(str(root / name)) is None, name
    assert get_reader([str(root / "a.jpg"), str(root / "c.png")]) is None
    assert get_reader(str(root / "run")) is not None
    assert get_reader([str(root / "run")]) is not None


def test_choosing_our_reader_for_a_folder_declines_fast(tmp_path):
    from npe2 import PluginManager, io_utils

    root = _layout(tmp_path)
    pm = PluginManager()
    pm.discover()
    pm.activate(PLUGIN)
    t0 = __import__("time").perf_counter()
    with pytest.raises(ValueError, match="refused the file"):
        io_utils._read([str(root / "plain")], plugin_name=PLUGIN, stack=False, _pm=pm)
    assert __import__("time").perf_counter() - t0 < 1.0


def test_deciding_on_a_path_imports_neither_torch_nor_qt(tmp_path):
    root = _layout(tmp_path)
    paths = [str(root / n) for n in ("a.jpg", "plain", "bad.zarr", "half_run", "run")]
    code = (
        "import sys\n"
        "from napari_scalespace._widgets.reader_hook import get_reader\n"
        f"found = [get_reader(p) is not None for p in {paths!r}]\n"
        "mods = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'torch', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'napari'})\n"
        "print(found, mods)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.strip().splitlines()[-1]
    assert out == "[False, False, False, False, True] []"


# --- the pretrained sample shows its picture ---------------------------------------------------


@pytest.mark.gui
def test_pretrained_sample_paints_the_canvas(make_napari_viewer, qtbot):
    """File > Open Sample > "Learned scale space of the H&E crop": the tiles arrive in the
    background and the layer is refreshed as they land, so the canvas shows tissue colours,
    not black."""
    from PIL import Image

    viewer = make_napari_viewer(show=True)
    layer = viewer.open_sample(PLUGIN, "pretrained_he")[0]
    refresher = getattr(layer, "_scalespace_refresher", None)
    assert refresher is not None, "the sample's layer has no refresher"
    qtbot.waitUntil(lambda: refresher.refreshes >= 1 and refresher.scheduler.idle,
                    timeout=60_000)
    qtbot.wait(300)
    shot = viewer.screenshot(canvas_only=True, flash=False)[..., :3]
    Image.fromarray(shot).save("/tmp/napari_scalespace_sample.png")
    h, w = shot.shape[:2]
    centre = shot[h // 4: 3 * h // 4, w // 4: 3 * w // 4].astype(float)
    assert centre.mean() > 60 and centre.std() > 8, (centre.mean(), centre.std())
    r, g, b = centre.reshape(-1, 3).mean(axis=0)
    assert r > g and b > g  # H&E: pink and purple
    # it lies over the H&E crop sample it was trained on (a JPEG: pixel units): 3 octaves of
    # 32-px tiles over 1024 px, a level-0 pixel is 4 source pixels
    he = viewer.open_sample(PLUGIN, "he")[0]
    assert tuple(layer.scale) == (4.0, 4.0)
    h, w = layer.level_shapes[0][:2]
    assert np.allclose(layer.data_to_world((-0.5, -0.5)), he.data_to_world((-0.5, -0.5)))
    assert np.allclose(layer.data_to_world((h - 0.5, w - 0.5)),
                       he.data_to_world((1023.5, 1023.5)))
