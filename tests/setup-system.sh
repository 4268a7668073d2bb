#!/usr/bin/env bash
# System packages the browser tests need: Debian's Chromium and ChromeDriver.
# Idempotent and fast when already installed; needs root only to install (make test calls it).
# ARTGW_SKIP_BROWSER=1 skips both this and the browser tests.
set -euo pipefail

if [ "${ARTGW_SKIP_BROWSER:-}" = "1" ]; then
    exit 0
fi
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "tests/setup-system.sh: Chromium is missing; run this script as root to install it," >&2
    echo "or set ARTGW_SKIP_BROWSER=1 to skip the browser tests." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=120 "$@"; }
# Refresh the package lists only when apt does not know chromium yet, or they turn out stale.
if ! apt-cache show chromium >/dev/null 2>&1; then
    apt_get update -q
fi
if ! apt_get install -y -q chromium chromium-driver; then
    apt_get update -q
    apt_get install -y -q chromium chromium-driver
fi
chromium --version
