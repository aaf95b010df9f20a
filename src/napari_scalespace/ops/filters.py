"""Kaiser-window low-pass FIR design (the filters of the alias-free generator).

A layer with sampling rate ``fs`` keeps frequencies below ``cutoff`` and must suppress those above
``cutoff + width`` (its stopband). The windowed-sinc design gives an attenuation of
``A = 2.285 (N - 1) pi (2 width / fs) + 7.95`` dB for N taps, and the Kaiser window's shape
parameter ``beta`` follows from A (Kaiser's formula; ``scipy.signal.kaiser_beta``).

- separable: ``h[n] = 2 fc/fs sinc(2 fc/fs (n - (N-1)/2)) w[n]``, applied along x and then y;
- radial (isotropic): ``h[m, n] = fc J1(2 pi fc r) / r`` (the jinc, r the distance from the
  centre in units of 1/fs) times the outer product of Kaiser windows.

Both are normalised to a DC gain of exactly 1 (taps sum to 1).
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import scipy.special
import torch


def kaiser_beta(numtaps: int, width: float, fs: float) -> float:
    """Kaiser ``beta`` for ``numtaps`` taps and a transition band of ``width`` at rate ``fs``."""
    atten = scipy.signal.kaiser_atten(numtaps, width / (fs / 2))
    return float(scipy.signal.kaiser_beta(atten))


def lowpass_filter(
    numtaps: int,
    cutoff: float,
    width: float,
    fs: float,
    radial: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Design a low-pass filter: 1-D ``[numtaps]`` (separable) or 2-D ``[numtaps, numtaps]``.

    ``cutoff`` and ``width`` are in the same units as the sampling rate ``fs`` (cycles per unit
    length); ``numtaps == 1`` is the identity filter.
    """
    if not isinstance(numtaps, int) or numtaps < 1:
        raise ValueError(f"numtaps must be an int >= 1, got {numtaps!r}")
    if not fs > 0:
        raise ValueError(f"fs must be > 0, got {fs!r}")
    if not 0 < cutoff < fs / 2:
        raise ValueError(f"cutoff must lie in (0, fs/2) = (0, {fs / 2}), got {cutoff!r}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    if numtaps == 1:
        one = np.ones((1, 1) if radial else (1,))
        return torch.as_tensor(one, dtype=dtype)
    if not radial:
        h = scipy.signal.firwin(numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(h / h.sum(), dtype=dtype)
    n = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(n, n, indexing="ij"))
    safe = np.where(r > 0, r, 1.0)
    jinc = np.where(r > 0, cutoff * scipy.special.j1(2 * np.pi * cutoff * safe) / safe,
                    np.pi * cutoff**2)
    w = scipy.signal.windows.kaiser(numtaps, kaiser_beta(numtaps, width, fs))
    h = jinc * np.outer(w, w)
    return torch.as_tensor(h / h.sum(), dtype=dtype)
