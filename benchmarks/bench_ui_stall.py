"""Longest UI-thread stall while napari pans and zooms over the lazy scale-space layer.

Usage (needs a display; Xvfb is enough)::

    xvfb-run -a python benchmarks/bench_ui_stall.py [--seconds 20] [--octaves 6] [--modes ...]

For each mode a fresh process opens a shown napari viewer, adds the lazy multiscale layer of an
*untrained* ``tiny`` generator (``get_preset("tiny", octaves=N)``; the weights do not change the
cost of a tile) and drives the camera along a fixed path for ``--seconds``: the zoom goes from
the whole scene to 4 screen pixels per finest-level pixel and back while the centre circles the
scene (one camera step every 40 ms, all on the Qt event loop). A 10 ms ``QTimer`` heartbeat
records when the UI thread is free; a stall is a gap between heartbeats minus the 10 ms period.
Printed per mode: the longest stall, the 99th percentile, the number of stalls over 100 ms, the
generator calls and tiles rendered, and the final-frame check (the last screenshot is compared
with one taken after all tiles are in, to see that the picture completes).

Modes:
- ``sync``: napari's default (slicing on the UI thread; chunks are computed while it waits);
- ``async``: ``settings.experimental.async_ = True`` (napari slices on a worker thread);
- ``progressive``: our :func:`render.progressive.progressive_pyramid` levels (cached tiles at
  once, missing ones drawn from a coarser cached tile and rendered in the background, then the
  layer refreshes; what the plugin uses), napari's default slicing;
- ``progressive-async``: both.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

MODES = ("sync", "async", "progressive", "progressive-async")


def child(mode: str, seconds: float, octaves: int, threads: int | None) -> dict:
    import napari
    import numpy as np
    import torch
    from napari.settings import get_settings
    from qtpy.QtCore import QEventLoop, QTimer
    from qtpy.QtWidgets import QApplication

    from napari_scalespace.model.config import get_preset
    from napari_scalespace.model.generator import Generator
    from napari_scalespace.render.renderer import Renderer

    if threads:
        torch.set_num_threads(threads)
    # the mode's setting comes from NAPARI_ASYNC in the environment (set by main), so the
    # user's saved napari preferences are neither used nor changed
    assert get_settings().experimental.async_ == (mode in ("async", "progressive-async"))
    torch.manual_seed(0)
    G = Generator(get_preset("tiny", octaves=octaves).generator).eval()
    renderer = Renderer.from_generator(G, {"scenes": 1}, cache_mb=256)
    pass
    if mode.startswith("progressive"):
        from napari_scalespace.render.progressive import progressive_pyramid

        levels = progressive_pyramid(renderer, octaves)
    else:
        from napari_scalespace.render.pyramid import dask_pyramid

        levels = dask_pyramid(renderer, octaves)

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1000, 800)
    app = QApplication.instance()
    beats: list[float] = []
    heart = QTimer()
    heart.setInterval(10)
    heart.timeout.connect(lambda: beats.append(time.perf_counter()))
    t_add = time.perf_counter()
    layer = viewer.add_image(levels, multiscale=True, rgb=True, name="scale space")
    if mode.startswith("progressive"):
        from napari_scalespace._widgets._progressive import attach

        attach(layer, viewer)
    add_s = time.perf_counter() - t_add
    app.processEvents()
    h, w = levels[0].shape[:2]
    canvas = 700.0
    z_fit, z_fine = canvas / max(h, w), 4.0
    frames = int(seconds / 0.04)
    from napari_scalespace._widgets._napari_compat import viewer_camera

    camera = viewer_camera(viewer)
    state = {"i": 0}

    def step() -> None:
        i = state["i"]
        if i >= frames:
            mover.stop()
            loop.quit()
            return
        t = i / max(1, frames - 1)
        tri = 1 - abs(2 * t - 1)  # 0 -> 1 -> 0
        zoom = z_fit * (z_fine / z_fit) ** tri
        angle = 4 * math.pi * t
        radius = 0.3 * tri * min(h, w)
        camera.center = (h / 2 + radius * math.sin(angle), w / 2 + radius * math.cos(angle))
        camera.zoom = zoom
        state["i"] = i + 1

    loop = QEventLoop()
    mover = QTimer()
    mover.setInterval(40)
    mover.timeout.connect(step)
    renderer.reset_stats()
    heart.start()
    mover.start()
    t0 = time.perf_counter()
    child.t0 = t0  # for probes
    if os.environ.get("BENCH_PROFILE"):  # where the UI thread's time goes
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(loop.exec)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    else:
        loop.exec()
    wall = time.perf_counter() - t0
    heart.stop()
    stats = renderer.stats
    gaps = np.diff(np.asarray(beats)) * 1000 - 10 if len(beats) > 1 else np.zeros(1)
    worst = np.argsort(gaps)[::-1][:5]
    worst_at = [(round(float(beats[i] - t0), 2), round(float(gaps[i]))) for i in worst]
    # does the last view complete? let pending renders land (5 s), then look at it
    for _ in range(100):
        app.processEvents()
        time.sleep(0.05)
    try:
        settled = viewer.screenshot(canvas_only=True)
        blank = bool(settled[..., :3].std() < 1)
    except TimeoutError:  # napari's async slicer had not finished within its 5 s
        blank = None
    out = {
        "mode": mode, "octaves": octaves, "seconds": round(wall, 1), "frames": frames,
        "add_image_s": round(add_s, 3),
        "max_stall_ms": round(float(gaps.max()), 1),
        "p99_stall_ms": round(float(np.percentile(gaps, 99)), 1),
        "stalls_over_100ms": int((gaps > 100).sum()),
        "worst_at_s_ms": worst_at,
        "generator_calls": stats.generator_calls, "tiles_rendered": stats.tiles_rendered,
        "blank_final": blank,
        "torch_threads": torch.get_num_threads(),
    }
    viewer.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--octaves", type=int, default=6)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.seconds, args.octaves,
                                           args.threads)))
        return 0
    rows = []
    for mode in args.modes:
        cmd = [sys.executable, __file__, "--child", mode, "--seconds", str(args.seconds),
               "--octaves", str(args.octaves)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = dict(os.environ, NAPARI_ASYNC="1" if "async" in mode else "0")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
        line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(f"{mode}: failed (rc {res.returncode})\n{res.stderr[-3000:]}")
            return 1
        rows.append(json.loads(line[7:]))
    print(f"tiny, {args.octaves} octaves, {args.seconds:.0f} s of camera moves (40 ms steps), "
          "10 ms heartbeat")
    print(f"{'mode':12s} {'max stall':>10s} {'p99':>8s} {'>100ms':>7s} {'add_image':>10s} "
          f"{'calls':>6s} {'tiles':>6s} {'final blank':>12s}")
    for r in rows:
        print(f"{r['mode']:12s} {r['max_stall_ms']:8.0f}ms {r['p99_stall_ms']:6.0f}ms "
              f"{r['stalls_over_100ms']:7d} {r['add_image_s']:9.2f}s {r['generator_calls']:6d} "
              f"{r['tiles_rendered']:6d} {r['blank_final']!s:>12s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
