//! Payload size limits: an oversized message is not decoded; it is rejected or dead-lettered
//! by the route's `DecodePolicy`, counted as a decode failure, and the route keeps serving.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruststream::OutgoingMessage;
use ruststream::memory::MemoryConnection;
use ruststream::router::{Context, DecodePolicy, Route, Router};
use ruststream::testing::TestApp;

type Ctx = Context<MemoryConnection>;
const WAIT: Duration = Duration::from_secs(5);

fn recorder(router: &mut Router<MemoryConnection>, route: Route) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    router.route(route, move |v: String, _: Ctx| {
        let s = Arc::clone(&s);
        async move {
            s.lock().unwrap().push(v);
            Ok(())
        }
    });
    seen
}

#[tokio::test]
async fn oversized_payload_is_rejected_and_counted_then_next_is_handled() {
    let mut router = Router::new();
    let seen = recorder(&mut router, Route::new("small").unwrap().max_payload(16));
    let app = TestApp::start(router).await.unwrap();
    let big = "x".repeat(100);
    app.publish("small", &big).await.unwrap();
    // Exactly at the limit is fine: "\"0123456789abcd\"" is 16 bytes.
    app.publish("small", "0123456789abcd").await.unwrap();
    app.wait_settled(2, WAIT).await.unwrap();
    let st = app.stats();
    assert_eq!(
        (st.decode_failures, st.rejected, st.acked, st.handler_errors),
        (1, 1, 1, 0)
    );
    assert_eq!(*seen.lock().unwrap(), ["0123456789abcd"]);
}

#[tokio::test]
async fn oversized_payload_is_dead_lettered_with_the_limit_in_x_error() {
    let mut router = Router::new();
    let seen = recorder(
        &mut router,
        Route::new("uploads")
            .unwrap()
            .max_payload(8)
            .on_decode_error(DecodePolicy::DeadLetter("uploads.too-big".into())),
    );
    let app = TestApp::start(router).await.unwrap();
    // Not even valid JSON: the limit applies before any decoding.
    app.publish_message(OutgoingMessage::new("uploads", "{not json at all"))
        .await
        .unwrap();
    app.publish("uploads", "ok").await.unwrap();
    app.wait_settled(2, WAIT).await.unwrap();
    let st = app.stats();
    assert_eq!(
        (st.decode_failures, st.dead_lettered, st.acked, st.rejected),
        (1, 1, 1, 0)
    );
    let dl = app.published_to("uploads.too-big");
    assert_eq!(dl.len(), 1);
    assert_eq!(&dl[0].payload[..], b"{not json at all");
    let err = dl[0].headers.get("x-error").unwrap();
    assert!(err.contains("max_payload of 8 bytes"), "{err}");
    assert!(err.contains("16 bytes"), "{err}");
    assert_eq!(*seen.lock().unwrap(), ["ok"]);
}

#[tokio::test]
async fn router_default_applies_unless_the_route_sets_its_own() {
    let mut router = Router::new();
    let a = recorder(&mut router, Route::new("a").unwrap());
    let b = recorder(&mut router, Route::new("b").unwrap().max_payload(1024));
    router.max_payload(10);
    let app = TestApp::start(router).await.unwrap();
    let medium = "y".repeat(50);
    app.publish("a", &medium).await.unwrap();
    app.publish("b", &medium).await.unwrap();
    app.publish("a", "short").await.unwrap();
    app.wait_settled(3, WAIT).await.unwrap();
    let st = app.stats();
    assert_eq!((st.decode_failures, st.rejected, st.acked), (1, 1, 2));
    assert_eq!(*a.lock().unwrap(), ["short"]);
    assert_eq!(*b.lock().unwrap(), [medium]);
}
