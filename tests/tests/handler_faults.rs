//! Handler faults in a running service: panics, errors (retryable and permanent), timeouts and
//! hangs. Each is settled by the route's policy and counted, the service keeps handling the
//! next messages, and graceful shutdown completes within its deadline even while a handler
//! hangs forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ruststream::memory::{MemoryConnection, Settled};
use ruststream::router::{
    Backoff, Context, ERROR_HEADER, ErrorPolicy, HandlerError, RetryPolicy, Route, Router,
};
use ruststream::testing::TestApp;

const WAIT: Duration = Duration::from_secs(10);

/// What the handler of the `faults/{kind}` route does with a message, by its `kind` parameter.
async fn faulty(n: u32, ctx: Context<MemoryConnection>) -> Result<(), HandlerError> {
    match ctx.param("kind").unwrap_or_default() {
        "ok" => Ok(()),
        "panic" => panic!("handler panicked on message {n}"),
        "panic-any" => std::panic::panic_any(n),
        "error" => Err(HandlerError::retryable(format_args!("failed on {n}"))),
        "permanent" => Err(HandlerError::permanent("cannot ever work")),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        other => Err(HandlerError::permanent(format_args!(
            "unknown kind {other}"
        ))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_errors_and_timeouts_are_settled_by_policy_and_the_service_stays_up() {
    let mut router = Router::<MemoryConnection>::new();
    // Route A: reject after failures, 3 attempts with a short backoff, 100 ms timeout.
    router.route(
        Route::new("faults/{kind}")
            .expect("route")
            .name("faults")
            .concurrency(4)
            .timeout(Duration::from_millis(100))
            .retries(RetryPolicy::new(
                3,
                Backoff::Fixed(Duration::from_millis(5)),
            ))
            .on_error(ErrorPolicy::Reject),
        faulty,
    );
    // Route B: the same handler, failures dead-lettered.
    router.route(
        Route::new("dl/{kind}")
            .expect("route")
            .name("dl")
            .concurrency(4)
            .timeout(Duration::from_millis(100))
            .dead_letter("faults.dead"),
        faulty,
    );
    let app = TestApp::start(router).await.expect("starts");

    let kinds = ["panic", "panic-any", "error", "permanent", "slow"];
    let mut n = 0u32;
    for prefix in ["faults", "dl"] {
        for kind in kinds {
            app.publish(&format!("{prefix}/{kind}"), &n)
                .await
                .expect("publish");
            n += 1;
            app.publish(&format!("{prefix}/ok"), &n)
                .await
                .expect("publish");
            n += 1;
        }
    }
    app.wait_settled(n as usize, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", app.stats()));

    let route = |name: &str| {
        app.router()
            .route_stats()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.snapshot())
            .expect("route stats")
    };
    let a = route("faults");
    let b = route("dl");
    for (name, s) in [("faults", a), ("dl", b)] {
        assert_eq!(s.acked, 5, "{name}: every good message acked: {s:?}");
        assert_eq!(s.panics, 2, "{name}: {s:?}");
        assert_eq!(s.in_flight, 0, "{name}: {s:?}");
    }
    // Route A: panics and permanent errors are not retried; the retryable error and the
    // timeout are (3 attempts each): 2 retries each.
    assert_eq!(a.retries, 4, "{a:?}");
    assert_eq!(a.timeouts, 3, "{a:?}");
    assert_eq!(a.handler_errors, 2 + 3 + 1 + 3, "{a:?}");
    assert_eq!(a.rejected, 5, "{a:?}");
    // Route B: no retries; all five failures dead-lettered with the reason.
    assert_eq!(b.dead_lettered, 5, "{b:?}");
    assert_eq!(b.timeouts, 1, "{b:?}");
    let dead = app.published_to("faults.dead");
    assert_eq!(dead.len(), 5);
    let reasons: Vec<&str> = dead
        .iter()
        .map(|m| m.headers.get(ERROR_HEADER).unwrap_or_default())
        .collect();
    for expected in ["panicked", "timed out", "failed on", "cannot ever work"] {
        assert!(
            reasons.iter().any(|r| r.contains(expected)),
            "an x-error says {expected:?}: {reasons:?}"
        );
    }
    let rejected = app
        .settlements_on("faults/panic")
        .iter()
        .filter(|s| matches!(s.outcome, Settled::Rejected { .. }))
        .count();
    assert_eq!(rejected, 1);

    // Still up: more good messages after all of that.
    for i in 0..10u32 {
        app.publish("faults/ok", &i).await.expect("publish");
    }
    app.wait_until(WAIT, || route("faults").acked == 15)
        .await
        .expect("handled after the faults");
    let report = app.shutdown(WAIT).await.expect("shutdown");
    assert_eq!(report.aborted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_with_requeue_redelivers_then_gives_up_on_a_poison_message() {
    let attempts = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&attempts);
    let mut router = Router::<MemoryConnection>::new();
    router.route(
        Route::new("poison")
            .expect("route")
            .retries(RetryPolicy::new(4, Backoff::None))
            .on_error(ErrorPolicy::Nack { requeue: true }),
        move |_: u32, ctx: Context<MemoryConnection>| {
            let seen = Arc::clone(&seen);
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(HandlerError::retryable(format_args!(
                    "attempt {}",
                    ctx.attempt()
                )))
            }
        },
    );
    let app = TestApp::start(router).await.expect("starts");
    app.publish("poison", &1u32).await.expect("publish");
    app.wait_until(WAIT, || {
        app.settlements()
            .iter()
            .any(|s| matches!(s.outcome, Settled::Rejected { .. }))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?} {:?}", app.stats(), app.settlements()));
    // Give a wrong implementation the time to loop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let tries = attempts.load(Ordering::SeqCst);
    assert_eq!(
        tries,
        4,
        "max_attempts caps the total: {:?}",
        app.settlements()
    );
    app.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_meets_its_deadline_while_a_handler_hangs_forever() {
    let mut router = Router::<MemoryConnection>::new();
    // No timeout: a handler that never returns keeps its message in flight.
    router.route(
        Route::new("hang/{kind}").expect("route").concurrency(2),
        |_: u32, ctx: Context<MemoryConnection>| async move {
            if ctx.param("kind") == Some("forever") {
                std::future::pending::<()>().await;
            }
            Ok::<_, HandlerError>(())
        },
    );
    let app = TestApp::start(router).await.expect("starts");
    app.publish("hang/forever", &1u32).await.expect("publish");
    app.wait_until(WAIT, || app.stats().in_flight == 1)
        .await
        .expect("hung handler in flight");
    // The other slot keeps serving.
    for i in 0..20u32 {
        app.publish("hang/ok", &i).await.expect("publish");
    }
    app.wait_until(WAIT, || app.stats().acked == 20)
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", app.stats()));

    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let report = tokio::time::timeout(Duration::from_secs(5), app.shutdown(deadline))
        .await
        .expect("shutdown returns")
        .expect("shutdown ok");
    let took = started.elapsed();
    assert!(
        took < deadline + Duration::from_secs(1),
        "shutdown took {took:?} for a {deadline:?} deadline"
    );
    assert!(took >= deadline, "in-flight work got its time: {took:?}");
    assert_eq!(report.aborted, 1, "{report:?}");
}
