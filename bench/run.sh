#!/usr/bin/env bash
# The performance report in one command: installs what is missing, builds the release agent and
# the plugins, prepares the inputs and runs every comparison (bench/report.py), printing a table
# and writing docs/performance.md. `--quick` is CI's smoke run: the 10k case and a short /metrics
# load with the debug build, checked for agreement, timing nothing and writing nothing. The full
# run also measures two Rust anchors (bench/anchors: the junit-parser crate, a bare quick-xml
# loop) on the same reports. `--flat` prints only the peak-RSS rows of every report format,
# `--traces` only what traces add to an ingest.
# Usage: bench/run.sh [--quick | --flat | --traces]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
if [ "${1:-}" = --quick ]; then
    cargo build --quiet -p testmeter
    export TESTMETER_BIN="$PWD/target/debug/testmeter"
else
    cargo build --quiet --release -p testmeter -p testmeter-bench-anchors
fi
cargo plugins >/dev/null
exec .venv/bin/python bench/report.py "$@"
