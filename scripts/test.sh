#!/usr/bin/env bash
# The test command: sets up ./.venv (and Debian's chromium, redis-server, nginx and python3.11-doc
# when missing), then runs the default test suite (about 15 minutes), which also builds the
# documentation site in strict mode (tests/test_docs.py: a broken link or a missing page fails).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m chaos` for the fault-injection suite.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
bash scripts/browser.sh
bash scripts/redis_tls.sh
bash scripts/realsite.sh
exec .venv/bin/python -m pytest -q "$@"
