//! `nats-pipeline`: the generated service on ruststream-nats (core NATS, loopback) against a
//! bare async-nats subscriber doing the same decode.
//!
//! Core NATS is at most once: a subscriber that falls behind loses messages. Both sides therefore
//! publish with the same flow-control window (at most [`WINDOW`] unhandled messages), so the
//! figures compare consuming, not dropping.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use ruststream::Broker;
use ruststream::router::Router;
use ruststream_nats::{Config, NatsBroker, NatsConnection};

use crate::opts::Opts;
use crate::service::{BenchService, Counter, Event, sample_event, spec};
use crate::{BenchResult, Line, median};

/// Most messages in flight (published, not yet handled).
const WINDOW: u64 = 4096;
/// Give up when nothing is handled for this long.
const STALL: Duration = Duration::from_secs(5);
/// Client-side buffer per subscription on both sides (ruststream-nats' default).
const CAPACITY: usize = 8192;
/// The subject of the baseline (its own, so the two sides never see each other's messages).
const BASELINE_SUBJECT: &str = "bench.baseline.events";

async fn framework_round(url: &str, n: u64) -> BenchResult<f64> {
    // Publisher and router are generated from the same document, so the route declares the
    // event's content type and the header can stay implicit (a plain PUB, like the baseline's).
    let mut config = Config::new(url).implicit_content_type(spec::messages::event::CONTENT_TYPE);
    config.subscription_capacity = CAPACITY;
    let server = NatsBroker::new(config.clone()).connect().await?;
    let publisher = NatsBroker::new(config).connect().await?;
    let counter = Counter::new(n);
    let mut router = Router::<NatsConnection>::new();
    spec::register(&mut router, BenchService::new(counter.clone()))?;
    let running = router.start(server).await?;
    let client = spec::Client::new(publisher.clone());
    let start = Instant::now();
    let c = counter.clone();
    let publishing = tokio::spawn(async move {
        let mut event = sample_event(0);
        for i in 0..n {
            if i % 256 == 0 {
                c.wait_window(i, WINDOW, STALL).await?;
            }
            event.id = i as i64;
            client.on_event(&event).await?;
        }
        ruststream::Publisher::flush(client.connection()).await?;
        Ok::<_, crate::BenchError>(())
    });
    let done = handled_all(&counter, n).await;
    let elapsed = start.elapsed();
    if let Err(e) = publishing.await?.and(done) {
        return Err(format!(
            "framework: {e}; router stats: {:?}",
            running.stats().snapshot()
        )
        .into());
    }
    running.shutdown(Duration::from_secs(5)).await?;
    ruststream::Connection::shutdown(publisher).await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

async fn baseline_round(url: &str, n: u64) -> BenchResult<f64> {
    let connect = || {
        async_nats::ConnectOptions::new()
            .subscription_capacity(CAPACITY)
            .connect(url)
    };
    let sub_client = connect().await?;
    let pub_client = connect().await?;
    let mut sub = sub_client.subscribe(BASELINE_SUBJECT).await?;
    // `flush` only writes the socket; the publisher (another connection) must not start before
    // the server registered the interest, or the first window is dropped and the round stalls.
    // An echo through a private inbox comes back only after the server handled the SUB.
    let inbox = sub_client.new_inbox();
    let mut echo = sub_client.subscribe(inbox.clone()).await?;
    sub_client.publish(inbox, Bytes::new()).await?;
    sub_client.flush().await?;
    tokio::time::timeout(STALL, echo.next())
        .await?
        .ok_or("baseline: echo subscription closed")?;
    echo.unsubscribe().await?;
    let payload = Bytes::from(serde_json::to_vec(&sample_event(n as i64))?);
    let counter = Counter::new(n);
    let start = Instant::now();
    let c = counter.clone();
    let publishing = tokio::spawn(async move {
        for i in 0..n {
            if i % 256 == 0 {
                c.wait_window(i, WINDOW, STALL).await?;
            }
            pub_client
                .publish(BASELINE_SUBJECT, payload.clone())
                .await?;
        }
        pub_client.flush().await?;
        Ok::<_, crate::BenchError>(())
    });
    let c = counter.clone();
    let consuming = tokio::spawn(async move {
        while let Some(message) = sub.next().await {
            let event: Event = serde_json::from_slice(&message.payload)?;
            std::hint::black_box(&event);
            c.hit();
            if c.handled() == n {
                break;
            }
        }
        Ok::<_, serde_json::Error>(())
    });
    let done = handled_all(&counter, n).await;
    let elapsed = start.elapsed();
    publishing
        .await?
        .and(done)
        .map_err(|e| format!("baseline: {e}"))?;
    consuming.await??;
    sub_client.drain().await?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// Wait until all `n` messages were handled. Fails when nothing was handled for [`STALL`]
/// (core NATS dropped messages) rather than waiting out the round's timeout.
async fn handled_all(counter: &Counter, n: u64) -> BenchResult<()> {
    let mut last = counter.handled();
    loop {
        if tokio::time::timeout(STALL, counter.done.notified())
            .await
            .is_ok()
        {
            return Ok(());
        }
        let now = counter.handled();
        if now == last {
            return Err(format!("no progress for {STALL:?}: {now} of {n} handled (lost?)").into());
        }
        last = now;
    }
}

/// A round that hangs (a server restarted under it, …) fails instead.
async fn guard(round: impl Future<Output = BenchResult<f64>>) -> BenchResult<f64> {
    tokio::time::timeout(Duration::from_secs(600), round)
        .await
        .map_err(|_| "round did not finish within 600 s")?
}

/// `nats-pipeline`.
pub fn nats_pipeline(opts: &Opts) -> BenchResult<Line> {
    let url = opts.nats_url.as_str();
    let addr = url
        .trim_start_matches("nats://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:4222");
    if let Err(e) = std::net::TcpStream::connect(addr) {
        return Ok(Line::skipped(
            "nats-pipeline",
            format!("NATS is not reachable at {url}: {e}"),
        ));
    }
    let rt = opts.runtime()?;
    let n = opts.messages;
    let (mut fw, mut base) = (Vec::new(), Vec::new());
    rt.block_on(async {
        let (run_fw, run_base) = (opts.only != Some(true), opts.only != Some(false));
        if run_fw {
            guard(framework_round(url, (n / 10).max(1))).await?;
        }
        if run_base {
            guard(baseline_round(url, (n / 10).max(1))).await?;
        }
        for _ in 0..opts.rounds {
            fw.push(if run_fw {
                guard(framework_round(url, n)).await?
            } else {
                0.0
            });
            base.push(if run_base {
                guard(baseline_round(url, n)).await?
            } else {
                0.0
            });
        }
        Ok::<_, crate::BenchError>(())
    })?;
    Ok(
        Line::throughput("nats-pipeline", median(&fw), median(&base), "msg/s")
            .with("messages", n)
            .with("rounds", opts.rounds)
            .with("threads", opts.threads)
            .with("window", WINDOW)
            .with("target", 0.9)
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
