#!/usr/bin/env bash
# Install if needed, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# the HTML report test drives headless Chromium: install Debian's package where we can (CI runs as root)
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; } >/dev/null 2>&1 \
        || echo "warning: could not install chromium; the browser check of the HTML report will be skipped" >&2
fi
exec .venv/bin/python -m pytest -q "$@"
