"""How many tiles to render per generator call: measured, not guessed.

Batching amortises per-call costs (Python, kernel launches, small convolutions that cannot fill
the cores), but larger batches also mean larger temporaries: on the CPU with glibc's default
allocator, every temporary over 32 MiB is a fresh ``mmap`` that page-faults on each call, and a
``small`` generator ran at 66 ms per view in batches of 16 against 35 ms in batches of 1
(docs/benchmarks.md). The best size depends on the model, the device, the allocator and the
machine's load, so :class:`BatchSizer` finds it from the renderer's own generator calls:

- it starts at 1 tile per call and doubles the size until one is more than ``worse`` (10 %)
  slower per tile than the best so far, or ``limit`` is reached (bounded by memory,
  :func:`batch_limit`); the curve is not monotone (a ``small`` generator: 1 and 2 tiles per
  call within 3 % of each other, 16 1.4x faster), so a size that does not help yet does not
  end the search;
- the first call at each size is a warm-up (oneDNN plans its kernels for new shapes) and is not
  counted; each size is then judged by the best of ``probes`` full calls;
- it settles on the smallest size within ``gain`` of the lowest time per tile, and starts
  measuring again from 1 after ``recheck`` further calls, so a change of load or allocator
  is followed.

Only calls that used the size asked for count (a leader may find fewer tiles pending); when
``stall`` calls in a row bring fewer tiles than the size being tried, the requests are too
small to tell and it settles on the best size measured so far. A fixed size
(``BatchSizer(fixed=8)``) disables all of this.
"""

from __future__ import annotations

import threading

__all__ = ["BatchSizer", "batch_limit"]


class BatchSizer:
    """Picks tiles per generator call from timed calls (see the module docstring)."""

    def __init__(self, fixed: int | None = None, limit: int = 32, probes: int = 2,
                 gain: float = 0.05, worse: float = 0.10, recheck: int = 500,
                 stall: int = 4) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"the batch size must be >= 1, got {fixed!r}")
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        self.fixed = fixed
        self.limit = int(limit)
        self.probes, self.gain, self.recheck = int(probes), float(gain), int(recheck)
        self.stall, self.worse = int(stall), float(worse)
        self._short = 0  # calls in a row with fewer tiles than the size being tried
        self._lock = threading.Lock()
        self._best: dict[int, float] = {}  # size -> best seconds per tile
        self._seen: dict[int, int] = {}  # size -> calls recorded (the first is a warm-up)
        self._trying = 1  # size being measured (until settled)
        self._settled: int | None = None
        self._since = 0

    @property
    def size(self) -> int:
        """The size to ask for in the next generator call."""
        if self.fixed is not None:
            return self.fixed
        with self._lock:
            return self._trying if self._settled is None else self._settled

    @property
    def settled(self) -> bool:
        return self.fixed is not None or self._settled is not None

    def per_tile(self) -> dict[int, float]:
        """Best measured seconds per tile by batch size (for reports and tests)."""
        with self._lock:
            return dict(sorted(self._best.items()))

    def record(self, n: int, seconds: float) -> None:
        """Report a generator call of ``n`` tiles that took ``seconds``."""
        if self.fixed is not None or n < 1:
            return
        with self._lock:
            if self._settled is not None:
                self._since += 1
                if self._since >= self.recheck:  # measure again: the machine may have changed
                    self._restart()
                return
            if n != self._trying:
                self._short = self._short + 1 if n < self._trying else 0
                if self._short >= self.stall and self._best:
                    self._settled = self._choice()
                return
            self._short = 0
            self._seen[n] = self._seen.get(n, 0) + 1
            if self._seen[n] == 1:
                return  # warm-up
            t = seconds / n
            self._best[n] = min(t, self._best.get(n, t))
            if self._seen[n] > self.probes:
                self._advance(n)

    def _restart(self) -> None:
        self._best.clear()
        self._seen.clear()
        self._trying, self._settled, self._since, self._short = 1, None, 0, 0

    def _advance(self, n: int) -> None:
        fastest = min(self._best.values())
        if self._best[n] <= (1 + self.worse) * fastest and 2 * n <= self.limit:
            self._trying = 2 * n
            return
        self._settled = self._choice()

    def _choice(self) -> int:
        """The smallest size within ``gain`` of the fastest (smaller batches: sooner tiles)."""
        fastest = min(self._best.values())
        return min(n for n, t in self._best.items() if t <= fastest * (1 + self.gain))


def batch_limit(view_bytes: int, budget_bytes: int = 1 << 30, cap: int = 32) -> int:
    """The largest power of two (at most ``cap``) whose views' activations fit the budget."""
    n = 1
    while 2 * n <= cap and 2 * n * view_bytes <= budget_bytes:
        n *= 2
    return n
