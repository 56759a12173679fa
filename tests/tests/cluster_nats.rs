//! A generated service on a three-node NATS cluster keeps every message while a server node
//! and a service instance die mid-stream.
//!
//! The test starts three `nats-server` processes clustered on free loopback ports (JetStream
//! on, each with its own store directory), waits for the JetStream meta leader, and creates a
//! stream with 3 replicas through [`JetStreamConfig::replicas`]. Three instances of the service
//! generated from `data/codegen/bindings.yaml` (`onJob`, NATS binding `queue: workers`: one
//! durable JetStream consumer shared by the group) run, each in its own Tokio runtime, with
//! every server URL in their `Config`. A publisher sends `RELIABILITY_MESSAGES` jobs (default
//! 5,000; the figure is 100,000) with a `Nats-Msg-Id` each, retrying failed publishes.
//! A quarter of the way through the server node most clients are connected to is killed
//! (SIGKILL); half-way a service instance that was not on that node is killed (its runtime
//! dropped: no drain, no acks); at three quarters (or 10 s after the node kill) the node is
//! started again on its ports and store.
//!
//! Asserted: every job is handled at least once; the clients of the killed node moved to
//! another node; the surviving instances took over, and both consume a tail of 100 jobs
//! published one by one afterwards; the per-instance progress is visible in the metrics
//! (`service_instance` label). Printed: duplicates, redeliveries, publish retries, the share
//! per instance, the longest stall and the times.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ruststream::metrics::Metrics;
use ruststream::router::{Context, HandlerError, Router};
use ruststream::{Broker, Connection, OutgoingMessage, Publisher};
use ruststream_e2e::codegen::bindings::{Handler, JobPayload, register};
use ruststream_nats::{Config, JetStreamConfig, NatsBroker};

const NATS_SERVER: &str = "nats-server";
const STREAM: &str = "CLUSTER";
const INSTANCES: usize = 3;
/// Concurrent publishing tasks (each waits for its stream confirmation).
const PUBLISHERS: u32 = 16;
/// Jobs published one by one after the run, 50 ms apart, to see every survivor consume.
const TAIL: u32 = 100;

fn messages() -> u32 {
    std::env::var("RELIABILITY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// How long the whole run may take: a minute plus a second per 500 messages.
fn run_limit(n: u32) -> Duration {
    Duration::from_secs(60 + u64::from(n) / 500)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn installed(program: &str) -> bool {
    match Command::new(program).arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{program} is required in CI: {e}");
            }
            eprintln!("skipping: {program} is not installed: {e}");
            false
        }
    }
}

