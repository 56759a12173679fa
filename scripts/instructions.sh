#!/usr/bin/env bash
# Instructions per consumed message on the in-memory consume path, counted by callgrind (stable
# on a noisy machine, unlike wall-clock figures).
#
# For each side (framework: memory broker → router → JSON decode → generated handler → ack;
# baseline: tokio mpsc + serde_json decode) it runs the bench binary's `consume-only` mode twice
# under `valgrind --tool=callgrind`: once consuming N prefilled messages and once with the same
# setup and prefill but no consuming (`--no-work`). The difference divided by N is the cost of
# consuming one message.
#
# Then the whole pipeline in steady state (publish → broker → consume, both on one thread):
# `memory-pipeline --threads 1 --only <side> --rounds 1` with N and N/4 messages (each plus its
# 1/10 warm-up round); the difference divided by the messages between them is the cost of one
# published and consumed message. This is where reuse across messages shows (a prefilled
# consume-only run never gets allocations back from consumed messages to publish with).
#
# usage: scripts/instructions.sh [N]            (default N = 100000)
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

# Total instructions (Ir) of one run of the bench binary: `instructions NAME ARGS...`.
instructions() {
    local file="$OUT/$1.out"
    shift
    valgrind --tool=callgrind --callgrind-out-file="$file" "$BIN" "$@" >"$OUT/last.json" 2>"$OUT/last.err" || {
        cat "$OUT/last.err" >&2
        exit 1
    }
    grep -E '^(summary|totals):' "$file" | head -1 | awk '{print $2}'
}

for side in framework baseline; do
    with=$(instructions "$side-work" consume-only --side "$side" --messages "$N")
    without=$(instructions "$side-idle" consume-only --side "$side" --messages "$N" --no-work)
    per=$(( (with - without) / N ))
    printf '{"scenario":"instructions","side":"%s","messages":%d,"instructions_with":%d,"instructions_without":%d,"instructions_per_msg":%d}\n' \
        "$side" "$N" "$with" "$without" "$per"
done

# A single-threaded memory-pipeline run of one side with `n` messages.
pipeline() {
    instructions "pipe-$1-$2" memory-pipeline --threads 1 --only "$1" --messages "$2" --rounds 1
}

SMALL=$(( N / 4 ))
for side in framework baseline; do
    big=$(pipeline "$side" "$N")
    small=$(pipeline "$side" "$SMALL")
    # Each run is a warm-up round of 1/10 plus the measured round.
    msgs=$(( (N + N / 10) - (SMALL + SMALL / 10) ))
    printf '{"scenario":"instructions-pipeline","side":"%s","messages":%d,"instructions_big":%d,"instructions_small":%d,"instructions_per_msg":%d}\n' \
        "$side" "$msgs" "$big" "$small" $(( (big - small) / msgs ))
done
