#!/usr/bin/env bash
# The main job: set up, build the agent and every plugin (installed as plugins/<name>.wasm),
# then run the example suites once through the plugins and print the summary.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo plugins
# The example suites run `python3 -m pytest`; put the venv's python first.
PATH="$PWD/.venv/bin:$PATH" cargo run --quiet -p testmeter -- once --config examples/testmeter.toml
