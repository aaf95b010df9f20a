"""The next step's real patches, read while the current step computes.

Reading patches is I/O and resampling (a whole-slide image decodes tiles); a training step is
network arithmetic. :class:`Prefetch` overlaps them: after a step (and after its checkpoint
and any change of plan), :meth:`Prefetch.start` draws the next step's views with the
trainer's random generator, in the same order as without prefetching, and hands the reading
(:meth:`.PatchDataset.batch_of`, no randomness) to one background thread; the next step
:meth:`Prefetch.take` s the batch. So the batches, and everything drawn after them, are those
of a run without prefetching.

Resume stays exact: the draw moved the generator one batch ahead of the last step, so a
checkpoint records the generator's state from *before* the draw (:meth:`Prefetch.rng_state`),
and a prefetch that will not be used (the run stops, the plan changes) is
:meth:`Prefetch.drop` ped: the generator goes back to that state, as if it had never drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..data.dataset import Batch, PatchDataset

__all__ = ["Prefetch"]


class Prefetch:
    """At most one batch read ahead of ``dataset`` (see the module docstring)."""

    def __init__(self, dataset: PatchDataset, rng: np.random.Generator) -> None:
        self.dataset, self.rng = dataset, rng
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[dict, float, int, Future] | None = None

    def start(self, batch: int, kimg: float, before: Callable[[], None] | None = None) -> None:
        """Draw the views of the next step (``batch`` views at progress ``kimg``; ``before``
        runs first, e.g. a distributed run's per-step reseeding) and start reading them."""
        self.drop()
        state = self.rng.bit_generator.state
        if before is not None:
            before()
        views = self.dataset.draw_views(batch, kimg)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="patches")
        self._pending = (state, kimg, batch, self._pool.submit(self.dataset.batch_of, views))

    def take(self, batch: int, kimg: float) -> Batch | None:
        """The prefetched batch, if one was started for ``batch`` views at ``kimg`` (else the
        prefetch is dropped and ``None`` returned: draw now)."""
        if self._pending is None:
            return None
        _, at, size, future = self._pending
        if at != kimg or size != batch:
            self.drop()
            return None
        self._pending = None
        return future.result()

    def rng_state(self) -> dict[str, Any]:
        """The generator's state as of the last step taken (for a checkpoint)."""
        return self._pending[0] if self._pending is not None else self.rng.bit_generator.state

    def drop(self) -> None:
        """Forget a prefetch that will not be used; the generator returns to its state from
        before the draw."""
        if self._pending is not None:
            state, _, _, future = self._pending
            self._pending = None
            if not future.cancel():  # running or done: let it finish, nobody takes it
                try:
                    future.result()
                except Exception:  # a failed read of a batch nobody takes
                    pass
            self.rng.bit_generator.state = state

    def close(self) -> None:
        self.drop()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
