//! `slow-consumer`: publish at full speed into a handler that sleeps; peak RSS must stay small
//! (the broker's bounded buffers push back on the publisher) and nothing may be lost.

use std::time::{Duration, Instant};

use ruststream::memory::{MemoryBroker, MemoryConnection};
use ruststream::router::Router;

use crate::opts::Opts;
use crate::service::{BenchService, Counter, sample_event, spec};
use crate::{BenchResult, Line};

/// Target budget in MiB.
const TARGET_MIB: f64 = 64.0;

/// A `/proc/self/status` field in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// `slow-consumer`.
pub fn slow_consumer(opts: &Opts) -> BenchResult<Line> {
    // Reset the peak RSS counter (Linux `clear_refs` 5), so only this scenario counts.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmHWM:").unwrap_or(0);
    let n = opts.messages;
    let rt = opts.runtime()?;
    let (elapsed, handled) = rt.block_on(async {
        let conn = MemoryBroker::default().connect_now();
        let counter = Counter::new(n);
        let mut router = Router::<MemoryConnection>::new();
        spec::register(
            &mut router,
            BenchService::slow(counter.clone(), opts.sleep_every, opts.sleep),
        )?;
        let running = router.start(conn.clone()).await?;
        let client = spec::Client::new(conn.clone());
        let start = Instant::now();
        let publisher = tokio::spawn(async move {
            let mut event = sample_event(0);
            for i in 0..n {
                event.id = i as i64 + 1;
                client.on_event(&event).await?;
            }
            Ok::<_, ruststream::Error>(())
        });
        counter.done.notified().await;
        let elapsed = start.elapsed();
        publisher.await??;
        running.shutdown(Duration::from_secs(5)).await?;
        Ok::<_, crate::BenchError>((elapsed, counter.handled()))
    })?;
    let peak = status_kib("VmHWM:").ok_or("no VmHWM in /proc/self/status")?;
    let peak_mib = peak as f64 / 1024.0;
    if handled != n {
        return Err(format!("lost messages: handled {handled} of {n}").into());
    }
    Ok(
        Line::cost("slow-consumer", peak_mib, TARGET_MIB, "MiB peak RSS")
            .with("messages", n)
            .with("handled", handled)
            .with("sleep_every", opts.sleep_every)
            .with("sleep_us", opts.sleep.as_micros() as u64)
            .with("elapsed_s", crate::round(elapsed.as_secs_f64()))
            .with("rss_before_mib", crate::round(before as f64 / 1024.0))
            .with("note", "absolute: baseline is the target budget (< 64 MiB)"),
    )
}
