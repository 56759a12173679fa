//! `vs-upstream`: the same service on ours, on upstream `ruststream` 0.7.7 (crates.io, the
//! code-first crate that shares our name; written with its public API in
//! `bench/upstream`, crate `ruststream-bench-upstream`) and on the raw baseline (tokio mpsc of
//! pre-encoded bytes + serde_json), in one process, alternating rounds, on two messages: the
//! bench's `Event {id, name, ts}` and upstream's own bench message `Order {id: u64, quantity: u32}`.
//!
//! Each side: typed publish → in-memory broker → JSON decode → handler that counts → ack.
//! One line per message: `framework` = ours, `baseline` = raw, `upstream`, and the ratios
//! `ratio` (ours ÷ raw), `vs_upstream` (ours ÷ upstream), `upstream_ratio` (upstream ÷ raw).
//!
//! With `RUSTSTREAM_BENCH_SIDE=ours|upstream|raw` (and `RUSTSTREAM_BENCH_MESSAGE=event|order`)
//! it runs one prefilled consume of one side instead, on a current-thread runtime, with or
//! without consuming (`--no-work`), for `scripts/upstream-instructions.sh`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ruststream::memory::{MemoryBroker, MemoryConfig, MemoryConnection};
use ruststream::router::{Context, HandlerError, Router};
use ruststream::{Address, Connection, SubscribeOptions, Subscriber};
use ruststream_upstream as up;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::opts::Opts;
use crate::service::{BenchService, Counter, Event, sample_event, spec};
use crate::{BenchResult, Line, alloc_counts, median, round};

/// Ours for `Order`: generated from `bench/order.yaml`.
#[allow(dead_code, missing_docs, clippy::all)]
pub mod order_spec {
    ruststream::include_spec!("bench_order");
}

use order_spec::Order;

/// Capacity of the baseline channel, equal to our memory broker's default buffer (upstream's
/// memory broker is unbounded).
const CHANNEL: usize = 1024;

/// The `Order` handler (ours): counts.
#[derive(Debug)]
struct OrderService {
    counter: Arc<Counter>,
}

impl order_spec::Handler for OrderService {
    async fn on_order<C: Connection>(
        &self,
        message: Order,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        black_box((message.id, message.quantity));
        self.counter.hit();
        Ok(())
    }
}

/// Which message a run carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    Event,
    Order,
}

impl Msg {
    fn label(self) -> &'static str {
        match self {
            Msg::Event => "event",
            Msg::Order => "order",
        }
    }

    fn address(self) -> &'static str {
        match self {
            Msg::Event => "bench.events",
            Msg::Order => "bench.orders",
        }
    }

    fn upstream(self) -> up::Kind {
        match self {
            Msg::Event => up::Kind::Event,
            Msg::Order => up::Kind::Order,
        }
    }
}

/// The `Order` every run sends (upstream's bench values).
fn sample_order(id: u64) -> Order {
    Order { id, quantity: 37 }
}

fn upstream_event(id: i64) -> up::Event {
    let e = sample_event(id);
    up::Event {
        id: e.id,
        name: e.name,
        ts: e.ts,
    }
}

/// A router with our generated handler for `msg`, started on a fresh memory broker.
async fn start_ours(
    msg: Msg,
    conn: &MemoryConnection,
    counter: &Arc<Counter>,
) -> BenchResult<ruststream::router::RunningRouter> {
    let mut router = Router::<MemoryConnection>::new();
    match msg {
        Msg::Event => spec::register(&mut router, BenchService::new(counter.clone()))?,
        Msg::Order => order_spec::register(
            &mut router,
            OrderService {
                counter: counter.clone(),
            },
        )?,
    }
    Ok(router.start(conn.clone()).await?)
}

/// Ours: generated client → memory broker → router → decode → generated handler → ack.
async fn ours_round(msg: Msg, n: u64) -> BenchResult<f64> {
    let conn = MemoryBroker::default().connect_now();
    let counter = Counter::new(n);
    let running = start_ours(msg, &conn, &counter).await?;
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        match msg {
            Msg::Event => {
                let client = spec::Client::new(conn);
                let mut event = sample_event(0);
                for i in 0..n {
                    event.id = i as i64;
                    client.on_event(&event).await?;
                }
            }
            Msg::Order => {
                let client = order_spec::Client::new(conn);
                let mut order = sample_order(0);
                for i in 0..n {
                    order.id = i;
                    client.on_order(&order).await?;
                }
            }
        }
        Ok::<_, ruststream::Error>(())
    });
    counter.done.notified().await;
    let elapsed = start.elapsed();
    publisher.await??;
    running.shutdown(Duration::from_secs(5)).await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Upstream: `message(&value).to(name).publish()` → its memory broker → `#[subscriber]` handler
