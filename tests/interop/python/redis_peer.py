"""FastStream Redis peer of the interop suite: implements `specs/interop.yaml` for one run, on
Redis Streams or Pub/Sub, in FastStream's default message format (BinaryMessageFormatV1).

usage: redis_peer.py --run RUN --role service|client --kind stream|channel
                     [--url redis://127.0.0.1:6379]

role `service`: subscribes `interop.RUN.orders` (reports each order) and `interop.RUN.quotes`
(answers each quote request with a `quote`); role `client`: subscribes
`interop.RUN.shipments` (reports each shipment). Both run publish/request commands, to
streams (`--kind stream`) or channels (`--kind channel`).
"""

import asyncio

from faststream import Context
from faststream.redis import RedisBroker, StreamSub

from peer import arg, describe, emit, redis_channels_active, serve
from service import quote_for


async def main() -> None:
    run, role, kind = arg("run"), arg("role"), arg("kind")
    url = arg("url", "redis://127.0.0.1:6379")
    broker = RedisBroker(url)
    base = f"interop.{run}"
    names = ["orders", "quotes"] if role == "service" else ["shipments"]

    async def subscribed(_broker) -> None:
        if kind == "channel":
            await redis_channels_active(url, [f"{base}.{n}" for n in names])

    def source(name: str) -> dict:
        if kind == "stream":
            # A new stream per run: reading it from the start misses nothing. The service
            # reads through a consumer group (acks, as a FastStream service usually does).
            group = {"group": "orders-service", "consumer": "py"} if role == "service" else {}
            return {"stream": StreamSub(name, last_id="0", **group)}
        return {"channel": name}

    if role == "service":

        @broker.subscriber(**source(f"{base}.orders"))
        async def on_order(body: dict, msg=Context("message")) -> None:
            emit("received", channel="orders", **describe(msg))

        @broker.subscriber(**source(f"{base}.quotes"))
        async def on_quote(body: dict, msg=Context("message")) -> dict:
            emit("received", channel="quotes", **describe(msg))
            return quote_for(body)

    else:

        @broker.subscriber(**source(f"{base}.shipments"))
        async def on_shipment(body: dict, msg=Context("message")) -> None:
            emit("received", channel="shipments", **describe(msg))

    await serve(broker, lambda cmd: {kind: cmd["to"]}, settle=lambda: subscribed(broker))


asyncio.run(main())
