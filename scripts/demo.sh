#!/usr/bin/env bash
# Set up the environment if needed, then run the main job: train the `small` preset on the
# bundled H&E sample (1024 x 1024, 4 octaves of 64-px views) and render a strip of views of the
# learned scale space at zooms 0..4 around one point.
#   bash scripts/demo.sh            # STEPS=400 by default; resumes if runs/demo-he exists
#   STEPS=1000 bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-env.sh
STEPS="${STEPS:-400}"
RUN=runs/demo-he
IMAGE=src/napari_scalespace/data/samples/he_1024.jpg
if [[ -f "$RUN/config.json" ]]; then
    resume=(--resume)
else
    resume=()
fi
.venv/bin/napari-scalespace train "$IMAGE" --out "$RUN" --preset small --steps "$STEPS" \
    "${resume[@]}"
.venv/bin/napari-scalespace render "$RUN" --zoom 0 1 2 3 4 --center 0.5 0.5 \
    --out "$RUN/views.png"
echo "The scale space is in $RUN (config.json + safetensors checkpoints); views: $RUN/views.png"
