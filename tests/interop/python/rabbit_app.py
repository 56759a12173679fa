"""A FastStream RabbitMQ app written the FastStream way (default exchange, queues named by
the handlers), for the spec-first direction of the interop suite: its own AsyncAPI document
(`specs/faststream-rabbit.json`, written by `--export`) → `ruststream-build` → a Rust client
that talks to this app with no hand-written binding code.

usage: rabbit_app.py [--url amqp://guest:guest@127.0.0.1:5672/]   serve (peer protocol)
       rabbit_app.py --export                                      print the AsyncAPI 3.0 JSON

`rsinterop.orders` takes an `Order`, reports it, and publishes a `Shipment` to
`rsinterop.shipments`; `rsinterop.quotes` answers a `QuoteRequest` with a `Quote`.
"""

import asyncio
import sys

from faststream import Context
from faststream.rabbit import RabbitBroker, RabbitQueue
from pydantic import BaseModel

from peer import arg, describe, emit, serve
from service import quote_for


class Order(BaseModel):
    id: int
    item: str
    qty: int


class Shipment(BaseModel):
    orderId: int
    carrier: str


class QuoteRequest(BaseModel):
    item: str
    qty: int


class Quote(BaseModel):
    item: str
    total: float
    currency: str


broker = RabbitBroker(arg("url", "amqp://guest:guest@127.0.0.1:5672/"))
shipments = broker.publisher("rsinterop.shipments", schema=Shipment)


@broker.subscriber(RabbitQueue("rsinterop.orders", auto_delete=True))
@shipments
async def on_order(order: Order, msg=Context("message")) -> Shipment:
    emit("received", channel="orders", **describe(msg))
    return Shipment(orderId=order.id, carrier="faststream")


@broker.subscriber(RabbitQueue("rsinterop.quotes", auto_delete=True))
async def on_quote(request: QuoteRequest, msg=Context("message")) -> Quote:
    emit("received", channel="quotes", **describe(msg))
    return Quote(**quote_for(request.model_dump()))


if __name__ == "__main__":
    if "--export" in sys.argv[1:]:
        from faststream.specification import AsyncAPI

        spec = AsyncAPI(broker, title="FastStream Rabbit", schema_version="3.0.0")
        print(spec.to_specification().to_json())
    else:
        asyncio.run(serve(broker, lambda cmd: {"routing_key": cmd["to"]}))
