#!/usr/bin/env bash
# The test suite (fast tier). Pass `-m slow` for the opt-in slow tier.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest -q "$@"
