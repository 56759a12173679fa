//! Service instances in one consumer group on a six-partition topic while the group changes:
//! two instances consume keyed records, a third joins a third of the way through, the first
//! leaves at two thirds. Nothing may be lost, each key's records must first arrive in publish
//! order (a record may come again after a rebalance — at least once — but never overtake an
//! earlier one of its key), and a record one instance settled is not handled again by the
//! instance that takes its partition over beyond what was in flight. Prints the share per
//! instance and how long each rebalance took to hand out partitions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ruststream::testing::require_service;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_kafka::{Config, KafkaBroker, KafkaConnection};
use tokio::sync::Mutex;

const KAFKA: &str = "127.0.0.1:9092";
const TOTAL: usize = 6_000;
const KEYS: usize = 24;

/// What every instance handled, in global arrival order: (instance, key, seq), and the
/// distinct (key, seq) seen so far.
type Log = Arc<Mutex<(Vec<(usize, usize, usize)>, HashSet<(usize, usize)>)>>;

fn config() -> Config {
    Config::new(KAFKA)
        .client_id("rs-rebalance")
        .partitions(6)
        .commit_interval(Duration::from_millis(100))
        .session_timeout(Duration::from_secs(6))
}

/// Join the group as instance `id`; returns when the group gave it partitions, with the
/// time that took, and a task handling records until `stop` is set.
async fn instance(
    id: usize,
    address: &Address,
    group: &str,
    log: Log,
    distinct: Arc<AtomicUsize>,
) -> (KafkaConnection, tokio::task::JoinHandle<()>, Duration) {
    let conn = KafkaBroker::new(config()).connect().await.expect("connect");
    let joined = Instant::now();
    let mut sub = conn
        .subscribe(address, SubscribeOptions::new().queue_group(group))
        .await
        .expect("subscribe");
    let took = joined.elapsed();
    let task = tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            let Ok(m) = m else { break };
            let text = String::from_utf8_lossy(m.payload()).into_owned();
            let (key, seq) = text.split_once(':').expect("key:seq");
            let (key, seq): (usize, usize) = (key.parse().expect("key"), seq.parse().expect("seq"));
            {
                let mut log = log.lock().await;
                if log.1.insert((key, seq)) {
                    distinct.fetch_add(1, Ordering::Relaxed);
                }
                log.0.push((id, key, seq));
            }
            m.ack().await.expect("ack");
        }
    });
    (conn, task, took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_joining_and_leaving_lose_nothing_and_keep_order_per_key() {
    if !require_service("kafka", KAFKA) {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let topic = format!("rebalance.{nanos}");
    let group = format!("rebalance-workers-{nanos}");
    let address: Address = topic.parse().expect("address");
    let log: Log = Arc::default();
    let distinct = Arc::new(AtomicUsize::new(0));

    let (a, task_a, join_a) = instance(0, &address, &group, log.clone(), distinct.clone()).await;
    let (b, task_b, join_b) = instance(1, &address, &group, log.clone(), distinct.clone()).await;

    let publisher = KafkaBroker::new(config()).connect().await.expect("connect");
    let publishing = {
        let publisher = publisher.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            // In order per key: each key's records are published one after the other; paced
            // over ~12 s so that the stream outlasts the group changes.
            for seq in 0..TOTAL / KEYS {
                tokio::time::sleep(Duration::from_millis(48)).await;
                let sends = (0..KEYS).map(|key| {
                    let msg = OutgoingMessage::new(topic.clone(), format!("{key}:{seq}"))
                        .key(format!("key-{key}"));
                    publisher.publish(msg)
                });
                for r in futures_util::future::join_all(sends).await {
                    r.expect("publish");
                }
            }
        })
    };

    let wait_for = |n: usize| {
        let distinct = distinct.clone();
        async move {
            let start = Instant::now();
            while distinct.load(Ordering::Relaxed) < n {
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "stuck at {} of {n}",
                    distinct.load(Ordering::Relaxed)
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_for(TOTAL / 3).await;
    let (c, task_c, join_c) = instance(2, &address, &group, log.clone(), distinct.clone()).await;
    wait_for(2 * TOTAL / 3).await;
    let leave = Instant::now();
    a.shutdown().await.expect("instance 0 leaves");
    let left = leave.elapsed();
    let _ = task_a.await;
    wait_for(TOTAL).await;
    publishing.await.expect("publisher");

    let guard = log.lock().await;
    let log = &guard.0;
    let mut share = [0usize; 3];
    let mut first_seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut last_first: HashMap<usize, usize> = HashMap::new();
    for (i, &(who, key, seq)) in log.iter().enumerate() {
        share[who] += 1;
        if first_seen.insert((key, seq), i).is_none() {
            if let Some(prev) = last_first.insert(key, seq) {
                assert!(
                    seq > prev,
                    "key {key}: {seq} first arrived after {prev} (order per key broken)"
                );
            }
        }
    }
    let duplicates = log.len() - first_seen.len();
    println!(
        "kafka rebalance: {TOTAL} records, {} distinct handled, {duplicates} duplicates, share per instance {share:?}; \
         partitions handed out in {join_a:?} (first member), {join_b:?} (second), {join_c:?} (third joining mid-stream); \
         leaving took {left:?}",
        first_seen.len()
    );
    assert_eq!(
        first_seen.len(),
        TOTAL,
        "every record handled at least once"
    );
    assert!(
        share[2] > 0,
        "the instance that joined took over partitions: {share:?}"
    );
    // Redeliveries after a rebalance are bounded by what was in flight, not the stream.
    assert!(duplicates < TOTAL / 4, "{duplicates} duplicates");
    drop(guard);
    for conn in [b, c, publisher] {
        conn.shutdown().await.expect("shutdown");
    }
    let _ = (task_b.await, task_c.await);
}
