//! Malformed messages reach a running service: invalid JSON, wrong types, missing required
//! fields, oversized and deeply nested payloads, wrong or unknown content types, invalid UTF-8.
//! Each is settled by the route's decode policy (rejected, or dead-lettered with an `x-error`
//! header), counted in `RouterStats` and in the Prometheus metrics, logged with its address,
//! and never stops the service: the next good message is handled.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ruststream::OutgoingMessage;
use ruststream::memory::{MemoryConnection, Settled};
use ruststream::metrics::Metrics;
use ruststream::router::{Context, DecodePolicy, ERROR_HEADER, HandlerError, Route, Router};
use ruststream::testing::TestApp;
use serde::Deserialize;

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize, PartialEq)]
struct Order {
    id: u64,
    item: String,
    qty: u32,
}

/// Log lines of every test in this binary (one global subscriber).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone, Copy)]
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs()
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(Vec::new())
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// The hostile payloads: (label, content type, bytes).
fn malformed() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let oversized_garbage = {
        let mut v = b"{\"id\": 1, \"item\": \"".to_vec();
        v.resize(8 << 20, b'x'); // 8 MiB, string never closed
        v
    };
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    vec![
        ("invalid json", "application/json", b"{not json".to_vec()),
        (
            "truncated",
            "application/json",
            br#"{"id": 1, "item": "a"#.to_vec(),
        ),
        ("empty", "application/json", Vec::new()),
        ("null", "application/json", b"null".to_vec()),
        (
            "wrong types",
            "application/json",
            br#"{"id": "seven", "item": 3, "qty": -1}"#.to_vec(),
        ),
        (
            "integer overflow",
            "application/json",
            br#"{"id": 1, "item": "a", "qty": 99999999999999}"#.to_vec(),
        ),
        (
            "missing fields",
            "application/json",
            br#"{"id": 1}"#.to_vec(),
        ),
        (
            "invalid utf-8",
            "application/json",
            b"{\"id\": 1, \"item\": \"\xff\xfe\", \"qty\": 1}".to_vec(),
        ),
        ("oversized garbage", "application/json", oversized_garbage),
        ("deep nesting", "application/json", deep),
        (
            "unknown content type",
            "application/xml",
            b"<order id=\"1\"/>".to_vec(),
        ),
        (
            "json sent as msgpack",
            "application/msgpack",
            br#"{"id": 1, "item": "a", "qty": 1}"#.to_vec(),
        ),
        (
            "text for a struct",
            "text/plain",
            b"one order please".to_vec(),
        ),
        (
            "garbage content type",
            "\u{0}/;;;=\"",
            br#"{"id": 1, "item": "a", "qty": 1}"#.to_vec(),
        ),
    ]
}

