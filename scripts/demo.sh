#!/usr/bin/env bash
# The one-command demo, from a fresh clone:  bash scripts/demo.sh [--hotels 3000] [demo options]
#
# Makes ./.venv (python3 -m venv) if it is missing, installs microspider into it
# (pip install -e '.[test]', only when it is not installed there yet or setup.py
# changed since), then runs python -m examples.ctrip.demo with the arguments given.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.microspider-installed   # setup.py newer than this: install again

if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || { echo "demo.sh: $PYTHON not found; install Python 3.9 or newer" >&2; exit 2; }
    echo "demo.sh: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip show -q microspider >/dev/null 2>&1 || [ setup.py -nt "$STAMP" ]; then
    echo "demo.sh: installing microspider into $VENV (pip install -e '.[test]')" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    touch "$STAMP"
fi
exec "$VENV/bin/python" -m examples.ctrip.demo "$@"
