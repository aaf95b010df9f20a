#!/usr/bin/env bash
# Write constraints.txt from the packages in .venv: the exact versions the test suite passed
# with. scripts/setup-env.sh installs with it, so a fresh clone resolves the same set.
#   bash scripts/freeze-constraints.sh      # after an upgrade that the whole suite passed with
# torch is written without its local label (+cpu): the same pin then matches the CPU wheel here
# and, on a GPU machine, the CUDA build of the same release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
{
    echo "# Versions the test suite passed with (scripts/freeze-constraints.sh; $(date -u +%Y-%m-%d))."
    echo "# Used by scripts/setup-env.sh as pip's -c file. pyproject.toml keeps the open ranges."
    .venv/bin/python -m pip freeze --exclude-editable --disable-pip-version-check 2>/dev/null |
        grep -vE '^(-e |#)|napari-scalespace|@ file:' | sed -E 's/^(torch==[^+]+)\+.*/\1/' | sort -f
} > constraints.txt
echo "wrote constraints.txt ($(grep -vc '^#' constraints.txt) packages)"
