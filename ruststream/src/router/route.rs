//! A route: an address template bound to a handler, with its delivery policies.

use std::time::Duration;

use crate::{Address, Error, Result};

/// What to do with a message whose handler failed (after retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// `nack(requeue)`. With a [`RetryPolicy`] of more than one attempt, a message that used up
    /// its attempts is rejected instead of requeued, so a poison message cannot loop forever.
    Nack {
        /// Ask the broker to redeliver it.
        requeue: bool,
    },
    /// `reject`: the broker dead-letters it where it can, or drops it.
    Reject,
}

/// What to do with a message that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodePolicy {
    /// `reject` it (the broker dead-letters it where it can).
    Reject,
    /// Publish it unchanged to this address (with an `x-error` header), then `ack` it.
    DeadLetter(String),
}

/// How long to wait between local retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Retry at once.
    None,
    /// Always wait this long.
    Fixed(Duration),
    /// `initial`, then doubling, capped at `max`.
    Exponential {
        /// First delay.
        initial: Duration,
        /// Largest delay.
        max: Duration,
    },
}

impl Backoff {
    /// Delay before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { initial, max } => initial
                .checked_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
                .unwrap_or(max)
                .min(max),
        }
    }
}

/// Retries of a failed handler.
///
/// Retries are **local**: the router keeps the message (it stays unsettled, holding one of the
/// route's concurrency slots), waits [`Backoff::delay`], decodes it again and calls the handler
/// again. The attempt seen by the handler ([`Context::attempt`](super::Context::attempt)) is the
/// broker's delivery attempt plus the local retries, and `max_attempts` caps that total, so
/// broker redeliveries count too. Errors made with
/// [`HandlerError::permanent`](super::HandlerError::permanent), decode failures and panics are
/// not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Wait between attempts.
    pub backoff: Backoff,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 1,
            backoff: Backoff::None,
        }
    }
}

impl RetryPolicy {
    /// `max_attempts` total attempts with `backoff` between them.
    pub fn new(max_attempts: u32, backoff: Backoff) -> Self {
        RetryPolicy {
            max_attempts: max_attempts.max(1),
            backoff,
        }
    }
}

/// A route definition (builder style).
///
/// ```
/// use std::time::Duration;
/// use ruststream::router::{ErrorPolicy, Route};
/// let route = Route::new("user/{userId}/signup")?
///     .name("onUserSignup")
///     .queue_group("signup-workers")
///     .concurrency(8)
///     .timeout(Duration::from_secs(5))
///     .on_error(ErrorPolicy::Nack { requeue: true });
/// assert_eq!(route.address().as_str(), "user/{userId}/signup");
/// # Ok::<(), ruststream::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Route {
    pub(crate) address: Address,
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) reply_content_type: Option<String>,
    pub(crate) queue_group: Option<String>,
    pub(crate) durable: Option<String>,
    pub(crate) concurrency: usize,
    pub(crate) on_error: ErrorPolicy,
    /// `None`: the router's default ([`Router::on_decode_error`](super::Router::on_decode_error)),
    /// else `Reject`.
    pub(crate) on_decode_error: Option<DecodePolicy>,
    pub(crate) retries: RetryPolicy,
    pub(crate) dead_letter: Option<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) reply_address: Option<Address>,
    pub(crate) max_payload: Option<usize>,
}

fn parse(template: &str) -> Result<Address> {
    Address::parse(template).map_err(|e| Error::InvalidAddress {
        address: template.to_owned(),
        reason: e.to_string().into(),
    })
}

impl Route {
    /// A route on `template` with defaults: name = template, JSON, concurrency 1 (in order),
    /// no retries, handler errors rejected, undecodable messages rejected, no timeout, no
    /// payload size limit (unless the router sets one, see
    /// [`Router::max_payload`](super::Router::max_payload)).
    pub fn new(template: &str) -> Result<Route> {
        Ok(Route {
            address: parse(template)?,
            name: template.to_owned(),
            content_type: crate::codec::DEFAULT_CONTENT_TYPE.to_owned(),
            reply_content_type: None,
            queue_group: None,
            durable: None,
            concurrency: 1,
            on_error: ErrorPolicy::Reject,
            on_decode_error: None,
            retries: RetryPolicy::default(),
            dead_letter: None,
            timeout: None,
            reply_address: None,
            max_payload: None,
        })
    }

