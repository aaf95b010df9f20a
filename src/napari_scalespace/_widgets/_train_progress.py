"""The Train widget's progress: a bar of steps and a line with the elapsed time and the ETA,
fed by the steps the worker yields (never touched from the worker's thread).

The ETA extrapolates the time per step measured since the first step of this session (the
start-up, and a resumed run's earlier steps, are not counted in it); with a time limit the run
ends at whichever comes first, the last step or the limit."""

from __future__ import annotations

import time

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget


def clock(seconds: float) -> str:
    """``1:02:03`` or ``2:03``."""
    s = round(max(0.0, seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress_text(step: int, total: int, elapsed: float, seconds_per_step: float | None,
                  time_limit: float | None = None, done: bool = False) -> str:
    """``step 12/400 · 0:31 elapsed · ETA 16:40``; ``time_limit`` (seconds since the start)
    ends the run early when it comes before the last step."""
    parts = [f"step {step}/{total}", f"{clock(elapsed)} elapsed"]
    if not done:
        remaining = None if seconds_per_step is None else (total - step) * seconds_per_step
        left = None if time_limit is None else max(0.0, time_limit - elapsed)
        if left is not None and (remaining is None or left < remaining):
            parts.append(f"ETA {clock(left)} (time limit)")
        else:
            parts.append("ETA " + ("after the next step" if remaining is None
                                   else clock(remaining)))
    return " · ".join(parts)


class TrainProgress(QWidget):
    """``begin(total, time_limit)`` when a run starts, ``step(n)`` for every yielded step,
    ``end()`` when the worker finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.bar = QProgressBar()
        self.bar.setFormat("%v / %m steps")
        self.label = QLabel("not started")
        self.label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self._timer = QTimer(self)  # the elapsed time advances between steps too
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self._show)
        self.total = self.current = 0
        self.time_limit: float | None = None
        self._t0 = 0.0
        self._first: tuple[int, float] | None = None  # (step, time) of this session's first step
        self._ended: float | None = None
        self.running = False

    def begin(self, total: int, time_limit: float | None = None) -> None:
        self.total, self.current, self.time_limit = total, 0, time_limit
        self.bar.setRange(0, max(1, total))
        self.bar.setValue(0)
        self._t0, self._first, self._ended = time.monotonic(), None, None
        self.running = True
        self._timer.start()
        self._show()

    def step(self, n: int) -> None:
        if self._first is None:
            self._first = (n, time.monotonic())
        self.current = n
        self.bar.setValue(min(n, self.bar.maximum()))
        self._show()

    def end(self) -> None:
        self.running = False
        self._timer.stop()
        self._ended = time.monotonic()
        self._show()

    def seconds_per_step(self) -> float | None:
        if self._first is None or self.current <= self._first[0]:
            return None
        return (time.monotonic() - self._first[1]) / (self.current - self._first[0])

    def _show(self) -> None:
        now = time.monotonic() if self._ended is None else self._ended
        self.label.setText(progress_text(self.current, self.total, now - self._t0,
                                         self.seconds_per_step(), self.time_limit,
                                         done=not self.running))
