"""FID and KID over Inception features from local weights (optional; nothing is downloaded).

The Fréchet Inception distance and the kernel Inception distance compare two image sets through
the activations of an Inception network. Its weights are not part of napari-scalespace and are
never fetched at run time: point ``--inception`` at a local copy of the FID Inception-v3 weights
as a *state dict*, e.g. the ``pt_inception-2015-12-05-*.pth`` file of the PyTorch FID port, or
the same tensors as ``.safetensors``. The network itself is our own definition
(:mod:`.inception`); only tensors are read from the file:

- ``.safetensors``: read with ``safetensors`` (no code at all in the format);
- anything else: ``torch.load(..., weights_only=True)``, PyTorch's restricted loader that
  rebuilds tensors and plain containers only (torch >= 2.6: earlier ones had a way around it).

Files that carry code or arbitrary pickles (TorchScript modules, ``torch.export`` programs
``.pt2``, whole pickled models) are refused with a one-line error, because loading them can run
whatever they contain.

- FID: ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of Gaussian fits of the features.
  With fewer images than feature dimensions the covariances are rank-deficient and FID is
  biased upwards: compare numbers computed with the same number of views only.
- KID: the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x . y / D + 1)^3``, averaged over random subsets (less biased at small N).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from .inception import InceptionFeatures

__all__ = ["FeatureNet", "fid", "kid", "load_weights"]

_SAFE_TORCH = (2, 6)
"""The first torch whose ``weights_only=True`` loader has no known way to run code."""

_IGNORED = ("fc.", "AuxLogits.")
"""Classifier parameters in full Inception state dicts: not needed for the features."""


def _torch_version() -> tuple[int, int]:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a local weights file, read without executing anything it contains.

    ``.safetensors`` via safetensors; other files via ``torch.load(weights_only=True)``. A file
    that is not a plain dict of tensors (TorchScript, ``.pt2``, a pickled model object...) is a
    ``ValueError`` naming the file and the accepted formats."""
    p = Path(path)
    accepted = ("a state dict of Inception-v3 FID weights (.pth, read with weights_only=True, "
                "or .safetensors); TorchScript, .pt2 and pickled models are refused because "
                "loading them can run code")
    if p.suffix == ".pt2":
        raise ValueError(f"--inception: {p} is a .pt2 (torch.export) file, not {accepted}")
    try:
        if p.suffix == ".safetensors":
            import safetensors.torch

            tensors = safetensors.torch.load_file(str(p), device="cpu")
        else:
            if _torch_version() < _SAFE_TORCH:
                raise ValueError(f"--inception: torch {torch.__version__} cannot load {p.name} "
                                 f"safely (needs torch >= 2.6); convert it to .safetensors")
            tensors = torch.load(str(p), map_location="cpu", weights_only=True)
    except ValueError:
        raise
    except Exception as exc:  # truncated, TorchScript, a pickle with non-tensor objects, ...
        first = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(f"--inception: {p} is not {accepted} ({first})") from None
    if not isinstance(tensors, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()):
        raise ValueError(f"--inception: {p} holds a {type(tensors).__name__}, not {accepted}")
    return tensors


class FeatureNet:
    """The FID Inception-v3 (:mod:`.inception`) with weights from a local file."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--inception: {p} is not a file (FID/KID need local weights; "
                             f"nothing is downloaded)")
        tensors = load_weights(p)
        net = InceptionFeatures()
        want = net.state_dict()
        given = {k.removeprefix("module."): v for k, v in tensors.items()}
        given = {k: v for k, v in given.items() if not k.startswith(_IGNORED)}
        missing = [k for k in want if k not in given and not k.endswith("num_batches_tracked")]
        extra = [k for k in given if k not in want]
        wrong = [k for k in want if k in given and given[k].shape != want[k].shape]
        if missing or extra or wrong:
            what = (f"{len(missing)} missing (e.g. {missing[:1]})" if missing else
                    f"{len(extra)} unexpected (e.g. {extra[:1]})" if extra else
                    f"{wrong[0]} has shape {list(given[wrong[0]].shape)}, "
                    f"expected {list(want[wrong[0]].shape)}")
            raise ValueError(f"--inception: {p} does not hold Inception-v3 FID weights: "
                             f"{what}")
        net.load_state_dict({k: v.to(want[k].dtype) for k, v in given.items()}, strict=False)
        self.net = net.to(device).eval().requires_grad_(False)
        self.path, self.device = p, device

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        """Features ``[N, 2048]`` (float64) of images ``[N, C, H, W]`` in [0, 1] (grey is
        repeated to RGB)."""
        out = []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i: i + batch])).float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = x[:, :3].to(self.device)
            out.append(self.net(x).reshape(len(x), -1).double().cpu().numpy())
        return np.concatenate(out)


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussian fits of feature sets ``a [N, D]`` and ``b [M, D]``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two [N >= 2, D] feature sets, got {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(sa @ sb)
    root = np.real(root)
    return float(max(mu @ mu + np.trace(sa + sb - 2 * root), 0.0))


def kid(a: np.ndarray, b: np.ndarray, subsets: int = 50, subset_size: int = 1000,
        seed: int = 0) -> float:
    """Unbiased squared MMD (cubic polynomial kernel) averaged over random subsets."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two [N >= 2, D] feature sets, got {a.shape} and {b.shape}")
    n = min(len(a), len(b), subset_size)
    d = a.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), n, replace=False)]
        y = b[rng.choice(len(b), n, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                  + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())
    return float(total / subsets)
