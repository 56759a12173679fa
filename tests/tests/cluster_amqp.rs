//! Competing consumers on one RabbitMQ quorum queue: a service instance killed with messages in
//! flight loses none of them; RabbitMQ redelivers them to the others.
//!
//! Three service instances run as separate processes (this test binary, re-run with
//! `CLUSTER_AMQP_INSTANCE` set, in the ignored test `amqp_service_instance`). Each runs a router
//! whose route consumes the queue group `workers`, a quorum queue (`x-queue-type: quorum`,
//! [`QueueType::Quorum`]) that the three share, with concurrency 32 (so a prefetch of 32: the
//! router asks for as many deliveries as it runs handlers), and prints a line per handled
//! message. A publisher sends `RELIABILITY_MESSAGES` messages (default 5,000) with
//! publisher confirms: half before the instances start (a backlog, so that every instance's
//! prefetch window is full), half while they consume. A quarter of the way through one
//! instance process is killed with SIGKILL, holding up to 32 unacknowledged deliveries.
//!
//! Asserted: every message is handled at least once, the survivors handled redeliveries
//! (attempt > 1, from the quorum queue's `x-delivery-count`) and took over, and each survivor's
//! metrics carry its `service_instance` (from `RUSTSTREAM_INSTANCE`) and count what it handled.
//! Printed: duplicates, redeliveries, the share per instance, the first redelivery's delay and
//! the times.
//!
//! RabbitMQ here is one node (127.0.0.1:5672): a quorum queue on one node has one replica, so
//! this shows the consumer side of a cluster, not a RabbitMQ node failure (starting a RabbitMQ
//! cluster is not cheap enough for this machine and CI).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ruststream::metrics::Metrics;
use ruststream::router::{Context, HandlerError, Route, Router};
use ruststream::{
    Address, Broker, Connection, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};
use ruststream_amqp::{AmqpBroker, Config, ExchangeKind, QueueType};

/// Set (to the exchange name) in the environment of an instance process.
const CHILD_ENV: &str = "CLUSTER_AMQP_INSTANCE";
const INSTANCES: usize = 3;
/// Handlers per instance, and so unacknowledged deliveries per instance.
const CONCURRENCY: usize = 32;
const PUBLISHERS: u32 = 16;

