//! Messages flow through an app on the memory broker; `/metrics` (scraped over raw HTTP)
//! shows them (handler publishes by status and duration included), `/health` follows the
//! lifecycle, and handler publishes continue the trace.
#![cfg(feature = "app")]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::app::App;
use ruststream::memory::MemoryBroker;
use ruststream::message::names::TRACEPARENT;
use ruststream::router::{HandlerError, Route};
use ruststream::telemetry::TraceContext;
use ruststream::{Address, Headers, IncomingMessage, SubscribeOptions, Subscriber, client};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

/// The value of the series line starting with `series` (labels included).
fn value(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in\n{body}"))
}

#[derive(Deserialize)]
struct Order {
    qty: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_move_as_messages_flow() {
    let app = App::new(MemoryBroker::default())
        .name("shop")
        .metrics_addr("127.0.0.1:0".parse().unwrap())
        .route(
            Route::new("orders/{id}").unwrap().name("onOrder"),
            |order: Order, ctx| async move {
                match order.qty {
                    q if q < 0 => Err(HandlerError::permanent("negative quantity")),
                    0 => panic!("zero quantity"),
                    q => {
                        // An empty address is refused by the broker: a failed publish.
                        let to = if q == 1 { "" } else { "shipments" };
                        ctx.publish(to, "application/json", &q).await?;
                        Ok(())
                    }
                }
            },
        );
    let running = app.start().await.unwrap();
    let addr = running.metrics_addr().unwrap();
    assert_eq!(get(addr, "/health").await, (200, "ready\n".into()));
    let conn = running.connection();
    let mut shipments = conn
        .subscribe(
            &Address::parse("shipments").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();

    let consumed = TraceContext::new_root();
    let mut traced = Headers::new();
    consumed.inject(&mut traced);
    client::publish(
        &conn,
        "orders/1".into(),
        "application/json",
        &serde_json::json!({"qty": 2}),
        traced,
    )
    .await
    .unwrap();
    for (id, body) in [
        ("2", r#"{"qty": 3}"#),
        ("3", r#"{"qty": -1}"#),
        ("4", r#"{"qty": 0}"#),
        ("5", "not json"),
        ("6", r#"{"qty": 1}"#),
    ] {
        let raw: serde_json::Value = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        if raw.is_null() {
            conn.publish_raw(id, body).await;
        } else {
            client::publish(
                &conn,
                format!("orders/{id}"),
                "application/json",
                &raw,
                Headers::new(),
            )
            .await
            .unwrap();
        }
    }

    let first = tokio::time::timeout(Duration::from_secs(5), shipments.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let carried = TraceContext::from_headers(first.headers()).expect("traceparent on the publish");
    assert_eq!(carried.trace_id, consumed.trace_id, "the trace continues");
    assert_ne!(carried.span_id, consumed.span_id, "with a new parent id");
    assert!(first.headers().get(TRACEPARENT).is_some());
    first.ack().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), shipments.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TraceContext::from_headers(second.headers()).is_some(),
        "a root is started when none came in"
    );
    second.ack().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running.stats().settled() < 6 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not settled: {:?}",
            running.stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let l = r#"app="shop",broker="memory",operation="onOrder""#;
    assert_eq!(
        value(&body, &format!("ruststream_messages_received_total{{{l}}}")),
        6.0
    );
    assert_eq!(
        value(
            &body,
            &format!("ruststream_messages_handled_total{{{l},outcome=\"ack\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &body,
            &format!("ruststream_messages_handled_total{{{l},outcome=\"reject\"}}")
        ),
        4.0
    );
    assert_eq!(
        value(&body, &format!("ruststream_decode_failures_total{{{l}}}")),
        1.0
    );
    assert_eq!(
        value(&body, &format!("ruststream_handler_panics_total{{{l}}}")),
        1.0
    );
    assert_eq!(
        value(&body, &format!("ruststream_messages_in_flight{{{l}}}")),
        0.0
    );
    assert!(
        value(
            &body,
            &format!("ruststream_handler_duration_seconds_count{{{l}}}")
        ) >= 5.0
    );
    // The handler's publishes, by status, and their durations.
    assert_eq!(
        value(
            &body,
            &format!("ruststream_messages_published_total{{{l},status=\"ok\"}}")
        ),
        2.0
    );
    assert_eq!(
        value(
            &body,
            &format!("ruststream_messages_published_total{{{l},status=\"error\"}}")
        ),
        1.0
    );
    assert_eq!(
        value(
            &body,
            &format!("ruststream_publish_duration_seconds_count{{{l}}}")
        ),
        3.0
    );
    assert!(
        value(
            &body,
            &format!("ruststream_publish_duration_seconds_sum{{{l}}}")
        ) > 0.0
    );

    let report = running.shutdown().await.unwrap();
    assert_eq!(report.aborted, 0);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "endpoint closed after shutdown"
    );
}

trait PublishRaw {
    async fn publish_raw(&self, id: &str, body: &str);
}

impl<C: ruststream::Publisher> PublishRaw for C {
    async fn publish_raw(&self, id: &str, body: &str) {
        let message = ruststream::OutgoingMessage::new(format!("orders/{id}"), body.to_owned())
            .content_type("application/json");
        self.publish(message).await.unwrap();
    }
}
