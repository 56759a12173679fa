//! The AsyncAPI NATS `queue` operation binding against the real server on 127.0.0.1:4222:
//! subscribers that take their options from the binding share the messages (each is
//! delivered once across the group), while a subscriber without it gets every message.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::testing::require_service;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_nats::{Config, NatsBroker, bindings};

const NATS: &str = "127.0.0.1:4222";
const URL: &str = "nats://127.0.0.1:4222";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_the_bound_queue_share_the_messages() {
    if !require_service("nats", NATS) {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let base = format!("rsbinding/t{nanos}");
    let spec = serde_json::json!({
        "asyncapi": "3.0.0",
        "channels": {"measured": {"address": format!("{base}/lights/{{id}}/measured")}},
        "operations": {"receiveLightMeasurement": {
            "action": "receive",
            "channel": {"$ref": "#/channels/measured"},
            "bindings": {"nats": {"queue": format!("workers{nanos}"), "bindingVersion": "0.1.0"}}
        }}
    })
    .to_string();
    let queue = bindings::operation_queue(&spec, "receiveLightMeasurement")
        .unwrap()
        .expect("the operation binds a queue");
    let template = Address::parse(&format!("{base}/lights/{{id}}/measured")).unwrap();

    let config = || Config::new(URL).address_separator('/');
    let publisher = NatsBroker::new(config()).connect().await.unwrap();
    let mut members = Vec::new();
    for _ in 0..2 {
        let conn = NatsBroker::new(config()).connect().await.unwrap();
        let options = SubscribeOptions::new().queue_group(queue.clone());
        let sub = conn.subscribe(&template, options).await.unwrap();
        members.push((conn, sub));
    }
    let mut everything = publisher
        .subscribe(&template, SubscribeOptions::new())
        .await
        .unwrap();

    let n = 20;
    for i in 0..n {
        publisher
            .publish(OutgoingMessage::new(
                format!("{base}/lights/{i}/measured"),
                i.to_string(),
            ))
            .await
            .unwrap();
    }
    publisher.flush().await.unwrap();

    // The plain subscriber gets all of them.
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(5), everything.next())
            .await
            .expect("every message reaches the subscriber without a queue")
            .unwrap()
            .unwrap();
    }
    // The group gets each exactly once between its members.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.values().sum::<usize>() < n && tokio::time::Instant::now() < deadline {
        for (_, sub) in &mut members {
            if let Ok(Some(Ok(m))) =
                tokio::time::timeout(Duration::from_millis(50), sub.next()).await
            {
                assert!(template.matches(m.address()), "{}", m.address());
                *seen
                    .entry(String::from_utf8_lossy(m.payload()).into_owned())
                    .or_default() += 1;
            }
        }
    }
    // Nothing more arrives (no duplicates across members).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (_, sub) in &mut members {
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(20), sub.next()).await
        {
            *seen
                .entry(String::from_utf8_lossy(m.payload()).into_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(seen.len(), n, "{seen:?}");
    assert!(seen.values().all(|&c| c == 1), "duplicates: {seen:?}");
    for (conn, _) in members {
        conn.shutdown().await.unwrap();
    }
    publisher.shutdown().await.unwrap();
}
