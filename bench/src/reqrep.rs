//! `request-reply`: generated client request → router → generated handler → reply, on the
//! in-memory broker, against a tokio mpsc + oneshot round trip doing the same encode/decode.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ruststream::memory::{MemoryBroker, MemoryConnection};
use ruststream::router::Router;
use tokio::sync::{mpsc, oneshot};

use crate::opts::Opts;
use crate::service::{BenchService, Counter, EchoReplyPayload, Event, sample_event, spec};
use crate::{BenchResult, Line, median};

const WARMUP: u64 = 1000;

fn p50(mut latencies: Vec<Duration>) -> f64 {
    latencies.sort();
    latencies
        .get(latencies.len() / 2)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
}

/// p50 latency (µs) of `n` sequential requests through the framework.
async fn framework_round(n: u64) -> BenchResult<f64> {
    let conn = MemoryBroker::default().connect_now();
    let mut router = Router::<MemoryConnection>::new();
    spec::register(&mut router, BenchService::new(Counter::new(u64::MAX)))?;
    let running = router.start(conn.clone()).await?;
    let client = spec::Client::new(conn.clone());
    let latencies = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n as usize);
        let mut request = sample_event(0);
        for i in 0..(n + WARMUP) {
            request.id = i as i64;
            let start = Instant::now();
            let reply = client.echo(&request, Duration::from_secs(5)).await?;
            let took = start.elapsed();
            if reply.id != request.id {
                return Err(format!("reply {} for request {}", reply.id, request.id).into());
            }
            if i >= WARMUP {
                latencies.push(took);
            }
        }
        Ok::<_, crate::BenchError>(latencies)
    })
    .await??;
    running.shutdown(Duration::from_secs(5)).await?;
    Ok(p50(latencies))
}

/// p50 latency (µs) of `n` sequential round trips: encode, send over an mpsc with a oneshot,
/// the server task decodes and encodes the reply, the client decodes it.
async fn baseline_round(n: u64) -> BenchResult<f64> {
    let (tx, mut rx) = mpsc::channel::<(Bytes, oneshot::Sender<Bytes>)>(1024);
    let server = tokio::spawn(async move {
        while let Some((bytes, reply)) = rx.recv().await {
            let request: Event = serde_json::from_slice(&bytes)?;
            let out = serde_json::to_vec(&EchoReplyPayload { id: request.id })?;
            let _ = reply.send(Bytes::from(out));
        }
        Ok::<_, serde_json::Error>(())
    });
    let latencies = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(n as usize);
        let mut request = sample_event(0);
        for i in 0..(n + WARMUP) {
            request.id = i as i64;
            let start = Instant::now();
            let bytes = Bytes::from(serde_json::to_vec(&request)?);
            let (reply_tx, reply_rx) = oneshot::channel();
            tx.send((bytes, reply_tx)).await?;
            let reply: EchoReplyPayload = serde_json::from_slice(&reply_rx.await?)?;
            let took = start.elapsed();
            if reply.id != request.id {
                return Err(format!("reply {} for request {}", reply.id, request.id).into());
            }
            if i >= WARMUP {
                latencies.push(took);
            }
        }
        Ok::<_, crate::BenchError>(latencies)
    })
    .await??;
    server.await??;
    Ok(p50(latencies))
}

/// `request-reply`.
pub fn request_reply(opts: &Opts) -> BenchResult<Line> {
    let rt = opts.runtime()?;
    let n = opts.requests;
    let (mut fw, mut base) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..opts.rounds {
            fw.push(framework_round(n).await?);
            base.push(baseline_round(n).await?);
        }
        Ok::<_, crate::BenchError>(())
    })?;
    Ok(
        Line::cost("request-reply", median(&fw), median(&base), "us (p50)")
            .with("requests", n)
            .with("rounds", opts.rounds)
            .with("threads", opts.threads),
    )
}
