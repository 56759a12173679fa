//! The in-memory broker's consume path (receive + ack) does not allocate in steady state.
//!
//! One test per file: the counting allocator is process-wide.

use std::alloc::System;

use futures_util::StreamExt;
use ruststream::memory::{MemoryBroker, MemoryConfig};
use ruststream::{
    Address, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn receiving_and_acking_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conn = MemoryBroker::new(MemoryConfig::new().buffer(256)).connect_now();
        let mut sub = conn
            .subscribe(
                &Address::parse("sensor/{id}/reading").unwrap(),
                SubscribeOptions::new(),
            )
            .await
            .unwrap();
        let payload = bytes::Bytes::from_static(br#"{"id":7,"celsius":21.5}"#);
        // Warm up, then queue messages (publishing may allocate).
        for round in 0..2 {
            for _ in 0..200 {
                conn.publish(
                    OutgoingMessage::new("sensor/7/reading", payload.clone())
                        .content_type("application/json"),
                )
                .await
                .unwrap();
            }
            let region = Region::new(GLOBAL);
            let mut total = 0usize;
            for _ in 0..200 {
                let m = sub.next().await.unwrap().unwrap();
                total += m.payload().len() + m.address().len();
                assert_eq!(m.content_type(), Some("application/json"));
                m.ack().await.unwrap();
            }
            let change = region.change();
            assert_eq!(total, 200 * (payload.len() + "sensor/7/reading".len()));
            if round == 1 {
                assert_eq!(
                    change.allocations, 0,
                    "allocations while consuming 200 messages: {change:?}"
                );
            }
        }
    });
}
