#!/usr/bin/env bash
# Create (or reuse) an isolated venv with the full `mlflow server` for side-by-side benchmarks.
#
#   benchmarks/install_mlflow.sh            # venv at <repo>/.emu/mlflow-venv
#   MLFLOW_VENV=/some/dir benchmarks/install_mlflow.sh
#   MLFLOW_SPEC='mlflow==3.17.*' benchmarks/install_mlflow.sh   # skip the 3.18 upgrade
#
# This machine's PyPI mirror lacks mlflow-skinny/mlflow-tracing 3.18.0, so `pip install mlflow==3.18.0`
# fails. Route: install 'mlflow==3.17.*' (pulls every server dependency), then lay the 3.18.0 wheel
# over it with --no-deps; the wheel contains the whole mlflow/ package. If the 3.18 step fails the
# venv stays on 3.17, which is reported by `mlflow --version` and recorded in the results.
# boto3 is added so the server can use an s3:// destination (the --s3 workload).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MLFLOW_VENV:-$repo/.emu/mlflow-venv}"
base_spec="${MLFLOW_BASE_SPEC:-mlflow==3.17.*}"
upgrade_spec="${MLFLOW_SPEC:-mlflow==3.18.0}"
py="${PYTHON:-python3}"

if [[ -x "$venv/bin/mlflow" ]] && "$venv/bin/python" -W ignore -c 'import mlflow.server, boto3' 2>/dev/null; then
    echo "reusing $venv ($("$venv/bin/python" -W ignore -c 'import mlflow; print(mlflow.__version__)'))"
    exit 0
fi

mkdir -p "$(dirname "$venv")"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "$base_spec" boto3
if [[ "$upgrade_spec" != "$base_spec" ]]; then
    if ! "$venv/bin/pip" install -q --no-deps "$upgrade_spec"; then
        echo "warning: could not install $upgrade_spec; keeping $base_spec" >&2
    fi
fi
"$venv/bin/python" -W ignore -c 'import mlflow.server, boto3; print("installed mlflow", mlflow.__version__)'
