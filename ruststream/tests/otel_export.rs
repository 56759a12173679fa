//! OpenTelemetry export end to end: an app on the memory broker, a tiny TCP server acting as
//! the OTLP/HTTP collector, spans checked in the JSON body it receives.
#![cfg(all(feature = "app", feature = "otel"))]

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::app::{App, RunningApp};
use ruststream::memory::{MemoryBroker, MemoryConnection};
use ruststream::otel::{BatchConfig, Otel, OtlpHttpJsonExporter};
use ruststream::router::{HandlerError, Route};
use ruststream::telemetry::TraceContext;
use ruststream::{
    Address, Headers, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// One request the collector received.
#[derive(Debug)]
struct Request {
    head: String,
    body: Vec<u8>,
}

/// A collector answering the n-th request with `statuses[n]` (the last one from then on);
/// requests go to the returned channel.
async fn collector(statuses: &[u16]) -> (String, mpsc::UnboundedReceiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let statuses = statuses.to_vec();
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let status = statuses[n.min(statuses.len() - 1)];
            n += 1;
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "client closed before the head");
                    buf.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().unwrap())
                    })
                    .expect("content-length");
                let mut body = buf[head_end..].to_vec();
                while body.len() < length {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "client closed before the body");
                    body.extend_from_slice(&chunk[..n]);
                }
                let answer = if status == 200 { "{}" } else { "overloaded" };
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                );
                // Recorded before answering: once the exporter has its answer, it is here.
                let _ = tx.send(Request { head, body });
                stream.write_all(response.as_bytes()).await.unwrap();
            });
        }
    });
    (url, rx)
}

/// Never export on the timer: what the collector gets comes from the flush at shutdown.
fn only_at_shutdown() -> BatchConfig {
    BatchConfig {
        scheduled_delay: Duration::from_secs(3600),
        ..BatchConfig::default()
    }
}

fn attr<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

fn string_attr<'a>(span: &'a Value, key: &str) -> &'a str {
    attr(span, key)
        .and_then(|v| v["stringValue"].as_str())
        .unwrap_or_else(|| panic!("no string attribute {key} on {span:#}"))
}

fn app(url: &str, service: &str) -> App<MemoryBroker> {
    let exporter = OtlpHttpJsonExporter::new(url).unwrap();
    App::new(MemoryBroker::default())
        .name("orders")
        .otel(
            Otel::exporter_with(exporter, only_at_shutdown())
                .unwrap()
                .service_name(service),
        )
        .route(
            Route::new("orders/{id}").unwrap().name("onOrder"),
            |order: Value, ctx| async move {
                let id = order["id"].as_u64().unwrap_or(0);
                ctx.publish(&format!("shipments/{id}"), "application/json", &order)
                    .await?;
                Ok::<_, HandlerError>(())
            },
        )
}

