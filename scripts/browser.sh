#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver when they are missing (the dashboard and
# rendering tests drive a real headless browser). Needs root and apt-get; elsewhere it says
# what to install, and the browser tests then fail (they never skip).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser.sh: installing chromium and chromium-driver (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq chromium chromium-driver >/dev/null
else
    echo "browser.sh: install Debian's chromium and chromium-driver (as root: apt-get install chromium chromium-driver)" >&2
fi
