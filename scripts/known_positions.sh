#!/usr/bin/env bash
# Issue 10, docs/evaluation.md "Known positions": known vs unknown positions at the same CPU time.
#  For each image (the two of scripts/evaluation.sh, fetched by its data stage), train `small`
#  with --positions known and --positions unknown side by side, one CPU thread each, for the
#  same wall time (so the same CPU time under the same load), then evaluate both into one table.
#  Then the H&E pair for 35 minutes (known: per-octave weights), and runs with
#  --extra-octaves 2 on the bundled H&E sample (data up to zoom 4, rendered to zoom 6):
#  kp-extra with the preset's one feature bin (as it was run before bins followed the octaves),
#  kp-extra-bins3 with three (what `train --extra-octaves 2` now picks for zooms 0-6: bin k's
#  frequencies are 8^k times higher and switch on from zoom 3k - 1).
#   bash scripts/known_positions.sh                 # MINUTES=22 per pair, EXTRA_MINUTES=25
#   STAGES="eval extra" bash scripts/known_positions.sh   # only re-evaluate existing runs
#   PAIRS=0 bash scripts/known_positions.sh   # only the extra-octave runs (train + eval)
#   PAIRS=0 EXTRA_RUNS=kp-extra-bins3 EXTRA_MINUTES=30 bash scripts/known_positions.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MINUTES="${MINUTES:-22}"
EXTRA_MINUTES="${EXTRA_MINUTES:-25}"
STAGES="${STAGES:-train eval extra}"
PAIRS="${PAIRS:-1}"
EXTRA_RUNS="${EXTRA_RUNS:-kp-extra kp-extra-bins3}"
declare -A EXTRA_SET=([kp-extra]="--set num_bins=1" [kp-extra-bins3]="--set num_bins=3")
DATA="${DATA:-runs/eval-data}"
OUT=docs/evaluation
CLI=.venv/bin/napari-scalespace
declare -A IMAGES=([bluemarble]="$DATA/bluemarble_land_1536.png" [he]="$DATA/cmu_small_region.svs")
[[ -f "${IMAGES[he]}" ]] || STAGES="data" bash scripts/evaluation.sh

for name in $([[ "$PAIRS" == 1 ]] && echo bluemarble he); do
    if [[ " $STAGES " == *" train "* ]]; then
        for mode in known unknown; do
            "$CLI" train "${IMAGES[$name]}" --out "runs/kp-$name-$mode" --preset small \
                --steps 100000 --time-limit "$MINUTES" --threads 1 --seed 0 \
                --positions "$mode" > "runs/kp-$name-$mode.log" 2>&1 &
        done
        wait
    fi
    if [[ " $STAGES " == *" eval "* ]]; then
        mkdir -p "$OUT/kp-$name"
        "$CLI" eval "runs/kp-$name-known" "runs/kp-$name-unknown" --truth "${IMAGES[$name]}" \
            --json "$OUT/kp-$name" --plots "$OUT/kp-$name" --views 64 --quiet \
            > "$OUT/kp-$name/table.md"
    fi
done
# the H&E pair again, 35 minutes, the known run with per-octave reconstruction weights
name=he
if [[ "$PAIRS" == 1 && " $STAGES " == *" train "* ]]; then
    "$CLI" train "${IMAGES[$name]}" --out runs/kp-he35-known --preset small --steps 100000 \
        --time-limit 35 --threads 1 --seed 0 --positions known \
        --set "reconstruction_octaves=[4,2,1]" > runs/kp-he35-known.log 2>&1 &
    "$CLI" train "${IMAGES[$name]}" --out runs/kp-he35-unknown --preset small --steps 100000 \
        --time-limit 35 --threads 1 --seed 0 --positions unknown > runs/kp-he35-unknown.log 2>&1 &
    wait
fi
if [[ "$PAIRS" == 1 && " $STAGES " == *" eval "* ]]; then
    mkdir -p "$OUT/kp-he35"
    "$CLI" eval runs/kp-he35-known runs/kp-he35-unknown --truth "${IMAGES[$name]}" \
        --json "$OUT/kp-he35" --plots "$OUT/kp-he35" --views 64 --quiet > "$OUT/kp-he35/table.md"
fi
if [[ " $STAGES " == *" extra "* ]]; then
    he=src/napari_scalespace/data/samples/he_1024.jpg
    for run in $EXTRA_RUNS; do
        if [[ " $STAGES " == *" train "* ]]; then
            # shellcheck disable=SC2086  # EXTRA_SET holds separate arguments
            "$CLI" train "$he" --out "runs/$run" --preset small --extra-octaves 2 \
                ${EXTRA_SET[$run]} --steps 100000 --time-limit "$EXTRA_MINUTES" --threads 2 \
                --seed 0 > "runs/$run.log" 2>&1
        fi
        if [[ " $STAGES " == *" eval "* ]]; then
            mkdir -p "$OUT/$run"
            "$CLI" eval "runs/$run" --truth "$he" --json "$OUT/$run/report.json" \
                --plots "$OUT/$run" --markdown --views 64 --quiet > "$OUT/$run/table.md"
        fi
    done
fi
