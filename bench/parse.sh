#!/usr/bin/env bash
# JUnit XML parse throughput of testmeter-parse against a Python baseline
# (xml.etree.ElementTree.iterparse, bench/iterparse_baseline.py), measured in one run on the
# same files: 1k, 10k and 100k pytest-style cases (bench/gen_junit.py; 100k is ~34 MB).
# Prints the median time, MB/s and peak RSS of each, the speed ratio, and Rust's peak RSS
# against the file size. Usage: bench/parse.sh [runs-for-100k]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs_100k="${1:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --quiet --release -p testmeter-parse --example parse_report
parse="$root/target/release/examples/parse_report"
python="${PYTHON:-python3}"
printf '%-8s %8s | %10s %9s %10s | %10s %9s %10s | %7s %11s\n' \
    cases MB "rust ms" "rust MB/s" "rust peak" "py ms" "py MB/s" "py peak" "speedup" "peak/file"
for cases in 1000 10000 100000; do
    file="$work/junit-$cases.xml"
    "$python" bench/gen_junit.py "$cases" "$file"
    case "$cases" in 1000) runs=41 ;; 10000) runs=11 ;; *) runs="$runs_100k" ;; esac
    rust="$("$parse" "$file" "$runs")"
    py="$("$python" bench/iterparse_baseline.py "$file" "$runs")"
    "$python" - "$file" "$rust" "$py" <<'PY'
import json, os, sys
path, rust, py = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
assert rust["cases"] == py["cases"], (rust, py)
size = os.path.getsize(path)
mb = size / 1e6
print(f'{rust["cases"]:<8} {mb:8.1f} | {rust["median_s"]*1e3:10.1f} {mb/rust["median_s"]:9.0f} {rust["peak_rss_bytes"]/1e6:8.1f}MB | '
      f'{py["median_s"]*1e3:10.1f} {mb/py["median_s"]:9.0f} {py["peak_rss_bytes"]/1e6:8.1f}MB | '
      f'{py["median_s"]/rust["median_s"]:6.1f}x {rust["peak_rss_bytes"]/size:10.2f}x')
PY
done
