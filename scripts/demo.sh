#!/usr/bin/env bash
# Set up the environment if needed, then run the main job: for now the ops benchmark
# (fast vs ref, quick mode). Extra arguments go to benchmarks/bench_ops.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-env.sh
exec .venv/bin/python benchmarks/bench_ops.py --quick "$@"
