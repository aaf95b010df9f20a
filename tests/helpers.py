"""Helpers shared by the test modules: a synthetic texture image, a tiny trained run, PSNR."""

from __future__ import annotations

import atexit
import functools
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

SHAPE = (256, 384)
"""The shared run's image: a 2:3 scene (extent (1, 1.5))."""


def texture(shape: int | tuple[int, int] = 96, channels: int = 3) -> np.ndarray:
    """A uint8 ``[H, W, channels]`` image: a tilted sinusoid (amplitude falling over the
    channels) plus Gaussian noise, seed 0; ``shape``: ``(H, W)`` or the side of a square."""
    h, w = (shape, shape) if isinstance(shape, int) else shape
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:h, :w] / h
    base = np.sin(12 * x + 3 * y)[..., None] * np.linspace(0.5, 1, channels)
    return ((base + 0.3 * rng.standard_normal((h, w, channels))) * 60 + 128).clip(
        0, 255).astype(np.uint8)


@functools.cache
def tiny_run() -> Path:
    """A 2-step ``tiny`` run (3 octaves) on a 256 x 384 texture, made once per test session and
    shared by the tests that render, export or show a run."""
    from PIL import Image

    from napari_scalespace.data import open_source
    from napari_scalespace.geometry import scene_extent
    from napari_scalespace.model.config import get_preset
    from napari_scalespace.train.trainer import Trainer

    root = Path(tempfile.mkdtemp(prefix="render_tests_"))
    atexit.register(shutil.rmtree, root, True)
    Image.fromarray(texture(SHAPE)).save(root / "img.png")
    source = open_source(str(root / "img.png"))
    info = {"images": [str(root / "img.png")], "scenes": 1, "channels": 3,
            "extent": list(scene_extent(source.height, source.width))}
    trainer = Trainer(root / "run", [source], get_preset("tiny", octaves=3, batch=2), seed=0,
                      source_info=info)
    for _ in trainer.run(2):
        pass
    return root / "run"


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float) -> float:
    """``10 log10(data_range^2 / MSE)`` of two tensors."""
    mse = (a - b).square().mean().item()
    return 10 * math.log10(data_range**2 / mse)
