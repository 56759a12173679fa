//! `memory-pipeline`, `alloc` and `consume-only`: the generated service on the in-memory broker
//! against a tokio mpsc channel of pre-encoded bytes decoded with serde_json.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ruststream::memory::{MemoryBroker, MemoryConfig, MemoryConnection};
use ruststream::router::Router;
use ruststream::{Address, SubscribeOptions, Subscriber};
use tokio::sync::mpsc;

use crate::opts::Opts;
use crate::service::{BenchService, Counter, Event, sample_event, spec};
use crate::{BenchResult, Line, alloc_counts, median};

/// Capacity of the baseline channel, equal to the memory broker's default buffer.
const CHANNEL: usize = 1024;

/// Framework round: typed publish (generated client) → memory broker → router → decode →
/// generated handler → ack. Returns messages per second and allocations per message.
async fn framework_round(n: u64) -> BenchResult<(f64, f64)> {
    let conn = MemoryBroker::default().connect_now();
    let counter = Counter::new(n);
    let mut router = Router::<MemoryConnection>::new();
    spec::register(&mut router, BenchService::new(counter.clone()))?;
    let running = router.start(conn.clone()).await?;
    let client = spec::Client::new(conn.clone());
    let (allocs0, _) = alloc_counts();
    let start = Instant::now();
    let publisher = tokio::spawn(async move {
        let mut event = sample_event(0);
        for i in 0..n {
            event.id = i as i64;
            client.on_event(&event).await?;
        }
        Ok::<_, ruststream::Error>(())
    });
    counter.done.notified().await;
    let elapsed = start.elapsed();
    let (allocs1, _) = alloc_counts();
    publisher.await??;
    running.shutdown(Duration::from_secs(5)).await?;
    Ok((
        n as f64 / elapsed.as_secs_f64(),
        (allocs1 - allocs0) as f64 / n as f64,
    ))
}

/// Baseline round: a bounded tokio mpsc of pre-encoded bytes, decoded with serde_json into the
/// same generated struct.
async fn baseline_round(n: u64) -> BenchResult<(f64, f64)> {
    let payload = Bytes::from(serde_json::to_vec(&sample_event(n as i64))?);
    let (tx, mut rx) = mpsc::channel::<Bytes>(CHANNEL);
    let (allocs0, _) = alloc_counts();
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
            let event: Event = serde_json::from_slice(&bytes)?;
            std::hint::black_box(&event);
            handled += 1;
            if handled == n {
                break;
            }
        }
        Ok::<_, serde_json::Error>(handled)
    });
    let handled = consumer.await??;
    let elapsed = start.elapsed();
    let (allocs1, _) = alloc_counts();
    producer.await?;
    if handled != n {
        return Err(format!("baseline handled {handled} of {n}").into());
    }
    Ok((
        n as f64 / elapsed.as_secs_f64(),
        (allocs1 - allocs0) as f64 / n as f64,
    ))
}

/// `memory-pipeline`.
pub fn memory_pipeline(opts: &Opts) -> BenchResult<Line> {
    let rt = opts.runtime()?;
    let n = opts.messages;
    let (mut fw, mut base) = (Vec::new(), Vec::new());
    let (run_fw, run_base) = (opts.only != Some(true), opts.only != Some(false));
    rt.block_on(async {
        // Warm-up (allocator, runtime threads, page faults).
        if run_fw {
            framework_round((n / 10).max(1)).await?;
        }
        if run_base {
            baseline_round((n / 10).max(1)).await?;
        }
        for _ in 0..opts.rounds {
            fw.push(if run_fw {
                framework_round(n).await?.0
            } else {
                0.0
            });
            base.push(if run_base {
                baseline_round(n).await?.0
            } else {
                0.0
            });
        }
        Ok::<_, crate::BenchError>(())
    })?;
    Ok(
        Line::throughput("memory-pipeline", median(&fw), median(&base), "msg/s")
            .with("messages", n)
            .with("rounds", opts.rounds)
            .with("threads", opts.threads)
            .with("target", 0.8)
            .with(
                "framework_rounds",
                fw.iter().map(|x| crate::round(*x)).collect::<Vec<_>>(),
            )
            .with(
                "baseline_rounds",
                base.iter().map(|x| crate::round(*x)).collect::<Vec<_>>(),
            ),
    )
}

/// What a consume-only run measured.
#[derive(Debug, Clone, Copy)]
pub struct Consumed {
    /// Messages handled.
    pub handled: u64,
    /// Allocations while consuming.
    pub allocs: u64,
    /// Bytes allocated while consuming.
    pub bytes: u64,
    /// Time spent consuming.
    pub elapsed: Duration,
}

