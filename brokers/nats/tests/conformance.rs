//! The conformance harness against the real NATS server on 127.0.0.1:4222, core and JetStream
//! separately.

use std::time::Duration;

use ruststream::Broker;
use ruststream::conformance::Suite;
use ruststream::testing::require_service;
use ruststream_nats::{Config, JetStreamConfig, NatsBroker};

const NATS: &str = "127.0.0.1:4222";

fn config() -> Config {
    Config::new("nats://127.0.0.1:4222").client_name("ruststream-conformance")
}

/// Stream for the JetStream runs; core runs use another prefix so JetStream never answers a
/// core request with a publish acknowledgement.
fn jetstream(ack_wait: Duration) -> JetStreamConfig {
    JetStreamConfig::new("RSCONF_JS", ["rsjs.>"])
        .memory_storage(true)
        .max_age(Duration::from_secs(600))
        .durable_inactive_threshold(Duration::from_secs(60))
        .ack_wait(ack_wait)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_passes_the_harness() {
    if !require_service("nats", NATS) {
        return;
    }
    let suite = Suite::new(|| NatsBroker::new(config()).connect());
    let mut report = suite.run().await;
    report.merge(suite.run_request_reply().await);
    report.merge(suite.run_batch().await);
    for check in [
        "round_trip",
        "metadata_round_trip",
        "wildcards",
        "queue_groups",
        "ordering",
        "request_reply",
        "batch",
        "lifecycle",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
    // Core NATS is at most once: it must not claim acks, redelivery or durability.
    let skipped: Vec<&str> = report.skipped.iter().map(|(c, _)| *c).collect();
    for check in ["ack", "nack_requeue", "dead_letter", "durable"] {
        assert!(
            skipped.contains(&check),
            "{check} should be skipped: {report:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_stress() {
    if !require_service("nats", NATS) {
        return;
    }
    Suite::new(|| NatsBroker::new(config()).connect())
        .prefix("rsstress")
        .messages(20)
        .stress(3)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_passes_the_harness() {
    if !require_service("nats", NATS) {
        return;
    }
    let suite = Suite::new(|| {
        NatsBroker::jetstream(config(), jetstream(Duration::from_secs(30))).connect()
    })
    .prefix("rsjs");
    let mut report = suite.run().await;
    report.merge(suite.run_delayed().await);
    report.merge(suite.run_batch().await);
    for check in [
        "ack",
        "nack_requeue",
        "dead_letter",
        "durable",
        "queue_groups",
        "delayed_redelivery",
        "batch",
        "lifecycle",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
}

/// With a short ack wait, a missing or unflushed ack would show up as a redelivery inside the
/// quiet period: this is what proves `ack` and "shutdown flushes acks" on JetStream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_acks_hold_past_the_ack_wait() {
    if !require_service("nats", NATS) {
        return;
    }
    Suite::new(|| NatsBroker::jetstream(config(), jetstream(Duration::from_millis(400))).connect())
        .prefix("rsjs")
        .quiet(Duration::from_millis(900))
        .only(["ack", "nack_drop", "durable", "dead_letter"])
        .run()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_stress() {
    if !require_service("nats", NATS) {
        return;
    }
    Suite::new(|| NatsBroker::jetstream(config(), jetstream(Duration::from_secs(30))).connect())
        .prefix("rsjs")
        .messages(10)
        .stress(2)
        .await;
}

/// The same harness with `/` addresses mapped to `.` subjects (`Config::address_separator`):
/// templates, wildcards, reply-tos (including `_INBOX` replies) and dead letters all go
/// through the mapping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_nats_with_slash_addresses_passes_the_harness() {
    if !require_service("nats", NATS) {
        return;
    }
    let suite = Suite::new(|| NatsBroker::new(config().address_separator('/')).connect())
        .prefix("rsmapconf")
        .separator("/");
    let mut report = suite.run().await;
    report.merge(suite.run_request_reply().await);
    report.merge(suite.run_batch().await);
    for check in [
        "round_trip",
        "metadata_round_trip",
        "wildcards",
        "queue_groups",
        "request_reply",
        "lifecycle",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_with_slash_addresses_passes_the_harness() {
    if !require_service("nats", NATS) {
        return;
    }
    let suite = Suite::new(|| {
        NatsBroker::jetstream(
            config().address_separator('/'),
            jetstream(Duration::from_secs(30)),
        )
        .connect()
    })
    .prefix("rsjs")
    .separator("/");
    let mut report = suite.run().await;
    report.merge(suite.run_delayed().await);
    for check in [
        "metadata_round_trip",
        "wildcards",
        "dead_letter",
        "durable",
        "queue_groups",
        "delayed_redelivery",
    ] {
        assert!(
            report.passed.contains(&check),
            "{check} did not run: {report:?}"
        );
    }
}
