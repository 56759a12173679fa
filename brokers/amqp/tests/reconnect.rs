//! Reconnect: RabbitMQ force-closes this test's connections mid-stream (`rabbitmqctl
//! close_connection`, only the connections this test named); the connections re-establish
//! themselves, re-declare their topology and delivery resumes with nothing lost
//! (at-least-once: duplicates allowed, gaps not).

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{config, rabbit, unique};
use futures_util::StreamExt;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_amqp::AmqpBroker;

/// Close every RabbitMQ connection whose client-provided name contains `tag`; returns how many.
fn close_connections_named(tag: &str) -> usize {
    let out = Command::new("rabbitmqctl")
        .args([
            "-q",
            "list_connections",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("rabbitmqctl must be runnable (the test runs as the RabbitMQ admin)");
    assert!(out.status.success(), "list_connections failed: {out:?}");
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut closed = 0;
    for line in listing.lines().filter(|l| l.contains(tag)) {
        let Some(pid) = line.split_whitespace().next() else {
            continue;
        };
        let status = Command::new("rabbitmqctl")
            .args(["-q", "close_connection", pid, "reconnect test"])
            .status()
            .expect("rabbitmqctl close_connection");
        assert!(status.success(), "close_connection {pid} failed");
        closed += 1;
    }
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_close_reconnects_and_loses_nothing() {
    if !rabbit() {
        return;
    }
    if Command::new("rabbitmqctl")
        .arg("-q")
        .arg("status")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI requires rabbitmqctl for the reconnect test"
        );
        eprintln!("skipping: rabbitmqctl not available");
        return;
    }
    let tag = unique("reconnect");
    let mut cfg = config("reconnect").queue_durable(true);
    cfg.connection_name = Some(tag.clone());
    let publisher = AmqpBroker::new(cfg.clone()).connect().await.unwrap();
    let subscriber = AmqpBroker::new(cfg).connect().await.unwrap();
    // A queue-group queue is named and durable (not exclusive): it outlives the connection.
    let mut sub = subscriber
        .subscribe(
            &Address::parse("rc.{n}").unwrap(),
            SubscribeOptions::new().queue_group("g"),
        )
        .await
        .unwrap();

    // The producer publishes until told to stop; the consumer collects until it has every
    // published message.
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let producer = tokio::spawn(async move {
        let mut retries = 0;
        let mut i = 0;
        while !*stop.borrow() {
            loop {
                let msg = OutgoingMessage::new(format!("rc.{i}"), i.to_string());
                match publisher.publish(msg).await {
                    Ok(()) => break,
                    Err(e) => {
                        retries += 1;
                        assert!(retries < 20, "publish keeps failing: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            i += 1;
            progress_tx.send_replace(i);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (publisher, i, retries)
    });
    let (target_tx, mut target) = tokio::sync::watch::channel(None::<usize>);
    let consumer = tokio::spawn(async move {
        let mut got = BTreeSet::new();
        let mut deliveries = 0usize;
        while target.borrow_and_update().is_none_or(|n| got.len() < n) {
            let next = tokio::select! {
                next = tokio::time::timeout(Duration::from_secs(20), sub.next()) => next,
                _ = target.changed() => continue,
            };
            let m = match next {
                Ok(Some(Ok(m))) => m,
                other => panic!(
                    "delivery stopped after {} distinct messages: {:?}",
                    got.len(),
                    other.map(|o| o.map(|r| r.map(|m| m.address().to_owned())))
                ),
            };
            deliveries += 1;
            got.insert(String::from_utf8_lossy(m.payload()).into_owned());
            // An ack on the dead channel fails; the broker redelivers that message.
            let _ = m.ack().await;
        }
        (got, deliveries)
    });

    // Mid-stream: force-close both connections, then keep publishing 50 more.
    progress.wait_for(|n| *n >= 50).await.unwrap();
    let closed = tokio::task::block_in_place(|| close_connections_named(&tag));
    assert_eq!(
        closed, 2,
        "both connections (publisher, subscriber) were force-closed"
    );
    let after_close = *progress.borrow();
    progress.wait_for(|n| *n >= after_close + 50).await.unwrap();
    stop_tx.send_replace(true);
    let (publisher, published, publish_retries) = producer.await.unwrap();
    target_tx.send_replace(Some(published));
    let (got, deliveries) = consumer.await.unwrap();
    let want: BTreeSet<String> = (0..published).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "every published message arrived");
    assert!(publisher.generation() >= 2, "publisher reconnected");
    assert!(subscriber.generation() >= 2, "subscriber reconnected");
    eprintln!(
        "reconnect: {published} messages, {deliveries} deliveries, {publish_retries} publish retries"
    );
    publisher.shutdown().await.unwrap();
    subscriber.shutdown().await.unwrap();
}

/// After a reconnect the broker refuses the topology (the exchange was re-created with another
/// type): `publish` fails with that reason instead of retrying forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_topology_on_reconnect_is_an_error_not_a_hang() {
    if !rabbit()
        || Command::new("rabbitmqctl")
            .arg("-q")
            .arg("status")
            .output()
            .is_err()
    {
        return;
    }
    let tag = unique("refused");
    let mut cfg = config("refused");
    cfg.connection_name = Some(tag.clone());
    let exchange = cfg.exchange.clone();
    let publisher = AmqpBroker::new(cfg).connect().await.unwrap();
    publisher
        .publish(OutgoingMessage::new("a", "x"))
        .await
        .unwrap();

    let raw =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await
            .unwrap();
    let channel = raw.create_channel().await.unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await
        .unwrap();
    channel
        .exchange_declare(
            exchange.as_str().into(),
            lapin::ExchangeKind::Fanout,
            lapin::options::ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap();
    let closed = tokio::task::block_in_place(|| close_connections_named(&tag));
    assert_eq!(closed, 1);

    let result = tokio::time::timeout(
        Duration::from_secs(10),
        publisher.publish(OutgoingMessage::new("a", "y")),
    )
    .await
    .expect("publish must not retry a refused topology forever");
    let err = result.expect_err("the exchange type no longer matches");
    assert!(err.to_string().contains("PRECONDITION"), "{err}");
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await
        .unwrap();
    raw.close(200, "done".into()).await.unwrap();
    publisher.shutdown().await.unwrap();
}
