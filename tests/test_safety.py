"""No loading path can unpickle: feature weights are read as tensors only, and no source file
calls a loader that can run code hidden in a file."""

from __future__ import annotations

import ast
import zipfile
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from napari_scalespace.cli import main
from napari_scalespace.eval.features import FeatureNet
from napari_scalespace.eval.inception import FEATURES, InceptionFeatures

SRC = Path(__file__).resolve().parents[1] / "src" / "napari_scalespace"
SAMPLE_RUN = SRC / "data" / "samples" / "tiny_he"


class _Payload:
    """Unpickling this creates the file ``marker`` (what a malicious model file would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _malicious_files(tmp_path: Path) -> tuple[Path, list[Path]]:
    marker = tmp_path / "PAYLOAD_RAN"
    files = []
    for name in ("evil.pth", "evil.pt", "evil.pt2", "evil.bin"):
        torch.save({"Conv2d_1a_3x3.conv.weight": _Payload(marker)}, tmp_path / name)
        files.append(tmp_path / name)
    # a .pt2-shaped zip archive whose weights member is a pickle with the payload
    pt2 = tmp_path / "program.pt2"
    with zipfile.ZipFile(pt2, "w") as z:
        z.writestr("archive_format", "pt2")
        z.write(tmp_path / "evil.pth", "program/data/weights/model_weights_config.pt")
    files.append(pt2)
    # a TorchScript module whose archive carries the payload too
    ts = tmp_path / "evil_script.pt"
    with zipfile.ZipFile(ts, "w") as z:
        z.writestr("evil_script/constants.pkl", (tmp_path / "evil.pth").read_bytes())
        z.writestr("evil_script/code/__torch__.py", "")
    files.append(ts)
    return marker, files


def test_the_payload_is_live(tmp_path):
    """The crafted files do run their payload when loaded the unsafe way (so the tests below
    would fail if FeatureNet loaded them that way)."""
    marker, files = _malicious_files(tmp_path)
    torch.load(files[0], weights_only=False)
    assert marker.exists()


def test_feature_net_refuses_pickles_without_running_them(tmp_path):
    marker, files = _malicious_files(tmp_path)
    for path in files:
        with pytest.raises(ValueError, match="refused because loading them can run code") as e:
            FeatureNet(path)
        assert "\n" not in str(e.value) and str(path) in str(e.value)
    assert not marker.exists()


def test_cli_eval_refuses_a_malicious_inception_file_in_one_line(tmp_path, capsys):
    marker, files = _malicious_files(tmp_path)
    for path in (files[2], files[0]):  # .pt2, then .pth
        assert main(["eval", str(SAMPLE_RUN), "--views", "2", "--inception", str(path),
                     "--quiet", "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("napari-scalespace eval: error: --inception:")
        assert err.count("\n") == 1
    assert not marker.exists()


def test_feature_net_reads_fid_weights_from_safetensors_and_state_dicts(tmp_path):
    torch.manual_seed(0)
    net = InceptionFeatures().eval()
    for m in net.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    imgs = np.random.default_rng(0).random((3, 1, 40, 48)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(imgs).expand(-1, 3, -1, -1)).double().numpy()
    state = net.state_dict()
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()},
                                str(tmp_path / "w.safetensors"))
    # the usual .pth: a plain state dict with the classifier, without num_batches_tracked
    pth = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    pth |= {"fc.weight": torch.zeros(1008, FEATURES), "fc.bias": torch.zeros(1008)}
    torch.save(pth, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        feats = FeatureNet(tmp_path / name)(imgs, batch=2)
        assert feats.shape == (3, FEATURES) and feats.dtype == np.float64
        np.testing.assert_allclose(feats, want, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="nothing is downloaded"):
        FeatureNet(tmp_path / "missing.pth")
    (tmp_path / "bad.pth").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a state dict"):
        FeatureNet(tmp_path / "bad.pth")
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not hold Inception-v3 FID weights"):
        FeatureNet(tmp_path / "other.pth")


# --- no unpickling call anywhere in the package -----------------------------------------------

_FORBIDDEN_MODULES = {"pickle", "_pickle", "cPickle", "dill", "joblib", "cloudpickle", "shelve",
                      "marshal", "torch.package"}
_FORBIDDEN_CALLS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "torch.export.load", "torch.jit.load",
    "torch.package.PackageImporter", "pandas.read_pickle", "pd.read_pickle", "yaml.load",
    "yaml.unsafe_load", "yaml.full_load", "dill.load", "dill.loads", "joblib.load",
    "cloudpickle.load", "cloudpickle.loads", "marshal.load", "marshal.loads", "shelve.open",
    "torch.serialization.load", "numpy.lib.format.read_array",
}


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _keyword_is_true(call: ast.Call, name: str) -> bool | None:
    """True/False for a literal keyword, None when absent or not a literal."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else None
    return None


def unpickling_calls(source: str) -> list[str]:
    """Every place in ``source`` that can unpickle (or load code) from a file or bytes."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names])
            bad = [n for n in names if n in _FORBIDDEN_MODULES or n in _FORBIDDEN_CALLS
                   or n in {"torch.load", "torch.jit", "torch.export.load"}]
            found += [f"line {node.lineno}: import {n}" for n in bad]
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            where = f"line {node.lineno}: {name}("
            if name in _FORBIDDEN_CALLS:
                found.append(where)
            elif name == "torch.load" and _keyword_is_true(node, "weights_only") is not True:
                found.append(where + " without weights_only=True")
            elif name in ("np.load", "numpy.load") and _keyword_is_true(
                    node, "allow_pickle") is not False and any(
                    kw.arg == "allow_pickle" for kw in node.keywords):
                found.append(where + " with allow_pickle")
    return found


def test_the_unpickling_scan_catches_what_it_should():
    bad = [
        "import pickle\npickle.loads(b'')",
        "from pickle import loads",
        "import torch\ntorch.load('x')",
        "import torch\ntorch.load('x', weights_only=False)",
        "import torch\ntorch.export.load('x.pt2')",
        "import torch\ntorch.jit.load('x.pt')",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
        "import joblib",
        "import dill",
        "from cloudpickle import load",
        "import yaml\nyaml.load(open('x'))",
    ]
    for snippet in bad:
        assert unpickling_calls(snippet), snippet
    good = ["import torch\ntorch.load('x', weights_only=True)",
            "import numpy as np\nnp.load('x.npy')",
            "import safetensors.torch\nsafetensors.torch.load_file('x')"]
    for snippet in good:
        assert not unpickling_calls(snippet), snippet


def test_no_source_file_can_unpickle():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 40
    found = {str(f.relative_to(SRC)): hits for f in files
             if (hits := unpickling_calls(f.read_text(encoding="utf-8")))}
    assert found == {}
