#!/usr/bin/env bash
# Create .venv in the checkout (if needed) and install cnnkit into it, editable, with torch pinned by
# constraints.txt. Usage: bash scripts/setup.sh [EXTRAS], e.g. bash scripts/setup.sh dev,figures
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
target="."
if [ -n "$extras" ]; then
    target=".[$extras]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$target"
