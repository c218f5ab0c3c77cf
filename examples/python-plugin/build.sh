#!/usr/bin/env bash
# Builds the Python plugin into a component: build.sh OUT.wasm
# Needs componentize-py (scripts/requirements.txt puts it in .venv).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
out="${1:-$here/flaky-demo.wasm}"
componentize="${COMPONENTIZE_PY:-$root/.venv/bin/componentize-py}"
cd "$here"
"$componentize" -d "$root/wit" -w metrics-plugin componentize app -o "$out.partial"
mv "$out.partial" "$out"
