"""The trainer: one ``step()`` is a discriminator update and a generator update.

- discriminator: logistic loss on real patches and on renders of the same views (positions of
  real patches are unknown to D: it sees the patch and, when scale-conditioned, the zoom);
  lazy R1 every ``r1_interval`` steps;
- generator: non-saturating loss plus ``consistency_weight`` times the scale-consistency loss;
  with known positions (one image) also ``reconstruction_weight`` times the reconstruction loss
  of each real patch's own view, weighted per octave (``reconstruction_octaves``);
- octaves beyond the data (``extra_octaves``): the generator renders the drawn view, the
  discriminator sees it with the zoom label of the real patch it is paired with (the finest
  data octave, see :mod:`..data.dataset`); no reconstruction there;
- the generator EMA (``G_ema``, what rendering uses) with a half-life of ``ema_kimg`` kimg,
  at most ``ema_rampup`` times the images shown so far (short runs follow the generator);
- one scene (pseudo-reconstruction; a collection of images at several pixel sizes is one
  scene too) uses one fixed latent, several scenes a random latent per sample (generation);
- progress is reported as :class:`StepEvent` after every step; ``run`` checks a cancel flag
  every step and checkpoints every ``checkpoint_every`` steps and at the end.

The trainer never touches Qt: the napari widget runs ``run`` in a thread worker and shows the
events it yields.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint
from ..data.collection import Collection
from ..data.dataset import PatchDataset
from ..data.patches import area_grid
from ..data.sampler import OctaveSchedule
from ..geometry import pixels_per_cell, scene_extent
from ..model.config import Preset
from ..model.discriminator import Discriminator
from ..model.generator import Generator, latent
from .consistency import consistency_loss, draw_teachers
from .distributed import Dist, rank_seed
from .losses import d_logistic, detail, g_nonsaturating, r1_penalty, reconstruction
from .prefetch import Prefetch
from .resume import preset_changes
from .run_start import RunStart, probe_sources


@dataclass(frozen=True)
class StepEvent:
    """What one training step did (yielded to progress bars and widgets)."""

    step: int
    total_steps: int | None
    kimg: float
    losses: dict[str, float]
    images_per_s: float
    octave_probabilities: list[float]
    seconds: float
    checkpoint: str | None = None


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device cuda was requested but torch sees no CUDA device")
    return torch.device(device)


class Trainer:
    """Train ``preset`` on ``sources`` (a list of images, one scene each, or a
    :class:`.Collection`) into the run directory ``run_dir``.

    ``resume=True`` continues from the run's latest checkpoint (its config wins over
    ``preset``: check what the user asked for with :func:`.resume.resume_preset` first, and pass
    the preset it returns to apply the settings that may change); otherwise a new run is
    created (an existing run is an error unless resuming).

    Nothing is written before the preset, the images and the networks are known to work
    together. The writing process (rank 0) then holds the run's :class:`.RunLock` from here
    until :meth:`run` ends (or :meth:`close`); a second trainer on the same folder fails with
    :class:`.RunBusyError`. A new run that fails before its first checkpoint removes what it
    created, so the same start can simply be repeated. ``notes`` lists what the user should
    be told (e.g. a leftover of a failed start that was replaced).
    """

    def __init__(
        self,
        run_dir: str | Path,
        sources: list,
        preset: Preset | None = None,
        *,
        seed: int = 0,
        device: str = "auto",
        threads: int | None = None,
        resume: bool = False,
        impl: str = "auto",
        source_info: dict | None = None,
        dist: Dist | None = None,
    ) -> None:
        if threads is not None:
            torch.set_num_threads(max(1, int(threads)))
        self.run_dir = Path(run_dir)
        self.dist = dist
        self.seed = int(seed)
        self.notes: list[str] = []
        self._start = RunStart(self.run_dir)
        self.device = pick_device(device)
        if dist is not None and self.device.type == "cuda":
            self.device = torch.device("cuda", dist.local_rank)
        if resume:
            recorded, _ = checkpoint.read_config(self.run_dir)
            refused = [] if preset is None else preset_changes(recorded, preset)[0]
            if refused:
                raise checkpoint.CheckpointError(
                    f"{self.run_dir}: the preset differs from the run's ({'; '.join(refused)})")
            preset = recorded if preset is None else preset  # session settings may differ
        elif preset is None:
            raise ValueError("preset is required for a new run")
        self.preset = preset
        g_cfg, d_cfg, t = preset.generator, preset.discriminator, preset.train
        self.cfg = t
        world = 1 if dist is None else dist.world
        if t.batch % world:
            raise ValueError(f"the batch ({t.batch}) must be a multiple of the number of "
                             f"processes ({world}): each draws batch / processes views")
        self.rank_batch = t.batch // world
        collection = isinstance(sources, Collection)
        one_image = len(sources) == 1 and not collection
        if t.positions == "auto":  # resolved when the run is created, and recorded
            t = dataclasses.replace(t, positions="known" if one_image else "unknown")
            self.preset = preset = dataclasses.replace(preset, train=t)
            self.cfg = t
        self.known_positions = t.positions == "known"
        if self.known_positions and not one_image:
            what = "a collection" if collection else f"{len(sources)} images"
            raise ValueError(f"positions=known needs one scene (one image) whose patches have "
                             f"known views; got {what}, whose positions are unknown to each "
                             f"other: use positions=unknown")
        probe_sources(sources)  # an unreadable image fails here, before anything is written
        # Mixed precision where it helps: bfloat16 autocast on CUDA (no loss scaling needed);
        # float32 on the CPU, where bfloat16 convolutions are slower.
        self.amp = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.rng = np.random.default_rng(seed)
        schedule = OctaveSchedule(g_cfg.octaves, warmup_kimg=t.warmup_kimg,
                                  skew_kimg=t.skew_kimg, boost_first=t.boost_first,
                                  boost_last=t.boost_last)
        self._schedule, self.planned_kimg = schedule, None
        self.dataset = PatchDataset(sources, g_cfg.octaves, g_cfg.resolution, seed=self.rng,
                                    schedule=schedule, extra_octaves=t.extra_octaves)
        self.prefetch = Prefetch(self.dataset, self.rng)
        self._rec_factors = torch.tensor([t.reconstruction_factor(k)
                                          for k in range(g_cfg.octaves)])
        if self.dataset.channels != g_cfg.channels:
            raise ValueError(f"the preset renders {g_cfg.channels} channel(s) but the images "
                             f"have {self.dataset.channels}")
        self.single_scene = self.dataset.scenes == 1  # one image, or a collection
        if g_cfg.memory_channels and not resume:  # resolved when the run is created
            g_cfg = self._resolve_memory(g_cfg)
            self.preset = preset = dataclasses.replace(preset, generator=g_cfg)
        torch.manual_seed(seed)
        self.G = Generator(g_cfg, impl=impl).to(self.device)
        if self.G.memory is not None and not resume:  # the image pyramid, as a head start
            memory, source = self.G.memory, self.dataset.sources[0]
            memory.init_from([area_grid(source, tuple(grid.shape[1:]), memory.cells_per_unit(k))
                              for k, grid in enumerate(memory.grids)])
        self.D = Discriminator(d_cfg).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=t.g_lr, betas=t.betas, eps=1e-8)
        r1_ratio = t.r1_interval / (t.r1_interval + 1)  # lazy regularisation correction
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=t.d_lr * r1_ratio,
                                      betas=tuple(b**r1_ratio for b in t.betas), eps=1e-8)
        self.step_count, self.kimg = 0, 0.0
        # Everything is known to fit: now the run folder (rank 0 writes it).
        try:
            if self.is_main:
                self.notes += (self._start.resume() if resume
                               else self._start.create(preset, source_info or {}))
            if dist is not None:
                dist.barrier()
                # identical anyway (same seed); made certain
                dist.broadcast_module(self.G)
                dist.broadcast_module(self.D)
                self.G_ema.load_state_dict(self.G.state_dict())
            if resume and checkpoint.latest_checkpoint(self.run_dir) is not None:
                self._load()
        except BaseException:
            self._start.abandon()
            raise
        if resume and self.step_count == 0 and self.is_main:
            self.notes.append(f"{self.run_dir} has no checkpoint yet: training starts at step "
                              f"0 with the run's config")
        self._finalizer = weakref.finalize(self, self._start.abandon)

    def _resolve_memory(self, g_cfg):
        """The spatial memory of a new run: over the one image's extent, with its levels for
        the data octaves; none where positions are unknown (nothing to place it by)."""
        if not self.known_positions:
            self.notes.append("no spatial memory: the patches' positions are unknown")
            return dataclasses.replace(g_cfg, memory_channels=0)
        source = self.dataset.sources[0]
        return dataclasses.replace(
            g_cfg, memory_extent=scene_extent(source.height, source.width),
            memory_levels=g_cfg.memory_grid_levels(self.preset.data_octaves))

    def close(self) -> None:
        """Release the run folder (training ends; :meth:`save` takes it again if needed).
        A new run that never saved a checkpoint is removed, like a failed start."""
        self.prefetch.close()
        self._start.abandon()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state --------------------------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        """Whether this process writes the run directory (rank 0, or the only process)."""
        return self.dist is None or self.dist.is_main

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.G, "generator_ema": self.G_ema, "discriminator": self.D}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g_opt": self.g_opt, "d_opt": self.d_opt}

    def plan(self, steps: int) -> None:
        """Fit the octave schedule to a run of ``steps`` steps in all (``warmup_fraction``,
        ``skew_fraction``; :meth:`.OctaveSchedule.fitted`), so that a short run reaches every
        octave's share. The plan is saved with each checkpoint and kept by a resume; a run
        never planned follows the fixed schedule in kimg."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        self._set_plan(steps * self.cfg.batch / 1000)

    def _set_plan(self, planned_kimg: float | None) -> None:
        self.prefetch.drop()  # drawn from the old schedule
        self.planned_kimg = planned_kimg
        schedule = self._schedule
        if planned_kimg is not None:
            schedule = schedule.fitted(planned_kimg, self.cfg.warmup_fraction,
                                       self.cfg.skew_fraction)
        self.dataset.set_schedule(schedule)

    def save(self, metrics: dict | None = None) -> Path:
        """Write a checkpoint (rank 0 only; every rank must call this, they meet here).

        With several processes the checkpoint's metrics record each rank's generator digest
        (``ranks.digests``): equal digests = ranks in sync."""
        metrics = dict(metrics or {})
        if self.planned_kimg is not None:
            metrics["planned_kimg"] = self.planned_kimg
        if self.dist is not None:
            metrics["ranks"] = {"world": self.dist.world,
                                "digests": self.dist.gather(weights_digest(self.G))}
        path = self.run_dir / checkpoint.CHECKPOINTS / checkpoint.checkpoint_name(
            self.step_count)
        if self.is_main:
            self._start.hold(self.step_count)
            state = np.random.default_rng()  # the draws as of this step, not a prefetch's
            state.bit_generator.state = self.prefetch.rng_state()
            rng = checkpoint.capture_rng(numpy_rng=state)
            path = checkpoint.save_checkpoint(self.run_dir, self.step_count, self.kimg,
                                              self.modules(), self.optimizers(), rng=rng,
                                              metrics=metrics)
            self._start.saved()
        if self.dist is not None:
            self.dist.barrier()
        return path

    def _load(self) -> None:
        state = checkpoint.load_checkpoint(self.run_dir, self.modules(), self.optimizers())
        self.step_count, self.kimg = int(state["step"]), float(state["kimg"])
        planned = (state.get("metrics") or {}).get("planned_kimg")
        self._set_plan(None if planned is None else float(planned))
        checkpoint.restore_rng(state.get("rng", {}), numpy_rng=self.rng)

    # -- one step -----------------------------------------------------------------------------
    def _latents(self, n: int) -> torch.Tensor:
        if self.single_scene:
            return latent(self.preset.generator.z_dim, None, self.device).expand(n, -1)
        return torch.randn(n, self.preset.generator.z_dim).to(self.device)

    def step(self) -> StepEvent:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            return self._step()

    def _step(self) -> StepEvent:
        t0 = time.perf_counter()
        t, dev = self.cfg, self.device
        if self.dist is not None:  # this rank's draws for this step, whatever came before
            torch.manual_seed(int(self._step_seed().generate_state(1, np.uint64)[0]
                                  >> np.uint64(1)))
        batch = self.prefetch.take(self.rank_batch, self.kimg)
        if batch is None:
            self._seed_draws()
            batch = self.dataset.draw(self.rank_batch, self.kimg)
        real = batch.images.to(dev)
        zoom, cy, cx = batch.zoom.to(dev), batch.cy.to(dev), batch.cx.to(dev)
        view_zoom = batch.render_zoom.to(dev)  # = zoom, except beyond the data
        losses: dict[str, float] = {}

        # Discriminator: fakes are judged with their real partner's zoom label.
        self.D.requires_grad_(True)
        z = self._latents(real.shape[0])
        with torch.no_grad():
            fake = self.G(z, view_zoom, cy, cx)
        do_r1 = t.r1_gamma > 0 and self.step_count % t.r1_interval == 0
        real_in = real.detach().requires_grad_(do_r1)
        real_logits = self.D(real_in, zoom)
        d_loss = d_logistic(real_logits, self.D(fake, zoom))
        losses["D"] = d_loss.item()
        if do_r1:
            r1 = r1_penalty(real_in, real_logits)
            d_loss = d_loss + r1 * (t.r1_gamma / 2 * t.r1_interval)
            losses["R1"] = r1.item()
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        if self.dist is not None:
            self.dist.average_grads(self.D)
        self.d_opt.step()

        # Generator.
        self.D.requires_grad_(False)
        fake = self.G(z, view_zoom, cy, cx, update_emas=True)
        g_loss = g_nonsaturating(self.D(fake, zoom))
        losses["G"] = g_loss.item()
        if self.known_positions and t.reconstruction_weight > 0:
            # where the batch has truth, ``fake`` is the render of each real patch's own view
            weight = self._rec_factors[batch.octave] * batch.has_truth
            if bool(weight.any()):
                rec = reconstruction(fake, real, weight, self._rec_pool(batch.octave))
                losses["reconstruction"] = rec.item()
                g_loss = g_loss + t.reconstruction_weight * rec
                if t.detail_weight > 0:
                    det = detail(fake, real, weight, rms=t.detail_rms)
                    losses["detail"] = det.item()
                    g_loss = g_loss + t.detail_weight * det
        self.g_opt.zero_grad(set_to_none=True)
        if t.consistency_weight > 0 and self.step_count % t.consistency_interval == 0:
            teachers = draw_teachers(view_zoom, self.rng)
            student = fake
            if teachers.teacher_learns:  # free the student's graph before the teacher's
                g_loss.backward()
                g_loss, student = g_loss.detach(), fake.detach()
            c_loss = consistency_loss(self.G, z, view_zoom, cy, cx, student,
                                      teachers=teachers)
            losses["consistency"] = c_loss.item()
            g_loss = g_loss + t.consistency_weight * c_loss
        g_loss.backward()
        if self.dist is not None:
            self.dist.average_grads(self.G)
        self.g_opt.step()
        if self.dist is not None:
            self.dist.average_buffers(self.G)
        self.step_count += 1
        self.kimg += t.batch / 1000
        self._update_ema(t.batch)
        seconds = time.perf_counter() - t0
        return StepEvent(
            step=self.step_count, total_steps=None, kimg=self.kimg, losses=losses,
            images_per_s=t.batch / seconds,
            octave_probabilities=self.dataset.schedule.probabilities(self.kimg).tolist(),
            seconds=seconds,
        )

    def _step_seed(self) -> np.random.SeedSequence:
        return rank_seed(self.seed, self.dist.rank, self.step_count)

    def _seed_draws(self) -> None:
        """A distributed run draws each step from this rank's seed for that step."""
        if self.dist is not None:
            seq = self._step_seed()
            self.rng.bit_generator.state = np.random.default_rng(seq).bit_generator.state

    def _rec_pool(self, octave: torch.Tensor) -> torch.Tensor | None:
        """Per sample, the block the reconstruction averages (``reconstruction_lowpass``):
        the view pixels one cell of the memory's finest level covers at its octave."""
        memory = self.G.memory
        if not self.cfg.reconstruction_lowpass or memory is None:
            return None
        finest = memory.cells_per_unit(memory.levels - 1)
        per_cell = pixels_per_cell(octave.numpy(), self.preset.generator.resolution, finest)
        pool = np.exp2(np.floor(np.log2(np.maximum(per_cell, 1.0))))
        return torch.from_numpy(pool.astype(np.int64)).to(self.device)

    @torch.no_grad()
    def _update_ema(self, batch: int) -> None:
        half_life = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup > 0:  # (called after kimg counts this step's images)
            half_life = min(half_life, self.kimg * 1000 * self.cfg.ema_rampup)
        beta = 0.5 ** (batch / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, steps: int, cancel: threading.Event | None = None,
            time_limit: float | None = None, plan: bool = False) -> Iterator[StepEvent]:
        """Train until ``steps`` total steps (counting resumed ones); yield after every step.

        ``time_limit`` (seconds from now) stops earlier, with a checkpoint. ``plan``: a run
        that has no plan yet gets one (:meth:`plan`): ``steps``, or with a time limit the
        steps that fit in it at the speed of its first steps, if fewer.

        The run folder is released when this ends (also by an error, an interrupt or when the
        caller stops iterating); an error before a new run's first checkpoint removes the
        run."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if time_limit is not None and not time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {time_limit!r}")
        if self.is_main:
            self._start.hold(self.step_count)
        try:
            yield from self._run(steps, cancel, time_limit, plan and self.planned_kimg is None)
        except Exception:
            self._start.abandon()  # a new run without a checkpoint goes
            raise
        finally:  # an interrupt keeps the run for a last save()
            self._start.release()

    def _run(self, steps: int, cancel: threading.Event | None, time_limit: float | None,
             plan: bool) -> Iterator[StepEvent]:
        every = self.cfg.checkpoint_every
        start, first = time.monotonic(), self.step_count
        if plan and time_limit is None:
            self.plan(steps)
        while self.step_count < steps:
            stop = cancel is not None and cancel.is_set()
            if time_limit is not None:
                stop = stop or time.monotonic() - start > time_limit
            if self.dist is not None:  # all ranks stop at the same step
                stop = self.dist.any(stop, self.device)
            if stop:
                break
            event = self.step()
            if plan and time_limit is not None and self.step_count - first == PLAN_AFTER:
                self.plan(planned_steps(steps, self.step_count, PLAN_AFTER,
                                        time.monotonic() - start, time_limit))
            path = None
            if self.step_count % every == 0 or self.step_count == steps:
                path = str(self.save({"losses": event.losses}))
            if self.step_count < steps:  # the next batch is read while the caller looks
                self.prefetch.start(self.rank_batch, self.kimg, self._seed_draws)
            yield StepEvent(**{**event.__dict__, "total_steps": steps, "checkpoint": path})
        self.prefetch.drop()
        if self.step_count < steps and self.step_count % every != 0:  # stopped early
            self.save()


PLAN_AFTER = 4
"""Steps timed before a run with a time limit is planned."""


def planned_steps(steps: int, at: int, timed: int, elapsed: float, time_limit: float) -> int:
    """The step a run will reach: ``steps``, or less when its last ``timed`` steps (now at
    step ``at``) took ``elapsed`` seconds of the ``time_limit``:
    ``at + (time_limit - elapsed) / (elapsed / timed)``."""
    per_step = elapsed / max(timed, 1)
    fit = at + max(time_limit - elapsed, 0.0) / max(per_step, 1e-9)
    return max(1, min(int(steps), int(fit)))


def weights_digest(module: torch.nn.Module) -> str:
    """A short hash of a module's parameters (equal on ranks that are in sync)."""
    import hashlib

    h = hashlib.sha256()
    for p in module.parameters():
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
