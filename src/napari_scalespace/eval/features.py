"""FID and KID over the features of a user-supplied network (optional; nothing is downloaded).

The Fréchet Inception distance and the kernel Inception distance compare two image sets through
the activations of an Inception network. Its weights are not part of napari-scalespace and are
never fetched at run time: point ``--inception`` at a TorchScript file you have, e.g. the
``inception-2015-12-05.pt`` used by the StyleGAN family's metrics (called with
``return_features=True``, 2048 features), or any TorchScript module or ``torch.export``
program (``.pt2``) mapping float images ``[N, 3, H, W]`` with values in [0, 255] to features
``[N, D]``.

- FID: ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` of Gaussian fits of the features.
  With fewer images than feature dimensions the covariances are rank-deficient and FID is
  biased upwards: compare numbers computed with the same number of views only.
- KID: the unbiased squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x . y / D + 1)^3``, averaged over random subsets (less biased at small N).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

__all__ = ["FeatureNet", "fid", "kid"]


class FeatureNet:
    """A feature network loaded from a local file (TorchScript, or ``.pt2`` exported)."""

    def __init__(self, path: str | Path, device: str = "cpu") -> None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--inception: {p} is not a file (FID/KID need local weights; "
                             f"nothing is downloaded)")
        try:
            if p.suffix == ".pt2":  # a torch.export program
                self.net = torch.export.load(str(p)).module().to(device)
            else:
                with warnings.catch_warnings():  # TorchScript is deprecated, its files live on
                    warnings.simplefilter("ignore", DeprecationWarning)
                    self.net = torch.jit.load(str(p), map_location=device).eval()
        except Exception as exc:  # a corrupt file, or neither format
            raise ValueError(f"--inception: {p} is not a TorchScript module or (.pt2) an "
                             f"exported program: {exc}") from exc
        self.path, self.device = p, device
        self._kwargs: dict | None = None

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        """Features ``[N, D]`` (float64) of images ``[N, C, H, W]`` in [0, 1] (grey is
        repeated to RGB)."""
        out = []
        for i in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[i: i + batch])).float()
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            x = (x[:, :3] * 255).to(self.device)
            out.append(self._features(x).reshape(len(x), -1).double().cpu().numpy())
        return np.concatenate(out)

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self._kwargs is None:  # the StyleGAN-style Inception takes return_features=True
            try:
                y = self.net(x, return_features=True)
                self._kwargs = {"return_features": True}
                return y
            except (RuntimeError, TypeError, ValueError):  # no such keyword
                self._kwargs = {}
        return self.net(x, **self._kwargs)


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
