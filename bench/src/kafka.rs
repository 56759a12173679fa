//! `kafka-pipeline`: the generated service on ruststream-kafka against a bare rdkafka
//! `StreamConsumer` doing the same decode, on the Kafka-protocol server at `--kafka`
//! (`KAFKA_BOOTSTRAP`, default `127.0.0.1:9092`).
//!
//! Each round recreates the topic, fills it with `n` events through a raw rdkafka producer
//! (untimed, the same for both sides), then a fresh consumer group reads it from the start:
//! the figure is records handled per second from the first record to the last — the consume
//! path (fetch, record headers, decode, dispatch, offset tracking and commits), not the
//! server's produce speed.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use ruststream::Broker;
use ruststream::router::Router;
use ruststream_kafka::{Config, KafkaBroker, KafkaConnection};

use crate::opts::Opts;
use crate::service::{BenchService, Counter, Event, sample_event, spec};
use crate::{BenchResult, Line, median};

/// The topic of the bench document's `onEvent` operation.
const TOPIC: &str = "bench.events";
/// Produce requests in flight while filling the topic.
const FILL_WINDOW: usize = 512;

fn client(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c
}

/// Delete and recreate [`TOPIC`] (one partition), then fill it with `n` events.
async fn refill(bootstrap: &str, n: u64) -> BenchResult<()> {
    let admin: AdminClient<DefaultClientContext> = client(bootstrap).create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let _ = admin.delete_topics(&[TOPIC], &options).await;
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1));
    for _ in 0..50 {
        match admin.create_topics([&topic], &options).await?.pop() {
            Some(Ok(_)) => break,
            // The deletion is still going on.
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let producer: FutureProducer = client(bootstrap).set("linger.ms", "5").create()?;
    let payload = serde_json::to_vec(&sample_event(7))?;
    let sent: Vec<_> = futures_util::stream::iter(0..n)
        .map(|_| {
            let producer = producer.clone();
            let payload = payload.clone();
            async move {
                let headers =
                    rdkafka::message::OwnedHeaders::new().insert(rdkafka::message::Header {
                        key: "content-type",
                        value: Some("application/json"),
                    });
                producer
                    .send(
                        FutureRecord::<(), [u8]>::to(TOPIC)
                            .payload(&payload[..])
                            .headers(headers),
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|(e, _)| e)
            }
        })
        .buffer_unordered(FILL_WINDOW)
        .collect()
        .await;
    sent.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(())
}

fn group(side: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("bench-{side}-{nanos}")
}

/// Records per second from the first handled record to the `n`-th.
async fn timed(counter: &Counter, n: u64) -> BenchResult<f64> {
    let deadline = Duration::from_secs(120);
    let first = Instant::now();
    tokio::time::timeout(deadline, async {
        while counter.handled() == 0 {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    })
    .await
    .map_err(|_| "no record within 120 s")?;
    let start = Instant::now();
    let _ = first;
    tokio::time::timeout(deadline, counter.done.notified())
        .await
        .map_err(|_| format!("{} of {n} handled within 120 s", counter.handled()))?;
    // The first record was counted before `start`: n - 1 intervals.
    Ok((n - 1) as f64 / start.elapsed().as_secs_f64())
}

async fn framework_round(bootstrap: &str, n: u64) -> BenchResult<f64> {
    refill(bootstrap, n).await?;
    // The event route reads the refilled topic from its start in a fresh group.
    let config = Config::new(bootstrap)
        .client_id("bench-framework")
        .group_for(TOPIC.parse()?, group("framework"));
    let server = KafkaBroker::new(config).connect().await?;
    let counter = Counter::new(n);
    let mut router = Router::<KafkaConnection>::new();
    spec::register(&mut router, BenchService::new(counter.clone()))?;
    let running = router.start(server).await?;
    let rate = timed(&counter, n).await;
    running.shutdown(Duration::from_secs(10)).await?;
    rate.map_err(|e| format!("framework: {e}").into())
}

async fn baseline_round(bootstrap: &str, n: u64) -> BenchResult<f64> {
    refill(bootstrap, n).await?;
    let consumer: StreamConsumer = client(bootstrap)
        .set("group.id", group("baseline"))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[TOPIC])?;
    let counter = Counter::new(n);
    let c = counter.clone();
    let consuming = tokio::spawn(async move {
        let mut stream = consumer.stream();
        while let Some(m) = stream.next().await {
            let m = m?;
            let event: Event = serde_json::from_slice(m.payload().unwrap_or_default())?;
            std::hint::black_box(&event);
            c.hit();
            if c.handled() == n {
                break;
            }
        }
        Ok::<_, crate::BenchError>(())
    });
    let rate = timed(&counter, n).await;
    consuming.await??;
    rate.map_err(|e| format!("baseline: {e}").into())
}

/// `kafka-pipeline`.
pub fn kafka_pipeline(opts: &Opts) -> BenchResult<Line> {
    let bootstrap = opts.kafka_bootstrap.as_str();
    if let Err(e) = std::net::TcpStream::connect(bootstrap) {
        return Ok(Line::skipped(
            "kafka-pipeline",
            format!("Kafka is not reachable at {bootstrap}: {e}"),
        ));
    }
    let rt = opts.runtime()?;
    let n = (opts.messages / 10).max(2);
    let (mut fw, mut base) = (Vec::new(), Vec::new());
    rt.block_on(async {
        for _ in 0..opts.rounds {
            fw.push(framework_round(bootstrap, n).await?);
            base.push(baseline_round(bootstrap, n).await?);
        }
        Ok::<_, crate::BenchError>(())
    })?;
    Ok(
        Line::throughput("kafka-pipeline", median(&fw), median(&base), "msg/s")
            .with("messages", n)
            .with("rounds", opts.rounds)
            .with("threads", opts.threads)
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
