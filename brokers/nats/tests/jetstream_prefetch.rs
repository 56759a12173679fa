//! A JetStream consumer at prefetch 1 runs at the pace of its handler and the round trip, not
//! of pull-request timeouts.
//!
//! Regression: the pull stream of async-nats 0.46 could count a pull request as still
//! outstanding after its only message had already arrived (the message overtook the
//! "request sent" notice of its background task), so with a batch of 1 it waited for the
//! request's expiry (30 s + 5 s) before pulling again: ~1k msg/s with 20–35 s stalls in the
//! soak run. Not a benchmark: three prefetch-1 consumers (more chances for the race), more
//! runtime and busy threads than cores, 2,000 messages each; done in 1–7 s on the loaded
//! 2-core machine. The deadline leaves room for more load but is below the 35 s of one stall.
//! The race needs a thread preempted at the wrong moment, so this catches it by chance: the
//! old code failed 2 of 6 runs (in other trials 1 of 6 to 2 of 4), the fixed code none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ruststream::testing::require_service;
use ruststream::{
    Address, Broker, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};
use ruststream_nats::{Config, JetStreamConfig, NatsBroker};

const NATS: &str = "127.0.0.1:4222";
const URL: &str = "nats://127.0.0.1:4222";
const MESSAGES: u64 = 2_000;
/// Durable consumers of the same subject, each taking every message at prefetch 1.
const CONSUMERS: usize = 3;
const DEADLINE: Duration = Duration::from_secs(25);
/// Busy threads competing with the runtime for the cores.
const HOGS: usize = 3;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}.t{nanos}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefetch_one_is_not_paced_by_pull_expiry() {
    if !require_service("nats", NATS) {
        return;
    }
    let base = unique("rsjsprefetch");
    let js = JetStreamConfig::new("RSJS_PREFETCH", ["rsjsprefetch.>"])
        .memory_storage(true)
        .max_age(Duration::from_secs(600))
        .durable_inactive_threshold(Duration::from_secs(60));
    let conn = NatsBroker::jetstream(Config::new(URL), js)
        .connect()
        .await
        .unwrap();
    let subject = format!("{base}.work");
    let durables: Vec<String> = (0..CONSUMERS)
        .map(|c| format!("{}-p1-{c}", base.replace('.', "-")))
        .collect();
    let mut subs = Vec::new();
    for durable in &durables {
        let options = SubscribeOptions::new().durable(durable.clone()).prefetch(1);
        let sub = conn
            .subscribe(&Address::parse(&subject).unwrap(), options)
            .await
            .unwrap();
        subs.push(sub);
    }

    // A loaded machine, as in the soak run: threads competing for the cores make the client's
    // tasks lose their thread at arbitrary points, which is what exposed the race.
    let stop = Arc::new(AtomicBool::new(false));
    let hogs: Vec<_> = (0..HOGS)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();

    // Publishers run while the consumers work, as in the soak run.
    let publishers: Vec<_> = (0..4u64)
        .map(|p| {
            let conn = conn.clone();
            let subject = subject.clone();
            tokio::spawn(async move {
                for i in (p..MESSAGES).step_by(4) {
                    conn.publish(OutgoingMessage::new(subject.clone(), i.to_string()))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();

    let started = Instant::now();
    let handled: Arc<Vec<AtomicU64>> =
        Arc::new((0..CONSUMERS).map(|_| AtomicU64::new(0)).collect());
    let consumers: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(c, mut sub)| {
            let handled = Arc::clone(&handled);
            tokio::spawn(async move {
                let mut seen = vec![false; MESSAGES as usize];
                while handled[c].load(Ordering::Relaxed) < MESSAGES {
                    let m = sub.next().await.expect("stream open").expect("no error");
                    let id: usize = std::str::from_utf8(m.payload()).unwrap().parse().unwrap();
                    if !std::mem::replace(&mut seen[id], true) {
                        handled[c].fetch_add(1, Ordering::Relaxed);
                    }
                    m.ack().await.unwrap();
                }
            })
        })
        .collect();
    let all = async {
        for c in consumers {
            c.await.unwrap();
        }
    };
    let finished = tokio::time::timeout(DEADLINE, all).await.is_ok();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        h.join().unwrap();
    }
    let counts: Vec<u64> = handled.iter().map(|h| h.load(Ordering::Relaxed)).collect();
    assert!(
        finished,
        "prefetch 1: handled {counts:?} of {MESSAGES} per consumer in {:?} (stalled pulls?)",
        started.elapsed()
    );
    for p in publishers {
        p.await.unwrap();
    }
    for durable in &durables {
        conn.delete_consumer(durable).await.unwrap();
    }
}
