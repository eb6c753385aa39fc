#!/usr/bin/env bash
# The main job on its built-in default (extra arguments go to the `canvas-engineering` tool).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh" train  # the main job needs only [train]
cd "$root"
exec .venv/bin/canvas-engineering "$@"
