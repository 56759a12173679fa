//! In steady state the router consumes a small JSON message on the in-memory broker without
//! allocating: no task per message, no boxed handler future, per-worker metadata reused.
//!
//! One test per file: the counting allocator is process-wide.

use std::alloc::System;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ruststream::memory::{MemoryBroker, MemoryConfig, MemoryConnection};
use ruststream::router::{Context, HandlerError, Route, Router};
use ruststream::{OutgoingMessage, Publisher};
use serde::Deserialize;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Deserialize)]
struct Reading {
    id: u32,
    celsius: f64,
}

#[test]
fn consuming_a_small_json_message_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = MemoryBroker::new(MemoryConfig::new().buffer(512)).connect_now();
        let sum = Arc::new(AtomicU64::new(0));
        let s = Arc::clone(&sum);
        let mut router = Router::<MemoryConnection>::new();
        router.route(
            Route::new("sensor/{id}/reading").unwrap().concurrency(2),
            move |r: Reading, ctx: Context<MemoryConnection>| {
                let s = Arc::clone(&s);
                async move {
                    assert_eq!(ctx.param("id").and_then(|v| v.parse().ok()), Some(r.id));
                    s.fetch_add(r.celsius as u64, Ordering::Relaxed);
                    Ok::<_, HandlerError>(())
                }
            },
        );
        let running = router.start(conn.clone()).await.unwrap();
        let stats = running.stats_handle();
        let payload = bytes::Bytes::from_static(br#"{"id":7,"celsius":21.0}"#);
        for round in 1..=3u64 {
            // Queue the messages first (publishing may allocate)…
            for _ in 0..200 {
                conn.publish(
                    OutgoingMessage::new("sensor/7/reading", payload.clone())
                        .content_type("application/json"),
                )
                .await
                .unwrap();
            }
            // …then let the router consume them.
            let region = Region::new(GLOBAL);
            while stats.acked.load(Ordering::Relaxed) < round * 200 {
                tokio::task::yield_now().await;
            }
            let change = region.change();
            assert_eq!(sum.load(Ordering::Relaxed), round * 200 * 21);
            if round == 3 {
                assert_eq!(
                    change.allocations + change.reallocations,
                    0,
                    "allocations while the router consumed 200 messages: {change:?}"
                );
            }
        }
        running.shutdown(Duration::from_secs(1)).await.unwrap();
    });
}
