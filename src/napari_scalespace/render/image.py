"""Render views of a run to arrays and image files (the ``render`` command).

Rendering reads only the run's config and its EMA generator (``checkpoint.load_generator``),
never the training code. Views are rendered with canvases widened by the preset's
``tile_margin`` (no border effects). Output values map back from [-1, 1] to [0, 1].
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint
from ..geometry import View
from ..model.config import Preset
from ..model.generator import Generator, latent


def load(run_dir: str | Path, device: str = "auto") -> tuple[Generator, dict]:
    """The run's EMA generator (eval mode) and the run's source info."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    G, _, _ = checkpoint.load_generator(run_dir, lambda p: Generator(p.generator),
                                             device=device)
    _, info = checkpoint.read_config(run_dir)
    return G, info


def scene_latent(G: Generator, info: dict, seed: int | None) -> torch.Tensor:
    """The latent of the run's scale space: the fixed one of a single-scene run, else ``seed``."""
    device = G.input_weight.device
    if seed is None and info.get("scenes", 1) == 1:
        return latent(G.cfg.z_dim, None, device)
    return latent(G.cfg.z_dim, 0 if seed is None else seed, device)


class ZoomWarning(UserWarning):
    """A view deeper than the zooms the model learned (it renders flat there)."""


def coverage(preset: Preset) -> str:
    """What a model covers in zoom, in words: ``"zooms 0 to 5 (3 octaves with data + 2
    learned past them)"``."""
    total, extra = preset.generator.octaves, preset.train.extra_octaves
    past = f" + {extra} learned past them" if extra else ""
    return f"zooms 0 to {total} ({preset.data_octaves} octaves with data{past})"


def warn_past_the_model(preset: Preset, views: list[View]) -> str | None:
    """Warn (:class:`ZoomWarning`, one line) when a view is deeper than the model's octaves
    (data + extra): there it has learned nothing and shows a flat colour. Returns the
    message, or ``None`` when every view is covered."""
    deepest = max((float(v.zoom) for v in views), default=0.0)
    if deepest <= preset.generator.octaves:
        return None
    msg = (f"zoom {deepest:g} is past what the model learned: it covers {coverage(preset)}; "
           f"deeper views show a flat colour")
    warnings.warn(msg, ZoomWarning, stacklevel=3)
    return msg


@torch.inference_mode()
def render_views(run_dir: str | Path, views: list[View], seed: int | None = None,
                 device: str = "auto") -> tuple[np.ndarray, dict]:
    """``[N, R, R, C]`` float32 images in [0, 1] of ``views``, and the run's source info.
    Views past the model's zoom range are rendered with a :class:`ZoomWarning`."""
    G, info = load(run_dir, device)
    warn_past_the_model(checkpoint.read_config(run_dir)[0], views)
    z = scene_latent(G, info, seed)
    out = G.render(views, z=z, extra=G.cfg.tile_margin)
    return to_unit(out).permute(0, 2, 3, 1).cpu().numpy(), info


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clipped."""
    return ((x + 1) / 2).clamp(0, 1)


def save_image(img: np.ndarray, path: str | Path) -> None:
    """Write an ``[H, W, C]`` image in [0, 1] as 8-bit (PNG/JPEG) or float (TIFF)."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, np.ascontiguousarray(img.squeeze(-1) if img.shape[-1] == 1
                                                    else img))
        return
    u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8).save(path)


def strip(images: np.ndarray, gap: int = 4) -> np.ndarray:
    """``[N, H, W, C]`` -> one ``[H, N*W + (N-1)*gap, C]`` image, white gaps between views."""
    n, h, w, c = images.shape
    out = np.ones((h, n * w + (n - 1) * gap, c), dtype=images.dtype)
    for i, img in enumerate(images):
        out[:, i * (w + gap): i * (w + gap) + w] = img
    return out