    /// The operation name (operationId) used in logs and stats.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Content type used to decode messages that carry none (default `application/json`).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }
    /// Content type of replies (default: the route's content type).
    pub fn reply_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.reply_content_type = Some(content_type.into());
        self
    }
    /// Join a queue group (competing consumers).
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }
    /// Subscribe durably under `name`.
    pub fn durable(mut self, name: impl Into<String>) -> Self {
        self.durable = Some(name.into());
        self
    }
    /// Maximum messages handled at once (at least 1; 1 keeps order).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Settlement of a message whose handler failed (after retries, when no dead letter).
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.on_error = policy;
        self
    }
    /// Settlement of an undecodable message, or of one that violates its schema (generated
    /// routes). Overrides [`Router::on_decode_error`](super::Router::on_decode_error).
    pub fn on_decode_error(mut self, policy: DecodePolicy) -> Self {
        self.on_decode_error = Some(policy);
        self
    }
    /// Largest payload, in bytes, the route decodes. A bigger message is not decoded (nor seen
    /// by middleware or the handler): it is handled like a decode failure, by the route's
    /// [`DecodePolicy`] (rejected, or dead-lettered with an `x-error` header naming the limit),
    /// counted in `decode_failures` and logged with its address and size, never its payload.
    /// Overrides [`Router::max_payload`](super::Router::max_payload).
    ///
    /// ```
    /// use ruststream::router::{DecodePolicy, Route};
    /// let route = Route::new("uploads")?
    ///     .max_payload(64 * 1024)
    ///     .on_decode_error(DecodePolicy::DeadLetter("uploads.too-big".into()));
    /// assert_eq!(route.payload_limit(), Some(64 * 1024));
    /// # Ok::<(), ruststream::Error>(())
    /// ```
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = Some(bytes);
        self
    }
    /// Local retries of failed handlers.
    pub fn retries(mut self, policy: RetryPolicy) -> Self {
        self.retries = policy;
        self
    }
    /// After the last failed attempt, publish the message here (with `x-error` and
    /// `x-original-address` headers) and ack it, instead of applying [`ErrorPolicy`].
    pub fn dead_letter(mut self, address: impl Into<String>) -> Self {
        self.dead_letter = Some(address.into());
        self
    }
    /// Handler time limit per attempt; running out counts as a (retryable) error.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Where replies go when the request has no `reply_to`: a template rendered with the
    /// request's address parameters. An invalid template is ignored with a warning; use
    /// [`Route::try_reply_address`] to see the error.
    pub fn reply_address(self, template: &str) -> Self {
        match self.clone().try_reply_address(template) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(route = %self.name, error = %e, "invalid reply address ignored");
                self
            }
        }
    }
    /// Like [`Route::reply_address`], reporting an invalid template.
    pub fn try_reply_address(mut self, template: &str) -> Result<Self> {
        self.reply_address = Some(parse(template)?);
        Ok(self)
    }

    /// The address template.
    pub fn address(&self) -> &Address {
        &self.address
    }
    /// The route name.
    pub fn route_name(&self) -> &str {
        &self.name
    }
    /// The route's own payload size limit ([`Route::max_payload`]), if set.
    pub fn payload_limit(&self) -> Option<usize> {
        self.max_payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_delays() {
        let ms = Duration::from_millis;
        assert_eq!(Backoff::None.delay(3), Duration::ZERO);
        assert_eq!(Backoff::Fixed(ms(5)).delay(7), ms(5));
        let e = Backoff::Exponential {
            initial: ms(10),
            max: ms(70),
        };
        assert_eq!(
            (0..5).map(|i| e.delay(i)).collect::<Vec<_>>(),
            [ms(10), ms(20), ms(40), ms(70), ms(70)]
        );
        assert_eq!(e.delay(u32::MAX), ms(70));
    }

    #[test]
    fn invalid_templates_are_errors() {
        assert!(matches!(
            Route::new("a/{b"),
            Err(Error::InvalidAddress { .. })
        ));
        assert!(Route::new("a").unwrap().try_reply_address("{").is_err());
        assert_eq!(Route::new("a").unwrap().concurrency(0).concurrency, 1);
    }
}
