//! What a handler gets besides its payload, and what it returns on failure.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::middleware::{Middleware, PublishInfo};
use crate::message::names;
use crate::{Connection, Headers, OutgoingMessage, Params, Publisher, Result};

/// Why a handler attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// May succeed when retried.
    Retryable,
    /// Will not succeed; do not retry.
    Permanent,
    /// The payload could not be decoded.
    Decode,
    /// The message decoded but violates its schema (see [`validate`](crate::validate)).
    Validation,
    /// The handler ran out of time.
    Timeout,
    /// The handler panicked.
    Panic,
}

/// A handler failure: a message and whether retrying may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError {
    kind: FailureKind,
    message: Cow<'static, str>,
}

impl HandlerError {
    /// A retryable failure.
    pub fn new(message: impl fmt::Display) -> Self {
        Self::retryable(message)
    }
    /// A failure that retrying may fix.
    pub fn retryable(message: impl fmt::Display) -> Self {
        HandlerError {
            kind: FailureKind::Retryable,
            message: message.to_string().into(),
        }
    }
    /// A failure retrying cannot fix.
    pub fn permanent(message: impl fmt::Display) -> Self {
        HandlerError {
            kind: FailureKind::Permanent,
            message: message.to_string().into(),
        }
    }
    /// A failure of the consumed message itself: [`Error::Validation`](crate::Error::Validation)
    /// gives [`FailureKind::Validation`], any other error [`FailureKind::Decode`]. Both are
    /// settled by the route's [`DecodePolicy`](super::DecodePolicy) and never retried
    /// (generated `register` reports invalid headers and parameters this way).
    pub fn invalid(e: crate::Error) -> Self {
        let kind = match e {
            crate::Error::Validation { .. } => FailureKind::Validation,
            _ => FailureKind::Decode,
        };
        HandlerError::with_kind(kind, e)
    }
    pub(crate) fn with_kind(kind: FailureKind, message: impl fmt::Display) -> Self {
        HandlerError {
            kind,
            message: message.to_string().into(),
        }
    }
    /// The kind of failure.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Whether a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, FailureKind::Retryable | FailureKind::Timeout)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FailureKind::Retryable => "handler error",
            FailureKind::Permanent => "permanent handler error",
            FailureKind::Decode => "decode error",
            FailureKind::Validation => "invalid message",
            FailureKind::Timeout => "handler timed out",
            FailureKind::Panic => "handler panicked",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<crate::Error> for HandlerError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Codec { .. }
            | crate::Error::InvalidAddress { .. }
            | crate::Error::Validation { .. } => HandlerError::permanent(e),
            e => HandlerError::retryable(e),
        }
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(e: serde_json::Error) -> Self {
        HandlerError::permanent(e)
    }
}

impl From<std::io::Error> for HandlerError {
    fn from(e: std::io::Error) -> Self {
        HandlerError::retryable(e)
    }
}

/// The consumed message's metadata and the worker's connection, shared by every attempt (and
/// reused from message to message by the worker when no handler kept its `Context`).
#[derive(Debug)]
pub(crate) struct Meta<C> {
    pub(crate) conn: C,
    /// `None` without middleware.
    pub(crate) middleware: Option<Arc<[Arc<dyn Middleware>]>>,
    pub(crate) route: Arc<str>,
    /// The concrete address, unless `from_template`.
    pub(crate) address: String,
    /// The route's template when it has no parameters (else empty).
    pub(crate) template: Arc<str>,
    /// The message arrived on `template` itself (not copied into `address`).
    pub(crate) from_template: bool,
    pub(crate) params: Params,
    pub(crate) headers: Headers,
    pub(crate) correlation_id: Option<String>,
    pub(crate) reply_to: Option<String>,
}

impl<C> Meta<C> {
    /// The concrete address the message arrived on.
    pub(crate) fn address(&self) -> &str {
        if self.from_template {
            &self.template
        } else {
            &self.address
        }
    }
}

/// The handler's view of the consumed message and a way to publish.
#[derive(Debug)]
pub struct Context<C> {
    /// One reference count per handled message for all of it (connection included).
    pub(crate) meta: Arc<Meta<C>>,
    pub(crate) attempt: u32,
}

impl<C> Clone for Context<C> {
    fn clone(&self) -> Self {
        Context {
            meta: Arc::clone(&self.meta),
            attempt: self.attempt,
        }
    }
}

impl std::fmt::Debug for dyn Middleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Middleware")
    }
}

impl<C: Connection> Context<C> {
    /// Address parameters captured from the concrete address.
    pub fn params(&self) -> &Params {
        &self.meta.params
    }
    /// One address parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.meta.params.get(name)
    }
    /// The message headers.
    pub fn headers(&self) -> &Headers {
        &self.meta.headers
    }
    /// The correlation id, if the message had one.
    pub fn correlation_id(&self) -> Option<&str> {
        self.meta.correlation_id.as_deref()
    }
    /// Where the sender wants a reply.
    pub fn reply_to(&self) -> Option<&str> {
        self.meta.reply_to.as_deref()
    }
    /// The concrete address the message arrived on.
    pub fn address(&self) -> &str {
        self.meta.address()
    }
    /// The route (operation) name.
    pub fn route(&self) -> &str {
        &self.meta.route
    }
    /// Attempt number, from 1: the broker's delivery attempt plus local retries.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    /// The broker connection.
    pub fn connection(&self) -> &C {
        &self.meta.conn
    }

    /// Encode `value` with `content_type` and publish it to `address`, propagating the
    /// correlation id and trace context.
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        address: &str,
        content_type: &str,
        value: &T,
    ) -> Result<()> {
        let payload = crate::codec::encode(content_type, value)?;
        self.publish_message(OutgoingMessage::new(address, payload).content_type(content_type))
            .await
    }

    /// Publish a message through the router's middleware. The consumed message's correlation
    /// id and `traceparent`/`tracestate` headers are added unless the message sets its own.
    pub async fn publish_message(&self, mut message: OutgoingMessage) -> Result<()> {
        if message.correlation_id.is_none() {
            message.correlation_id = message
                .headers
                .get(names::CORRELATION_ID)
                .map(str::to_owned)
                .or_else(|| self.meta.correlation_id.clone());
        }
        if let Some(cid) = &message.correlation_id
            && message.headers.get(names::CORRELATION_ID).is_none()
        {
            message
                .headers
                .append_named(names::CORRELATION_ID, cid.clone());
        }
        for name in [names::TRACEPARENT, names::TRACESTATE] {
            if message.headers.get(name).is_none()
                && let Some(v) = self.meta.headers.get(name)
            {
                message.headers.insert(name, v);
            }
        }
        let middleware = self.meta.middleware.as_deref().unwrap_or_default();
        publish_through(&self.meta.conn, middleware, &self.meta.route, message).await
    }
}

/// Publish after every middleware's `publish` hook, then tell every middleware the outcome
/// ([`Middleware::published`]).
pub(crate) async fn publish_through<C: Publisher>(
    conn: &C,
    middleware: &[Arc<dyn Middleware>],
    route: &str,
    mut message: OutgoingMessage,
) -> Result<()> {
    if middleware.is_empty() {
        return conn.publish(message).await;
    }
    let started = Instant::now();
    let mut result = Ok(());
    for m in middleware {
        result = m.publish(&mut message);
        if result.is_err() {
            break;
        }
    }
    let address = message.address.clone();
    if result.is_ok() {
        result = conn.publish(message).await;
    }
    let info = PublishInfo {
        route,
        address: &address,
        result: &result,
        elapsed: started.elapsed(),
    };
    for m in middleware {
        m.published(&info);
    }
    result
}
