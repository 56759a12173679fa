//! In steady state the in-memory broker reuses the allocations of acked messages for new
//! publishes, and the address strings of published messages (`client::address`, what
//! generated clients call): a typed publish-consume-ack cycle allocates nothing per message.
//!
//! One test per file: the counting allocator is process-wide.

use std::alloc::System;

use futures_util::StreamExt;
use ruststream::memory::MemoryBroker;
use ruststream::{Address, Headers, IncomingMessage, SubscribeOptions, Subscriber};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn acked_messages_are_reused_by_later_publishes() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        const N: u64 = 100;
        let conn = MemoryBroker::default().connect_now();
        let mut sub = conn
            .subscribe(&Address::parse("ticks").unwrap(), SubscribeOptions::new())
            .await
            .unwrap();
        for round in 0..20 {
            let region = Region::new(GLOBAL);
            for id in 0..N {
                ruststream::client::publish(
                    &conn,
                    ruststream::client::address("ticks"),
                    "application/json",
                    &id,
                    Headers::new(),
                )
                .await
                .unwrap();
            }
            for id in 0..N {
                let m = sub.next().await.unwrap().unwrap();
                assert_eq!(serde_json::from_slice::<u64>(m.payload()).unwrap(), id);
                m.ack().await.unwrap();
            }
            let change = region.change();
            if round >= 10 {
                // An occasional 8 KiB encode chunk; no message or address allocation (that
                // would be 2 per message).
                assert!(
                    change.allocations <= 4,
                    "round {round}: {} allocations for {N} messages: {change:?}",
                    change.allocations
                );
            }
        }
    });
}
