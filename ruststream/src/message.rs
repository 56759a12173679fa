//! Messages: headers, the outgoing message handed to a [`Publisher`](crate::Publisher) and the
//! [`IncomingMessage`] trait every broker's delivered message implements.

use std::future::Future;

use bytes::Bytes;

use crate::Result;

/// Well-known header names used by the runtime.
pub mod names {
    /// MIME type of the payload (`application/json`, …).
    pub const CONTENT_TYPE: &str = "content-type";
    /// Correlation id of a request/reply pair or a business flow.
    pub const CORRELATION_ID: &str = "correlation-id";
    /// W3C trace context.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state.
    pub const TRACESTATE: &str = "tracestate";
}

/// Ordered message headers: UTF-8 names and values, duplicates allowed, order kept.
///
/// Lookups are case-sensitive; brokers keep names byte-exact.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Clone for Headers {
    fn clone(&self) -> Self {
        Headers {
            entries: self.entries.clone(),
        }
    }

    /// Reuses this value's allocations (the router refills per-worker headers this way).
    fn clone_from(&mut self, source: &Self) {
        self.entries.truncate(source.entries.len());
        let reused = self.entries.len();
        for ((k, v), (sk, sv)) in self.entries.iter_mut().zip(&source.entries) {
            k.clone_from(sk);
            v.clone_from(sv);
        }
        self.entries
            .extend(source.entries[reused..].iter().cloned());
    }
}

impl Headers {
    /// Empty headers (does not allocate).
    pub const fn new() -> Self {
        Headers {
            entries: Vec::new(),
        }
    }

    /// Empty headers with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Headers {
            entries: Vec::with_capacity(n),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Replace every value of `name` with `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.entries.retain(|(k, _)| *k != name);
        self.entries.push((name, value.into()));
    }

    /// Add a value for `name`, keeping existing ones.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Remove every value of `name`; returns the first removed value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let mut first = None;
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].0 == name {
                let (_, v) = self.entries.remove(i);
                first.get_or_insert(v);
            } else {
                i += 1;
            }
        }
        first
    }

    /// Number of entries (duplicates counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterate `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Headers {
            entries: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutgoingMessage {
    /// Concrete address (topic, subject, routing key) to publish to.
    pub address: String,
    /// Encoded payload.
    pub payload: Bytes,
    /// Headers; content type and correlation id also live here.
    pub headers: Headers,
    /// Partition / ordering key, for brokers that order per key.
    pub key: Option<Bytes>,
    /// Address a reply should be sent to.
    pub reply_to: Option<String>,
    /// Correlation id (mirrored in the `correlation-id` header by the runtime).
    pub correlation_id: Option<String>,
}

impl OutgoingMessage {
    /// A message with a payload and no headers.
    pub fn new(address: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        OutgoingMessage {
            address: address.into(),
            payload: payload.into(),
            ..Default::default()
        }
    }

    /// Set a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Replace all headers (builder style).
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Set the partition key (builder style).
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Set the reply address (builder style).
    pub fn reply_to(mut self, reply_to: impl Into<String>) -> Self {
        self.reply_to = Some(reply_to.into());
        self
    }

    /// Set the correlation id (builder style).
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Set the `content-type` header (builder style).
    pub fn content_type(self, content_type: impl Into<String>) -> Self {
        self.header(names::CONTENT_TYPE, content_type)
    }
}

/// A message delivered by a subscription.
///
/// Settlement consumes the message, so a message cannot be settled twice:
///
/// ```compile_fail
/// # async fn f<M: ruststream::IncomingMessage>(m: M) {
/// m.ack().await.unwrap();
/// m.ack().await.unwrap(); // use of moved value
/// # }
/// ```
///
/// Dropping a message without settling it leaves it to the broker (for at-least-once brokers it
/// is redelivered after the broker's timeout).
pub trait IncomingMessage: Send + 'static {
    /// The encoded payload.
    fn payload(&self) -> &[u8];
    /// Headers as delivered.
    fn headers(&self) -> &Headers;
    /// The concrete address it was delivered on.
    fn address(&self) -> &str;
    /// Where a reply should go, if the sender asked for one.
    fn reply_to(&self) -> Option<&str>;
    /// Correlation id, if the transport or headers carry one.
    fn correlation_id(&self) -> Option<&str>;
    /// Partition key, if any.
    fn key(&self) -> Option<&[u8]> {
        None
    }
    /// Delivery attempt, starting at 1.
    fn attempt(&self) -> u32;
    /// The `content-type` header.
    fn content_type(&self) -> Option<&str> {
        self.headers().get(names::CONTENT_TYPE)
    }
    /// Settle as processed: it will not be delivered again.
    fn ack(self) -> impl Future<Output = Result<()>> + Send;
    /// Settle as failed; with `requeue` the broker delivers it again (attempt + 1), without it
    /// drops it. A transport that cannot nack returns [`Error::Unsupported`](crate::Error).
    fn nack(self, requeue: bool) -> impl Future<Output = Result<()>> + Send;
    /// Settle as unprocessable: dead-lettered where the broker supports it, dropped otherwise.
    fn reject(self) -> impl Future<Output = Result<()>> + Send;
}

#[cfg(test)]
mod tests {
    use super::Headers;

    #[test]
    fn clone_from_copies_exactly_whatever_the_lengths() {
        let long: Headers = [("a", "1"), ("b", "2"), ("a", "3")].into_iter().collect();
        let short: Headers = [("content-type", "application/json")].into_iter().collect();
        let mut h = long.clone();
        h.clone_from(&short);
        assert_eq!(h, short);
        h.clone_from(&long);
        assert_eq!(h, long);
        h.clone_from(&Headers::new());
        assert!(h.is_empty());
    }
}
