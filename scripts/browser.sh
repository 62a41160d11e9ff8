#!/usr/bin/env bash
# Installs Debian's chromium when it is missing (the dashboard and rendering tests drive a real
# headless browser, started directly: no chromedriver). Needs root and apt-get; elsewhere it says
# what to install, and the browser tests then fail (they never skip).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser.sh: installing chromium (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq chromium >/dev/null
else
    echo "browser.sh: install Debian's chromium (as root: apt-get install chromium)" >&2
fi
