//! Soak: publish at full speed for `SOAK_SECONDS` (default 60) to a route whose handler is
//! slower than the publisher, then let the backlog drain, and print sent, handled, lost,
//! duplicates and peak RSS, for the in-memory broker and for NATS (core and JetStream, on
//! this program's own `nats-server` on a free port).
//!
//! ```text
//! cargo run --release -p ruststream-e2e --example soak
//! SOAK_SECONDS=10 SOAK_BROKERS=memory,jetstream SOAK_HANDLER_US=20 SOAK_CONCURRENCY=1 \
//!     cargo run --release -p ruststream-e2e --example soak
//! ```
//!
//! Memory must stay bounded (the in-memory broker and JetStream push back on the publisher;
//! core NATS is at-most-once and drops on a slow consumer, which the figures show).

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ruststream::memory::{MemoryBroker, MemoryConfig};
use ruststream::router::{Context, HandlerError, Route, Router};
use ruststream::{Broker, Connection, OutgoingMessage, Publisher};

/// Largest id tracked for duplicates and losses (64 Mi messages, an 8 MiB bitset).
const MAX_IDS: u64 = 64 << 20;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Ids seen at least once, and how many were seen again.
struct Seen {
    bits: Vec<AtomicU64>,
    unique: AtomicU64,
    duplicates: AtomicU64,
}

impl Seen {
    fn new() -> Self {
        Seen {
            bits: (0..MAX_IDS / 64).map(|_| AtomicU64::new(0)).collect(),
            unique: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }
    fn mark(&self, id: u64) {
        let Some(word) = self.bits.get((id / 64) as usize) else {
            return;
        };
        let bit = 1u64 << (id % 64);
        if word.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            self.unique.fetch_add(1, Ordering::Relaxed);
        } else {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct NatsServer(Child, std::path::PathBuf);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn nats_server() -> Result<(NatsServer, u16), Box<dyn std::error::Error>> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let dir = std::env::temp_dir().join(format!("ruststream-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = NatsServer(child, dir);
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > end {
            return Err("nats-server did not listen".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((server, port))
}

/// One soak run: `publishers` tasks publish to `address` for `seconds`, the route's handler
/// spins `handler` per message; then the backlog drains (at most `drain`).
async fn soak<B>(
    name: &str,
    broker: B,
    route: Route,
    address: &str,
    publishers: usize,
) -> Result<(), Box<dyn std::error::Error>>
where
    B: Broker,
    B::Connection: Connection,
{
    let seconds: u64 = env("SOAK_SECONDS", 60);
    let concurrency: usize = env("SOAK_CONCURRENCY", 1);
    let handler = Duration::from_micros(env("SOAK_HANDLER_US", 20));
    let drain = Duration::from_secs(env("SOAK_DRAIN_SECONDS", 120));
    let rss_before = rss_kib("VmRSS:");

    let conn = broker.connect().await?;
    let seen = Arc::new(Seen::new());
    let mut router = Router::<B::Connection>::new();
    let marks = Arc::clone(&seen);
    router.route(route, move |id: u64, _ctx: Context<B::Connection>| {
        let marks = Arc::clone(&marks);
        async move {
            // A handler slower than the publisher: busy for `handler` per message.
            let end = Instant::now() + handler;
            while Instant::now() < end {
                std::hint::spin_loop();
            }
            marks.mark(id);
            Ok::<_, HandlerError>(())
        }
    });
    let running = router.start(conn.clone()).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let next_id = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let (conn, next_id, sent, errors, stop) = (
            conn.clone(),
            Arc::clone(&next_id),
            Arc::clone(&sent),
            Arc::clone(&errors),
            Arc::clone(&stop),
        );
        let address = address.to_owned();
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let msg = OutgoingMessage::new(address.clone(), id.to_string())
                    .content_type("application/json");
                match conn.publish(msg).await {
                    Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let started = Instant::now();
    let mut peak_rss = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_kib("VmRSS:"));
        eprintln!(
            "[{name}] {:>3}s sent {:>10} handled {:>10} rss {:>7} KiB",
            started.elapsed().as_secs(),
            sent.load(Ordering::Relaxed),
            seen.unique.load(Ordering::Relaxed),
            rss_kib("VmRSS:")
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let sent = sent.load(Ordering::Relaxed);
    let drained = Instant::now();
    while seen.unique.load(Ordering::Relaxed) < sent && drained.elapsed() < drain {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak_rss = peak_rss.max(rss_kib("VmRSS:"));
    }
    let report = running.shutdown(Duration::from_secs(5)).await?;
    let handled = seen.unique.load(Ordering::Relaxed);
    println!(
        "{name}: {seconds} s, handler {handler:?}/msg x {concurrency}: sent {sent}, handled {handled} \
         ({:.0}/s), lost {}, duplicates {}, publish errors {}, drain {:.1} s, RSS before {} \
         MiB, peak {} MiB (process high-water {} MiB), aborted at shutdown {}",
        handled as f64 / (started.elapsed().as_secs_f64()),
        sent.saturating_sub(handled),
        seen.duplicates.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        drained.elapsed().as_secs_f64(),
        rss_before / 1024,
        peak_rss / 1024,
        rss_kib("VmHWM:") / 1024,
        report.aborted,
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let brokers: String = env("SOAK_BROKERS", "memory,nats,jetstream".to_owned());
    let wants = |b: &str| brokers.split(',').any(|x| x.trim() == b);
    // Messages handled at once per route (1: in order; JetStream's prefetch follows it).
    let concurrency: usize = env("SOAK_CONCURRENCY", 1);
    if wants("memory") {
        soak(
            "memory",
            MemoryBroker::new(MemoryConfig::new()),
            Route::new("soak")?.concurrency(concurrency),
            "soak",
            1,
        )
        .await?;
    }
    if wants("nats") || wants("jetstream") {
        let (_server, port) = nats_server()?;
        let url = format!("nats://127.0.0.1:{port}");
        if wants("nats") {
            soak(
                "nats-core",
                ruststream_nats::NatsBroker::new(ruststream_nats::Config::new(url.clone())),
                Route::new("soak.core")?.concurrency(concurrency),
                "soak.core",
                1,
            )
            .await?;
        }
        if wants("jetstream") {
            soak(
                "nats-jetstream",
                ruststream_nats::NatsBroker::jetstream(
                    ruststream_nats::Config::new(url),
                    ruststream_nats::JetStreamConfig::new("SOAK", ["soak.js"]),
                ),
                Route::new("soak.js")?
                    .durable("soak")
                    .concurrency(concurrency),
                "soak.js",
                8,
            )
            .await?;
        }
    }
    Ok(())
}
