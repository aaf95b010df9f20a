"""napari sample data (File > Open Sample > napari scalespace): the two bundled crops and the
learned scale space of a small pretrained ``tiny`` run shipped with the package
(``data/samples/README.md`` says where each comes from and how it was made)."""

from __future__ import annotations

import numpy as np

from .data.samples import SAMPLES, sample_path, sample_run


def _image(name: str) -> list:
    from PIL import Image

    with Image.open(sample_path(name)) as im:
        data = np.asarray(im.convert("RGB"))
    return [(data, {"name": SAMPLES[name][0].rsplit(".", 1)[0], "rgb": True}, "image")]


def he() -> list:
    """H&E skin tissue, 1024 x 1024 (OpenSlide CMU-1-Small-Region, CC0)."""
    return _image("he")


def blue_marble() -> list:
    """NASA Blue Marble crop, 1024 x 1024 (public domain)."""
    return _image("blue_marble")


PRETRAINED_NAME = "scale space (pretrained tiny, H&E)"


def pretrained_he(progressive: bool = False) -> list:
    """The learned scale space of the shipped ``tiny`` run trained on the H&E crop: a lazy
    multiscale layer rendered tile by tile as you zoom (plain lazy levels by default; napari's
    File > Open Sample uses ``_widgets/reader_hook.py:pretrained_he``, which gives progressive
    levels their refresher)."""
    from .reader import scale_space_layer

    levels, kwargs, kind = scale_space_layer(sample_run(), device="cpu",
                                             progressive=progressive)
    kwargs["name"] = PRETRAINED_NAME
    return [(levels, kwargs, kind)]
