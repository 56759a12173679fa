#!/usr/bin/env bash
# Instructions per consumed message, ours vs upstream `ruststream` 0.7.7 (crates.io) vs the raw
# baseline (tokio mpsc + serde_json), counted by callgrind, on the bench's `Event {id, name, ts}`
# and on upstream's own bench message `Order {id: u64, quantity: u32}`.
#
# The difference method of scripts/instructions.sh: for each side and message the bench binary's
# `vs-upstream` scenario runs one prefilled consume on a current-thread runtime
# (RUSTSTREAM_BENCH_SIDE=ours|upstream|raw, RUSTSTREAM_BENCH_MESSAGE=event|order) under
# `valgrind --tool=callgrind`, once consuming N messages and once with the same setup and prefill
# but no consuming (`--no-work`); the difference divided by N is the cost of consuming one
# message. `overhead` is a side's figure minus raw's; `overhead_vs_upstream` is ours ÷ upstream's
# (issue 15's target: <= 0.5).
#
# usage: scripts/upstream-instructions.sh [N]     (default N = 100000)
# env:   CARGO_TARGET_DIR (default: target), KEEP=1 keeps the callgrind output files,
#        NO_BUILD=1 uses the binary already built.
set -euo pipefail

N="${1:-100000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/ruststream-bench"

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p ruststream-bench)
fi

OUT="$(mktemp -d)"
trap '[ "${KEEP:-0}" = 1 ] && echo "callgrind files kept in $OUT" >&2 || rm -rf "$OUT"' EXIT

# Total instructions (Ir) of one run: `instructions NAME SIDE MESSAGE ARGS...`.
instructions() {
    local file="$OUT/$1.out" side="$2" message="$3"
    shift 3
    RUSTSTREAM_BENCH_SIDE="$side" RUSTSTREAM_BENCH_MESSAGE="$message" \
        valgrind --tool=callgrind --callgrind-out-file="$file" "$BIN" vs-upstream "$@" \
        >"$OUT/last.json" 2>"$OUT/last.err" || {
        cat "$OUT/last.err" >&2
        exit 1
    }
    grep -E '^(summary|totals):' "$file" | head -1 | awk '{print $2}'
}

for message in event order; do
    declare -A per=()
    for side in ours upstream raw; do
        with=$(instructions "$side-$message-work" "$side" "$message" --messages "$N")
        without=$(instructions "$side-$message-idle" "$side" "$message" --messages "$N" --no-work)
        per[$side]=$(( (with - without) / N ))
        printf '{"scenario":"upstream-instructions","message":"%s","side":"%s","messages":%d,"instructions_with":%d,"instructions_without":%d,"instructions_per_msg":%d}\n' \
            "$message" "$side" "$N" "$with" "$without" "${per[$side]}"
    done
    ours=$(( per[ours] - per[raw] ))
    theirs=$(( per[upstream] - per[raw] ))
    ratio=$(awk -v o="$ours" -v t="$theirs" 'BEGIN { if (t > 0) printf "%.2f", o / t; else print "null" }')
    printf '{"scenario":"upstream-instructions","message":"%s","ours":%d,"upstream":%d,"raw":%d,"ours_overhead":%d,"upstream_overhead":%d,"overhead_vs_upstream":%s,"target":0.5}\n' \
        "$message" "${per[ours]}" "${per[upstream]}" "${per[raw]}" "$ours" "$theirs" "$ratio"
    unset per
done
