//! Typed helpers used by generated clients: encode, publish, request, decode.

use std::future::Future;
use std::time::Duration;

use futures_util::future::Either;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::capability::RequestReply;
use crate::message::names;
use crate::router::Context;
use crate::{
    Address, Connection, Headers, IncomingMessage, OutgoingMessage, Publisher, Result,
    SubscribeOptions, Subscriber,
};

thread_local! {
    /// Address strings handed back by brokers ([`recycle_address`]) for [`address`] to reuse.
    static ADDRESSES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most address strings kept per thread for reuse.
const ADDRESS_POOL: usize = 16;
/// Longest address string (capacity, in bytes) kept for reuse.
const ADDRESS_CAPACITY: usize = 256;

/// `address` as the owned `String` an [`OutgoingMessage`] needs, reusing one a broker handed
/// back on this thread ([`recycle_address`]) when there is one: a generated client publishing
/// to a fixed address does not allocate it every time.
///
/// ```
/// let a = ruststream::client::address("orders.created");
/// assert_eq!(a, "orders.created");
/// ruststream::client::recycle_address(a);
/// assert_eq!(ruststream::client::address("orders.paid"), "orders.paid");
/// ```
pub fn address(address: &str) -> String {
    let reused = ADDRESSES
        .try_with(|pool| pool.try_borrow_mut().ok()?.pop())
        .ok()
        .flatten();
    match reused {
        Some(mut s) => {
            s.push_str(address);
            s
        }
        None => address.to_owned(),
    }
}

/// Hand back an address `String` a published message no longer needs, for [`address`] to
/// reuse on this thread (brokers call it; a long or excess string is simply dropped).
pub fn recycle_address(mut address: String) {
    if address.capacity() == 0 || address.capacity() > ADDRESS_CAPACITY {
        return;
    }
    address.clear();
    let _ = ADDRESSES.try_with(|pool| {
        if let Ok(mut pool) = pool.try_borrow_mut()
            && pool.len() < ADDRESS_POOL
        {
            pool.push(address);
        }
    });
}

/// Encode `value` with `content_type` and publish it to `address` with `headers` (the
/// `content-type` header is set unless `headers` has one).
///
/// The value is encoded at once; the returned future is the broker's publish itself (not a
/// future wrapping it, which would be moved once more per message).
pub fn publish<'c, C: Publisher, T: Serialize + ?Sized>(
    conn: &'c C,
    address: String,
    content_type: &str,
    value: &T,
    headers: Headers,
) -> impl Future<Output = Result<()>> + Send + use<'c, C, T> {
    match encode_message(address, content_type, value, headers) {
        Ok(message) => Either::Left(conn.publish(message)),
        Err(e) => Either::Right(std::future::ready(Err(e))),
    }
}

/// Encode `value` into a message for `address`, setting `content-type` unless `headers` has it.
fn encode_message<T: Serialize + ?Sized>(
    address: String,
    content_type: &str,
    value: &T,
    headers: Headers,
) -> Result<OutgoingMessage> {
    let payload = encode_payload(content_type, value)?;
    let mut headers = headers;
    if headers.get(names::CONTENT_TYPE).is_none() {
        add_content_type(&mut headers, content_type);
    }
    Ok(OutgoingMessage {
        address,
        payload,
        headers,
        ..OutgoingMessage::default()
    })
}

/// Add the `content-type` header to `headers` that have none, without allocating for the
/// codecs' own content types.
#[inline]
pub(crate) fn add_content_type(headers: &mut Headers, content_type: &str) {
    match static_content_type(content_type) {
        Some(ct) => headers.append_static(names::CONTENT_TYPE, ct),
        None => headers.append(names::CONTENT_TYPE, content_type),
    }
}

/// The `&'static` copy of a codec's content type.
fn static_content_type(content_type: &str) -> Option<&'static str> {
    use crate::codec::{Binary, Codec, Json, Text};
    [
        Json::CONTENT_TYPE,
        Text::CONTENT_TYPE,
        Binary::CONTENT_TYPE,
        "application/msgpack",
        "application/cbor",
    ]
    .into_iter()
    .find(|ct| *ct == content_type)
}

/// Size of the per-thread chunks JSON payloads are encoded into.
const ENCODE_CHUNK: usize = 8 * 1024;

thread_local! {
    /// Per-thread JSON encode buffer: each payload is split off it, so consecutive payloads
    /// share one allocation (freed when the last of them is dropped) instead of allocating a
    /// vector and a `Bytes` header each.
    static ENCODE_BUFFER: std::cell::RefCell<BytesMut> =
        std::cell::RefCell::new(BytesMut::with_capacity(ENCODE_CHUNK));
}

/// `io::Write` into a `BytesMut`, inlined (serde_json writes a payload in many small pieces).
struct ChunkWriter<'a>(&'a mut BytesMut);

