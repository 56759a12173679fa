//! The one error type of the runtime.

use std::borrow::Cow;

/// Result alias used across the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from the runtime or from a broker behind the contract.
///
/// Broker crates map their client's errors to [`Error::Transport`]; the message must never
/// carry credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection was shut down; no more publishing or subscribing.
    #[error("the broker connection is closed")]
    Closed,
    /// The broker cannot do what was asked (for example `nack` on a fire-and-forget transport).
    #[error("unsupported by this broker: {0}")]
    Unsupported(Cow<'static, str>),
    /// An operation did not finish in time.
    #[error("timed out: {0}")]
    Timeout(Cow<'static, str>),
    /// A channel address (or template) is not valid for this broker.
    #[error("invalid address `{address}`: {reason}")]
    InvalidAddress {
        /// The offending address.
        address: String,
        /// Why it is invalid.
        reason: Cow<'static, str>,
    },
    /// A header name or value the transport cannot carry.
    #[error("invalid header `{name}`: {reason}")]
    InvalidHeader {
        /// Header name.
        name: String,
        /// Why it was refused.
        reason: Cow<'static, str>,
    },
    /// Encoding or decoding a payload failed.
    #[error("codec error ({content_type}): {message}")]
    Codec {
        /// The content type of the codec that failed.
        content_type: Cow<'static, str>,
        /// What went wrong.
        message: String,
    },
    /// The transport (broker client) failed.
    #[error("{broker} transport error: {message}")]
    Transport {
        /// Which broker crate reported it (`"nats"`, `"memory"`, …).
        broker: &'static str,
        /// What went wrong, without credentials.
        message: String,
    },
    /// A message violates its schema (see [`validate`](crate::validate)).
    #[error("{part} violates its schema: {violations}")]
    Validation {
        /// Which part of the message: `"payload"`, `"headers"` or `"parameters"`.
        part: &'static str,
        /// Every violation found.
        violations: crate::validate::Violations,
    },
    /// Invalid configuration.
    #[error("configuration error: {0}")]
    Config(String),
}

impl Error {
    /// Shorthand for [`Error::Unsupported`].
    pub fn unsupported(what: impl Into<Cow<'static, str>>) -> Self {
        Error::Unsupported(what.into())
    }

    /// Shorthand for [`Error::Transport`].
    pub fn transport(broker: &'static str, message: impl std::fmt::Display) -> Self {
        Error::Transport {
            broker,
            message: message.to_string(),
        }
    }
}
