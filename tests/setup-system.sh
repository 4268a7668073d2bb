#!/usr/bin/env bash
# System packages the tests need from Debian: Chromium and ChromeDriver (browser tests); nginx,
# PostgreSQL, MariaDB and docker-compose (PostgreSQL and MariaDB store tests, compose validation,
# the local twin).
# Idempotent and fast when all are installed; needs root only to install (make test calls it).
# ARTGW_SKIP_BROWSER=1 leaves Chromium out (and skips the browser tests).
set -euo pipefail

missing=()
if [ "${ARTGW_SKIP_BROWSER:-}" != "1" ]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing+=(mariadb-server)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "tests/setup-system.sh: missing ${missing[*]}; run this script as root to install them" >&2
    echo "(ARTGW_SKIP_BROWSER=1 leaves out Chromium and the browser tests)." >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -o DPkg::Lock::Timeout=120 "$@"; }
# Refresh the package lists only when apt does not know a package yet, or they turn out stale.
for package in "${missing[@]}"; do
    if ! apt-cache show "$package" >/dev/null 2>&1; then
        apt_get update -q
        break
    fi
done
if ! apt_get install -y -q "${missing[@]}"; then
    apt_get update -q
    apt_get install -y -q "${missing[@]}"
fi
echo "tests/setup-system.sh: installed ${missing[*]}"
