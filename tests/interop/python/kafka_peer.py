"""FastStream Kafka peer of the interop suite: implements `specs/interop.yaml` for one run.

usage: kafka_peer.py --run RUN --role service|client|keys [--bootstrap 127.0.0.1:9092]

role `service`: subscribes `interop.RUN.orders` (reports each order) and `interop.RUN.quotes`
(answers each quote request with a `quote`, which FastStream publishes to the request's
`reply_to` header); role `client`: subscribes `interop.RUN.shipments` (reports each shipment);
role `keys`: subscribes `interop.RUN.keyed` (reports each record with its key and partition;
aiokafka's default partitioner is murmur2, as the Java client's). A publish command's record
key is its pseudo-header `x-kafka-key`.
All roles run publish/request commands.

FastStream 0.7.8 has no `request` on Kafka ("Kafka doesn't support `request` method without test
client"), so this peer makes a request the way Kafka clients do: it publishes with the
`reply_to` header naming its own reply topic (`interop.RUN.replies`) and a `correlation_id`,
and waits for the message on that topic that carries the same correlation id. The topics exist
before the peer starts (the Rust test creates them): aiokafka sees new topics only on its
metadata refresh. Subscribers read from the earliest offset: each run's topics are new.
"""

import asyncio
import uuid
from typing import Any

from faststream import Context
from faststream.kafka import KafkaBroker

from peer import arg, describe, emit, serve
from service import quote_for


async def main() -> None:
    run, role = arg("run"), arg("role")
    broker = KafkaBroker(arg("bootstrap", "127.0.0.1:9092"))
    base = f"interop.{run}"
    waiting: dict[str, asyncio.Future] = {}

    if role == "service":

        @broker.subscriber(f"{base}.orders", auto_offset_reset="earliest")
        async def on_order(body: dict, msg=Context("message")) -> None:
            emit("received", channel="orders", **describe(msg))

        @broker.subscriber(f"{base}.quotes", auto_offset_reset="earliest")
        async def on_quote(body: dict, msg=Context("message")) -> dict:
            emit("received", channel="quotes", **describe(msg))
            return quote_for(body)

    elif role == "keys":

        @broker.subscriber(f"{base}.keyed", auto_offset_reset="earliest")
        async def on_keyed(body: Any, msg=Context("message")) -> None:
            record = msg.raw_message
            key = record.key.decode() if record.key is not None else None
            emit("received", channel="keyed", key=key, partition=record.partition, **describe(msg))

    else:

        @broker.subscriber(f"{base}.shipments", auto_offset_reset="earliest")
        async def on_shipment(body: dict, msg=Context("message")) -> None:
            emit("received", channel="shipments", **describe(msg))

    @broker.subscriber(f"{base}.replies", auto_offset_reset="earliest")
    async def on_reply(body: Any, msg=Context("message")) -> None:
        future = waiting.pop(msg.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result(msg)

    async def request(body, topic, headers=None, correlation_id=None, timeout=10.0):
        correlation_id = correlation_id or uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        waiting[correlation_id] = future
        await broker.publish(
            body,
            topic,
            headers=headers,
            correlation_id=correlation_id,
            reply_to=f"{base}.replies",
        )
        return await asyncio.wait_for(future, timeout)

    broker.request = request  # the request op of peer.py
    # A record key travels in the commands as the pseudo-header `x-kafka-key` (peer.py's
    # publish has no key), removed before publishing.
    plain_publish = broker.publish

    async def publish(body, topic, headers=None, correlation_id=None, **kwargs):
        headers = dict(headers or {})
        key = headers.pop("x-kafka-key", None)
        return await plain_publish(
            body,
            topic,
            headers=headers,
            correlation_id=correlation_id,
            key=key.encode() if key is not None else None,
            **kwargs,
        )

    broker.publish = publish
    await serve(broker, lambda cmd: cmd["to"])


asyncio.run(main())
