"""FastStream RabbitMQ peer of the interop suite: implements `specs/interop.yaml` for one run.

usage: rabbit_peer.py --run RUN --role service|client [--exchange rsinterop]
                      [--url amqp://guest:guest@127.0.0.1:5672/]

Every address is a routing key on the topic exchange `--exchange` (durable), the one the
RustStream side is configured with. role `service`: queues bound to `interop.RUN.orders`
(reports each order) and `interop.RUN.quotes` (answers each quote request with a `quote`);
role `client`: a queue bound to `interop.RUN.shipments` (reports each shipment). Both run
publish/request commands, published to the exchange.
"""

import asyncio

from faststream import Context
from faststream.rabbit import ExchangeType, RabbitBroker, RabbitExchange, RabbitQueue

from peer import arg, describe, emit, serve
from service import quote_for


async def main() -> None:
    run, role = arg("run"), arg("role")
    broker = RabbitBroker(arg("url", "amqp://guest:guest@127.0.0.1:5672/"))
    exchange = RabbitExchange(arg("exchange", "rsinterop"), type=ExchangeType.TOPIC, durable=True)
    base = f"interop.{run}"

    def queue(key: str) -> RabbitQueue:
        # One queue per run and routing key, gone when the peer disconnects.
        return RabbitQueue(f"fs.{key}", routing_key=key, auto_delete=True)

    if role == "service":

        @broker.subscriber(queue(f"{base}.orders"), exchange)
        async def on_order(body: dict, msg=Context("message")) -> None:
            emit("received", channel="orders", **describe(msg))

        @broker.subscriber(queue(f"{base}.quotes"), exchange)
        async def on_quote(body: dict, msg=Context("message")) -> dict:
            emit("received", channel="quotes", **describe(msg))
            return quote_for(body)

    else:

        @broker.subscriber(queue(f"{base}.shipments"), exchange)
        async def on_shipment(body: dict, msg=Context("message")) -> None:
            emit("received", channel="shipments", **describe(msg))

    await serve(broker, lambda cmd: {"routing_key": cmd["to"], "exchange": exchange})


asyncio.run(main())
