"""Kaiser low-pass design: unit DC gain, symmetry, and the promised pass/stop bands."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

from napari_scalespace.ops.filters import lowpass_filter


def response_1d(h: np.ndarray, freqs: np.ndarray, fs: float) -> np.ndarray:
    n = np.arange(len(h)) - (len(h) - 1) / 2
    return np.abs(np.exp(-2j * np.pi * np.outer(freqs / fs, n)) @ h)


def response_2d(h: np.ndarray, fy: float, fx: float, fs: float) -> float:
    n = np.arange(h.shape[0]) - (h.shape[0] - 1) / 2
    ey, ex = np.exp(-2j * np.pi * fy / fs * n), np.exp(-2j * np.pi * fx / fs * n)
    return float(abs(ey @ h @ ex))


@pytest.mark.parametrize("numtaps", [1, 6, 7, 12, 24])
@pytest.mark.parametrize("radial", [False, True])
def test_dc_gain_is_one_and_filter_is_symmetric(numtaps, radial):
    h = lowpass_filter(numtaps, cutoff=4.0, width=3.0, fs=16.0, radial=radial).double().numpy()
    assert h.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(h, h[::-1, ...] if not radial else h[::-1, ::-1], atol=1e-7)
    if radial:
        np.testing.assert_allclose(h, h.T, atol=1e-7)


@pytest.mark.parametrize(("numtaps", "cutoff", "width", "fs"), [(24, 8.0, 4.0, 32.0),
                                                               (48, 10.0, 4.0, 64.0)])
def test_separable_filter_meets_its_kaiser_attenuation(numtaps, cutoff, width, fs):
    h = lowpass_filter(numtaps, cutoff, width, fs).double().numpy()
    delta = 10 ** (-scipy.signal.kaiser_atten(numtaps, width / (fs / 2)) / 20)
    passband = response_1d(h, np.linspace(0, cutoff - width / 2, 50), fs)
    stopband = response_1d(h, np.linspace(cutoff + width / 2, fs / 2, 50), fs)
    assert np.max(np.abs(passband - 1)) <= 2 * delta
    assert np.max(stopband) <= 2 * delta


def test_radial_filter_is_isotropic_and_stops_its_stopband():
    fs, cutoff, width = 32.0, 6.0, 5.0
    h = lowpass_filter(25, cutoff, width, fs, radial=True).double().numpy()
    for r in (cutoff + width, fs / 2 - 1):
        along_axis = response_2d(h, 0.0, r, fs)
        along_diagonal = response_2d(h, r / np.sqrt(2), r / np.sqrt(2), fs)
        assert along_axis < 0.02 and along_diagonal < 0.02
    low = 0.3 * cutoff
    assert response_2d(h, 0.0, low, fs) == pytest.approx(1.0, abs=0.02)
    assert response_2d(h, low / np.sqrt(2), low / np.sqrt(2), fs) == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(("kwargs", "name"), [
    (dict(numtaps=0, cutoff=1, width=1, fs=4), "numtaps"),
    (dict(numtaps=4, cutoff=3, width=1, fs=4), "cutoff"),
    (dict(numtaps=4, cutoff=1, width=0, fs=4), "width"),
    (dict(numtaps=4, cutoff=1, width=1, fs=0), "fs"),
])
def test_bad_design_arguments_raise_value_error(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lowpass_filter(**kwargs)
