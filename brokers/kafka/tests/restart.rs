//! The server dies mid-stream: this test starts its own tansu on a free loopback port with
//! durable storage (SQLite, tansu's `libsql` feature), publishes `RELIABILITY_MESSAGES`
//! records (5,000 by default, as the other restart tests; RELIABILITY.md has a 100,000 run) while a
//! consumer group handles them, kills the server with SIGKILL a third of the way through and
//! starts it again on the same storage. Every record must be handled at least once; the
//! duplicates (records handled again after the restart, published again by producer
//! retries) are counted and printed — RELIABILITY.md keeps the figures.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ruststream::{
    Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};
use ruststream_kafka::{Config, KafkaBroker};
use tokio::sync::Mutex;

/// Records to publish: `RELIABILITY_MESSAGES`, default 5,000.
fn total() -> usize {
    std::env::var("RELIABILITY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}
const IN_FLIGHT: usize = 256;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `tansu` binary, or `None` (with the reason printed, or a panic under CI).
fn tansu() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("tansu"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let msg = "the tansu binary is not on PATH (`cargo install tansu --locked --features dynostore,postgres,libsql`, as .ci/run does)";
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
    }
    found
}

struct Server {
    child: Child,
}

impl Server {
    fn start(tansu: &Path, dir: &Path, port: u16) -> Server {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("tansu.log"))
            .expect("log file");
        let child = Command::new(tansu)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://data/tansu.db"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {port}: {}",
                log_of(dir)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("tansu.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_stream_loses_nothing() {
    let total = total();
    let Some(tansu) = tansu() else { return };
    let dir = std::env::temp_dir().join(format!("rskafka-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    let port = free_port();
    let mut server = Some(Server::start(&tansu, &dir, port));

    let config = Config::new(format!("127.0.0.1:{port}"))
        .client_id("rs-restart")
        .partitions(3)
        .commit_interval(Duration::from_millis(200))
        .session_timeout(Duration::from_secs(6));
    let consumer = KafkaBroker::new(config.clone())
        .connect()
        .await
        .expect("connect");
    let publisher = KafkaBroker::new(config).connect().await.expect("connect");
    let topic = "restart.events";
    let mut sub = consumer
        .subscribe(
            &topic.parse().expect("address"),
            SubscribeOptions::new().queue_group("restart-workers"),
        )
        .await
        .expect("subscribe");

    let seen: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
    let handled = Arc::new(AtomicUsize::new(0));
    let consume = {
        let seen = seen.clone();
        let handled = handled.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let m = m.expect("a record");
                let id: u32 = std::str::from_utf8(m.payload())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("an id payload");
                *seen.lock().await.entry(id).or_default() += 1;
                handled.fetch_add(1, Ordering::Relaxed);
                m.ack().await.expect("ack");
                if seen.lock().await.len() == total {
                    break;
                }
            }
        })
    };

    let retries = Arc::new(AtomicUsize::new(0));
    let publish = {
        let publisher = publisher.clone();
        let retries = retries.clone();
        tokio::spawn(async move {
            futures_util::stream::iter(0..total)
                .map(|i| {
                    let publisher = publisher.clone();
                    let retries = retries.clone();
                    async move {
                        let deadline = Instant::now() + Duration::from_secs(120);
                        loop {
                            let msg = OutgoingMessage::new(topic, i.to_string())
                                .key(format!("k{}", i % 64));
                            match publisher.publish(msg).await {
                                Ok(()) => return,
                                Err(e) => {
                                    assert!(
                                        Instant::now() < deadline,
                                        "publish {i} kept failing: {e}"
                                    );
                                    retries.fetch_add(1, Ordering::Relaxed);
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                            }
                        }
                    }
                })
                .buffer_unordered(IN_FLIGHT)
                .collect::<()>()
                .await;
        })
    };

    // A third of the way: SIGKILL, a pause, the same storage again.
    let start = Instant::now();
    while handled.load(Ordering::Relaxed) < total / 3 {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "stuck before the kill at {} handled",
            handled.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at_kill = handled.load(Ordering::Relaxed);
    if let Some(s) = server.take() {
        s.kill();
    }
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server = Some(Server::start(&tansu, &dir, port));
    let downtime = down.elapsed();

    let finished = tokio::time::timeout(Duration::from_secs(240), async {
        publish.await.expect("publisher");
        consume.await.expect("consumer");
    })
    .await;
    let seen = seen.lock().await;
    let distinct = seen.len();
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    println!(
        "kafka restart: {total} published, {distinct} distinct handled, {duplicates} duplicates, \
         {} publish retries, killed at {at_kill} handled, down {downtime:?}, total {:?}",
        retries.load(Ordering::Relaxed),
        start.elapsed(),
    );
    assert!(
        finished.is_ok(),
        "not everything arrived: {distinct} of {total} distinct; server log:\n{}",
        log_of(&dir)
    );
    assert_eq!(distinct, total, "every record handled at least once");
    let _ = consumer.shutdown().await;
    let _ = publisher.shutdown().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
