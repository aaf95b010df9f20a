#!/usr/bin/env bash
# The main job. Set up the environment if needed, then:
#  1. train the `small` preset on the bundled H&E sample (1024 x 1024, 4 octaves of 64-px views)
#     for STEPS steps or MINUTES minutes, whichever comes first (resumes runs/demo-he if there);
#  2. render a strip of views of the learned scale space at zooms 0..4 (views.png);
#  3. export the learned and the ground-truth OME-Zarr pyramids on one grid and evaluate the
#     scale space per octave against the image and bicubic zoom (compare/learned.zarr,
#     compare/truth.zarr, compare/metrics.json, compare/metrics.png, compare/contact_sheet.png);
#  4. open napari with the widgets, the lazy scale-space layer and learned | truth side by side;
#     without a display (or with SCREENSHOT=1) it writes a screenshot instead (napari.png).
#   bash scripts/demo.sh                       # STEPS=400 MINUTES=15 by default
#   STEPS=2000 MINUTES=60 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-env.sh
STEPS="${STEPS:-400}"
MINUTES="${MINUTES:-15}"
RUN=runs/demo-he
IMAGE=src/napari_scalespace/data/samples/he_1024.jpg
CLI=.venv/bin/napari-scalespace
if [[ -f "$RUN/config.json" ]]; then
    resume=(--resume)
else
    resume=()
fi
"$CLI" train "$IMAGE" --out "$RUN" --preset small --steps "$STEPS" --time-limit "$MINUTES" \
    "${resume[@]}"
"$CLI" render "$RUN" --zoom 0 1 2 3 4 --center 0.5 0.5 --out "$RUN/views.png"
# --reuse: keep pyramids made from this very checkpoint, replace older ones (a rerun resumes)
"$CLI" compare "$RUN" --out "$RUN/compare" --views 32 --reuse
if [[ -n "${DISPLAY:-}" && -z "${SCREENSHOT:-}" ]]; then
    "$CLI" show "$RUN" --compare "$RUN/compare"
else
    xvfb-run -a -s "-screen 0 1600x1000x24" "$CLI" show "$RUN" --compare "$RUN/compare" \
        --screenshot "$RUN/napari.png"
fi
echo "The scale space is in $RUN (config.json + safetensors checkpoints): views $RUN/views.png,"
echo "pyramids and evaluation (metrics.json, metrics.png, contact_sheet.png) in $RUN/compare,"
echo "napari: .venv/bin/napari-scalespace show $RUN --compare $RUN/compare"
