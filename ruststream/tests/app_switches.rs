//! `App::telemetry(false)` and `App::metrics(false)` take those middleware out.
#![cfg(feature = "app")]

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::app::App;
use ruststream::memory::MemoryBroker;
use ruststream::router::{HandlerError, Route};
use ruststream::telemetry::TraceContext;
use ruststream::{
    Address, Headers, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};

/// Handle one traced message that publishes once; return the published message's
/// `traceparent` and the rendered metrics.
async fn handle_one(app: App<MemoryBroker>, consumed: TraceContext) -> (TraceContext, String) {
    let running = app
        .name("svc")
        .route(
            Route::new("orders/{id}").unwrap().name("onOrder"),
            |_: serde_json::Value, ctx| async move {
                ctx.publish("shipments", "application/json", &1).await?;
                Ok::<_, HandlerError>(())
            },
        )
        .start()
        .await
        .unwrap();
    let conn = running.connection();
    let mut shipments = conn
        .subscribe(
            &Address::parse("shipments").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    let mut headers = Headers::new();
    consumed.inject(&mut headers);
    conn.publish(
        OutgoingMessage::new("orders/1", "{}")
            .with_headers(headers)
            .content_type("application/json"),
    )
    .await
    .unwrap();
    let shipped = tokio::time::timeout(Duration::from_secs(5), shipments.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let carried = TraceContext::from_headers(shipped.headers()).unwrap();
    shipped.ack().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running.stats().acked < 1 {
        assert!(tokio::time::Instant::now() < deadline, "not handled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let metrics = running.metrics().render();
    running.shutdown().await.unwrap();
    (carried, metrics)
}

const LABELS: &str = r#"app="svc",broker="memory",operation="onOrder""#;

#[tokio::test]
async fn telemetry_and_metrics_middleware_are_on_by_default() {
    let consumed = TraceContext::new_root();
    let (carried, metrics) = handle_one(App::new(MemoryBroker::default()), consumed).await;
    assert_eq!(carried.trace_id, consumed.trace_id);
    assert_ne!(
        carried.span_id, consumed.span_id,
        "a new span continues the trace"
    );
    for line in [
        format!("ruststream_messages_received_total{{{LABELS}}} 1"),
        format!("ruststream_handler_duration_seconds_count{{{LABELS}}} 1"),
        format!(r#"ruststream_messages_published_total{{{LABELS},status="ok"}} 1"#),
    ] {
        assert!(metrics.contains(&line), "missing `{line}` in\n{metrics}");
    }
}

#[tokio::test]
async fn telemetry_and_metrics_middleware_can_be_switched_off() {
    let consumed = TraceContext::new_root();
    let app = App::new(MemoryBroker::default())
        .telemetry(false)
        .metrics(false);
    let (carried, metrics) = handle_one(app, consumed).await;
    assert_eq!(
        carried, consumed,
        "without telemetry the consumed traceparent is copied unchanged"
    );
    for line in [
        // The router's own counters are still exported ...
        format!("ruststream_messages_received_total{{{LABELS}}} 1"),
        // ... but nothing records handler durations or publishes.
        format!("ruststream_handler_duration_seconds_count{{{LABELS}}} 0"),
        format!(r#"ruststream_messages_published_total{{{LABELS},status="ok"}} 0"#),
    ] {
        assert!(metrics.contains(&line), "missing `{line}` in\n{metrics}");
    }
}

#[tokio::test]
async fn each_switch_acts_alone() {
    let consumed = TraceContext::new_root();
    let app = App::new(MemoryBroker::default()).metrics(false);
    let (carried, metrics) = handle_one(app, consumed).await;
    assert_ne!(carried.span_id, consumed.span_id, "telemetry still on");
    assert!(metrics.contains(&format!(
        "ruststream_handler_duration_seconds_count{{{LABELS}}} 0"
    )));

    let app = App::new(MemoryBroker::default()).telemetry(false);
    let (carried, metrics) = handle_one(app, consumed).await;
    assert_eq!(carried, consumed, "telemetry off");
    assert!(metrics.contains(&format!(
        "ruststream_handler_duration_seconds_count{{{LABELS}}} 1"
    )));
}
