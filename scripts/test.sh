#!/usr/bin/env bash
# The whole test suite: set up, check formatting, module structure and lints (host and
# wasm32-wasip2), build the plugins, then run every test. Tests start real Prometheus and rotel
# servers on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo fmt --all --check
# No import circle between the agent's modules (docs/architecture.md).
python3 scripts/module-cycles.py >/dev/null
cargo clippy -p testmeter -p testmeter-parse -p strip-ansi-escapes -p xtask --all-targets -- -D warnings
cargo clippy --release --target wasm32-wasip2 -p testmeter-plugin-sdk -p testmeter-plugin-osworld -p testmeter-plugin-langmem -p testmeter-plugin-waltzrl -p testmeter-plugin-hostile -p testmeter-plugin-legacy -p testmeter-plugin-whole-run -p testmeter-plugin-streamed-0-3 -p testmeter-plugin-future-wit -- -D warnings
cargo plugins
scripts/sdk-package.sh
# insta: never write snapshots in CI; a changed snapshot fails the run.
CI="${CI:-true}" cargo test --no-fail-fast -p testmeter -p testmeter-parse -p strip-ansi-escapes -p testmeter-plugin-sdk -p testmeter-plugin-langmem
# The performance report's smoke run: the 10k case and a short /metrics load with the debug
# build; it checks that testmeter and the baseline export the same series and times nothing.
bench/run.sh --quick