/// taking `&T` → ack.
async fn upstream_round(msg: Msg, n: u64) -> BenchResult<f64> {
    let service = up::Service::start(msg.upstream(), usize::try_from(n)?).await?;
    let sender = service.sender();
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        match msg {
            Msg::Event => {
                let mut event = upstream_event(0);
                for i in 0..n {
                    event.id = i as i64;
                    sender.event(&event).await?;
                }
            }
            Msg::Order => {
                let mut order = up::Order {
                    id: 0,
                    quantity: 37,
                };
                for i in 0..n {
                    order.id = i;
                    sender.order(&order).await?;
                }
            }
        }
        Ok::<_, up::Error>(())
    });
    service.latch.drained().await;
    let elapsed = start.elapsed();
    publisher.await??;
    service.shutdown().await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

fn decode(msg: Msg, bytes: &[u8]) -> serde_json::Result<()> {
    match msg {
        Msg::Event => black_box(serde_json::from_slice::<Event>(bytes).map(drop)),
        Msg::Order => black_box(serde_json::from_slice::<Order>(bytes).map(drop)),
    }
}

fn payload(msg: Msg) -> serde_json::Result<Bytes> {
    Ok(Bytes::from(match msg {
        Msg::Event => serde_json::to_vec(&sample_event(1))?,
        Msg::Order => serde_json::to_vec(&sample_order(1))?,
    }))
}

/// Raw: a bounded tokio mpsc of pre-encoded bytes, decoded with serde_json.
async fn raw_round(msg: Msg, n: u64) -> BenchResult<f64> {
    let payload = payload(msg)?;
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL);
    let start = Instant::now();
    let producer = tokio::spawn(async move {
        for _ in 0..n {
            if tx.send(payload.clone()).await.is_err() {
                break;
            }
        }
    });
    let consumer = tokio::spawn(async move {
        let mut handled = 0u64;
        while let Some(bytes) = rx.recv().await {
            decode(msg, &bytes)?;
            handled += 1;
            if handled == n {
                break;
            }
        }
        Ok::<_, serde_json::Error>(handled)
    });
    let handled = consumer.await??;
    let elapsed = start.elapsed();
    producer.await?;
    if handled != n {
        return Err(format!("raw handled {handled} of {n}").into());
    }
    Ok(n as f64 / elapsed.as_secs_f64())
}

fn rounded(v: &[f64]) -> Vec<f64> {
    v.iter().map(|x| round(*x)).collect()
}

/// `vs-upstream`.
pub fn vs_upstream(opts: &Opts) -> BenchResult<Vec<Line>> {
    if let Ok(side) = std::env::var("RUSTSTREAM_BENCH_SIDE") {
        return Ok(vec![consume_only(opts, &side)?]);
    }
    let rt = opts.runtime()?;
    let n = opts.messages;
    let mut lines = Vec::new();
    for msg in [Msg::Event, Msg::Order] {
        let (mut ours, mut theirs, mut raw) = (Vec::new(), Vec::new(), Vec::new());
        rt.block_on(async {
            let warm = (n / 10).max(1);
            ours_round(msg, warm).await?;
            upstream_round(msg, warm).await?;
            raw_round(msg, warm).await?;
            for i in 0..opts.rounds {
                // Alternate which framework goes first.
                if i % 2 == 0 {
                    ours.push(ours_round(msg, n).await?);
                    theirs.push(upstream_round(msg, n).await?);
                } else {
                    theirs.push(upstream_round(msg, n).await?);
                    ours.push(ours_round(msg, n).await?);
                }
                raw.push(raw_round(msg, n).await?);
            }
            Ok::<_, crate::BenchError>(())
        })?;
        let (o, u, r) = (median(&ours), median(&theirs), median(&raw));
        lines.push(
            Line::throughput("vs-upstream", o, r, "msg/s")
                .with("message", msg.label())
                .with("upstream", round(u))
                .with("vs_upstream", round(o / u))
                .with("upstream_ratio", round(u / r))
                .with("messages", n)
                .with("rounds", opts.rounds)
                .with("threads", opts.threads)
                .with("target_vs_upstream", 1.2)
                .with("target", 0.8)
                .with("framework_rounds", rounded(&ours))
                .with("upstream_rounds", rounded(&theirs))
                .with("baseline_rounds", rounded(&raw)),
        );
    }
    Ok(lines)
}