fn good(id: u64) -> Vec<u8> {
    format!(r#"{{"id": {id}, "item": "widget", "qty": 2}}"#).into_bytes()
}

fn router(handled: &Arc<Mutex<Vec<Order>>>) -> Router<MemoryConnection> {
    let mut router = Router::<MemoryConnection>::new();
    for (template, policy) in [
        ("reject/{shop}/orders", DecodePolicy::Reject),
        (
            "dlq/{shop}/orders",
            DecodePolicy::DeadLetter("orders.dead".to_owned()),
        ),
    ] {
        let handled = Arc::clone(handled);
        router.route(
            Route::new(template)
                .expect("route")
                .name(template.split('/').next().unwrap_or("route"))
                .on_decode_error(policy),
            move |order: Order, _ctx: Context<MemoryConnection>| {
                let handled = Arc::clone(&handled);
                async move {
                    handled.lock().map_err(HandlerError::permanent)?.push(order);
                    Ok::<_, HandlerError>(())
                }
            },
        );
    }
    router
}

async fn send(app: &TestApp, address: &str, content_type: &str, payload: Vec<u8>) {
    app.publish_message(
        OutgoingMessage::new(address.to_owned(), payload).content_type(content_type),
    )
    .await
    .expect("published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_settled_by_policy_counted_logged_and_never_stop_the_service() {
    let _ = logs();
    let handled = Arc::new(Mutex::new(Vec::new()));
    let app = TestApp::start(router(&handled)).await.expect("app starts");
    let metrics = Metrics::new("malformed").expect("metrics");
    metrics.watch_router("memory", app.router().route_stats());

    let bad = malformed();
    let n_bad = bad.len() as u64;
    let mut expected_good = 0u64;
    // Interleave: every malformed message is followed by a good one, on both routes.
    for (route, shop) in [("reject", "s1"), ("dlq", "s2")] {
        let address = format!("{route}/{shop}/orders");
        for (i, (_label, ct, payload)) in bad.iter().enumerate() {
            send(&app, &address, ct, payload.clone()).await;
            send(&app, &address, "application/json", good(i as u64)).await;
            expected_good += 1;
        }
    }
    let total = (2 * n_bad + expected_good) as usize;
    app.wait_settled(total, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}; stats {:?}", app.stats()));

    // Good messages were all handled, in order, between the bad ones.
    let got = std::mem::take(&mut *handled.lock().expect("lock"));
    assert_eq!(
        got.len() as u64,
        expected_good,
        "every good message handled"
    );
    assert!(got.iter().all(|o| o.item == "widget" && o.qty == 2));

    // Counted.
    let stats = app.stats();
    assert_eq!(stats.decode_failures, 2 * n_bad, "{stats:?}");
    assert_eq!(stats.acked, expected_good, "{stats:?}");
    assert_eq!(stats.panics, 0, "{stats:?}");
    let per_route: Vec<_> = app
        .router()
        .route_stats()
        .iter()
        .map(|(name, s)| (name.clone(), s.snapshot()))
        .collect();
    let reject = per_route
        .iter()
        .find(|(n, _)| n == "reject")
        .expect("route")
        .1;
    let dlq = per_route.iter().find(|(n, _)| n == "dlq").expect("route").1;
    assert_eq!(reject.rejected, n_bad, "{reject:?}");
    assert_eq!(reject.dead_lettered, 0, "{reject:?}");
    assert_eq!(dlq.dead_lettered, n_bad, "{dlq:?}");
    assert_eq!(dlq.rejected, 0, "{dlq:?}");

    // Settled: rejected on one route; dead-lettered (published unchanged + acked) on the other.
    let rejected = app
        .settlements_on("reject/s1/orders")
        .iter()
        .filter(|s| matches!(s.outcome, Settled::Rejected { .. }))
        .count() as u64;
    assert_eq!(rejected, n_bad);
    let dead = app.published_to("orders.dead");
    assert_eq!(dead.len() as u64, n_bad);
    for ((label, _, payload), msg) in bad.iter().zip(&dead) {
        assert_eq!(
            &msg.payload[..],
            &payload[..],
            "{label}: dead letter keeps the payload"
        );
        let why = msg.headers.get(ERROR_HEADER).unwrap_or_default();
        assert!(why.contains("decode"), "{label}: x-error says why: {why:?}");
    }

    // Exported as metrics.
    let text = metrics.render();
    let series = |name: &str, operation: &str, extra: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(&format!("operation=\"{operation}\""))
                    && l.contains(extra)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} for {operation} in\n{text}"))
    };
    assert_eq!(
        series("ruststream_decode_failures_total", "reject", ""),
        n_bad
    );
    assert_eq!(series("ruststream_decode_failures_total", "dlq", ""), n_bad);
    assert_eq!(
        series(
            "ruststream_messages_handled_total",
            "reject",
            "outcome=\"reject\""
        ),
        n_bad
    );
    assert_eq!(
        series(
            "ruststream_messages_handled_total",
            "dlq",
            "outcome=\"dead_letter\""
        ),
        n_bad
    );

    // Logged with the address.
    let log = log_text();
    let undecodable = log
        .lines()
        .filter(|l| l.contains("undecodable message"))
        .collect::<Vec<_>>();
    assert!(
        undecodable.iter().any(|l| l.contains("reject/s1/orders")),
        "decode failures are logged with the address:\n{log}"
    );
    assert!(undecodable.iter().any(|l| l.contains("dlq/s2/orders")));
    // An 8 MiB payload must not be copied into a log line.
    assert!(
        log.lines().all(|l| l.len() < 64 * 1024),
        "a log line carries a payload"
    );

    let report = app.shutdown(WAIT).await.expect("shutdown");
    assert_eq!(report.aborted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_but_valid_payload_is_handled_not_dropped() {
    // The router has no payload size limit of its own (brokers enforce theirs, e.g. NATS
    // `max_payload`): a large valid message is decoded and handled like any other.
    let handled = Arc::new(Mutex::new(Vec::new()));
    let app = TestApp::start(router(&handled)).await.expect("app starts");
    let big = format!(
        r#"{{"id": 1, "item": "{}", "qty": 1}}"#,
        "x".repeat(16 << 20)
    );
    send(
        &app,
        "reject/s/orders",
        "application/json",
        big.into_bytes(),
    )
    .await;
    send(&app, "reject/s/orders", "application/json", good(2)).await;
    app.wait_settled(2, WAIT).await.expect("settled");
    let got = std::mem::take(&mut *handled.lock().expect("lock"));
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].item.len(), 16 << 20);
    assert_eq!(app.stats().acked, 2);
    app.shutdown(WAIT).await.expect("shutdown");
}
