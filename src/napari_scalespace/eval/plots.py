"""Pictures of an evaluation: metrics per octave (model vs bicubic) and a contact sheet.

matplotlib's object API with the Agg canvas (no pyplot state, safe in worker threads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..geometry import View, clamped_centre, random_centres
from .evaluate import PSNR_CAP, EvalReport
from .metrics import gradient_energy

__all__ = ["busiest_centre", "contact_sheet", "plot_comparison", "plot_metrics",
           "save_contact_sheet"]

# (title, model field, bicubic field or None, higher is better)
PANELS = [
    ("SWD x1000 vs truth (lower is better)", "swd", "swd_bicubic"),
    ("PSNR vs truth, dB", "psnr", "psnr_bicubic"),
    ("SSIM vs truth", "ssim", "ssim_bicubic"),
    ("scale consistency PSNR, dB", "consistency_psnr", "consistency_psnr_bicubic"),
    ("seam PSNR (half-overlapping views), dB", "seam_psnr", None),
    ("seam gradient ratio (1 = no seams)", "seam_gradient_ratio", None),
]


def _series(report: EvalReport, name: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [(o.octave, getattr(o, name)) for o in report.octaves if getattr(o, name) is not None]
    if not pts:
        return np.empty(0), np.empty(0)
    x, y = zip(*pts, strict=True)
    return np.asarray(x), np.asarray(y, dtype=float)


def plot_metrics(report: EvalReport, path: str | Path, title: str = "") -> Path:
    """Six panels, one metric each, model (solid) vs bicubic zoom (dashed) per octave; octaves
    finer than the data are shaded."""
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3)
    last = max((o.octave for o in report.octaves), default=0)
    for ax, (name, model, base) in zip(axes.ravel(), PANELS, strict=True):
        x, y = _series(report, model)
        ax.plot(x, y, "o-", color="tab:blue", label="model")
        if base:
            xb, yb = _series(report, base)
            ax.plot(xb, yb, "s--", color="tab:orange", label="bicubic zoom of zoom 0")
        if report.data_zoom < last:
            ax.axvspan(report.data_zoom, last + 0.5, color="0.9", zorder=0,
                       label="finer than the data")
        if model == "seam_gradient_ratio":
            ax.axhline(1.0, color="0.5", lw=0.8)
            ax.set_ylim(0, max(2.0, np.nanmax(y, initial=0) + 0.2))
        if model == "seam_psnr":
            ax.set_ylim(0, 105)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("octave (zoom)")
        ax.set_xticks(range(last + 1))
        ax.set_xlim(-0.5, last + 0.5)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(title or f"{Path(report.run).name or 'run'} vs {Path(report.truth).name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return path


# (title, field, baseline field or None, baseline label)
COMPARISON = [
    ("PSNR vs truth, dB (bicubic at zoom 0 = truth)", "psnr", "psnr_bicubic", "bicubic zoom"),
    ("SWD x1000 vs truth (lower is better)", "swd", "swd_bicubic", "bicubic zoom"),
    ("SSIM vs truth", "ssim", "ssim_bicubic", "bicubic zoom"),
    ("scale consistency PSNR, dB", "consistency_psnr", None, ""),
    ("detail: gradient energy x1000", "gradient_energy", "gradient_energy_truth", "truth"),
]


def plot_comparison(reports: list[EvalReport], labels: list[str], path: str | Path,
                    title: str = "") -> Path:
    """Several runs against one truth: one panel per metric, a line per run (and the
    baseline dashed), per octave; octaves finer than the data shaded."""
    fig = Figure(figsize=(16, 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(COMPARISON))
    last = max((o.octave for r in reports for o in r.octaves), default=0)
    data_zoom = reports[0].data_zoom
    for ax, (name, field_, base, base_label) in zip(axes, COMPARISON, strict=True):
        scale = 1000.0 if field_ == "gradient_energy" else 1.0
        for i, (r, label) in enumerate(zip(reports, labels, strict=True)):
            x, y = _series(r, field_)
            ax.plot(x, y * scale, "o-", color=f"C{i}", label=label)
        if base:
            x, y = _series(reports[0], base)
            ax.plot(x, y * scale, "s--", color="0.4", label=base_label)
        if data_zoom < last:
            ax.axvspan(data_zoom, last + 0.5, color="0.9", zorder=0)
        if field_ == "psnr":  # bicubic's zoom 0 is the truth (capped PSNR): keep the scale
            finite = [v for line in ax.get_lines() for v in line.get_ydata() if v < PSNR_CAP]
            if finite:
                ax.set_ylim(min(finite) - 2, max(finite) + 4)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("octave (zoom)")
        ax.set_xticks(range(last + 1))
        ax.set_xlim(-0.5, last + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title or f"vs {Path(reports[0].truth).name}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def busiest_centre(truth, zoom: float, seed: int = 0, candidates: int = 64
                   ) -> tuple[float, float]:
    """The centre, among ``candidates`` random ones, whose truth view at ``zoom`` has the most
    detail (mean squared gradient): a contact sheet of background says nothing."""
    rng = np.random.default_rng(seed)
    cy, cx = random_centres(zoom, truth.extent, candidates, rng)
    imgs = truth.render([View(zoom, float(y), float(x)) for y, x in zip(cy, cx, strict=True)])
    i = int(np.argmax(gradient_energy(imgs, per_view=True)))
    return float(cy[i]), float(cx[i])


def contact_sheet(providers: dict, centre: tuple[float, float], octaves: int
                  ) -> dict[str, np.ndarray]:
    """``{name: [octaves + 1, C, R, R]}``: the view around ``centre`` at every zoom
    0..octaves, from each provider (``render(views)``, ``extent``); each view is moved inside
    the scene where it would stick out (:func:`geometry.clamped_centre`)."""
    extent = next(iter(providers.values())).extent
    views = [View(k, *clamped_centre(k, extent, *centre)) for k in range(octaves + 1)]
    return {name: p.render(views) for name, p in providers.items()}


def save_contact_sheet(sheet: dict[str, np.ndarray], path: str | Path,
                       centre: tuple[float, float] | None = None) -> Path:
    """One row per zoom, one column per provider (e.g. learned | truth | bicubic)."""
    names = list(sheet)
    n = len(next(iter(sheet.values())))
    fig = Figure(figsize=(2.2 * len(names) + 0.6, 2.2 * n + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(n, len(names)))
    for k in range(n):
        for j, name in enumerate(names):
            ax = axes[k, j]
            img = sheet[name][k].transpose(1, 2, 0)
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(name)
            if j == 0:
                ax.set_ylabel(f"zoom {k} (x{2**k})")
    if centre is not None:
        fig.suptitle(f"centre ({centre[0]:.3f}, {centre[1]:.3f})", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path
