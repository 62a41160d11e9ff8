#!/usr/bin/env bash
# Installs Debian's nginx and python3.11-doc when they are missing: the real-site test
# (tests/test_realsite.py) and benchmark (benchmarks/realsite.py) crawl that package's HTML
# manual served by nginx on 127.0.0.1. Needs root and apt-get; elsewhere it says what to
# install, and the real-site test then fails (it never skips).
set -euo pipefail
if command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; then
    if [ -f /usr/share/doc/python3.11/html/index.html ]; then
        exit 0
    fi
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "realsite.sh: installing nginx and python3.11-doc (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq nginx python3.11-doc >/dev/null
    # the package's own server is not needed (the tests start nginx on a free port)
    if command -v systemctl >/dev/null; then systemctl disable --now nginx >/dev/null 2>&1 || true; fi
else
    echo "realsite.sh: install Debian's nginx and python3.11-doc (as root: apt-get install nginx python3.11-doc)" >&2
fi
