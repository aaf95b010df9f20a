"""The progressive octave schedule: its formula, its shape over training, and draws."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import chisquare

from napari_scalespace.data import OctaveSampler, OctaveSchedule

SCHED = OctaveSchedule(6, warmup_kimg=100.0, skew_kimg=400.0, boost_first=3.0, boost_last=4.0)


@given(st.integers(1, 12), st.floats(-10.0, 1e6))
def test_probabilities_are_a_distribution_over_the_octaves(n, kimg):
    p = OctaveSchedule(n).probabilities(kimg)
    assert p.shape == (n,)
    assert np.all(p > 0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_warmup_formula_at_its_middle():
    m = 3.0 + (1.0 - 3.0) * 0.5  # boost_first -> 1, halfway
    w = 2.0 ** np.linspace(m, 1.0, 6)
    np.testing.assert_allclose(SCHED.probabilities(50.0), w / w.sum())


def test_coarse_heavy_at_start_with_coarsest_over_finest_two_to_boost_first_minus_one():
    p = SCHED.probabilities(0.0)
    assert np.all(np.diff(p) < 0)
    assert p[0] / p[-1] == pytest.approx(2.0 ** (3.0 - 1.0))


def test_uniform_at_the_end_of_warmup_and_continuous_there():
    np.testing.assert_allclose(SCHED.probabilities(100.0), 1 / 6)
    np.testing.assert_allclose(SCHED.probabilities(100.0 - 1e-9), 1 / 6, atol=1e-9)


def test_fine_heavy_after_skew_with_finest_over_coarsest_boost_last_and_clamped():
    p = SCHED.probabilities(500.0)
    assert np.all(np.diff(p) > 0)
    assert p[-1] / p[0] == pytest.approx(4.0)
    np.testing.assert_allclose(SCHED.probabilities(10_000.0), p)  # a is clamped to 1
    half = np.linspace(1.0, 1.0 + 0.5 * 3.0, 6)  # a = 0.5 halfway through the skew
    np.testing.assert_allclose(SCHED.probabilities(300.0), half / half.sum())


def test_one_octave_is_always_drawn_and_zero_skew_switches_at_once():
    np.testing.assert_array_equal(OctaveSchedule(1).probabilities(0.0), [1.0])
    sched = OctaveSchedule(3, warmup_kimg=0.0, skew_kimg=0.0, boost_last=2.0)
    np.testing.assert_allclose(sched.probabilities(0.0), np.array([1.0, 1.5, 2.0]) / 4.5)


@pytest.mark.parametrize("kimg", [0.0, 60.0, 100.0, 250.0, 1000.0])
def test_draws_follow_the_probabilities_chi_square(kimg):
    sampler = OctaveSampler(SCHED, np.random.default_rng(1234))
    draws = sampler.draw(20_000, kimg)
    assert draws.dtype == np.int64 and draws.min() >= 0 and draws.max() < 6
    counts = np.bincount(draws, minlength=6)
    assert chisquare(counts, 20_000 * SCHED.probabilities(kimg)).pvalue > 1e-3


def test_same_seed_same_draws():
    a = OctaveSampler(SCHED, 7).draw(100, 20.0)
    b = OctaveSampler(SCHED, 7).draw(100, 20.0)
    np.testing.assert_array_equal(a, b)
    assert OctaveSampler(SCHED, 7).draw(0, 0.0).shape == (0,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"octaves": 0}, "octaves must be >= 1"),
        ({"octaves": 2.5}, "octaves must be an integer"),
        ({"octaves": 3, "warmup_kimg": -1}, "warmup_kimg"),
        ({"octaves": 3, "skew_kimg": float("nan")}, "skew_kimg"),
        ({"octaves": 3, "boost_first": 0.5}, "boost_first"),
        ({"octaves": 3, "boost_last": "x"}, "boost_last"),
    ],
)
def test_bad_schedules_raise_value_errors_naming_the_field(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OctaveSchedule(**kwargs)


def test_bad_draw_arguments_raise():
    with pytest.raises(ValueError, match="kimg"):
        SCHED.probabilities(float("inf"))
    with pytest.raises(ValueError, match="batch"):
        OctaveSampler(SCHED, 0).draw(-1, 0.0)
