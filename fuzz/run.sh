#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 60) and print libFuzzer's execution counts.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
#
# usage: fuzz/run.sh [SECONDS] [TARGET...]
# env:   FUZZ_TARGET_DIR (default fuzz/target)
# Crashes land in fuzz/artifacts/<target>/; reproduce one with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

SECS="${1:-60}"
shift || true
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(loader generate json msgpack cbor text)
TARGET_DIR="${FUZZ_TARGET_DIR:-$HERE/target}"

# Seeds: every AsyncAPI document of the vendored corpus for the loader, a few payloads for JSON.
mkdir -p "$HERE/corpus/loader" "$HERE/corpus/generate" "$HERE/corpus/json"
find "$ROOT/tests/data" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -size -64k \
    -exec cp -n {} "$HERE/corpus/loader/" \; 2>/dev/null || true
cp -n "$HERE/corpus/loader/"* "$HERE/corpus/generate/" 2>/dev/null || true
printf '%s' '{"id":1,"name":"a","ts":2,"tags":["x"],"status":"new","shape":{"kind":"circle","radius":1.5},"value":[1,"b"],"extra":{"k":null},"child":{"id":2,"name":"c"}}' \
    >"$HERE/corpus/json/sample.json"

cd "$HERE"
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t"
    log="$(mktemp)"
    cargo +nightly fuzz run -O --target-dir "$TARGET_DIR" "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1 || {
        echo "{\"target\":\"$t\",\"result\":\"CRASH\",\"log\":\"$log\"}"
        continue
    }
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+.*DONE' "$log" | sed -E 's/.*cov: ([0-9]+).*/\1/' | tail -1)
    echo "{\"target\":\"$t\",\"seconds\":$SECS,\"executions\":${runs:-0},\"coverage\":${cov:-0},\"result\":\"ok\"}"
    rm -f "$log"
done
