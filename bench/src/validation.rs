//! `validate-consume`: the consume path of a generated service with schema validation on,
//! beside the same service generated with `validate(false)` (`bench/validated.yaml`: the bench
//! event with `minimum`, `minLength`/`maxLength`, `pattern` and `exclusiveMinimum`). Both
//! consume the same prefilled broker, in interleaved rounds; the figure is ns per message and
//! the ratio is unvalidated ÷ validated (target: at least 0.9, i.e. within 10%).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ruststream::Connection;
use ruststream::memory::{MemoryBroker, MemoryConfig, MemoryConnection};
use ruststream::router::{Context, HandlerError, Router};

use crate::opts::Opts;
use crate::service::Counter;
use crate::{BenchResult, Line, alloc_counts, median};

/// Generated with validation on.
#[allow(dead_code, missing_docs, clippy::all)]
pub mod validated {
    ruststream::include_spec!("bench_validated");
}

/// Generated with `validate(false)`.
#[allow(dead_code, missing_docs, clippy::all)]
pub mod unvalidated {
    ruststream::include_spec!("bench_unvalidated");
}

/// Counts the events it gets.
#[derive(Clone)]
struct Count(Arc<Counter>);

impl validated::Handler for Count {
    async fn on_event<C: Connection>(
        &self,
        message: validated::Event,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        std::hint::black_box(&message);
        self.0.hit();
        Ok(())
    }
}

impl unvalidated::Handler for Count {
    async fn on_event<C: Connection>(
        &self,
        message: unvalidated::Event,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        std::hint::black_box(&message);
        self.0.hit();
        Ok(())
    }
}

/// One round: `n` events prefilled, then consumed; (ns per message, allocations per message).
fn round(n: u64, validate: bool) -> BenchResult<(f64, f64)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let conn = MemoryBroker::new(MemoryConfig::new().buffer(usize::try_from(n)?)).connect_now();
        let counter = Counter::new(n);
        let mut router = Router::<MemoryConnection>::new();
        if validate {
            validated::register(&mut router, Count(Arc::clone(&counter)))?;
        } else {
            unvalidated::register(&mut router, Count(Arc::clone(&counter)))?;
        }
        let running = router.start(conn.clone()).await?;
        let event = validated::Event {
            id: 1,
            name: "sensor-42".to_owned(),
            ts: 1_764_000_000_000,
        };
        for _ in 0..n {
            ruststream::client::publish(
                &conn,
                "bench.events".to_owned(),
                ruststream::codec::DEFAULT_CONTENT_TYPE,
                &event,
                ruststream::Headers::new(),
            )
            .await?;
        }
        let (a0, _) = alloc_counts();
        let start = Instant::now();
        counter.done.notified().await;
        let elapsed = start.elapsed();
        let (a1, _) = alloc_counts();
        running.shutdown(Duration::from_secs(5)).await?;
        if counter.handled() != n {
            return Err(format!("handled {} of {n}", counter.handled()).into());
        }
        Ok((
            elapsed.as_nanos() as f64 / n as f64,
            (a1 - a0) as f64 / n as f64,
        ))
    })
}

/// `validate-consume`.
pub fn validate_consume(opts: &Opts) -> BenchResult<Line> {
    let n = opts.messages.min(500_000);
    // `--only framework|baseline`: one side (for instruction counts under callgrind).
    let (run_on, run_off) = match opts.only {
        Some(true) => (false, true),
        Some(false) => (true, false),
        None => (true, true),
    };
    // Warm-up (runtime, thread-locals, the pattern's compilation).
    if opts.only.is_none() {
        round(1000, true)?;
        round(1000, false)?;
    }
    let (mut on, mut off, mut on_allocs, mut off_allocs) = (vec![0.0], vec![0.0], 0.0, 0.0);
    for r in 0..opts.rounds {
        if run_on {
            let (ns, allocs) = round(n, true)?;
            on.push(ns);
            on_allocs = allocs;
        }
        if run_off {
            let (ns, allocs) = round(n, false)?;
            off.push(ns);
            off_allocs = allocs;
        }
        if r == 0 {
            // The placeholders only stand in for a side that does not run.
            if run_on {
                on.remove(0);
            }
            if run_off {
                off.remove(0);
            }
        }
    }
    Ok(
        Line::cost("validate-consume", median(&on), median(&off), "ns/msg")
            .with("messages", n)
            .with("rounds", opts.rounds as u64)
            .with("validated_allocs_per_msg", crate::round(on_allocs))
            .with("unvalidated_allocs_per_msg", crate::round(off_allocs))
            .with("target", 0.9)
            .with(
                "note",
                "framework = consume with validation on, baseline = the same service generated \
                 with validate(false); ratio = off / on",
            ),
    )
}
