#!/usr/bin/env bash
# Start-up time of the agent with 3 plugins loaded, with a cold and a warm compiled-plugin cache.
# Measures `testmeter plugins` (start, load every plugin, describe, exit), N runs each, and prints
# the median and the range. Usage: bench/startup.sh [debug|release] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
runs="${2:-7}"
flag=""
[ "$profile" = release ] && flag="--release"
cargo build -q -p testmeter $flag
cargo plugins >/dev/null
CARGO_TARGET_DIR=target/test-plugins cargo build -q --release --target wasm32-wasip2 -p testmeter-plugin-hostile
bin="target/$profile/testmeter"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/plugins"
cp plugins/osworld.wasm "$work/plugins/osworld.wasm"
cp target/test-plugins/wasm32-wasip2/release/testmeter_plugin_hostile.wasm "$work/plugins/hostile.wasm"
# The third plugin: langmem. (A copy of osworld with a custom section appended was used until a
# plugin's name became its identity: two files that declare one name are both refused, so that
# copy made `testmeter plugins` exit 1 and this script stop.)
cp plugins/langmem.wasm "$work/plugins/langmem.wasm"
printf 'plugins_dir = "plugins"\n[sandbox]\ncache_dir = "cache"\n' > "$work/testmeter.toml"

measure() {
    local start end
    start=$(date +%s%N)
    RUST_LOG=off "$bin" plugins --config "$work/testmeter.toml" >/dev/null
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 ))
}
stats() {
    sort -n | awk '{a[NR]=$1} END {printf "median %d ms (min %d, max %d, n=%d)\n", a[int((NR+1)/2)], a[1], a[NR], NR}'
}

echo "testmeter $profile build, $(ls "$work/plugins" | wc -l) plugins: $(cd "$work/plugins" && ls | tr '\n' ' ')"
echo "plugin sizes: $(cd "$work/plugins" && du -k -- * | awk '{printf "%s %d KiB; ", $2, $1}')"
cold=$(for _ in $(seq "$runs"); do rm -rf "$work/cache"; measure; done | stats)
rm -rf "$work/cache"; measure >/dev/null
warm=$(for _ in $(seq "$runs"); do measure; done | stats)
echo "cold cache: $cold"
echo "warm cache: $warm"

# Resident memory of the idle daemon with the 3 plugins loaded from the warm cache.
printf '[prometheus]\nlisten = "127.0.0.1:0"\n' >> "$work/testmeter.toml"
RUST_LOG=info "$bin" run --config "$work/testmeter.toml" 2>"$work/run.log" &
pid=$!
for _ in $(seq 100); do
    grep -q "serving /metrics" "$work/run.log" && break
    sleep 0.1
done
sleep 1
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
echo "idle daemon, 3 plugins from the cache: RSS $((rss / 1024)) MiB ($rss KiB), peak $((hwm / 1024)) MiB"
