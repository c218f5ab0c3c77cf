#!/usr/bin/env bash
# JUnit XML parse throughput of testmeter-parse against a Python baseline
# (xml.etree.ElementTree.iterparse, bench/iterparse_baseline.py), measured in one run on the
# same files: 1k, 10k and 100k pytest-style cases (bench/gen_junit.py; 100k is ~44 MB).
# testmeter-parse is measured twice: reading the whole report into a quick_junit::Report
# (`convert`'s path), and streaming it case by case into a sink that keeps nothing, with case
# properties and messages but no output or tracebacks (what the agent does for the osworld
# plugin). Prints the median time and peak RSS of each, and each speedup over Python.
# Usage: bench/parse.sh [runs-for-100k]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
runs_100k="${1:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --quiet --release -p testmeter-parse --example parse_report
parse="$root/target/release/examples/parse_report"
python="${PYTHON:-python3}"
printf '%-8s %6s | %9s %8s | %9s %8s | %9s %8s | %7s %7s\n' \
    cases MB "whole ms" "peak" "stream ms" "peak" "py ms" "py peak" "whole×" "stream×"
for cases in 1000 10000 100000; do
    file="$work/junit-$cases.xml"
    "$python" bench/gen_junit.py "$cases" "$file"
    case "$cases" in 1000) runs=41 ;; 10000) runs=11 ;; *) runs="$runs_100k" ;; esac
    whole="$("$parse" "$file" "$runs")"
    stream="$("$parse" --stream "$file" "$runs")"
    py="$("$python" bench/iterparse_baseline.py "$file" "$runs")"
    "$python" - "$file" "$whole" "$stream" "$py" <<'PY'
import json, os, sys
path, whole, stream, py = sys.argv[1], *map(json.loads, sys.argv[2:])
assert whole["cases"] == stream["cases"] == py["cases"], (whole, stream, py)
mb = os.path.getsize(path) / 1e6
ms = lambda r: r["median_s"] * 1e3
peak = lambda r: f'{r["peak_rss_bytes"] / 1e6:.1f}MB'
print(f'{whole["cases"]:<8} {mb:6.1f} | {ms(whole):9.1f} {peak(whole):>8} | {ms(stream):9.1f} {peak(stream):>8} | '
      f'{ms(py):9.1f} {peak(py):>8} | {py["median_s"] / whole["median_s"]:6.1f}x {py["median_s"] / stream["median_s"]:6.1f}x')
PY
done
