//! The RustStream conformance harness against the real RabbitMQ, classic and quorum queues.

mod common;

use ruststream::Broker;
use ruststream::conformance::Suite;
use ruststream_amqp::{AmqpBroker, QueueType};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_classic_queues() {
    if !common::rabbit() {
        return;
    }
    let config = common::config("conf-classic");
    let suite = Suite::new(|| AmqpBroker::new(config.clone()).connect());
    let report = suite.run().await;
    let rr = suite.run_request_reply().await;
    for check in [
        "round_trip",
        "metadata_round_trip",
        "topic_isolation",
        "wildcards",
        "concurrency",
        "flush_and_close",
        "ack",
        "nack_drop",
        "dead_letter",
        "ordering",
        "queue_groups",
        "durable",
        "lifecycle",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
    // Classic queues only tell `redelivered`: the attempt count does not grow past 2.
    assert!(report.skipped.iter().any(|(c, _)| *c == "nack_requeue"));
    assert_eq!(rr.passed, ["request_reply"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_quorum_queues() {
    if !common::rabbit() {
        return;
    }
    let config = common::config("conf-quorum").queue_type(QueueType::Quorum);
    let suite = Suite::new(|| AmqpBroker::new(config.clone()).connect());
    let report = suite.run().await;
    for check in [
        "round_trip",
        "ack",
        "nack_requeue",
        "nack_drop",
        "dead_letter",
        "queue_groups",
        "durable",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_stress_three_concurrent_runs() {
    if !common::rabbit() {
        return;
    }
    let config = common::config("conf-stress");
    let suite = Suite::new(|| AmqpBroker::new(config.clone()).connect()).messages(20);
    let report = suite.stress(3).await;
    assert_eq!(
        report
            .passed
            .iter()
            .filter(|c| **c == "queue_groups")
            .count(),
        3,
        "{report:?}"
    );
}
