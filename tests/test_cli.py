"""The command line: the installed ``napari-scalespace`` script, ``python -m``, and ``main()``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from napari_scalespace import __version__
from napari_scalespace.cli import main

SCRIPT = Path(sys.executable).parent / "napari-scalespace"


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=300)


def check_info(out: str) -> None:
    lines = out.splitlines()
    assert lines[0] == f"napari-scalespace {__version__}"
    import torch

    assert f"torch {torch.__version__}" in lines
    assert any(line.startswith("torch threads: ") and "intra-op" in line for line in lines)
    assert any(line.startswith("cuda available: ") for line in lines)
    assert any(line.startswith("triton: ") for line in lines)
    auto = [line for line in lines if line.startswith("ops impl='auto' on cpu: ")]
    assert len(auto) == 1
    assert auto[0].rsplit(" ", 1)[1] in ("ref", "fast")


def test_version_is_the_distributions():
    assert __version__ == version("napari-scalespace")


def test_console_script_info(tmp_path):
    assert SCRIPT.exists(), f"{SCRIPT} missing: install the package (scripts/setup-env.sh)"
    res = run([str(SCRIPT), "info"], tmp_path)
    assert res.returncode == 0, res.stderr
    check_info(res.stdout)


def test_python_m_info(tmp_path):
    res = run([sys.executable, "-m", "napari_scalespace", "info"], tmp_path)
    assert res.returncode == 0, res.stderr
    check_info(res.stdout)


def test_python_m_version(tmp_path):
    res = run([sys.executable, "-m", "napari_scalespace", "--version"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"napari-scalespace {__version__}"


@pytest.mark.parametrize("argv", [["bogus"], []], ids=["unknown", "missing"])
def test_bad_subcommand_exits_with_usage(tmp_path, argv):
    res = run([sys.executable, "-m", "napari_scalespace", *argv], tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("usage: napari-scalespace")
    assert ("invalid choice: 'bogus'" in res.stderr) if argv else ("required" in res.stderr)


def test_main_in_process(capsys):
    assert main(["info"]) == 0
    check_info(capsys.readouterr().out)
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "info" in capsys.readouterr().out


def test_info_cuda_lines(monkeypatch, capsys):
    """The CUDA branch of ``info``, faked on a CPU-only machine."""
    import torch

    zeros = torch.zeros
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")
    monkeypatch.setattr(torch, "zeros", lambda *a, device=None, **k: zeros(*a, **k))
    assert main(["info"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "cuda available: yes (1 device(s), first: Fake GPU)" in lines
    assert any(line.startswith("ops impl='auto' on cuda: ") for line in lines)


@pytest.mark.parametrize(
    ("body", "want"),
    [
        ("__version__ = '9.9'", "importable (9.9)"),
        ("raise ImportError('no libtriton')", "not importable (ImportError: no libtriton)"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", "import crashed (SIGSEGV)"),
    ],
    ids=["ok", "missing", "crash"],
)
def test_triton_status_in_a_child_process(tmp_path, monkeypatch, body, want):
    """``info`` tries ``import triton`` in a child: a crash there must not take ``info`` down."""
    from napari_scalespace.cli.info import _triton_status

    (tmp_path / "triton.py").write_text(body)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.delitem(sys.modules, "triton", raising=False)
    assert _triton_status() == want


def test_render_past_the_models_octaves_warns_in_one_line_what_it_covers(tmp_path, capsys):
    run = Path(__file__).resolve().parents[1] / "src/napari_scalespace/data/samples/tiny_he"
    out = tmp_path / "v.png"
    assert main(["render", str(run), "--zoom", "100", "--center", "0.5", "0.5", "--out",
                 str(out), "--device", "cpu"]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == ["napari-scalespace render: warning: zoom 100 is past what the model "
                   "learned: it covers zooms 0 to 3 (3 octaves with data); deeper views show "
                   "a flat colour"]
    assert out.is_file()
    assert main(["render", str(run), "--zoom", "0", "3", "--center", "0.5", "0.5", "--out",
                 str(out), "--device", "cpu"]) == 0
    assert "warning" not in capsys.readouterr().err  # zoom 3 is the deepest it learned


def test_the_zoom_warning_names_extra_octaves():
    import warnings

    from napari_scalespace.geometry import View
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.render.image import ZoomWarning, warn_past_the_model

    preset = get_preset("tiny", octaves=5, extra_octaves=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_past_the_model(preset, [View(5.0, 0.5, 0.5)]) is None
    with pytest.warns(ZoomWarning, match=r"covers zooms 0 to 5 \(3 octaves with data \+ 2 "
                                         r"learned past them\)"):
        warn_past_the_model(preset, [View(1.0, 0.5, 0.5), View(5.5, 0.5, 0.5)])
