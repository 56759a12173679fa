"""What the orders service of `specs/interop.yaml` computes, in Python (the Rust side of the
suite computes the same, so either stack's answer can be checked)."""

UNIT_PRICE = 2.5


def quote_for(request: dict) -> dict:
    """The `quote` reply to a `quoteRequest`."""
    return {
        "item": request["item"],
        "total": UNIT_PRICE * int(request["qty"]),
        "currency": "EUR",
    }
