#!/usr/bin/env bash
# Builds this Python plugin into a component: build.sh OUT.wasm
#
# OUT is relative to the directory you run this from. The plugin is two modules, and
# componentize-py finds them by name: app.py (the world: `describe`) and derive.py (the
# `derive` interface; it must be named exactly derive.py).
#
# Works from a copy outside the testmeter repository: the WIT is taken from $TESTMETER_WIT,
# else a wit/ dir beside this script, else the repository's (../../wit); componentize-py from
# $COMPONENTIZE_PY, else PATH, else the repository's .venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-flaky-demo.wasm}"
case "$out" in
    /*) ;;
    *) out="$PWD/$out" ;;
esac

wit="${TESTMETER_WIT:-}"
if [ -z "$wit" ]; then
    for candidate in "$here/wit" "$here/../../wit"; do
        if [ -f "$candidate/plugin.wit" ]; then
            wit="$candidate"
            break
        fi
    done
fi
if [ -z "$wit" ] || [ ! -f "$wit/plugin.wit" ]; then
    echo "build.sh: no plugin.wit found; set TESTMETER_WIT to the wit/ dir of testmeter" >&2
    exit 2
fi

componentize="${COMPONENTIZE_PY:-}"
if [ -z "$componentize" ]; then
    if command -v componentize-py >/dev/null; then
        componentize="$(command -v componentize-py)"
    elif [ -x "$here/../../.venv/bin/componentize-py" ]; then
        componentize="$here/../../.venv/bin/componentize-py"
    else
        echo "build.sh: componentize-py not found; pip install componentize-py, or set COMPONENTIZE_PY" >&2
        exit 2
    fi
fi

for module in app.py derive.py; do
    if [ ! -f "$here/$module" ]; then
        echo "build.sh: $here/$module is missing; the plugin is app.py (describe) and derive.py (the derive interface), named exactly so" >&2
        exit 2
    fi
done

mkdir -p "$(dirname "$out")"
cd "$here"
"$componentize" -d "$wit" -w metrics-plugin componentize app -o "$out.partial"
mv "$out.partial" "$out"
echo "built $out"