impl std::io::Write for ChunkWriter<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(buf);
        Ok(())
    }
    #[inline]
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Encode `value` by `content_type`; JSON goes through the per-thread encode buffer.
pub(crate) fn encode_payload<T: Serialize + ?Sized>(
    content_type: &str,
    value: &T,
) -> Result<Bytes> {
    if content_type != crate::codec::DEFAULT_CONTENT_TYPE
        && crate::codec::kind_of(content_type) != Some(crate::codec::Kind::Json)
    {
        return crate::codec::encode(content_type, value);
    }
    let encoded = ENCODE_BUFFER.try_with(|cell| {
        // Re-entered (a `Serialize` impl that publishes) or being torn down: plain encode.
        let mut buf = cell.try_borrow_mut().ok()?;
        if buf.capacity() == buf.len() {
            // Nothing left in this chunk: start the next one at full size.
            buf.reserve(ENCODE_CHUNK);
        }
        Some(match serde_json::to_writer(ChunkWriter(&mut buf), value) {
            Ok(()) => Ok(buf.split().freeze()),
            Err(e) => {
                buf.clear();
                Err(crate::Error::Codec {
                    content_type: crate::codec::DEFAULT_CONTENT_TYPE.into(),
                    message: e.to_string(),
                })
            }
        })
    });
    match encoded {
        Ok(Some(result)) => result,
        _ => crate::codec::encode(content_type, value),
    }
}

/// Where a typed publisher sends: straight to a connection, or through a handler's
/// [`Context`], so the router's middleware runs and the consumed message's correlation id
/// and `traceparent`/`tracestate` are carried over (see [`Context::publish_message`]).
#[derive(Debug, Clone)]
pub enum PublishVia<C> {
    /// Publish on the connection as is.
    Connection(C),
    /// Publish through a handler's context.
    Context(Context<C>),
}

impl<C: Connection> PublishVia<C> {
    /// The underlying connection.
    pub fn connection(&self) -> &C {
        match self {
            PublishVia::Connection(conn) => conn,
            PublishVia::Context(ctx) => ctx.connection(),
        }
    }

    /// Publish `message` on the connection, or through the context.
    ///
    /// # Errors
    /// When a middleware or the broker refuses the message.
    pub async fn publish_message(&self, message: OutgoingMessage) -> Result<()> {
        match self {
            PublishVia::Connection(conn) => conn.publish(message).await,
            PublishVia::Context(ctx) => ctx.publish_message(message).await,
        }
    }
}

/// [`publish`] through a [`PublishVia`]: encode `value` with `content_type` and publish it to
/// `address` with `headers` (the `content-type` header is set unless `headers` has one).
///
/// # Errors
/// When `value` cannot be encoded, or a middleware or the broker refuses the message.
pub async fn publish_via<C: Connection, T: Serialize + ?Sized>(
    via: &PublishVia<C>,
    address: String,
    content_type: &str,
    value: &T,
    headers: Headers,
) -> Result<()> {
    via.publish_message(encode_message(address, content_type, value, headers)?)
        .await
}

/// Send `value` as a request and decode the reply (by its `content-type` header, else
/// `content_type`). Fails with [`Error::Timeout`](crate::Error::Timeout) after `timeout`.
pub async fn request<C: RequestReply, T: Serialize + ?Sized, R: DeserializeOwned>(
    conn: &C,
    address: String,
    content_type: &str,
    value: &T,
    timeout: Duration,
) -> Result<R> {
    let payload = encode_payload(content_type, value)?;
    let mut message = OutgoingMessage::new(address, payload);
    add_content_type(&mut message.headers, content_type);
    let reply = conn.request(message, timeout).await?;
    let ct = reply
        .headers
        .get(names::CONTENT_TYPE)
        .unwrap_or(content_type);
    crate::codec::decode(ct, &reply.payload)
}

/// A decoded value together with its message (to settle it).
#[derive(Debug)]
pub struct Typed<T, M> {
    /// The decoded payload.
    pub value: T,
    /// The message it came from.
    pub message: M,
}

impl<T, M: IncomingMessage> Typed<T, M> {
    /// Split into value and message.
    pub fn into_parts(self) -> (T, M) {
        (self.value, self.message)
    }
    /// Ack the message and return the value.
    pub async fn ack(self) -> Result<T> {
        self.message.ack().await?;
        Ok(self.value)
    }
}

impl<T, M> std::ops::Deref for Typed<T, M> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// Subscribe and decode each message (by its `content-type` header, else JSON). An
/// undecodable message is rejected and yields an [`Error::Codec`](crate::Error::Codec) item.
pub async fn subscribe<C: Subscriber, T: DeserializeOwned + Send + 'static>(
    conn: &C,
    address: &Address,
    opts: SubscribeOptions,
) -> Result<impl Stream<Item = Result<Typed<T, C::Message>>> + Send + Unpin + 'static + use<C, T>> {
    let sub = conn.subscribe(address, opts).await?;
    Ok(sub
        .then(|item| async move {
            let message = item?;
            let ct = message
                .content_type()
                .unwrap_or(crate::codec::DEFAULT_CONTENT_TYPE);
            match crate::codec::decode::<T>(ct, message.payload()) {
                Ok(value) => Ok(Typed { value, message }),
                Err(e) => {
                    let _ = message.reject().await;
                    Err(e)
                }
            }
        })
        .boxed())
}
