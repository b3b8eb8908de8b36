#!/usr/bin/env bash
# Create .venv (plain pip: it installs torch from this machine's local mirror) and install salcodec with test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import salcodec" || { echo "setup failed: salcodec does not import" >&2; exit 1; }
