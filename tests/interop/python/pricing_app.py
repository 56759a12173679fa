"""A FastStream app written the FastStream way (pydantic models, a handler that returns its
reply, a publisher): the other direction of spec-first. Its own AsyncAPI document, exported
with `--export`, is what `build.rs` generates the Rust client of `tests/reverse.rs` from
(committed as `data/pricing-<broker>.asyncapi.json`; `tests/reverse.rs` checks they are current).

usage: pricing_app.py --broker nats|redis [--export] [--url URL]

Serving, it speaks the peer protocol of `peer.py` (ready line, received events, commands).
"""

import asyncio
import sys

from pydantic import BaseModel, Field

from faststream import Context
from faststream.specification import AsyncAPI

from peer import arg, describe, emit, redis_channels_active, serve


class PriceRequest(BaseModel):
    """How many of which item to price."""

    item: str
    qty: int = Field(ge=1)


class Price(BaseModel):
    """The price of a quantity of an item."""

    item: str
    total: float
    currency: str


class Restock(BaseModel):
    """Items added to the stock."""

    item: str
    qty: int = Field(ge=1)


def make_broker(kind: str):
    if kind == "nats":
        from faststream.nats import NatsBroker

        return NatsBroker(arg("url", "nats://127.0.0.1:4222")), (lambda name: {"subject": name})
    from faststream.redis import RedisBroker

    return RedisBroker(arg("url", "redis://127.0.0.1:6379")), (lambda name: {"channel": name})


kind = arg("broker")
broker, where = make_broker(kind)
# Fixed addresses: FastStream 0.7.8 exports `{param}` addresses without declaring the
# parameters, which generated code cannot fill in.
restocked = broker.publisher(
    **where("pricing.restocked"), title="restocked", description="Stock went up.", schema=Restock
)


@broker.subscriber(**where("pricing.price"), title="price", description="Price a quantity of an item.")
async def price(request: PriceRequest, msg=Context("message")) -> Price:
    emit("received", channel="price", **describe(msg))
    return Price(item=request.item, total=2.5 * request.qty, currency="EUR")


@broker.subscriber(**where("pricing.restock"), title="restock", description="Add items to the stock.")
async def restock(request: Restock, msg=Context("message")) -> None:
    emit("received", channel="restock", **describe(msg))
    await restocked.publish(request, correlation_id=msg.correlation_id)


if "--export" in sys.argv:
    spec = AsyncAPI(broker, title="Pricing", version="1.0.0", schema_version="3.0.0")
    print(spec.to_specification().to_json())
else:
    if kind == "nats":
        # The server has the subscriptions after a PING/PONG.
        async def settle() -> None:
            await broker.connection.flush()
    else:

        async def settle() -> None:
            url = arg("url", "redis://127.0.0.1:6379")
            await redis_channels_active(url, ["pricing.price", "pricing.restock"])

    asyncio.run(serve(broker, lambda cmd: where(cmd["to"]), settle=settle))
