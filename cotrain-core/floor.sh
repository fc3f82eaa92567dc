#!/usr/bin/env bash
# Install cotrain-core's dependency floor (floor.txt) into a fresh virtual environment and run the
# trainer's tests there: the lower bounds in pyproject.toml are versions that really work.
#   cotrain-core/floor.sh [VENV_DIR] [pytest args...]     (default /tmp/cotrain-floor; ~5 GB, CUDA wheels)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VENV=${1:-/tmp/cotrain-floor}
shift || true
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/floor.txt" pytest jsonschema psutil
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e "$HERE"
"$VENV/bin/pip" list --disable-pip-version-check 2>/dev/null | grep -iE '^(torch|transformers|safetensors|tokenizers|numpy) '
cd "$HERE" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
