//! One span per handled message, carrying address, operation, correlation id and trace id.
#![cfg(feature = "app")]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruststream::app::App;
use ruststream::memory::MemoryBroker;
use ruststream::router::{HandlerError, Route};
use ruststream::telemetry::TraceContext;
use ruststream::{Headers, OutgoingMessage, Publisher};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn handler_logs_are_inside_the_message_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let running = App::new(MemoryBroker::default())
        .route(
            Route::new("orders/{id}").unwrap().name("onOrder"),
            |_: serde_json::Value, _ctx| async {
                tracing::info!("handling the order");
                Ok::<_, HandlerError>(())
            },
        )
        .start()
        .await
        .unwrap();
    let trace = TraceContext::new_root();
    let mut headers = Headers::new();
    trace.inject(&mut headers);
    let mut message = OutgoingMessage::new("orders/7", "{}")
        .with_headers(headers)
        .content_type("application/json");
    message.correlation_id = Some("order-7".into());
    running.connection().publish(message).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while running.stats().acked < 1 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.shutdown().await.unwrap();

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = logs
        .lines()
        .find(|l| l.contains("handling the order"))
        .unwrap_or_else(|| panic!("no handler log in:\n{logs}"));
    for field in [
        "message{",
        "address=orders/7",
        "operation=onOrder",
        "correlation_id=order-7",
        &format!("trace_id={}", trace.trace_id_hex()),
    ] {
        assert!(line.contains(field), "`{field}` missing in `{line}`");
    }
}
