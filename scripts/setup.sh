#!/usr/bin/env bash
# Installs what testmeter's build, examples and tests need on a fresh Debian machine:
# the wasm32-wasip2 Rust target, Debian's prometheus (with promtool), a Python venv at .venv
# with pytest (the example suites) and rotel (a real OTLP collector for the tests), and
# @grafana/schema with typescript under tests/grafana (checks generated dashboards).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "setup: adding the wasm32-wasip2 Rust target"
    rustup target add wasm32-wasip2
fi

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
    echo "setup: installing Debian's prometheus"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# Debian's package may start a system Prometheus on :9090; the tests start their own.

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating the Python venv .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import pytest, rotel, prometheus_client" 2>/dev/null; then
    echo "setup: installing Python packages into .venv"
    .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
fi
# Tools the tests and the bench call: openssl (a test certificate), curl (TLS and auth
# checks), systemd-analyze (verifies the example unit), chromium (renders the status page
# headless), wrk (loads /metrics in bench/), time (peak RSS in bench/).
missing=""
command -v openssl >/dev/null || missing="$missing openssl"
command -v curl >/dev/null || missing="$missing curl"
command -v systemd-analyze >/dev/null || missing="$missing systemd"
command -v chromium >/dev/null || missing="$missing chromium"
command -v wrk >/dev/null || missing="$missing wrk"
[ -x /usr/bin/time ] || missing="$missing time"
if [ -n "$missing" ]; then
    echo "setup: installing Debian's$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "setup: installing Debian's nodejs and npm"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# @grafana/schema and typescript, to type-check generated dashboards (tests/grafana).
if [ ! -x tests/grafana/node_modules/.bin/tsc ] || [ ! -d tests/grafana/node_modules/@grafana/schema ]; then
    echo "setup: installing tests/grafana's npm packages"
    (cd tests/grafana && npm ci --no-audit --no-fund --silent)
fi
echo "setup: ok"
