#!/usr/bin/env bash
# System packages the browser tests need: Debian's Chromium and ChromeDriver.
# Idempotent and fast when already installed; run as root (make test calls it).
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "setup-system.sh: chromium is missing and installing it needs root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -o DPkg::Lock::Timeout=120)
# Refresh the package lists only when apt does not know chromium yet.
if ! apt-cache show chromium >/dev/null 2>&1; then
    "${APT[@]}" update -q
fi
"${APT[@]}" install -y -q chromium chromium-driver
chromium --version