/// Prefill `n` messages into the memory broker (buffer `n`), then let the router consume them
/// (with `work`) or leave them queued on another address (without). Current-thread runtime:
/// publishing never yields while the buffer has room, so the prefill finishes before the router
/// task first runs.
pub fn consume_framework(n: u64, work: bool) -> BenchResult<Consumed> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let buffer = usize::try_from(n)?;
        let conn = MemoryBroker::new(MemoryConfig::new().buffer(buffer)).connect_now();
        let counter = Counter::new(n);
        let mut router = Router::<MemoryConnection>::new();
        spec::register(&mut router, BenchService::new(counter.clone()))?;
        let running = router.start(conn.clone()).await?;
        let idle = conn
            .subscribe(&Address::parse("bench.idle")?, SubscribeOptions::new())
            .await?;
        let address = if work { "bench.events" } else { "bench.idle" };
        // Published the way the generated client publishes (`client::publish`: its encoding,
        // its headers), only to an address of our choosing.
        let event = sample_event(1);
        for _ in 0..n {
            ruststream::client::publish(
                &conn,
                address.to_owned(),
                ruststream::codec::DEFAULT_CONTENT_TYPE,
                &event,
                ruststream::Headers::new(),
            )
            .await?;
        }
        let (a0, b0) = alloc_counts();
        let start = Instant::now();
        if work {
            counter.done.notified().await;
        }
        let elapsed = start.elapsed();
        let (a1, b1) = alloc_counts();
        running.shutdown(Duration::from_secs(5)).await?;
        drop(idle);
        Ok(Consumed {
            handled: counter.handled(),
            allocs: a1 - a0,
            bytes: b1 - b0,
            elapsed,
        })
    })
}

/// The baseline of [`consume_framework`]: an mpsc channel prefilled with `n` payloads, then
/// decoded (with `work`) or dropped (without).
pub fn consume_baseline(n: u64, work: bool) -> BenchResult<Consumed> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let payload = Bytes::from(serde_json::to_vec(&sample_event(1))?);
        let (tx, mut rx) = mpsc::channel::<Bytes>(usize::try_from(n)?);
        for _ in 0..n {
            tx.send(payload.clone()).await?;
        }
        let (a0, b0) = alloc_counts();
        let start = Instant::now();
        let mut handled = 0;
        if work {
            let consumer = tokio::spawn(async move {
                let mut handled = 0u64;
                while let Some(bytes) = rx.recv().await {
                    let event: Event = serde_json::from_slice(&bytes)?;
                    std::hint::black_box(&event);
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
        let (a1, b1) = alloc_counts();
        drop(tx);
        Ok(Consumed {
            handled,
            allocs: a1 - a0,
            bytes: b1 - b0,
            elapsed,
        })
    })
}

/// `consume-only` (for `scripts/instructions.sh`): one prefilled consume run of one side.
pub fn consume_only(opts: &Opts) -> BenchResult<Line> {
    let n = opts.messages;
    let c = if opts.baseline_side {
        consume_baseline(n, opts.work)?
    } else {
        consume_framework(n, opts.work)?
    };
    if opts.work && c.handled != n {
        return Err(format!("handled {} of {n}", c.handled).into());
    }
    let mut line = Line::skipped("consume-only", "");
    line.extra.clear();
    Ok(line
        .with(
            "side",
            if opts.baseline_side {
                "baseline"
            } else {
                "framework"
            },
        )
        .with("work", opts.work)
        .with("messages", n)
        .with("handled", c.handled)
        .with("allocs_per_msg", crate::round(c.allocs as f64 / n as f64))
        .with(
            "ns_per_msg",
            crate::round(c.elapsed.as_nanos() as f64 / n as f64),
        ))
}

/// `alloc`: allocations per consumed message in steady state, consume path alone (prefilled
/// broker) and the whole pipeline (publish + consume), framework and baseline.
pub fn alloc(opts: &Opts) -> BenchResult<Line> {
    let n = opts.messages.min(200_000);
    // Warm-up: first-use allocations (runtime, thread-locals) are not steady state.
    consume_framework(1000, true)?;
    consume_baseline(1000, true)?;
    let fw = consume_framework(n, true)?;
    let base = consume_baseline(n, true)?;
    let rt = opts.runtime()?;
    let (fw_pipe, base_pipe) = rt.block_on(async {
        framework_round(1000).await?;
        let fw = framework_round(n).await?.1;
        let base = baseline_round(n).await?.1;
        Ok::<_, crate::BenchError>((fw, base))
    })?;
    let per = |x: u64| crate::round(x as f64 / n as f64);
    Ok(
        Line::cost("alloc", per(fw.allocs), per(base.allocs), "allocs/msg")
            .with("messages", n)
            .with("target", 0)
            .with("framework_bytes_per_msg", per(fw.bytes))
            .with("baseline_bytes_per_msg", per(base.bytes))
            .with("framework_pipeline_allocs_per_msg", crate::round(fw_pipe))
            .with("baseline_pipeline_allocs_per_msg", crate::round(base_pipe))
            .with(
                "note",
                "framework/baseline = consume path alone (prefilled); *_pipeline_* = publish + consume; \
                 the baseline's 1 alloc/msg is the String field of the decoded struct",
            ),
    )
}
