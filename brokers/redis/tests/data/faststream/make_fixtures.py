"""Writes the FastStream Redis format fixtures of `src/faststream.rs`'s tests with FastStream
itself (run with the interop venv: target/faststream-venv/bin/python make_fixtures.py; with
`--check` it compares instead of writing, as `tests/interop/tests/redis.rs` does).

- binary_*.bin: `BinaryMessageFormatV1.encode(...)`, the format FastStream 0.7.8 writes;
- json_envelope.json: the JSON envelope FastStream before 0.6 wrote (`{"data", "headers"}`),
  checked here to be read back by FastStream 0.7.8's parser;
- ruststream_request.bin: written by this crate's encoder (its test rewrites it with
  RUSTSTREAM_WRITE_FIXTURES=1), checked here to be parsed by FastStream 0.7.8.
"""

import asyncio
import json
import sys
from pathlib import Path

from faststream.redis.parser import BinaryMessageFormatV1

HERE = Path(__file__).parent
CHECK = "--check" in sys.argv  # compare with the committed fixtures instead of writing


def put(name: str, data: bytes) -> None:
    if CHECK:
        assert (HERE / name).read_bytes() == data, f"{name} differs from what FastStream writes"
    else:
        (HERE / name).write_bytes(data)


async def main() -> None:
    request = await BinaryMessageFormatV1.encode(
        message={"item": "bolt", "qty": 3},
        reply_to="reply.channel",
        headers={"x-tenant": "acme"},
        correlation_id="corr-1",
    )
    put("binary_request.bin", request)
    plain = await BinaryMessageFormatV1.encode(
        message="hello", reply_to=None, headers=None, correlation_id="corr-2"
    )
    put("binary_plain.bin", plain)

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
    put("json_envelope.json", envelope)

    # What RustStream writes (src/faststream.rs, `faststream_reads_what_this_crate_writes`),
    # read by FastStream.
    data, headers = BinaryMessageFormatV1.parse((HERE / "ruststream_request.bin").read_bytes())
    assert data == b"\x00\xffpayload", data
    assert headers == {
        "correlation_id": "corr-9",
        "reply_to": "ruststream.inbox.x",
        "x-ruststream-key": "6b",
        "content-type": "application/octet-stream",
        "x-tenant": "acme",
    }, headers
    print("fixtures", "match" if CHECK else "written", "; FastStream reads ruststream_request.bin")


asyncio.run(main())
