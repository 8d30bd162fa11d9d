#!/usr/bin/env bash
# Install everything (into .venv) and run the whole test suite: lint, type check, tests.
# As root on Debian it also installs chromium, for the test that renders a run's report.html headless.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh all
# the report test renders report.html in headless Chromium (Debian's package); without it that test is skipped
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium (Debian package) for the report rendering test ..."
        export DEBIAN_FRONTEND=noninteractive  # no questions (keyboard, time zone) from the dependencies
        { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; } >/dev/null 2>&1 \
            || echo "note: could not install chromium; the report rendering test will be skipped" >&2
    else
        echo "note: chromium is not installed, so the report rendering test will be skipped; install it with" \
             "'sudo apt-get install chromium'" >&2
    fi
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/pytest -q
