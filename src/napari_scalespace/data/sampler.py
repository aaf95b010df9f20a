"""Progressive octave schedule: which octave (``floor(zoom)``) real patches come from.

For ``n`` octaves (0 = coarsest) at training progress ``t`` (thousands of images shown, kimg)
the probabilities are ``p = w / sum(w)`` with weights

- warm-up, ``t < warmup_kimg``: ``w = 2 ** linspace(m, 1, n)``,
  ``m = boost_first + (1 - boost_first) * t / warmup_kimg``. At ``t = 0`` the coarsest octave
  weighs ``2 ** (boost_first - 1)`` times the finest; at the end of the warm-up ``m = 1`` and
  all weights are 2: uniform. (Coarse structure is learned first.)
- afterwards: ``w = linspace(1, m, n)``, ``m = 1 + a * (boost_last - 1)``,
  ``a = clamp((t - warmup_kimg) / skew_kimg, 0, 1)``: from uniform to the finest octave weighing
  ``boost_last`` times the coarsest, reached ``skew_kimg`` after the warm-up and held.
  (The published code leaves ``a`` unclamped, so the skew keeps growing for the whole run;
  we clamp it so that every octave keeps a share that does not depend on the run's length.)
  ``skew_kimg = 0`` switches to the final skew at once.

Defaults (choices, not from the paper): ``warmup_kimg = 1000`` and ``skew_kimg = 4000`` (the
published runs are about 25,000 kimg: 4 % warm-up, skew complete at 20 %); ``boost_first = 3``
(coarsest 4x the finest at the start); ``boost_last = 3`` (finest 3x the coarsest at the end:
fine octaves hold most of the distinct content -- the published dataset has 60x more patches
per fine octave than at octave 0 -- while coarse octaves stay well represented). Short runs
(the ``tiny`` preset trains a few kimg) stay in the coarse-heavy warm-up: set ``warmup_kimg``
relative to the run length there.

Runs of a planned length (``fitted``): with ``P`` kimg planned, the warm-up lasts
``min(warmup_kimg, warmup_fraction * P)`` and the skew ``min(skew_kimg, skew_fraction * P)``,
so a run of a few kimg still reaches every octave's share, and a run longer than the fixed
schedule keeps it unchanged.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["OctaveSampler", "OctaveSchedule"]


@dataclass(frozen=True)
class OctaveSchedule:
    """Octave probabilities over training (see the module docstring for the formula).

    Fields: ``octaves`` n >= 1; ``warmup_kimg`` >= 0, length of the coarse-to-uniform warm-up;
    ``skew_kimg`` >= 0, time after the warm-up to reach the full fine skew; ``boost_first``
    >= 1, exponent of the coarsest octave's weight at t = 0 (1 = uniform from the start);
    ``boost_last`` >= 1, final weight of the finest octave relative to the coarsest.
    """

    octaves: int
    warmup_kimg: float = 1000.0
    skew_kimg: float = 4000.0
    boost_first: float = 3.0
    boost_last: float = 3.0

    def __post_init__(self) -> None:
        if isinstance(self.octaves, bool) or not isinstance(self.octaves, int | np.integer):
            raise ValueError(f"octaves must be an integer, got {self.octaves!r}")
        if self.octaves < 1:
            raise ValueError(f"octaves must be >= 1, got {self.octaves}")
        for name, low in (
            ("warmup_kimg", 0),
            ("skew_kimg", 0),
            ("boost_first", 1),
            ("boost_last", 1),
        ):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{name} must be a number, got {v!r}") from None
            if not (math.isfinite(v) and v >= low):
                raise ValueError(f"{name} must be finite and >= {low}, got {v!r}")
            object.__setattr__(self, name, v)
        object.__setattr__(self, "octaves", int(self.octaves))

    def fitted(self, planned_kimg: float, warmup_fraction: float,
               skew_fraction: float) -> OctaveSchedule:
        """This schedule for a run of ``planned_kimg``: warm-up and skew at most the given
        fractions of it (fractions of 0 leave the fixed lengths)."""
        def fit(length: float, fraction: float) -> float:
            return min(length, fraction * planned_kimg) if fraction > 0 else length

        return dataclasses.replace(self, warmup_kimg=fit(self.warmup_kimg, warmup_fraction),
                                   skew_kimg=fit(self.skew_kimg, skew_fraction))

    def probabilities(self, kimg: float) -> np.ndarray:
        """Octave probabilities ``[octaves]`` (float64, sum 1) at progress ``kimg``."""
        t = float(kimg)
        if not math.isfinite(t):
            raise ValueError(f"kimg must be finite, got {kimg!r}")
        n = self.octaves
        t = max(t, 0.0)
        if t < self.warmup_kimg:
            m = self.boost_first + (1.0 - self.boost_first) * t / self.warmup_kimg
            w = np.exp2(np.linspace(m, 1.0, n))
        else:
            rest = t - self.warmup_kimg
            a = 1.0 if self.skew_kimg == 0 else min(max(rest / self.skew_kimg, 0.0), 1.0)
            w = np.linspace(1.0, 1.0 + a * (self.boost_last - 1.0), n)
        return w / w.sum()


class OctaveSampler:
    """Draws octave indices from an :class:`OctaveSchedule` with a numpy ``Generator``
    (or an int seed)."""

    def __init__(self, schedule: OctaveSchedule, rng: np.random.Generator | int | None = None):
        self.schedule = schedule
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def draw(self, batch: int, kimg: float) -> np.ndarray:
        """``batch`` octave indices (int64) drawn independently at progress ``kimg``."""
        if isinstance(batch, bool) or not isinstance(batch, int | np.integer) or batch < 0:
            raise ValueError(f"batch must be an integer >= 0, got {batch!r}")
        p = self.schedule.probabilities(kimg)
        return self.rng.choice(self.schedule.octaves, size=int(batch), p=p).astype(np.int64)