fn messages() -> u32 {
    std::env::var("RELIABILITY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// A minute plus a second per 100 messages (confirmed publishes in a debug build are slow).
fn run_limit(n: u32) -> Duration {
    Duration::from_secs(60 + u64::from(n) / 100)
}

fn config(exchange: &str) -> Config {
    Config::default()
        .exchange(exchange, ExchangeKind::Topic)
        .exchange_lifetime(false, true)
        .queue_type(QueueType::Quorum)
        // Expiry counts time without consumers, backlog or not: longer than the backlog takes
        // to publish (a minute for 50,000), or the queue and its messages are gone.
        .queue_expires(Duration::from_secs(600))
}

/// One service instance (run by the parent test as a process of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a service instance process, started by amqp_quorum_queue_redelivers_a_killed_instances_messages"]
async fn amqp_service_instance() {
    let Ok(exchange) = std::env::var(CHILD_ENV) else {
        return;
    };
    let conn = AmqpBroker::new(config(&exchange))
        .connect()
        .await
        .expect("instance connects");
    // Named by RUSTSTREAM_INSTANCE, set by the parent.
    let metrics = Metrics::new("cluster-amqp").expect("metrics");
    let mut router = Router::new();
    router.route(
        Route::new("jobs")
            .expect("route")
            .queue_group("workers")
            .concurrency(CONCURRENCY),
        |id: u32, ctx: Context<_>| async move {
            // Some work per message (and deliveries wait in the prefetch window).
            tokio::time::sleep(Duration::from_millis(5)).await;
            println!("H {id} {}", ctx.attempt());
            Ok::<_, HandlerError>(())
        },
    );
    let running = router.start(conn).await.expect("router starts");
    metrics.watch_router("amqp", running.route_stats());
    println!("READY");
    // Run until the parent closes stdin (or kills this process).
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    let _ = running.shutdown(Duration::from_secs(5)).await;
    for line in metrics.render().lines() {
        if line.starts_with("ruststream_messages_handled_total{") {
            println!("M {line}");
        }
    }
}

/// What the parent sees of one instance process.
#[derive(Default)]
struct Seen {
    handled: AtomicU64,
    /// Deliveries with attempt > 1.
    redelivered: AtomicU64,
    ready: AtomicU32,
    /// When the first redelivery arrived.
    first_redelivery: Mutex<Option<Instant>>,
    metrics: Mutex<Vec<String>>,
}

struct Instance {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    seen: Arc<Seen>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    fn start(name: &str, exchange: &str, counts: Arc<Vec<AtomicU32>>) -> Instance {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "amqp_service_instance",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, exchange)
            .env(ruststream::metrics::INSTANCE_ENV, name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("instance process starts");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        let seen = Arc::new(Seen::default());
        let reader = {
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(rest) = line.strip_prefix("H ") {
                        let mut parts = rest.split(' ');
                        let id: Option<usize> = parts.next().and_then(|p| p.parse().ok());
                        let attempt: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(1);
                        if let Some(c) = id.and_then(|i| counts.get(i)) {
                            c.fetch_add(1, Ordering::Relaxed);
                        }
                        seen.handled.fetch_add(1, Ordering::Relaxed);
                        if attempt > 1 && seen.redelivered.fetch_add(1, Ordering::Relaxed) == 0 {
                            *seen
                                .first_redelivery
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                                Some(Instant::now());
                        }
                    } else if line.ends_with("READY") {
                        // After libtest's `test amqp_service_instance ... `.
                        seen.ready.store(1, Ordering::Release);
                    } else if let Some(m) = line.strip_prefix("M ") {
                        seen.metrics
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(m.to_owned());
                    }
                }
            })
        };
        Instance {
            name: name.to_owned(),
            child,
            stdin,
            seen,
            reader: Some(reader),
        }
    }

    fn handled(&self) -> u64 {
        self.seen.handled.load(Ordering::Relaxed)
    }

    /// SIGKILL: the kernel closes the connection; RabbitMQ requeues its unacked deliveries.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }

    /// Close stdin: the instance shuts down, prints its metrics and exits.
    fn stop(&mut self) {
        self.stdin = None;
        let end = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a run measured.
#[derive(Debug)]
#[allow(dead_code)] // Read through `Debug`.
struct Report {
    sent: u32,
    handled_once: u32,
    duplicates: u64,
    /// Redeliveries (attempt > 1) handled by the survivors.
    redelivered: u64,
    publish_retries: u64,
    /// Handled per instance (the killed one first).
    per_instance: Vec<(String, u64)>,
    /// Handled per surviving instance after the kill.
    after_kill: Vec<(String, u64)>,
    /// From the kill until a survivor handled the first redelivered message.
    first_redelivery_after: Option<Duration>,
    /// From the kill until the survivors had handled every message.
    rest_of_the_run: Duration,
    elapsed: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_quorum_queue_redelivers_a_killed_instances_messages() {
    if !ruststream::testing::require_service("rabbitmq", "127.0.0.1:5672") {
        return;
    }
    let n = messages();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let exchange = format!("rstest.cluster.{}.{nanos:x}", std::process::id());
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..n).map(|_| AtomicU32::new(0)).collect());

    // Declare the shared quorum queue (as the instances will) on a connection of its own.
    let declare = AmqpBroker::new(config(&exchange))
        .connect()
        .await
        .expect("connects");
    let sub = declare
        .subscribe(
            &Address::parse("jobs").expect("address"),
            SubscribeOptions::new().queue_group("workers"),
        )
        .await
        .expect("quorum queue declared");
    drop(sub);
    declare
        .shutdown()
        .await
        .expect("declaring connection closes");

    let publisher = AmqpBroker::new(config(&exchange))
        .connect()
        .await
        .expect("publisher connects");
    let started = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU32::new(0));
    let publish = |ids: Vec<u32>| {
        let conn = publisher.clone();
        let retries = Arc::clone(&retries);
        let published = Arc::clone(&published);
        tokio::spawn(async move {
            for id in ids {
                loop {
                    let msg = OutgoingMessage::new("jobs", id.to_string())
                        .content_type("application/json");
                    let sent =
                        tokio::time::timeout(Duration::from_secs(5), conn.publish(msg)).await;
                    if let Ok(Ok(())) = sent {
                        break;
                    }
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                published.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let slices = |from: u32, to: u32| -> Vec<Vec<u32>> {
        (0..PUBLISHERS)
            .map(|k| (from + k..to).step_by(PUBLISHERS as usize).collect())
            .collect()
    };
    // The backlog.
    for task in slices(0, n / 2).into_iter().map(publish) {
        task.await.expect("backlog published");
    }

    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|i| Instance::start(&format!("amqp-{i}"), &exchange, Arc::clone(&counts)))
        .collect();
    let end = Instant::now() + Duration::from_secs(30);
    while instances
        .iter()
        .any(|i| i.seen.ready.load(Ordering::Acquire) == 0)
    {
        assert!(Instant::now() < end, "instances did not start");
        assert!(
            instances
                .iter_mut()
                .all(|i| i.child.try_wait().ok().flatten().is_none()),
            "an instance process exited at start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The rest, while the instances consume.
    let tasks: Vec<_> = slices(n / 2, n).into_iter().map(publish).collect();
    let publishing = || tasks.iter().any(|t| !t.is_finished());
    let handled_once = || {
        counts
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) > 0)
            .count() as u32
    };

    let deadline = Instant::now() + run_limit(n);
    let mut killed: Option<(Instant, Vec<u64>)> = None;
    loop {
        let h = handled_once();
        if (h >= n && !publishing()) || Instant::now() >= deadline {
            break;
        }
        if killed.is_none() && h >= n / 4 {
            eprintln!("killing instance {} at {h} handled", instances[0].name);
            instances[0].kill();
            killed = Some((
                Instant::now(),
                instances.iter().map(Instance::handled).collect(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let rest_of_the_run = killed
        .as_ref()
        .map_or(Duration::ZERO, |(at, _)| at.elapsed());
    for t in &tasks {
        t.abort();
    }
    // Let the survivors print what they have, then stop them (they print their metrics).
    for instance in &mut instances[1..] {
        instance.stop();
    }
    if let Some(reader) = instances[0].reader.take() {
        let _ = reader.join();
    }

    let duplicates: u64 = counts
        .iter()
        .map(|c| u64::from(c.load(Ordering::Relaxed).saturating_sub(1)))
        .sum();
    let at_kill = killed.as_ref().map(|(_, c)| c.clone()).unwrap_or_default();
    let report = Report {
        sent: published.load(Ordering::Relaxed),
        handled_once: handled_once(),
        duplicates,
        redelivered: instances[1..]
            .iter()
            .map(|i| i.seen.redelivered.load(Ordering::Relaxed))
            .sum(),
        publish_retries: retries.load(Ordering::Relaxed),
        per_instance: instances
            .iter()
            .map(|i| (i.name.clone(), i.handled()))
            .collect(),
        after_kill: instances
            .iter()
            .zip(&at_kill)
            .skip(1)
            .map(|(i, at)| (i.name.clone(), i.handled() - at))
            .collect(),
        first_redelivery_after: killed.as_ref().and_then(|(at, _)| {
            instances[1..]
                .iter()
                .filter_map(|i| {
                    *i.seen
                        .first_redelivery
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                })
                .min()
                .map(|first| first.saturating_duration_since(*at))
        }),
        rest_of_the_run,
        elapsed,
    };
    eprintln!("{report:#?}");
    let total: u64 = report.per_instance.iter().map(|(_, c)| c).sum();
    for (name, count) in &report.per_instance {
        eprintln!(
            "share {name}: {count} ({:.1}%)",
            100.0 * *count as f64 / total.max(1) as f64
        );
    }
    let missing: Vec<usize> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.load(Ordering::Relaxed) == 0)
        .map(|(i, _)| i)
        .take(20)
        .collect();
    assert!(killed.is_some(), "the instance was killed: {report:?}");
    assert_eq!(report.sent, n, "every message published: {report:?}");
    assert_eq!(
        report.handled_once, n,
        "every message handled at least once; first missing {missing:?}: {report:?}"
    );
    assert!(
        report.redelivered > 0,
        "the killed instance's unacked deliveries were redelivered to the others: {report:?}"
    );
    assert!(
        report.after_kill.iter().all(|(_, c)| *c > 0),
        "both surviving instances took over: {report:?}"
    );
    // The spread as a user scrapes it: each survivor's acked count under its own name.
    let mut acked: HashMap<String, u64> = HashMap::new();
    for instance in &instances[1..] {
        let lines = instance
            .seen
            .metrics
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let label = format!("service_instance=\"{}\"", instance.name);
        let count = lines
            .iter()
            .filter(|l| l.contains(&label) && l.contains("outcome=\"ack\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        acked.insert(instance.name.clone(), count);
    }
    eprintln!("acked per instance (metrics): {acked:?}");
    for instance in &instances[1..] {
        assert_eq!(
            acked[&instance.name],
            instance.handled(),
            "{}: the metrics count every message it handled",
            instance.name
        );
    }
}
