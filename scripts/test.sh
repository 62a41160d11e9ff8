#!/usr/bin/env bash
# The test command: sets up ./.venv (and Debian's chromium and redis-server when missing), then runs the default
# test suite (about 6 minutes).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m chaos` for the fault-injection suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/browser.sh
bash scripts/redis_tls.sh
exec .venv/bin/python -m pytest -q "$@"
