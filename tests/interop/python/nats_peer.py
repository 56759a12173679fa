"""FastStream NATS peer of the interop suite: implements `specs/interop.yaml` for one run.

usage: nats_peer.py --run RUN --role service|client [--url nats://127.0.0.1:4222]

role `service`: subscribes `interop.RUN.orders` (reports each order) and `interop.RUN.quotes`
(answers each quote request with a `quote`); role `client`: subscribes
`interop.RUN.shipments` (reports each shipment). Both run publish/request commands.
"""

import asyncio

from faststream import Context
from faststream.nats import NatsBroker

from peer import arg, describe, emit, serve
from service import quote_for


async def main() -> None:
    run, role = arg("run"), arg("role")
    broker = NatsBroker(arg("url", "nats://127.0.0.1:4222"))
    base = f"interop.{run}"

    if role == "service":

        @broker.subscriber(f"{base}.orders")
        async def on_order(body: dict, msg=Context("message")) -> None:
            emit("received", channel="orders", **describe(msg))

        @broker.subscriber(f"{base}.quotes")
        async def on_quote(body: dict, msg=Context("message")) -> dict:
            emit("received", channel="quotes", **describe(msg))
            return quote_for(body)

    else:

        @broker.subscriber(f"{base}.shipments")
        async def on_shipment(body: dict, msg=Context("message")) -> None:
            emit("received", channel="shipments", **describe(msg))

    # A flush (PING/PONG) makes the server process the subscriptions before `ready`.
    await serve(broker, lambda cmd: {"subject": cmd["to"]}, settle=lambda: broker.connection.flush())


asyncio.run(main())
