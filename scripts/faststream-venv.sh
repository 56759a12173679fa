#!/usr/bin/env bash
# Creates the FastStream peer environment the interop suite (tests/interop) runs against:
# a Python virtual environment under target/faststream-venv with a pinned FastStream and the
# clients of every broker it talks to (extras nats, redis, rabbit, kafka, mqtt).
#
# Idempotent: when the environment already holds FastStream at the pinned version, it does
# nothing. The versions of every dependency are pinned by scripts/faststream-constraints.txt.
#
# usage: scripts/faststream-venv.sh
# env:   FASTSTREAM_VENV (default: <repo>/target/faststream-venv), PYTHON (default: python3)
set -euo pipefail

FASTSTREAM_VERSION="0.7.8"
EXTRAS="nats,redis,rabbit,kafka,mqtt"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FASTSTREAM_VENV:-$ROOT/target/faststream-venv}"
PYTHON="${PYTHON:-python3}"
CONSTRAINTS="$ROOT/scripts/faststream-constraints.txt"

installed() {
    [ -x "$VENV/bin/python" ] &&
        [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("faststream"))' 2>/dev/null)" = "$FASTSTREAM_VERSION" ] &&
        "$VENV/bin/python" -c 'import faststream.nats, faststream.redis, faststream.rabbit, faststream.kafka, faststream.mqtt' 2>/dev/null
}

if installed; then
    echo "faststream-venv: FastStream $FASTSTREAM_VERSION is installed in $VENV"
    exit 0
fi

echo "faststream-venv: installing FastStream $FASTSTREAM_VERSION [$EXTRAS] into $VENV"
command -v "$PYTHON" >/dev/null || { echo "faststream-venv: $PYTHON not found" >&2; exit 1; }
"$PYTHON" -m venv "$VENV"
constraints=()
[ -f "$CONSTRAINTS" ] && constraints=(-c "$CONSTRAINTS")
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${constraints[@]}" \
    "faststream[$EXTRAS]==$FASTSTREAM_VERSION"
installed || { echo "faststream-venv: FastStream $FASTSTREAM_VERSION did not install" >&2; exit 1; }
echo "faststream-venv: ready ($("$VENV/bin/python" --version), FastStream $FASTSTREAM_VERSION)"
