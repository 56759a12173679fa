//! The conformance harness against the Kafka-protocol server on 127.0.0.1:9092 (tansu in CI,
//! started by `.ci/run`; any Kafka works).

use std::time::Duration;

use ruststream::Broker;
use ruststream::conformance::{ConnectionFactory, Suite};
use ruststream::testing::require_service;
use ruststream_kafka::{Config, KafkaBroker, KafkaConnection};

const KAFKA: &str = "127.0.0.1:9092";

fn config(partitions: i32) -> Config {
    Config::new(KAFKA)
        .client_id("ruststream-conformance")
        .partitions(partitions)
        .commit_interval(Duration::from_millis(100))
}

/// Group joins and topic creation take a while on Kafka: a longer bound per operation.
fn suite(partitions: i32) -> Suite<impl ConnectionFactory<Conn = KafkaConnection>> {
    Suite::new(move || KafkaBroker::new(config(partitions)).connect())
        .prefix("rskafka")
        .timeout(Duration::from_secs(20))
        .quiet(Duration::from_millis(800))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_passes_the_harness() {
    if !require_service("kafka", KAFKA) {
        return;
    }
    let suite = suite(3);
    let mut report = suite.run().await;
    report.merge(suite.run_request_reply().await);
    report.merge(suite.run_batch().await);
    report.merge(suite.run_delayed().await);
    for check in [
        "round_trip",
        "metadata_round_trip",
        "topic_isolation",
        "wildcards",
        "ack",
        "nack_requeue",
        "nack_drop",
        "dead_letter",
        "ordering_per_key",
        "queue_groups",
        "durable",
        "lifecycle",
        "request_reply",
        "batch",
        "delayed_redelivery",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
    // Three partitions: no claim of total order, and no transactions.
    let skipped: Vec<&str> = report.skipped.iter().map(|(c, _)| *c).collect();
    assert!(skipped.contains(&"ordering"), "{report:?}");
}

/// With one partition per topic the connection claims (and must keep) publish order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_partition_topics_keep_publish_order() {
    if !require_service("kafka", KAFKA) {
        return;
    }
    let report = suite(1).only(["ordering"]).run().await;
    assert_eq!(report.passed, vec!["ordering"], "{report:?}");
}
