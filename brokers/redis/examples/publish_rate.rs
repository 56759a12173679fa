//! Publish rate of `RedisStreams` (pipelined writer) next to a raw `redis` client, in one run.
//!
//! `cargo run --release -p ruststream-redis --example publish_rate [messages] [concurrency]`
//! against Redis on 127.0.0.1:6379. Prints messages per second for: the crate with
//! `concurrency` publishes in flight, the crate awaiting each publish, and a raw client sending
//! hand-built pipelines of the same size.

use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use ruststream::{Broker, Connection, OutgoingMessage, Publisher};
use ruststream_redis::{Config, RedisStreams};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let window: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let url = "redis://127.0.0.1:6379";
    let stream = format!("rsbench.{}", std::process::id());
    let payload = vec![b'x'; 128];

    let conn = RedisStreams::new(Config::new(url)).connect().await?;
    let start = Instant::now();
    let mut inflight = FuturesUnordered::new();
    for _ in 0..n {
        if inflight.len() >= window
            && let Some(r) = inflight.next().await
        {
            r?;
        }
        inflight.push(conn.publish(OutgoingMessage::new(stream.clone(), payload.clone())));
    }
    while let Some(r) = inflight.next().await {
        r?;
    }
    drop(inflight);
    let framework = n as f64 / start.elapsed().as_secs_f64();

    let seq_n = (n / 20).max(1);
    let start = Instant::now();
    for _ in 0..seq_n {
        conn.publish(OutgoingMessage::new(stream.clone(), payload.clone()))
            .await?;
    }
    let sequential = seq_n as f64 / start.elapsed().as_secs_f64();
    conn.shutdown().await?;

    let client = redis::Client::open(url)?;
    let mut raw = client.get_multiplexed_async_connection().await?;
    let start = Instant::now();
    let mut sent = 0;
    while sent < n {
        let batch = window.min(n - sent);
        let mut pipe = redis::pipe();
        for _ in 0..batch {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("payload")
                .arg(&payload[..]);
        }
        let _: Vec<redis::Value> = pipe.query_async(&mut raw).await?;
        sent += batch;
    }
    let baseline = n as f64 / start.elapsed().as_secs_f64();
    let _: i64 = redis::cmd("DEL").arg(&stream).query_async(&mut raw).await?;

    println!("ruststream-redis, {window} in flight: {framework:>10.0} msg/s");
    println!("raw redis pipelines of {window}:    {baseline:>10.0} msg/s");
    println!(
        "ratio framework/raw:               {:>10.2}",
        framework / baseline
    );
    println!("ruststream-redis, awaiting each:   {sequential:>10.0} msg/s");
    Ok(())
}