/// Wait (up to 5 s) until the app has acked `n` messages.
async fn wait_acked(running: &RunningApp<MemoryConnection>, n: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running.stats().acked < n {
        assert!(tokio::time::Instant::now() < deadline, "not handled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Publish order 1 into the app and wait until it is handled.
async fn publish_order_and_wait(running: &RunningApp<MemoryConnection>) {
    running
        .connection()
        .publish(OutgoingMessage::new("orders/1", r#"{"id": 1}"#).content_type("application/json"))
        .await
        .unwrap();
    wait_acked(running, 1).await;
}

async fn next_delivery<S>(sub: &mut S) -> S::Item
where
    S: futures_core::Stream + Unpin,
{
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a delivery within 5 s")
        .expect("subscription open")
}

#[tokio::test]
async fn spans_continue_the_incoming_trace_and_reach_the_collector() {
    let (url, mut requests) = collector(&[200]).await;
    let running = app(&url, "orders-svc").start().await.unwrap();
    let stats = running.otel().unwrap().stats().unwrap().clone();
    let conn = running.connection();
    let mut shipments = conn
        .subscribe(
            &Address::parse("shipments/{id}").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();

    // One message continuing a known trace, one starting none.
    let mut headers = Headers::new();
    headers.insert("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"));
    headers.insert("message-id", "m-1");
    let mut traced = OutgoingMessage::new("orders/7", r#"{"id": 7}"#)
        .with_headers(headers)
        .content_type("application/json");
    traced.correlation_id = Some("order-7".into());
    conn.publish(traced).await.unwrap();
    let shipped = next_delivery(&mut shipments).await.unwrap();
    let carried = TraceContext::from_headers(shipped.headers()).expect("traceparent");
    shipped.ack().await.unwrap();

    conn.publish(OutgoingMessage::new("orders/8", r#"{"id": 8}"#).content_type("application/json"))
        .await
        .unwrap();
    let untraced = next_delivery(&mut shipments).await.unwrap();
    let root = TraceContext::from_headers(untraced.headers()).expect("traceparent");
    untraced.ack().await.unwrap();

    wait_acked(&running, 2).await;
    assert!(
        requests.try_recv().is_err(),
        "nothing exported before the flush"
    );
    // Graceful shutdown flushes the queue.
    running.shutdown().await.unwrap();
    assert_eq!(
        (stats.exported(), stats.dropped(), stats.failed()),
        (4, 0, 0)
    );

    let request = tokio::time::timeout(Duration::from_secs(5), requests.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        request.head.starts_with("POST /v1/traces HTTP/1.1\r\n"),
        "{}",
        request.head
    );
    assert!(
        request
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/json\r\n"),
        "{}",
        request.head
    );
    assert!(requests.try_recv().is_err(), "one batch");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let resource_spans = &body["resourceSpans"][0];
    let service = resource_spans["resource"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "service.name")
        .unwrap();
    assert_eq!(service["value"]["stringValue"], "orders-svc");
    let scope = &resource_spans["scopeSpans"][0];
    assert_eq!(scope["scope"]["name"], "ruststream");
    let spans = scope["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 4, "{body:#}");

    // The handling span of the traced message continues the incoming trace.
    let consume = spans
        .iter()
        .find(|s| s["kind"] == 5 && s["traceId"] == TRACE_ID)
        .unwrap_or_else(|| panic!("no consumer span in trace {TRACE_ID}: {body:#}"));
    assert_eq!(consume["parentSpanId"], PARENT_ID);
    assert_eq!(consume["name"], "process onOrder");
    assert_eq!(
        consume["flags"].as_u64().unwrap() & 0x301,
        0x301,
        "sampled, parent remote"
    );
    for (key, value) in [
        ("messaging.system", "memory"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", "orders/7"),
        ("messaging.message.conversation_id", "order-7"),
        ("messaging.message.id", "m-1"),
        ("ruststream.route", "onOrder"),
    ] {
        assert_eq!(string_attr(consume, key), value, "{key}");
    }
    assert_eq!(
        attr(consume, "messaging.message.body.size").unwrap()["intValue"],
        "9"
    );
    let start: u128 = consume["startTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let end: u128 = consume["endTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(start > 0 && end >= start);

    // The publish the handler made is a child of the handling span, and the published
    // message's traceparent names the publish span.
    let publish = spans
        .iter()
        .find(|s| s["kind"] == 4 && s["traceId"] == TRACE_ID)
        .unwrap_or_else(|| panic!("no producer span: {body:#}"));
    assert_eq!(publish["parentSpanId"], consume["spanId"]);
    assert_eq!(carried.trace_id_hex(), TRACE_ID);
    assert_eq!(
        publish["spanId"].as_str().unwrap(),
        &carried.to_traceparent()[36..52]
    );
    for (key, value) in [
        ("messaging.system", "memory"),
        ("messaging.operation.type", "send"),
        ("messaging.destination.name", "shipments/7"),
        ("messaging.message.conversation_id", "order-7"),
        ("ruststream.route", "onOrder"),
    ] {
        assert_eq!(string_attr(publish, key), value, "{key}");
    }

    // A message without trace context starts a trace: a root handling span.
    let root_consume = spans
        .iter()
        .find(|s| s["kind"] == 5 && s["traceId"] == root.trace_id_hex().as_str())
        .unwrap_or_else(|| panic!("no root consumer span: {body:#}"));
    assert!(
        root_consume.get("parentSpanId").is_none(),
        "{root_consume:#}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s["kind"] == 4 && s["parentSpanId"] == root_consume["spanId"]),
        "the untraced message's publish is its child"
    );
}

#[tokio::test]
async fn flush_exports_now_and_the_counts_are_scraped() {
    let (url, mut requests) = collector(&[200]).await;
    let running = app(&url, "orders-svc").start().await.unwrap();
    let line = |outcome: &str, n: u64| {
        format!(r#"ruststream_otel_spans_total{{app="orders",outcome="{outcome}"}} {n}"#)
    };
    let metrics = running.metrics().render();
    assert!(metrics.contains(&line("exported", 0)), "{metrics}");
    publish_order_and_wait(&running).await;
    running.otel().unwrap().flush().await.unwrap();
    let request = requests.recv().await.expect("exported by the flush");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let metrics = running.metrics().render();
    for expected in [line("exported", 2), line("dropped", 0), line("failed", 0)] {
        assert!(metrics.contains(&expected), "no `{expected}` in\n{metrics}");
    }
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_collector_is_counted_not_fatal() {
    let (url, mut requests) = collector(&[400]).await;
    let running = app(&url, "orders-svc").start().await.unwrap();
    let stats = running.otel().unwrap().stats().unwrap().clone();
    publish_order_and_wait(&running).await;
    // The export failure does not fail the app's shutdown.
    running.shutdown().await.unwrap();
    assert!(requests.recv().await.is_some());
    assert!(requests.try_recv().is_err(), "400 is not retried");
    assert_eq!(stats.exported(), 0);
    assert_eq!(stats.failed_exports(), 1);
    assert_eq!(stats.failed(), 2);
}

#[tokio::test]
async fn an_overloaded_collector_is_retried() {
    let (url, mut requests) = collector(&[503, 429, 200]).await;
    let running = app(&url, "orders-svc").start().await.unwrap();
    let stats = running.otel().unwrap().stats().unwrap().clone();
    publish_order_and_wait(&running).await;
    running.shutdown().await.unwrap();
    let mut bodies = Vec::new();
    while let Ok(request) = requests.try_recv() {
        bodies.push(request.body);
    }
    assert_eq!(bodies.len(), 3, "two retries");
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "the same batch");
    assert_eq!((stats.exported(), stats.failed_exports()), (2, 0));
}

#[tokio::test]
async fn a_failed_handling_is_an_error_span_and_the_handler_sees_its_context() {
    use ruststream::otel::reexports::opentelemetry::trace::TraceContextExt;
    use std::sync::{Arc, Mutex};

    let (url, mut requests) = collector(&[200]).await;
    let seen = Arc::new(Mutex::new(None));
    let seen_in_handler = Arc::clone(&seen);
    let exporter = OtlpHttpJsonExporter::new(&url).unwrap();
    let running = App::new(MemoryBroker::default())
        .name("orders")
        .otel(Otel::exporter_with(exporter, only_at_shutdown()).unwrap())
        .route(
            Route::new("orders/{id}").unwrap().name("onOrder"),
            move |_: Value, _ctx| {
                let seen = Arc::clone(&seen_in_handler);
                async move {
                    let cx = ruststream::otel::reexports::opentelemetry::Context::current();
                    *seen.lock().unwrap() = Some(cx.span().span_context().span_id().to_string());
                    Err::<(), _>(HandlerError::permanent("out of stock"))
                }
            },
        )
        .start()
        .await
        .unwrap();
    running
        .connection()
        .publish(OutgoingMessage::new("orders/1", r#"{"id": 1}"#).content_type("application/json"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running.stats().settled() < 1 {
        assert!(tokio::time::Instant::now() < deadline, "not handled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.shutdown().await.unwrap();
    let request = requests.recv().await.unwrap();
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let span = &body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["kind"], 5);
    assert_eq!(span["status"]["code"], 2);
    assert!(
        span["status"]["message"]
            .as_str()
            .unwrap()
            .contains("out of stock"),
        "{span:#}"
    );
    assert_eq!(string_attr(span, "error.type"), "permanent");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.as_deref(), span["spanId"].as_str());
}
