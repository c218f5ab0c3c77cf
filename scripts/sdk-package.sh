#!/usr/bin/env bash
# Packages testmeter-plugin-sdk as `cargo publish` would, and builds the plugin template
# against the package (not the workspace), so the SDK and the template work outside this
# repository: the WIT travels inside the package, and nothing reaches back into the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo package -p testmeter-plugin-sdk --no-verify --quiet
crate="$(ls -t target/package/testmeter-plugin-sdk-*.crate | head -n 1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -xzf "$crate" -C "$work"
sdk="$(find "$work" -maxdepth 1 -type d -name 'testmeter-plugin-sdk-*' | head -n 1)"
cp -r examples/plugin-template "$work/template"
sed -i "s|^testmeter-plugin-sdk = .*|testmeter-plugin-sdk = { path = \"$sdk\" }|" "$work/template/Cargo.toml"
grep -q "path = \"$sdk\"" "$work/template/Cargo.toml"
(cd "$work/template" && CARGO_TARGET_DIR="$OLDPWD/target/test-plugins" \
    cargo build --quiet --release --target wasm32-wasip2)
test -s target/test-plugins/wasm32-wasip2/release/testmeter_plugin_template.wasm
echo "the template builds against the packaged SDK ($(basename "$crate"))"
