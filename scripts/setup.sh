#!/usr/bin/env bash
# Creates ./.venv (if missing) and installs microspider with its test and docs extras into it
# (the tests build the documentation site with mkdocs --strict).
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it skips a fresh install).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.microspider-installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q -e '.[test,docs]'
  touch "$stamp"
fi
