//! A typed publish on the in-memory broker allocates only the address and the shared message:
//! no header strings or vector (`content-type` is static), no payload vector (JSON is encoded
//! into a per-thread chunk shared by consecutive payloads).
//!
//! One test per file: the counting allocator is process-wide.

use std::alloc::System;

use futures_util::StreamExt;
use ruststream::memory::{MemoryBroker, MemoryConfig};
use ruststream::{Address, Headers, IncomingMessage, SubscribeOptions, Subscriber};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
struct Reading {
    id: u64,
    sensor: String,
    celsius: f64,
}

#[test]
fn typed_publish_allocates_the_address_and_the_message_only() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        const N: u64 = 500;
        let conn = MemoryBroker::new(MemoryConfig::new().buffer(N as usize)).connect_now();
        let mut sub = conn
            .subscribe(
                &Address::parse("readings").unwrap(),
                SubscribeOptions::new(),
            )
            .await
            .unwrap();
        let mut reading = Reading {
            id: 0,
            sensor: "s-1".into(),
            celsius: 21.5,
        };
        for round in 0..2 {
            let region = Region::new(GLOBAL);
            for id in 0..N {
                reading.id = id;
                ruststream::client::publish(
                    &conn,
                    "readings".to_owned(),
                    "application/json",
                    &reading,
                    Headers::new(),
                )
                .await
                .unwrap();
            }
            let change = region.change();
            // Every payload is intact (they share encode chunks) and carries its header.
            for id in 0..N {
                let m = sub.next().await.unwrap().unwrap();
                assert_eq!(m.content_type(), Some("application/json"));
                let got: Reading = serde_json::from_slice(m.payload()).unwrap();
                assert_eq!((got.id, got.sensor.as_str()), (id, "s-1"));
                m.ack().await.unwrap();
            }
            if round == 1 {
                // 2 per message (address, message) plus a few 8 KiB encode chunks.
                let per_message = change.allocations as f64 / N as f64;
                assert!(
                    change.allocations <= 2 * N as usize + 8,
                    "{per_message} allocations per typed publish: {change:?}"
                );
            }
        }
    });
}
