//! Middleware: code that wraps every consumed message and every publish of a router.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::HandlerError;
use crate::{Headers, OutgoingMessage, Result};

/// A boxed, `Send` future (router internals and middleware only; the broker contract has no
/// `dyn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What middleware sees of a consumed message.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct ConsumeInfo<'a> {
    /// Route (operation) name.
    pub route: &'a str,
    /// Concrete address.
    pub address: &'a str,
    /// Headers.
    pub headers: &'a Headers,
    /// Encoded payload.
    pub payload: &'a [u8],
    /// Attempt (broker attempt plus local retries), from 1.
    pub attempt: u32,
    /// Correlation id.
    pub correlation_id: Option<&'a str>,
}

/// What middleware sees after a publish made through a [`Context`](super::Context).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PublishInfo<'a> {
    /// The route (operation) whose handling made the publish (handler publishes, replies and
    /// dead letters).
    pub route: &'a str,
    /// The address published to.
    pub address: &'a str,
    /// The outcome: a middleware's refusal or the broker's answer.
    pub result: &'a Result<()>,
    /// From the start of the publish (the [`Middleware::publish`] hooks included) until the
    /// broker took the message or the publish failed.
    pub elapsed: Duration,
}

/// The rest of the chain: the following middleware, then decoding and the handler.
pub struct Next<'a> {
    pub(crate) rest: &'a [Arc<dyn Middleware>],
    pub(crate) terminal: Box<dyn FnOnce() -> BoxFuture<'a, Result<(), HandlerError>> + Send + 'a>,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("remaining_middleware", &self.rest.len())
            .finish()
    }
}

impl<'a> Next<'a> {
    /// Run the rest of the chain.
    pub fn run(self, info: &'a ConsumeInfo<'a>) -> BoxFuture<'a, Result<(), HandlerError>> {
        match self.rest.split_first() {
            Some((first, rest)) => first.consume(
                info,
                Next {
                    rest,
                    terminal: self.terminal,
                },
            ),
            None => (self.terminal)(),
        }
    }
}

/// Wraps consume and publish: metrics, tracing, auth, your own.
///
/// Both methods have pass-through defaults. A middleware may short-circuit by not calling
/// [`Next::run`]; `run` consumes `Next`, so the handler runs at most once per attempt (retries
/// are the route's [`RetryPolicy`](super::RetryPolicy)).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use ruststream::router::{BoxFuture, ConsumeInfo, HandlerError, Middleware, Next};
///
/// #[derive(Default)]
/// struct CountFailures(AtomicU64);
///
/// impl Middleware for CountFailures {
///     fn consume<'a>(&'a self, info: &'a ConsumeInfo<'a>, next: Next<'a>)
///         -> BoxFuture<'a, Result<(), HandlerError>> {
///         Box::pin(async move {
///             let r = next.run(info).await;
///             if r.is_err() { self.0.fetch_add(1, Ordering::Relaxed); }
///             r
///         })
///     }
/// }
/// ```
pub trait Middleware: Send + Sync + 'static {
    /// Around the handling of one attempt of a consumed message (decode + handler).
    fn consume<'a>(
        &'a self,
        info: &'a ConsumeInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        next.run(info)
    }

    /// Before every publish made through a [`Context`](super::Context) (replies and dead
    /// letters included): may add headers, or refuse with an error.
    fn publish(&self, message: &mut OutgoingMessage) -> Result<()> {
        let _ = message;
        Ok(())
    }

    /// After every publish made through a [`Context`](super::Context), whether it succeeded
    /// or not (a refusal by a [`publish`](Self::publish) hook included): its result and how
    /// long it took.
    fn published(&self, info: &PublishInfo<'_>) {
        let _ = info;
    }
}