/// What one consume-only run measured.
struct Consumed {
    handled: u64,
    allocs: u64,
    elapsed: Duration,
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

async fn publish_ours<T: Serialize>(
    conn: &MemoryConnection,
    address: &str,
    value: &T,
) -> BenchResult<()> {
    // The generated client's publish (its encoding and headers), to an address of our choosing.
    ruststream::client::publish(
        conn,
        address.to_owned(),
        ruststream::codec::DEFAULT_CONTENT_TYPE,
        value,
        ruststream::Headers::new(),
    )
    .await?;
    Ok(())
}

/// Ours, prefilled: `n` messages on a broker with buffer `n`, consumed by the router (with
/// `work`) or left on an idle subscription (without). Publishing never yields while the buffer
/// has room, so the prefill ends before the router first runs.
fn consume_ours(msg: Msg, n: u64, work: bool) -> BenchResult<Consumed> {
    current_thread()?.block_on(async {
        let conn = MemoryBroker::new(MemoryConfig::new().buffer(usize::try_from(n)?)).connect_now();
        let counter = Counter::new(n);
        let running = start_ours(msg, &conn, &counter).await?;
        let idle = conn
            .subscribe(&Address::parse("bench.idle")?, SubscribeOptions::new())
            .await?;
        let address = if work { msg.address() } else { "bench.idle" };
        for _ in 0..n {
            match msg {
                Msg::Event => publish_ours(&conn, address, &sample_event(1)).await?,
                Msg::Order => publish_ours(&conn, address, &sample_order(1)).await?,
            }
        }
        let (a0, _) = alloc_counts();
        let start = Instant::now();
        if work {
            counter.done.notified().await;
        }
        let elapsed = start.elapsed();
        let (a1, _) = alloc_counts();
        running.shutdown(Duration::from_secs(5)).await?;
        drop(idle);
        Ok(Consumed {
            handled: counter.handled(),
            allocs: a1 - a0,
            elapsed,
        })
    })
}

/// Upstream, prefilled: the service is started, `n` messages are published to its subscription
/// (its memory broker is unbounded: publishing never yields), then consumed (with `work`), or the
/// service is dropped without yielding (without: its dispatch loop never ran).
fn consume_upstream(msg: Msg, n: u64, work: bool) -> BenchResult<Consumed> {
    current_thread()?.block_on(async {
        let service = up::Service::start(msg.upstream(), usize::try_from(n)?).await?;
        let sender = service.sender();
        for _ in 0..n {
            match msg {
                Msg::Event => sender.event(&upstream_event(1)).await?,
                Msg::Order => {
                    sender
                        .order(&up::Order {
                            id: 1,
                            quantity: 37,
                        })
                        .await?
                }
            }
        }
        let (a0, _) = alloc_counts();
        let start = Instant::now();
        if !work {
            service.abandon();
            return Ok(Consumed {
                handled: 0,
                allocs: 0,
                elapsed: start.elapsed(),
            });
        }
        service.latch.drained().await;
        let elapsed = start.elapsed();
        let (a1, _) = alloc_counts();
        let handled = n - service.latch.remaining() as u64;
        service.shutdown().await?;
        Ok(Consumed {
            handled,
            allocs: a1 - a0,
            elapsed,
        })
    })
}

/// Raw, prefilled: an mpsc channel of `n` payloads, decoded (with `work`) or dropped.
fn consume_raw(msg: Msg, n: u64, work: bool) -> BenchResult<Consumed> {
    current_thread()?.block_on(async {
        let payload = payload(msg)?;
        let (tx, mut rx) = mpsc::channel::<Bytes>(usize::try_from(n)?);
        for _ in 0..n {
            tx.send(payload.clone()).await?;
        }
        let (a0, _) = alloc_counts();
        let start = Instant::now();
        let mut handled = 0;
        if work {
            let consumer = tokio::spawn(async move {
                let mut handled = 0u64;
                while let Some(bytes) = rx.recv().await {
                    decode(msg, &bytes)?;
                    handled += 1;
                    if handled == n {
                        break;
                    }
                }
                Ok::<_, serde_json::Error>(handled)
            });
            handled = consumer.await??;
        } else {
            drop(rx);
        }
        let elapsed = start.elapsed();
        let (a1, _) = alloc_counts();
        drop(tx);
        Ok(Consumed {
            handled,
            allocs: a1 - a0,
            elapsed,
        })
    })
}

/// One prefilled consume run of one side (`RUSTSTREAM_BENCH_SIDE`).
fn consume_only(opts: &Opts, side: &str) -> BenchResult<Line> {
    let msg = match std::env::var("RUSTSTREAM_BENCH_MESSAGE").as_deref() {
        Ok("order") => Msg::Order,
        Ok("event") | Err(_) => Msg::Event,
        Ok(other) => {
            return Err(format!("RUSTSTREAM_BENCH_MESSAGE: `{other}` (event | order)").into());
        }
    };
    let n = opts.messages;
    let c = match side {
        "ours" => consume_ours(msg, n, opts.work)?,
        "upstream" => consume_upstream(msg, n, opts.work)?,
        "raw" => consume_raw(msg, n, opts.work)?,
        other => {
            return Err(format!("RUSTSTREAM_BENCH_SIDE: `{other}` (ours | upstream | raw)").into());
        }
    };
    if opts.work && c.handled != n {
        return Err(format!("{side} handled {} of {n}", c.handled).into());
    }
    let mut line = Line::skipped("vs-upstream", "");
    line.extra.clear();
    Ok(line
        .with("side", side)
        .with("message", msg.label())
        .with("work", opts.work)
        .with("messages", n)
        .with("handled", c.handled)
        .with("allocs_per_msg", round(c.allocs as f64 / n as f64))
        .with("ns_per_msg", round(c.elapsed.as_nanos() as f64 / n as f64)))
}
