#!/usr/bin/env bash
# Create .venv in the checkout (if needed) and install cnnkit into it, editable, with torch pinned by
# constraints.txt; then make sure Fashion-MNIST is on the machine (Debian package, needs root and apt).
# Usage: bash scripts/setup.sh [EXTRAS], e.g. bash scripts/setup.sh all
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

fashion=/usr/share/datasets/fashion-mnist
if [ ! -f "$fashion/train-images-idx3-ubyte.gz" ] && [ -z "${CNNKIT_DATA:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing Fashion-MNIST (Debian package dataset-fashion-mnist) ..."
        { apt-get install -y -qq dataset-fashion-mnist || { apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; }; } >/dev/null 2>&1 \
            || echo "note: could not install dataset-fashion-mnist; fashion-mnist runs need --data-dir DIR or \$CNNKIT_DATA" >&2
    else
        echo "note: Fashion-MNIST is not installed: run 'sudo apt-get install dataset-fashion-mnist', or put its four" \
             "*-ubyte.gz files in a folder and pass --data-dir DIR (or set CNNKIT_DATA)" >&2
    fi
fi
