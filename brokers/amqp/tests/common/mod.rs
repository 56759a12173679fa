//! Shared helpers for the RabbitMQ tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::{IncomingMessage, Result};
use ruststream_amqp::{Config, ExchangeKind};

/// Whether RabbitMQ is reachable (skips locally, fails under CI=true).
pub fn rabbit() -> bool {
    ruststream::testing::require_service("rabbitmq", "127.0.0.1:5672")
}

/// A name unique to this process and call.
pub fn unique(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "rstest.{what}.{}.{nanos:x}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A config on a fresh auto-delete topic exchange whose named queues expire.
pub fn config(what: &str) -> Config {
    Config::default()
        .exchange(unique(what), ExchangeKind::Topic)
        .exchange_lifetime(false, true)
        .queue_durable(false)
        .queue_expires(Duration::from_secs(30))
}

/// The next message within 5 s.
pub async fn next<S, M>(sub: &mut S) -> M
where
    S: futures_core::Stream<Item = Result<M>> + Unpin,
    M: IncomingMessage,
{
    match tokio::time::timeout(Duration::from_secs(5), sub.next()).await {
        Ok(Some(Ok(m))) => m,
        Ok(Some(Err(e))) => panic!("subscription error: {e}"),
        Ok(None) => panic!("subscription ended"),
        Err(_) => panic!("no message within 5s"),
    }
}

/// Assert nothing arrives for 300 ms.
pub async fn quiet<S, M>(sub: &mut S)
where
    S: futures_core::Stream<Item = Result<M>> + Unpin,
    M: IncomingMessage,
{
    if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!(
            "unexpected message on {}: {:?}",
            m.address(),
            String::from_utf8_lossy(m.payload())
        );
    }
}
