"""Make ``tiny_he/``, the pretrained run shipped as sample data, from a trained run.

    napari-scalespace train he_1024.jpg --out /tmp/tinyhe --preset tiny --steps 3000 \
        --threads 2 --seed 0 --set memory_channels=4 --set memory_cells=8 \
        --set 'memory_canvases=[0,3]' --set memory_output=true \
        --set reconstruction_lowpass=true --set detail_weight=50
    python make_pretrained.py /tmp/tinyhe

(``tiny`` with a spatial memory as ``small`` has one: 4 channels, a cell per 4 pixels of the
finest octave, read at the input and the first 32-px canvas and added to the output.)

Copies ``config.json`` (its image path replaced by ``../he_1024.jpg``, relative to the run),
``latest`` and, of the latest checkpoint, ``state.json`` and ``generator_ema.safetensors``: a
render-only run (the other files of the checkpoint are not shipped, so it cannot resume
training). Run from this folder.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from napari_scalespace.checkpoint import CHECKPOINTS, CONFIG, LATEST, STATE, latest_checkpoint

HERE = Path(__file__).parent
OUT = HERE / "tiny_he"
KEEP = (STATE, "generator_ema.safetensors")


def main(run: Path) -> None:
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise SystemExit(f"{run} has no checkpoint")
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / CHECKPOINTS / ckpt.name).mkdir(parents=True)
    config = json.loads((run / CONFIG).read_text())
    config["source"]["images"] = ["../he_1024.jpg"]
    (OUT / CONFIG).write_text(json.dumps(config, indent=1) + "\n")
    shutil.copyfile(run / LATEST, OUT / LATEST)
    for name in KEEP:
        shutil.copyfile(ckpt / name, OUT / CHECKPOINTS / ckpt.name / name)
    print(f"wrote {OUT} from {ckpt}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
