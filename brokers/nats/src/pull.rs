//! The message stream of a JetStream pull consumer.
//!
//! Not async-nats's `Consumer::stream()`: its accounting of requested messages runs through a
//! background task, and a message can overtake that task's "request sent" notice. The stream
//! then counts the request as still outstanding although its message already arrived; with a
//! batch of 1 (prefetch 1) it pulls again only when the request's expiry (30 s + 5 s) fires,
//! so a prefetch-1 consumer ran at ~1k msg/s with 20–35 s stalls. Here the pull request is
//! sent, and counted, by the stream itself, in the order it sees messages arrive.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::{Client, StatusCode, Subscriber, jetstream};
use futures_core::Stream;
use futures_util::StreamExt;

/// How long a pull request waits at the server for messages.
const EXPIRES: Duration = Duration::from_secs(30);
/// While a pull request waits at the server with nothing to deliver, the server sends a
/// heartbeat (`100 Idle Heartbeat`) this often.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// Without any reply (message, heartbeat or status) for this long, the outstanding requests
/// are gone: their server died or lost the consumer's leadership (a cluster node failed), or
/// their `408` was lost. Without heartbeats this was the expiry (35 s of standing still after
/// a cluster node died, with the client still connected to another node).
const LOST: Duration = Duration::from_secs(3);
/// How often a quiet stream checks for a reconnect (pull requests do not survive one).
const TICK: Duration = Duration::from_secs(1);

/// Messages, or a description of why a pull failed.
pub(crate) type Messages =
    Pin<Box<dyn Stream<Item = Result<jetstream::Message, String>> + Send + 'static>>;

struct Puller {
    client: Client,
    context: jetstream::Context,
    /// `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
    subject: String,
    inbox: String,
    replies: Subscriber,
    /// Messages asked for per pull.
    batch: usize,
    /// Messages asked for and not yet delivered, expired or terminated.
    outstanding: usize,
    /// The client's connection count when the outstanding requests were sent.
    connects: u64,
    terminated: bool,
}

/// A stream of the messages of pull consumer `consumer` on `stream`, asking for up to `batch`
/// at a time and topping up once half of them have arrived.
pub(crate) async fn messages(
    client: Client,
    context: jetstream::Context,
    stream: &str,
    consumer: &str,
    batch: usize,
) -> Result<Messages, String> {
    let inbox = client.new_inbox();
    let replies = client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| e.to_string())?;
    let connects = client.statistics().connects.load(Ordering::Relaxed);
    let puller = Puller {
        client,
        context,
        subject: format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"),
        inbox,
        replies,
        batch: batch.max(1),
        outstanding: 0,
        connects,
        terminated: false,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        puller,
        |mut p| async move { p.next().await.map(|item| (item, p)) },
    )))
}

impl Puller {
    async fn pull(&mut self) -> Result<(), String> {
        let n = self.batch - self.outstanding;
        let request = format!(
            r#"{{"batch":{n},"expires":{},"idle_heartbeat":{}}}"#,
            u64::try_from(EXPIRES.as_nanos()).unwrap_or(u64::MAX),
            u64::try_from(HEARTBEAT.as_nanos()).unwrap_or(u64::MAX)
        );
        self.client
            .publish_with_reply(self.subject.clone(), self.inbox.clone(), request.into())
            .await
            .map_err(|e| format!("pull request failed: {e}"))?;
        // Counted once sent: if this future is dropped half-way, the count is low at worst,
        // which costs one extra pull request, never a stall.
        self.outstanding += n;
        Ok(())
    }

    async fn next(&mut self) -> Option<Result<jetstream::Message, String>> {
        let mut quiet = Duration::ZERO;
        loop {
            if self.terminated {
                return None;
            }
            let connects = self.client.statistics().connects.load(Ordering::Relaxed);
            if connects != self.connects {
                self.connects = connects;
                self.outstanding = 0;
            }
            if self.outstanding <= self.batch / 2 {
                if let Err(e) = self.pull().await {
                    return Some(Err(e));
                }
                quiet = Duration::ZERO;
            }
            let message = match tokio::time::timeout(TICK, self.replies.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => return None,
                Err(_) => {
                    quiet += TICK;
                    if quiet >= LOST {
                        tracing::debug!(
                            outstanding = self.outstanding,
                            "nats: pull requests unanswered; pulling again"
                        );
                        self.outstanding = 0;
                    }
                    continue;
                }
            };
            quiet = Duration::ZERO;
            let status = message.status.unwrap_or(StatusCode::OK);
            match status {
                StatusCode::OK => {
                    self.outstanding = self.outstanding.saturating_sub(1);
                    return Some(Ok(jetstream::Message {
                        message,
                        context: self.context.clone(),
                    }));
                }
                StatusCode::IDLE_HEARTBEAT | StatusCode::NOT_FOUND => {}
                StatusCode::TIMEOUT | StatusCode::REQUEST_TERMINATED => {
                    let description = message.description.as_deref().unwrap_or_default();
                    if description.eq_ignore_ascii_case("consumer deleted")
                        || description.eq_ignore_ascii_case("consumer is push based")
                    {
                        self.terminated = true;
                        return Some(Err(format!("pull consumer: {description}")));
                    }
                    // The request ended (expired, or terminated by the server) with this many
                    // of its messages undelivered.
                    let left = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Pending-Messages"))
                        .and_then(|v| v.as_str().parse().ok())
                        .unwrap_or(self.batch);
                    self.outstanding = self.outstanding.saturating_sub(left);
                }
                status => {
                    // No responders (JetStream unavailable) and the like: the pull failed.
                    self.outstanding = 0;
                    let description = message.description.unwrap_or_default();
                    return Some(Err(format!("pull consumer: status {status} {description}")));
                }
            }
        }
    }
}
