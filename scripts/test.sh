#!/usr/bin/env bash
# Install everything (into .venv) and run the whole test suite: lint, type check, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest -q
