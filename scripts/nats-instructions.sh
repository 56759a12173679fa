#!/usr/bin/env bash
# Instructions per message in the bench process for `nats-pipeline`, one side at a time, counted
# by callgrind (nats-server's own work is not included; it is the same for both sides).
#
# For each side it runs `ruststream-bench nats-pipeline --only <side> --rounds 1` under
# `valgrind --tool=callgrind` with 40,000 and with 10,000 messages (each plus its 1/10 warm-up
# round); the difference divided by 33,000 is the cost of one message.
#
# usage: scripts/nats-instructions.sh [framework|baseline|both]   (default both)
# env:   CARGO_TARGET_DIR (default: target), NO_BUILD=1 uses the binary already built,
#        NATS_URL (default nats://127.0.0.1:4222).
set -euo pipefail

SIDE="${1:-both}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/ruststream-bench"

command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p ruststream-bench)
fi

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# Total instructions (Ir) of one run of `side` with `n` messages.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1.$2" \
        "$BIN" nats-pipeline --only "$1" --messages "$2" --rounds 1 2>&1 >/dev/null \
        | sed -n 's/.*refs: *//p' | tr -d ','
}

for side in framework baseline; do
    [ "$SIDE" = both ] || [ "$SIDE" = "$side" ] || continue
    big=$(instructions "$side" 40000)
    small=$(instructions "$side" 10000)
    echo "$side: $(( (big - small) / 33000 )) instr/msg ($big - $small instructions)"
done
