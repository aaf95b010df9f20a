"""Whole-slide-sized test images made from real texture (for bench_slides.py; never committed).

    python benchmarks/make_slides.py tiff runs/slides/he_16k.ome.tif --side 16384
    python benchmarks/make_slides.py zarr runs/slides/he_100k.ome.zarr --side 100000

The image is a real crop (default: the bundled H&E sample, CMU-1 small region, CC0) tiled with
mirror flips: ``[[I, I flipped left-right], [I flipped up-down, I rotated 180]]`` repeated, so
every edge meets its mirror image and the texture has no seams. Level k of the pyramid is the
2^k x 2^k block mean of level 0 (exactly: the period, twice the crop, is divisible by 2^k), as
slide scanners store them.

- ``tiff``: a pyramidal OME-TIFF like a scanner's (512-px tiles, zlib, ``--levels``
  sub-resolutions as SubIFDs, the pixel size in the OME metadata), written tile by tile.
- ``zarr``: an OME-Zarr (NGFF 0.5, zarr v3; axes c, y, x; the pixel size in its scale). Its
  chunks repeat with the texture's period, so each distinct chunk is written once and the
  others are hard links to it: a 100,000-px RGB level 0 (30 GB of pixels) takes a few MB of
  disk and a few seconds, and reads like any OME-Zarr (each chunk decoded from its file).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "napari_scalespace" / "data" / "samples" / "he_1024.jpg"
PIXEL_UM = 0.5
"""Pixel size written into the metadata (micrometres), that of a 20x scan."""


class Mirrored:
    """The infinite mirror tiling of an ``[h, w, C]`` uint8 crop and its 2^k block means."""

    def __init__(self, crop: np.ndarray) -> None:
        top = np.concatenate([crop, crop[:, ::-1]], axis=1)
        self.period = np.concatenate([top, top[::-1]], axis=0)  # [2h, 2w, C]
        self._levels = {0: self.period}

    def level_period(self, k: int) -> np.ndarray:
        """The period of level k: the 2^k block mean of level 0's, rounded."""
        if k not in self._levels:
            p = self.period.astype(np.float64)
            f = 2**k
            h, w = p.shape[0] // f, p.shape[1] // f
            if h * f != p.shape[0] or w * f != p.shape[1]:
                raise ValueError(f"the period {p.shape[:2]} is not divisible by 2^{k}")
            self._levels[k] = np.round(p.reshape(h, f, w, f, -1).mean(axis=(1, 3))).astype(
                np.uint8)
        return self._levels[k]

    def region(self, k: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows ``[r0, r1)``, columns ``[c0, c1)`` of level k: ``[r1 - r0, c1 - c0, C]``."""
        p = self.level_period(k)
        rows = np.arange(r0, r1) % p.shape[0]
        cols = np.arange(c0, c1) % p.shape[1]
        return p[rows][:, cols]


def load_crop(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def level_sides(side: int, levels: int) -> list[int]:
    return [side // 2**k for k in range(levels + 1)]


def write_tiff(out: Path, tiling: Mirrored, side: int, levels: int, tile: int = 512) -> None:
    """A pyramidal OME-TIFF: level 0 and ``levels`` sub-resolutions, ``tile``-px tiles, zlib."""
    import tifffile

    def tiles(k: int, n: int):
        for r in range(0, n, tile):
            for c in range(0, n, tile):
                block = np.zeros((tile, tile, 3), np.uint8)
                part = tiling.region(k, r, min(n, r + tile), c, min(n, c + tile))
                block[:part.shape[0], :part.shape[1]] = part
                yield block

    sides = level_sides(side, levels)
    meta = {"axes": "YXS", "PhysicalSizeX": PIXEL_UM, "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": PIXEL_UM, "PhysicalSizeYUnit": "µm"}
    with tifffile.TiffWriter(out, bigtiff=True, ome=True) as tif:
        opts = {"dtype": np.uint8, "tile": (tile, tile), "compression": "zlib",
                "photometric": "rgb"}
        tif.write(tiles(0, sides[0]), shape=(sides[0], sides[0], 3), subifds=levels,
                  metadata=meta, **opts)
        for k in range(1, levels + 1):
            tif.write(tiles(k, sides[k]), shape=(sides[k], sides[k], 3), subfiletype=1, **opts)


def write_zarr(out: Path, tiling: Mirrored, side: int, levels: int, chunk: int = 512) -> int:
    """An OME-Zarr whose repeated chunks are hard links; returns the chunk files written."""
    import zarr
    from ome_zarr.format import FormatV05
    from ome_zarr.writer import write_multiscales_metadata

    root = zarr.open_group(str(out), mode="w", zarr_format=3)
    sides = level_sides(side, levels)
    datasets, written = [], 0
    for k, n in enumerate(sides):
        arr = root.create_array(str(k), shape=(3, n, n), dtype=np.uint8,
                                chunks=(3, chunk, chunk), dimension_names=("c", "y", "x"))
        period = tiling.level_period(k).shape[0]
        first: dict[tuple[int, int], Path] = {}
        count = -(-n // chunk)
        for i in range(count):
            for j in range(count):
                cls = ((i * chunk) % period, (j * chunk) % period)
                path = out / str(k) / "c" / "0" / str(i) / str(j)
                if cls in first:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    os.link(first[cls], path)
                    continue
                r, c = i * chunk, j * chunk
                # a whole chunk, also at the edge: the file then serves interior positions too
                block = tiling.region(k, r, r + chunk, c, c + chunk).transpose(2, 0, 1)
                rows, cols = min(chunk, n - r), min(chunk, n - c)
                if rows == chunk and cols == chunk:
                    arr[:, r:r + chunk, c:c + chunk] = block
                    if path.exists():  # zarr skips a chunk of fill values
                        first[cls] = path
                else:
                    arr[:, r:r + rows, c:c + cols] = block[:, :rows, :cols]
                written += 1
        scale = PIXEL_UM * 2**k
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0, scale, scale]}]})
    axes = [{"name": "c", "type": "channel"},
            {"name": "y", "type": "space", "unit": "micrometer"},
            {"name": "x", "type": "space", "unit": "micrometer"}]
    write_multiscales_metadata(root, datasets=datasets, fmt=FormatV05(), axes=axes,
                               name=out.name)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["tiff", "zarr"])
    p.add_argument("out", type=Path)
    p.add_argument("--side", type=int, default=16384, help="pixels a side of level 0")
    p.add_argument("--levels", type=int, help="sub-resolutions (default: tiff 4, zarr down to "
                                               "about 400 px)")
    p.add_argument("--image", type=Path, default=SAMPLE, help="the crop to tile (RGB)")
    args = p.parse_args(argv)
    crop = load_crop(args.image)
    tiling = Mirrored(crop)
    most = int(np.log2(tiling.period.shape[0] & -tiling.period.shape[0]))  # 2-adic order
    levels = args.levels if args.levels is not None else (
        4 if args.kind == "tiff" else max(0, int(np.log2(args.side / 400))))
    levels = min(levels, most)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if args.kind == "tiff":
        write_tiff(args.out, tiling, args.side, levels)
        what = f"{args.out.stat().st_size / 2**20:.0f} MiB"
    else:
        files = write_zarr(args.out, tiling, args.side, levels)
        what = f"{files} distinct chunks"
    print(f"wrote {args.out}: {args.side} px a side, {levels} sub-resolutions, {what}, "
          f"{time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
