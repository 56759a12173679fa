//! Record headers: the contract's headers byte-exact, plus correlation id and reply address
//! where other Kafka clients look for them.

use rdkafka::message::{Header, OwnedHeaders};
use ruststream::OutgoingMessage;

/// Header carrying the correlation id (the name FastStream and other frameworks use).
pub const CORRELATION_ID: &str = "correlation_id";
/// The runtime's own spelling of the correlation-id header, also read.
pub const CORRELATION_ID_DASHED: &str = "correlation-id";
/// Header carrying the reply address of a request (as FastStream writes it).
pub const REPLY_TO: &str = "reply_to";

/// Every header of `message` in order, then `correlation_id` and `reply_to` from its fields
/// unless the headers already carry them.
pub(crate) fn record_headers(message: &OutgoingMessage) -> Option<OwnedHeaders> {
    let extra =
        usize::from(message.correlation_id.is_some()) + usize::from(message.reply_to.is_some());
    if message.headers.is_empty() && extra == 0 {
        return None;
    }
    let mut out = OwnedHeaders::new_with_capacity(message.headers.len() + extra);
    for (name, value) in message.headers.iter() {
        out = out.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        });
    }
    if let Some(id) = &message.correlation_id {
        if message.headers.get(CORRELATION_ID).is_none() {
            out = out.insert(Header {
                key: CORRELATION_ID,
                value: Some(id.as_bytes()),
            });
        }
    }
    if let Some(reply) = &message.reply_to {
        if message.headers.get(REPLY_TO).is_none() {
            out = out.insert(Header {
                key: REPLY_TO,
                value: Some(reply.as_bytes()),
            });
        }
    }
    Some(out)
}
