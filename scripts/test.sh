#!/usr/bin/env bash
# Set up the environment if needed, then run the test suite; arguments go to pytest.
#   bash scripts/test.sh                    # everything (GUI tests run under Xvfb)
#   bash scripts/test.sh -q -x tests/test_cli.py
# The exit status is pytest's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup-env.sh
exec .venv/bin/python -m pytest "$@"
