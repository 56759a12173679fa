//! Messages: headers, the outgoing message handed to a [`Publisher`](crate::Publisher) and the
//! [`IncomingMessage`] trait every broker's delivered message implements.

use std::borrow::Cow;
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

/// Header text: a `&'static str` (no allocation) or an owned `String`.
type Text = Cow<'static, str>;

/// Ordered message headers: UTF-8 names and values, duplicates allowed, order kept.
///
/// Lookups are case-sensitive; brokers keep names byte-exact.
///
/// The first entry is stored inline, and names and values may be `&'static str`
/// ([`insert_static`](Headers::insert_static)), so the common single `content-type` header of a
/// typed publish does not allocate.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    /// The first entry; `None` only when `rest` is empty too.
    first: Option<(Text, Text)>,
    rest: Vec<(Text, Text)>,
}

/// `dst = src.clone()`, reusing `dst`'s allocation and copying a static string by pointer.
#[inline]
fn clone_text(dst: &mut Text, src: &Text) {
    match (dst, src) {
        (Cow::Borrowed(d), Cow::Borrowed(s)) => *d = s,
        (Cow::Owned(d), Cow::Owned(s)) => d.clone_from(s),
        (d, s) => *d = s.clone(),
    }
}

impl Clone for Headers {
    fn clone(&self) -> Self {
        Headers {
            first: self.first.clone(),
            rest: self.rest.clone(),
        }
    }

    /// Reuses this value's allocations (the router refills per-worker headers this way).
    #[inline]
    fn clone_from(&mut self, source: &Self) {
        match (&mut self.first, &source.first) {
            (Some((k, v)), Some((sk, sv))) => {
                clone_text(k, sk);
                clone_text(v, sv);
            }
            (dst, src) => dst.clone_from(src),
        }
        if self.rest.is_empty() && source.rest.is_empty() {
            return;
        }
        self.rest.truncate(source.rest.len());
        let reused = self.rest.len();
        for ((k, v), (sk, sv)) in self.rest.iter_mut().zip(&source.rest) {
            clone_text(k, sk);
            clone_text(v, sv);
        }
        self.rest.extend(source.rest[reused..].iter().cloned());
    }
}

impl Headers {
    /// Empty headers (does not allocate).
    pub const fn new() -> Self {
        Headers {
            first: None,
            rest: Vec::new(),
        }
    }

    /// Empty headers with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Headers {
            first: None,
            rest: Vec::with_capacity(n.saturating_sub(1)),
        }
    }

    #[inline]
    fn entries(&self) -> impl Iterator<Item = &(Text, Text)> {
        self.first.iter().chain(&self.rest)
    }

    /// The first value of `name`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        let (k, v) = self.first.as_ref()?;
        if k == name {
            return Some(v);
        }
        self.rest
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// All values of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Replace every value of `name` with `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.remove_all(&name);
        self.push(Cow::Owned(name), Cow::Owned(value.into()));
    }

    /// [`insert`](Headers::insert) for a static name and value: does not copy them.
    #[inline]
    pub fn insert_static(&mut self, name: &'static str, value: &'static str) {
        self.remove_all(name);
        self.push(Cow::Borrowed(name), Cow::Borrowed(value));
    }

    /// Add a value for `name`, keeping existing ones.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.push(Cow::Owned(name.into()), Cow::Owned(value.into()));
    }

    /// [`append`](Headers::append) for a static name and value: does not copy them.
    #[inline]
    pub fn append_static(&mut self, name: &'static str, value: &'static str) {
        self.push(Cow::Borrowed(name), Cow::Borrowed(value));
    }

    /// [`append`](Headers::append) with a static name (not copied).
    #[inline]
    pub(crate) fn append_named(&mut self, name: &'static str, value: String) {
        self.push(Cow::Borrowed(name), Cow::Owned(value));
    }

    #[inline]
    fn push(&mut self, name: Text, value: Text) {
        if self.first.is_none() {
            self.first = Some((name, value));
        } else {
            self.rest.push((name, value));
        }
    }

    /// Remove every value of `name`; returns the first removed value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.remove_all(name).map(Cow::into_owned)
    }

    fn remove_all(&mut self, name: &str) -> Option<Text> {
        let mut removed = None;
        if self.first.as_ref().is_some_and(|(k, _)| k == name) {
            removed = self.first.take().map(|(_, v)| v);
        }
        let mut i = 0;
        while i < self.rest.len() {
            if self.rest[i].0 == name {
                let (_, v) = self.rest.remove(i);
                removed.get_or_insert(v);
            } else {
                i += 1;
            }
        }
        if self.first.is_none() && !self.rest.is_empty() {
            self.first = Some(self.rest.remove(0));
        }
        removed
    }

    /// Number of entries (duplicates counted).
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// True when there are no entries.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Iterate `(name, value)` pairs in order.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.append(k, v);
        }
        headers
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
        let mut s = Headers::new();
        s.insert_static("content-type", "application/json");
        h.clone_from(&s);
        assert_eq!(h, short);
        h.clone_from(&long);
        assert_eq!(h, long);
    }

    #[test]
    fn order_duplicates_and_removal_across_inline_and_spilled_entries() {
        let mut h: Headers = [("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")]
            .into_iter()
            .collect();
        assert_eq!(h.len(), 4);
        assert_eq!(h.get("a"), Some("1"));
        assert_eq!(h.get_all("a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(h.remove("a").as_deref(), Some("1"));
        assert_eq!(h.iter().collect::<Vec<_>>(), [("b", "2"), ("c", "4")]);
        h.insert_static("b", "5");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("c", "4"), ("b", "5")]);
        h.append_static("c", "6");
        h.insert("d", String::from("7"));
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("c", "4"), ("b", "5"), ("c", "6"), ("d", "7")]
        );
        assert_eq!(h.remove("c").as_deref(), Some("4"));
        assert_eq!(h.remove("x"), None);
        assert_eq!(h.remove("b").as_deref(), Some("5"));
        assert_eq!(h.remove("d").as_deref(), Some("7"));
        assert!(h.is_empty());
        assert_eq!(h.len(), 0);
        assert_eq!(h, Headers::new());
        h.append("e", "8");
        assert_eq!(h.iter().collect::<Vec<_>>(), [("e", "8")]);
    }
}
