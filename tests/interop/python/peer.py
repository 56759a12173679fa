"""The shared loop of the interop suite's FastStream peers (see `src/lib.rs` for the protocol).

A peer script builds its FastStream broker and subscribers, then calls `serve(broker, target)`:
this starts the broker, waits until its subscriptions are active (`settle`), prints
`{"event": "ready"}`, and runs the commands read as JSON lines on
stdin until stdin closes. `target(cmd)` turns a command into the broker's destination: keyword
arguments (`{"subject": ...}` for NATS, `{"stream": ...}` or `{"channel": ...}` for Redis, ...)
or a string passed as the positional argument after the message (MQTT's `topic`).

Commands:
  {"id": N, "op": "publish", "to": ADDRESS, "body": JSON, "headers": {...}?, "correlation_id": "..."?}
  {"id": N, "op": "request", "to": ADDRESS, "body": JSON, "headers": {...}?, "correlation_id": "..."?,
   "timeout": SECONDS?}  -> the result carries the reply's `describe(...)` fields
"""

import asyncio
import json
import logging
import sys
from typing import Any, Awaitable, Callable

# FastStream's logs (and anything else) go to stderr: stdout is the protocol.
logging.basicConfig(stream=sys.stderr, level=logging.WARNING)


def emit(event: str, **fields: Any) -> None:
    """Print one protocol line."""
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")
    sys.stdout.flush()


def body_of(raw: bytes) -> Any:
    """JSON when the bytes are JSON, else text, else hex."""
    try:
        return json.loads(raw)
    except Exception:
        try:
            return raw.decode()
        except Exception:
            return raw.hex()


def describe(msg: Any) -> dict[str, Any]:
    """What a FastStream message carries, as the Rust side checks it."""
    raw = msg.body if isinstance(msg.body, (bytes, bytearray)) else bytes(msg.body)
    return {
        "body": body_of(raw),
        "headers": {k: v for k, v in dict(msg.headers or {}).items()},
        "correlation_id": msg.correlation_id,
        "reply_to": msg.reply_to or None,
        "content_type": msg.content_type or None,
    }


async def _run(broker: Any, target: Callable[[dict], Any], cmd: dict) -> dict:
    op = cmd.get("op")
    common = dict(
        headers=cmd.get("headers"),
        correlation_id=cmd.get("correlation_id"),
    )
    # `target` gives the destination as keyword arguments (a dict) or as the positional
    # argument after the message (a str).
    where = target(cmd)
    args, kwargs = ((where,), {}) if isinstance(where, str) else ((), where)
    if op == "publish":
        await broker.publish(cmd["body"], *args, **kwargs, **common)
        return {}
    if op == "request":
        reply = await broker.request(
            cmd["body"], *args, **kwargs, **common, timeout=float(cmd.get("timeout", 10))
        )
        return describe(reply)
    raise ValueError(f"unknown op {op!r}")


async def _command(broker: Any, target: Callable[[dict], Any], cmd: dict) -> None:
    try:
        result = await _run(broker, target, cmd)
        emit("result", id=cmd.get("id"), **result)
    except Exception as e:  # reported to the test, which fails with it
        emit("error", id=cmd.get("id"), error=f"{type(e).__name__}: {e}")


async def serve(
    broker: Any,
    target: Callable[[dict], Any],
    settle: Callable[[], Awaitable[Any]] | None = None,
) -> None:
    """Start `broker`, await `settle()` (what makes its subscriptions active on the server,
    e.g. a NATS flush), report readiness, run stdin commands until EOF, stop."""
    await broker.start()
    if settle is not None:
        await settle()
    emit("ready")
    tasks = set()
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            task = asyncio.create_task(_command(broker, target, json.loads(line)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
        await broker.stop()


async def redis_channels_active(url: str, channels: list[str]) -> None:
    """Wait until the server counts a subscriber on every channel (Pub/Sub has no ack)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        for _ in range(200):
            counts = dict(await client.pubsub_numsub(*channels))
            if all(counts.get(c.encode(), 0) > 0 for c in channels):
                return
            await asyncio.sleep(0.02)
        raise RuntimeError(f"channels never subscribed: {channels}")
    finally:
        await client.aclose()


def arg(name: str, default: str | None = None) -> str:
    """The value after `--name` on the command line."""
    argv = sys.argv[1:]
    flag = f"--{name}"
    if flag in argv and argv.index(flag) + 1 < len(argv):
        return argv[argv.index(flag) + 1]
    if default is None:
        raise SystemExit(f"missing {flag}")
    return default