/// One `nats-server` of the cluster.
struct Node {
    name: String,
    port: u16,
    monitor: u16,
    args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let child = Command::new(NATS_SERVER)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{NATS_SERVER} starts: {e}"));
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < end, "{} did not listen", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no goodbye to the cluster or the clients.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The names of the clients connected to this node (empty when it is down).
    fn clients(&self) -> Vec<String> {
        if self.child.is_none() {
            return Vec::new();
        }
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.monitor)) else {
            return Vec::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /connz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return Vec::new();
        }
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let Some((_, body)) = text.split_once("\r\n\r\n") else {
            return Vec::new();
        };
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        json["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_owned))
            .filter(|n| n.starts_with("cluster-"))
            .collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three clustered nodes in a scratch directory (removed on drop).
struct Cluster {
    nodes: Vec<Node>,
    dir: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!("ruststream-cluster-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, route) in routes.iter().enumerate() {
            let name = format!("n{i}");
            let port = free_port();
            let monitor = free_port();
            let others: Vec<String> = routes
                .iter()
                .filter(|r| *r != route)
                .map(|r| format!("nats://127.0.0.1:{r}"))
                .collect();
            let args = [
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                &monitor.to_string(),
                "-n",
                &name,
                "-js",
                "-sd",
                &dir.join(&name).display().to_string(),
                "--cluster_name",
                "ruststream",
                "--cluster",
                &format!("nats://127.0.0.1:{route}"),
                "--routes",
                &others.join(","),
            ]
            .map(str::to_owned)
            .to_vec();
            let mut node = Node {
                name,
                port,
                monitor,
                args,
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        Cluster { nodes, dir }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn broker(urls: &[String], client: &str) -> ruststream_nats::JetStreamBroker {
    NatsBroker::jetstream(
        Config::default()
            .servers(urls.iter().cloned())
            .client_name(client)
            .connect_timeout(Duration::from_secs(2)),
        JetStreamConfig::new(STREAM, ["jobs"])
            .replicas(3)
            .ack_wait(Duration::from_secs(2)),
    )
}

/// The generated service's handler: counts each job and this instance's share.
#[derive(Clone)]
struct Worker {
    seen: Arc<Vec<AtomicU32>>,
    handled: Arc<AtomicU64>,
    /// Deliveries with attempt > 1 (over all instances).
    redelivered: Arc<AtomicU64>,
}

impl Handler for Worker {
    async fn on_job<C: Connection>(
        &self,
        job: JobPayload,
        ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        if ctx.attempt() > 1 {
            self.redelivered.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(c) = usize::try_from(job.id).ok().and_then(|i| self.seen.get(i)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// One service instance in a runtime of its own, so that killing it drops everything it runs
/// at once (no drain, no acks), as a process kill would.
struct Instance {
    name: String,
    handled: Arc<AtomicU64>,
    metrics: Metrics,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Instance {
    async fn start(
        name: &str,
        urls: &[String],
        seen: Arc<Vec<AtomicU32>>,
        redelivered: Arc<AtomicU64>,
    ) -> Instance {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(name)
            .enable_all()
            .build()
            .expect("runtime");
        let handled = Arc::new(AtomicU64::new(0));
        let metrics = Metrics::with_instance("cluster-svc", name).expect("metrics");
        let worker = Worker {
            seen,
            handled: Arc::clone(&handled),
            redelivered,
        };
        let broker = broker(urls, &format!("cluster-{name}"));
        let (ready, started) = tokio::sync::oneshot::channel();
        let exported = metrics.clone();
        runtime.spawn(async move {
            let run = async {
                let conn = broker.connect().await?;
                let mut router = Router::new();
                register(&mut router, worker)?;
                let running = router.start(conn).await?;
                exported.watch_router("nats-jetstream", running.route_stats());
                Ok::<_, ruststream::Error>(running)
            };
            match run.await {
                Ok(running) => {
                    let _ = ready.send(Ok(()));
                    std::future::pending::<()>().await;
                    drop(running);
                }
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), started)
            .await
            .expect("instance starts in time")
            .expect("instance reports")
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Instance {
            name: name.to_owned(),
            handled,
            metrics,
            runtime: Some(runtime),
        }
    }

    fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Messages acked by this instance, as its metrics export them.
    fn acked_in_metrics(&self) -> u64 {
        let text = self.metrics.render();
        let wanted = format!("service_instance=\"{}\"", self.name);
        text.lines()
            .filter(|l| l.starts_with("ruststream_messages_handled_total{"))
            .filter(|l| l.contains(&wanted) && l.contains("outcome=\"ack\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a run measured.
#[derive(Debug)]
#[allow(dead_code)] // Read through `Debug`.
struct Report {
    sent: u32,
    handled_once: u32,
    duplicates: u64,
    /// Deliveries with attempt > 1 (acks lost with the node or the instance).
    redelivered: u64,
    publish_retries: u64,
    /// Handled per instance (the killed one first).
    per_instance: Vec<(String, u64)>,
    /// Handled per surviving instance after the instance kill.
    after_instance_kill: Vec<(String, u64)>,
    /// Tail jobs handled per surviving instance.
    tail: Vec<(String, u64)>,
    tail_retries: u32,
    /// From the first tail publish until every tail job was handled.
    tail_took: Duration,
    killed_node: String,
    /// Clients that were on the killed node.
    moved_clients: Vec<String>,
    node_down: Duration,
    /// Longest time without a newly handled message after the node kill.
    longest_stall: Duration,
    elapsed: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_loses_nothing_when_a_node_and_an_instance_die() {
    if !installed(NATS_SERVER) {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_test_writer()
        .try_init();
    let n = messages();
    let mut cluster = Cluster::start();
    let urls = cluster.urls();

    // The cluster is ready when a stream with 3 replicas can be created (routes up, JetStream
    // meta leader elected, every peer known).
    let formed = Instant::now();
    let publisher = loop {
        match broker(&urls, "cluster-publisher").connect().await {
            Ok(conn) => break conn,
            Err(e) => {
                assert!(
                    formed.elapsed() < Duration::from_secs(60),
                    "the cluster did not form: {e}"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    };
    let formed = formed.elapsed();

    let seen: Arc<Vec<AtomicU32>> = Arc::new((0..n + TAIL).map(|_| AtomicU32::new(0)).collect());
    let redelivered = Arc::new(AtomicU64::new(0));
    let mut instances = Vec::new();
    for i in 0..INSTANCES {
        let name = format!("svc-{i}");
        let instance =
            Instance::start(&name, &urls, Arc::clone(&seen), Arc::clone(&redelivered)).await;
        instances.push(instance);
    }
    // Let the consumer's pull requests settle on the servers.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for k in 0..PUBLISHERS {
        let conn = publisher.clone();
        let retries = Arc::clone(&retries);
        let published = Arc::clone(&published);
        tasks.push(tokio::spawn(async move {
            for id in (k..n).step_by(PUBLISHERS as usize) {
                let payload = format!("{{\"id\":{id}}}");
                loop {
                    // The stream drops a retried publish it already has (same Nats-Msg-Id).
                    let msg = OutgoingMessage::new("jobs", payload.clone())
                        .content_type("application/json")
                        .header("Nats-Msg-Id", id.to_string());
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
        }));
    }
    let publishing = || tasks.iter().any(|t| !t.is_finished());
    let handled_once = || {
        seen[..n as usize]
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) > 0)
            .count() as u32
    };

    let deadline = Instant::now() + run_limit(n);
    let mut node_killed: Option<(usize, Instant)> = None;
    let mut node_down = Duration::ZERO;
    let mut moved_clients = Vec::new();
    let mut instance_killed: Option<Vec<u64>> = None;
    let mut last = (0, Instant::now());
    let mut longest_stall = Duration::ZERO;
    loop {
        let h = handled_once();
        if h != last.0 {
            if node_killed.is_some() {
                longest_stall = longest_stall.max(last.1.elapsed());
            }
            last = (h, Instant::now());
        }
        if (h >= n && !publishing()) || Instant::now() >= deadline {
            break;
        }
        if node_killed.is_none() && h >= n / 4 {
            // The node most of this test's clients are connected to.
            let (victim, clients) = cluster
                .nodes
                .iter()
                .map(Node::clients)
                .enumerate()
                .max_by_key(|(_, c)| c.len())
                .expect("three nodes");
            eprintln!(
                "killing node {} (clients {clients:?}) at {h} handled",
                cluster.nodes[victim].name
            );
            moved_clients = clients;
            cluster.nodes[victim].kill();
            node_killed = Some((victim, Instant::now()));
            last.1 = Instant::now();
        }
        if node_killed.is_some() && instance_killed.is_none() && h >= n / 2 {
            // An instance that was not on the killed node, so that those that were show they
            // carry on after moving. The killed one goes first in the report.
            let victim = instances
                .iter()
                .position(|i| !moved_clients.contains(&format!("cluster-{}", i.name)))
                .unwrap_or(0);
            instances.swap(0, victim);
            eprintln!("killing instance {} at {h} handled", instances[0].name);
            instances[0].kill();
            instance_killed = Some(
                instances
                    .iter()
                    .map(|i| i.handled.load(Ordering::Relaxed))
                    .collect(),
            );
        }
        if let Some((victim, at)) = node_killed
            && cluster.nodes[victim].child.is_none()
            && instance_killed.is_some()
            && (h >= n / 4 * 3 || at.elapsed() > Duration::from_secs(10))
        {
            eprintln!(
                "restarting node {} at {h} handled",
                cluster.nodes[victim].name
            );
            cluster.nodes[victim].start();
            node_down = at.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    for t in &tasks {
        t.abort();
    }
    // The tail: both survivors are live consumers again (a survivor whose pull request died
    // with the node's consumer leadership pulls again within 3 s, and may have missed the end
    // of the run while the other drained it).
    let before_tail: Vec<u64> = instances
        .iter()
        .map(|i| i.handled.load(Ordering::Relaxed))
        .collect();
    let mut tail_retries = 0u32;
    let tail_started = Instant::now();
    for id in n..n + TAIL {
        let msg = OutgoingMessage::new("jobs", format!("{{\"id\":{id}}}"))
            .content_type("application/json")
            .header("Nats-Msg-Id", id.to_string());
        loop {
            let sent =
                tokio::time::timeout(Duration::from_secs(5), publisher.publish(msg.clone())).await;
            if let Ok(Ok(())) = sent {
                break;
            }
            tail_retries += 1;
            assert!(tail_retries < 100, "tail publishes keep failing: {sent:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tail_handled = || {
        seen[n as usize..]
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) > 0)
            .count() as u32
    };
    let end = Instant::now() + Duration::from_secs(30);
    while tail_handled() < TAIL && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tail_took = tail_started.elapsed();
    let tail: Vec<(String, u64)> = instances
        .iter()
        .zip(&before_tail)
        .skip(1)
        .map(|(i, b)| (i.name.clone(), i.handled.load(Ordering::Relaxed) - b))
        .collect();
    // Clients of the killed node reconnect to another one: each (but the killed instance)
    // shows up on a live node.
    let live: Vec<String> = cluster.nodes.iter().flat_map(Node::clients).collect();
    let killed_client = format!("cluster-{}", instances[0].name);
    let stranded: Vec<&String> = moved_clients
        .iter()
        .filter(|c| **c != killed_client && !live.contains(c))
        .collect();

    let duplicates: u64 = seen[..n as usize]
        .iter()
        .map(|c| u64::from(c.load(Ordering::Relaxed).saturating_sub(1)))
        .sum();
    let at_kill = instance_killed.clone().unwrap_or_default();
    let report = Report {
        sent: published.load(Ordering::Relaxed),
        handled_once: handled_once(),
        duplicates,
        redelivered: redelivered.load(Ordering::Relaxed),
        publish_retries: retries.load(Ordering::Relaxed),
        per_instance: instances
            .iter()
            .map(|i| (i.name.clone(), i.handled.load(Ordering::Relaxed)))
            .collect(),
        after_instance_kill: instances
            .iter()
            .zip(&at_kill)
            .skip(1)
            .map(|(i, at)| (i.name.clone(), i.handled.load(Ordering::Relaxed) - at))
            .collect(),
        tail: tail.clone(),
        tail_retries,
        tail_took,
        killed_node: node_killed.map_or_else(String::new, |(v, _)| cluster.nodes[v].name.clone()),
        moved_clients: moved_clients.clone(),
        node_down,
        longest_stall,
        elapsed,
    };
    eprintln!("cluster formed in {formed:?}");
    eprintln!("{report:#?}");
    let total: u64 = report.per_instance.iter().map(|(_, c)| c).sum();
    for (name, count) in &report.per_instance {
        eprintln!(
            "share {name}: {count} ({:.1}%)",
            100.0 * *count as f64 / total.max(1) as f64
        );
    }
    let missing: Vec<usize> = seen[..n as usize]
        .iter()
        .enumerate()
        .filter(|(_, c)| c.load(Ordering::Relaxed) == 0)
        .map(|(i, _)| i)
        .take(20)
        .collect();
    assert!(node_killed.is_some(), "the node was killed: {report:?}");
    assert!(
        instance_killed.is_some(),
        "the instance was killed: {report:?}"
    );
    assert_eq!(report.sent, n, "every job published: {report:?}");
    assert_eq!(
        report.handled_once, n,
        "every job handled at least once; first missing {missing:?}: {report:?}"
    );
    assert!(
        report.after_instance_kill.iter().any(|(_, c)| *c > 0),
        "the surviving instances took over: {report:?}"
    );
    assert_eq!(tail_handled(), TAIL, "every tail job handled: {report:?}");
    assert!(
        report.tail.iter().all(|(_, c)| *c > 0),
        "both surviving instances consume after the failures: {report:?}"
    );
    assert!(
        stranded.is_empty(),
        "clients of the killed node moved to another node; not seen: {stranded:?}; live: {live:?}"
    );
    // The per-instance progress a user scrapes: each live instance's metrics carry its name
    // and its count of acked jobs.
    for instance in &instances[1..] {
        let acked = instance.acked_in_metrics();
        assert!(
            acked > 0 && acked <= instance.handled.load(Ordering::Relaxed),
            "{}: acked {acked} in its metrics",
            instance.name
        );
    }
}
