"""Draw the figures of the docs from real computations (``python docs/make_figures.py``).

- ``images/alias_free_lrelu.png``: the spectrum of a leaky ReLU applied to a rotated sinusoid,
  directly at the signal's sampling rate (harmonics fold back: aliasing) and with
  ``filtered_lrelu`` (up-sample 2x, nonlinearity, low-pass, down-sample: no aliasing).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from napari_scalespace.ops import filtered_lrelu, lowpass_filter

HERE = Path(__file__).parent


def log_spectrum(img: torch.Tensor) -> np.ndarray:
    a = img[0, 0].double().numpy()
    a = a - a.mean()
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    s = np.abs(np.fft.fftshift(np.fft.fft2(a * window)))
    return 20 * np.log10(s / s.max() + 1e-6)


def alias_free_lrelu(path: Path) -> None:
    n, fs = 128, 128.0
    y, x = torch.meshgrid(torch.arange(n) / fs, torch.arange(n) / fs, indexing="ij")
    theta = math.radians(20)
    freq = 22.0  # cycles per unit: its 2nd and 3rd harmonics exceed Nyquist (64)
    wave = torch.cos(2 * math.pi * freq * (math.cos(theta) * x + math.sin(theta) * y))
    wave = wave[None, None]
    naive = torch.nn.functional.leaky_relu(wave, 0.2)
    f = lowpass_filter(48, cutoff=fs / 2 * 0.8, width=fs / 2 * 0.35, fs=2 * fs)
    pad = 47
    filtered = filtered_lrelu(wave, f, f, up=2, down=2, padding=pad, gain=1.0)
    crop = (filtered.shape[-1] - n) // 2
    filtered = filtered[..., crop:crop + n, crop:crop + n]
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.3))
    titles = ["input: one sinusoid", "leaky ReLU at the same rate\n(harmonics alias)",
              "filtered_lrelu\n(up 2x, ReLU, low-pass, down 2x)"]
    for ax, img, title in zip(axes, [wave, naive, filtered], titles, strict=True):
        ax.imshow(log_spectrum(img), vmin=-90, vmax=0, cmap="magma",
                  extent=(-fs / 2, fs / 2, fs / 2, -fs / 2))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("fx (cycles / unit)")
    axes[0].set_ylabel("fy (cycles / unit)")
    fig.suptitle("Spectra (dB): filtered_lrelu keeps the nonlinearity's harmonics from aliasing")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    alias_free_lrelu(HERE / "images" / "alias_free_lrelu.png")
    print("wrote", HERE / "images" / "alias_free_lrelu.png")
