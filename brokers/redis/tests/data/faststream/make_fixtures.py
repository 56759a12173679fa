"""Writes the FastStream Redis format fixtures of `src/faststream.rs`'s tests with FastStream
itself (run with the interop venv: target/faststream-venv/bin/python make_fixtures.py).

- binary_*.bin: `BinaryMessageFormatV1.encode(...)`, the format FastStream 0.7.8 writes;
- json_envelope.json: the JSON envelope FastStream before 0.6 wrote (`{"data", "headers"}`),
  checked here to be read back by FastStream 0.7.8's parser.
"""

import asyncio
import json
from pathlib import Path

from faststream.redis.parser import BinaryMessageFormatV1

HERE = Path(__file__).parent


async def main() -> None:
    request = await BinaryMessageFormatV1.encode(
        message={"item": "bolt", "qty": 3},
        reply_to="reply.channel",
        headers={"x-tenant": "acme"},
        correlation_id="corr-1",
    )
    (HERE / "binary_request.bin").write_bytes(request)
    plain = await BinaryMessageFormatV1.encode(
        message="hello", reply_to=None, headers=None, correlation_id="corr-2"
    )
    (HERE / "binary_plain.bin").write_bytes(plain)

    envelope = json.dumps(
        {
            "data": json.dumps({"item": "bolt", "qty": 3}, separators=(",", ":")),
            "headers": {
                "correlation_id": "corr-3",
                "reply_to": "reply.channel",
                "content-type": "application/json",
                "x-tenant": "acme",
            },
        }
    ).encode()
    data, headers = BinaryMessageFormatV1.parse(envelope)
    assert data == b'{"item":"bolt","qty":3}' and headers["correlation_id"] == "corr-3"
    (HERE / "json_envelope.json").write_bytes(envelope)

    print("fixtures written")


asyncio.run(main())
