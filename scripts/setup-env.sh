#!/usr/bin/env bash
# Prepare everything the tests and the demo need; safe to run again (a few seconds when done).
#
#   1. Debian packages napari/Qt need to render under Xvfb (installed only if missing, as root);
#   2. .venv in the repo root (python3.11, or python3 >= 3.10; override with PYTHON=...);
#   3. pip install torch==2.13.0 -e '.[testing]' -c constraints.txt into it, skipped while the
#      stamp .venv/.installed-<hash of pyproject.toml + constraints.txt> exists (SETUP_FORCE=1
#      reinstalls). constraints.txt pins every package to the version CI tested, so a fresh
#      machine resolves what passed here, not whatever PyPI pairs today; refresh it with
#      scripts/freeze-constraints.sh after a deliberate upgrade;
#   4. compile the fused CPU kernel (numba, cached after the first time).
#
# torch is pinned in the same pip command as the project: an unpinned torch would pull a
# multi-GB CUDA build instead of the CPU one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { echo "[setup-env] $*" >&2; }

# --- 1. Debian packages -----------------------------------------------------------------------
# xvfb (the X server pytest-xvfb starts) and the X/GL libraries Qt's xcb platform plugin and
# vispy's OpenGL need. Only xvfb, libxcb-icccm4 and libxcb-keysyms1 are usually missing; the
# rest are checked so that a slimmer base image works too.
APT_PACKAGES=(
    xvfb
    libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-cursor0
    libxcb-shape0 libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0
    libgl1 libegl1 libgl1-mesa-dri libfontconfig1 libdbus-1-3 libglib2.0-0
)
if command -v dpkg-query >/dev/null 2>&1; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        say "Debian packages for Xvfb/Qt: present"
    elif [[ "$(id -u)" -ne 0 ]]; then
        say "WARNING: missing Debian packages (${missing[*]}); not root, skipping." \
            "Run: sudo apt-get update && sudo apt-get install -y ${missing[*]}"
    else
        say "installing Debian packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    say "no dpkg-query (not Debian?): skipping system packages; Xvfb and Qt's xcb libraries" \
        "must be installed by other means for the GUI tests"
fi

# --- 2. virtual environment -------------------------------------------------------------------
VENV="$ROOT/.venv"
if [[ ! -x "$VENV/bin/python" ]]; then
    if [[ -e "$VENV" ]]; then
        say "ERROR: $VENV exists but has no bin/python; move it away and rerun"
        exit 1
    fi
    PY="${PYTHON:-}"
    if [[ -z "$PY" ]]; then
        for cand in python3.11 python3; do
            if command -v "$cand" >/dev/null 2>&1 &&
                "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
                PY="$cand"
                break
            fi
        done
    fi
    if [[ -z "$PY" ]]; then
        say "ERROR: need python3.11 (or python3 >= 3.10) on PATH, or PYTHON=/path/to/python"
        exit 1
    fi
    say "creating .venv with $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
else
    say ".venv: present ($("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
fi

# --- 3. project and its dependencies ----------------------------------------------------------
HASH="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
STAMP="$VENV/.installed-$HASH"
if [[ -f "$STAMP" && "${SETUP_FORCE:-0}" != "1" ]]; then
    say "packages: up to date (${STAMP#"$ROOT"/})"
else
    say "pip install torch==2.13.0 -e '.[testing]' -c constraints.txt (first time: a few minutes)"
    start=$SECONDS
    # Local-disk wheel locations of this machine kind's pip config that are absent here only
    # warn, once per package: keep the log readable.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt \
        torch==2.13.0 -e '.[testing]' 2> >(grep -v "^WARNING: Location 'file:" >&2)
    "$VENV/bin/python" -m pip check >/dev/null 2>&1 ||
        say "WARNING: pip check reports a conflict: $("$VENV/bin/python" -m pip check 2>&1 | head -3)"
    rm -f "$VENV"/.installed-*
    touch "$STAMP"
    say "packages installed in $((SECONDS - start)) s (stamp ${STAMP#"$ROOT"/})"
fi

# --- 4. the fused CPU kernel ------------------------------------------------------------------
# numba compiles ops/_numba_kernels.py and model/_memory_kernel.py on first use (about 15 s)
# and caches them in __pycache__;
# compiling it here spares the first render that wait. Skipped while the stamp for this
# version of the kernel exists and numba's cache is there.
KHASH="$(cat src/napari_scalespace/ops/_numba_kernels.py src/napari_scalespace/model/_memory_kernel.py \
    "$STAMP" | sha256sum | cut -c1-16)"
KSTAMP="$VENV/.fused-kernel-$KHASH"
if [[ -f "$KSTAMP" ]] && compgen -G "src/napari_scalespace/ops/__pycache__/_numba_kernels.*.nbi" \
        >/dev/null; then
    say "fused CPU kernel: compiled"
else
    start=$SECONDS
    if "$VENV/bin/python" -c 'from napari_scalespace.ops import _fused_cpu as k
from napari_scalespace.model import memory as m
raise SystemExit(not (k.warm_up() and m.warm_up()))'; then
        rm -f "$VENV"/.fused-kernel-*
        touch "$KSTAMP"
        say "fused CPU kernel: compiled in $((SECONDS - start)) s"
    else
        say "WARNING: the fused CPU kernel is unavailable (numba); rendering uses the torch passes"
    fi
fi
