//! The router runtime on the in-memory broker: decoding, replies, retries, dead letters,
//! panics, timeouts, concurrency, middleware, hooks and graceful shutdown.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::memory::{MemoryConfig, MemoryConnection, Settled};
use ruststream::router::{
    Backoff, BoxFuture, ConsumeInfo, Context, DecodePolicy, ErrorPolicy, HandlerError, Middleware,
    Next, RetryPolicy, Route, Router,
};
use ruststream::testing::TestApp;
use ruststream::{
    Address, Error, Headers, OutgoingMessage, Publisher, SubscribeOptions, Subscriber,
};
use serde::{Deserialize, Serialize};

type Ctx = Context<MemoryConnection>;
const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Signup {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Welcome {
    user: String,
    text: String,
}

#[tokio::test]
async fn decodes_payload_passes_params_headers_and_acks() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let mut router = Router::new();
    router.route(
        Route::new("user/{userId}/signup").unwrap().name("onSignup"),
        move |v: Signup, ctx: Ctx| {
            let s = Arc::clone(&s);
            async move {
                s.lock().unwrap().push((
                    v.name,
                    ctx.param("userId").map(str::to_owned),
                    ctx.headers().get("x-tenant").map(str::to_owned),
                    ctx.address().to_owned(),
                    ctx.attempt(),
                    ctx.route().to_owned(),
                ));
                Ok(())
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish_message(
        OutgoingMessage::new("user/42/signup", r#"{"name":"Ada"}"#)
            .content_type("application/json; charset=utf-8")
            .header("x-tenant", "t1"),
    )
    .await
    .unwrap();
    app.publish("user/other/ignored", &Signup { name: "x".into() })
        .await
        .unwrap();
    app.wait_settled(1, WAIT).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [(
            "Ada".to_owned(),
            Some("42".to_owned()),
            Some("t1".to_owned()),
            "user/42/signup".to_owned(),
            1,
            "onSignup".to_owned()
        )]
    );
    let st = app.stats();
    assert_eq!((st.received, st.acked, st.in_flight), (1, 1, 0));
    assert_eq!(app.settlements()[0].outcome, Settled::Acked);
    app.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn route_content_type_is_the_fallback_and_text_works() {
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let g = Arc::clone(&got);
    let mut router = Router::new();
    router.route(
        Route::new("text").unwrap().content_type("text/plain"),
        move |v: String, _ctx: Ctx| {
            let g = Arc::clone(&g);
            async move {
                g.lock().unwrap().push(v);
                Ok(())
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    // No content-type header: the route's text/plain applies.
    app.publish_message(OutgoingMessage::new("text", "plain words"))
        .await
        .unwrap();
    // The message's own header wins over the route's.
    app.publish("text", &"json string").await.unwrap();
    app.wait_settled(2, WAIT).await.unwrap();
    assert_eq!(*got.lock().unwrap(), ["plain words", "json string"]);
}

#[tokio::test]
async fn request_reply_through_reply_to_and_reply_address() {
    let mut router = Router::new();
    router.route_reply(
        Route::new("greet/{lang}")
            .unwrap()
            .reply_address("greeted/{lang}"),
        |v: Signup, ctx: Ctx| async move {
            let text = match ctx.param("lang") {
                Some("fr") => format!("Bonjour {}", v.name),
                _ => format!("Hello {}", v.name),
            };
            if v.name == "slow" {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok::<_, HandlerError>(Welcome { user: v.name, text })
        },
    );
    router.route(Route::new("noreply").unwrap(), |_: u8, _: Ctx| async {
        Ok(())
    });
    let app = TestApp::start(router).await.unwrap();
    let reply: Welcome = app
        .request("greet/fr", &Signup { name: "Ada".into() }, WAIT)
        .await
        .unwrap();
    assert_eq!(reply.text, "Bonjour Ada");

    // Without reply_to: the route's reply address, rendered with the parameters, carrying the
    // correlation id.
    app.publish_message(
        OutgoingMessage::new("greet/en", r#"{"name":"Bob"}"#).correlation_id("corr-7"),
    )
    .await
    .unwrap();
    app.wait_until(WAIT, || !app.published_to("greeted/en").is_empty())
        .await
        .unwrap();
    let out = &app.published_to("greeted/en")[0];
    assert_eq!(out.correlation_id.as_deref(), Some("corr-7"));
    assert_eq!(out.headers.get("correlation-id"), Some("corr-7"));
    assert_eq!(out.headers.get("content-type"), Some("application/json"));
    assert_eq!(
        app.decoded::<Welcome>("greeted/en").unwrap()[0].text,
        "Hello Bob"
    );

    // A request nobody answers times out.
    let err = app
        .request::<_, u8>("nobody/home", &1, Duration::from_millis(30))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)));
    app.shutdown(WAIT).await.unwrap();
}

#[tokio::test]
async fn concurrent_requests_get_their_own_replies_when_answered_in_reverse_order() {
    let release_first = Arc::new(tokio::sync::Notify::new());
    let release = Arc::clone(&release_first);
    let mut router = Router::new();
    router.route_reply(
        Route::new("slowecho").unwrap().concurrency(2),
        move |v: u64, _: Ctx| {
            let release = Arc::clone(&release);
            async move {
                // The first request answers only after the second got its reply.
                if v == 1 {
                    release.notified().await;
                }
                Ok::<_, HandlerError>(v * 10)
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    let conn = app.connection().clone();
    let c1 = conn.clone();
    let first = tokio::spawn(async move {
        ruststream::client::request::<_, _, u64>(
            &c1,
            "slowecho".into(),
            "application/json",
            &1u64,
            WAIT,
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second: u64 =
        ruststream::client::request(&conn, "slowecho".into(), "application/json", &2u64, WAIT)
            .await
            .unwrap();
    assert!(!first.is_finished(), "the second reply came first");
    assert_eq!(second, 20);
    release_first.notify_one();
    assert_eq!(first.await.unwrap().unwrap(), 10);
}

#[tokio::test]
async fn dead_letter_after_max_attempts_with_local_retries() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let a = Arc::clone(&attempts);
    let mut router = Router::new();
    router.route(
        Route::new("work")
            .unwrap()
            .retries(RetryPolicy::new(
                3,
                Backoff::Fixed(Duration::from_millis(5)),
            ))
            .dead_letter("work.dlq"),
        move |_: u32, ctx: Ctx| {
            let a = Arc::clone(&a);
            async move {
                a.lock().unwrap().push(ctx.attempt());
                Err(HandlerError::new("database unavailable"))
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish("work", &7).await.unwrap();
    app.wait_settled(1, WAIT).await.unwrap();
    assert_eq!(*attempts.lock().unwrap(), [1, 2, 3]);
    let dead = app.published_to("work.dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(&dead[0].payload[..], b"7");
    assert_eq!(dead[0].headers.get("x-original-address"), Some("work"));
    assert!(
        dead[0]
            .headers
            .get("x-error")
            .is_some_and(|e| e.contains("database unavailable"))
    );
    let st = app.stats();
    assert_eq!(
        (st.handler_errors, st.retries, st.dead_lettered, st.acked),
        (3, 2, 1, 0)
    );
    // The message itself is settled once, with ack (it now lives in the dead-letter queue).
    let settled = app.settlements_on("work");
    assert_eq!(settled.len(), 1);
    assert_eq!(settled[0].outcome, Settled::Acked);
}

#[tokio::test]
async fn permanent_errors_are_not_retried() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let mut router = Router::new();
    router.route(
        Route::new("p")
            .unwrap()
            .retries(RetryPolicy::new(5, Backoff::None)),
        move |_: u32, _: Ctx| {
            let c = Arc::clone(&c);
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err(HandlerError::permanent("bad input"))
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish("p", &1).await.unwrap();
    app.wait_settled(1, WAIT).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        app.settlements()[0].outcome,
        Settled::Rejected {
            dead_lettered: false
        }
    );
    assert_eq!(app.stats().rejected, 1);
}

#[tokio::test]
async fn nack_requeue_policy_redelivers_with_growing_attempts() {
    let mut router = Router::new();
    router.route(
        Route::new("flaky")
            .unwrap()
            .on_error(ErrorPolicy::Nack { requeue: true }),
        |_: u32, ctx: Ctx| async move {
            if ctx.attempt() < 3 {
                Err(HandlerError::new(format!("attempt {}", ctx.attempt())))
            } else {
                Ok(())
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish("flaky", &1).await.unwrap();
    app.wait_settled(3, WAIT).await.unwrap();
    let s: Vec<_> = app
        .settlements()
        .iter()
        .map(|s| (s.attempt, s.outcome))
        .collect();
    assert_eq!(
        s,
        [
            (1, Settled::Nacked { requeue: true }),
            (2, Settled::Nacked { requeue: true }),
            (3, Settled::Acked)
        ]
    );
    let st = app.stats();
    assert_eq!((st.received, st.nacked, st.acked), (3, 2, 1));
}

#[tokio::test]
async fn broker_redeliveries_count_toward_max_attempts() {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let a = Arc::clone(&attempts);
    let mut router = Router::new();
    router.route(
        Route::new("poison")
            .unwrap()
            .queue_group("g")
            .retries(RetryPolicy::new(4, Backoff::None))
            .on_error(ErrorPolicy::Nack { requeue: true }),
        move |v: String, ctx: Ctx| {
            let a = Arc::clone(&a);
            async move {
                if v == "skip" {
                    return Ok(());
                }
                a.lock().unwrap().push(ctx.attempt());
                Err(HandlerError::new("always"))
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    // A second member of the group: the round-robin gives it the second message.
    let conn = app.connection().clone();
    let mut tap = conn
        .subscribe(
            &Address::parse("poison").unwrap(),
            SubscribeOptions::new().queue_group("g"),
        )
        .await
        .unwrap();
    app.publish("poison", &"skip").await.unwrap();
    app.publish("poison", &"bad").await.unwrap();
    let m = tokio::time::timeout(WAIT, tap.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ruststream::IncomingMessage::attempt(&m), 1);
    // The tap fails it; the broker redelivers it (attempt 2) to the router's member.
    ruststream::IncomingMessage::nack(m, true).await.unwrap();
    app.wait_settled(3, WAIT).await.unwrap();
    // Broker attempt 2, then local retries 3 and 4 (max 4), then rejected — never requeued.
    assert_eq!(*attempts.lock().unwrap(), [2, 3, 4]);
    let st = app.stats();
    assert_eq!(
        (st.handler_errors, st.retries, st.rejected, st.nacked),
        (3, 2, 1, 0)
    );
    let mut settled: Vec<_> = app
        .settlements_on("poison")
        .iter()
        .map(|s| {
            (
                String::from_utf8_lossy(&s.payload).into_owned(),
                s.attempt,
                s.outcome,
            )
        })
        .collect();
    settled.sort_by_key(|s| (s.0.clone(), s.1));
    assert_eq!(
        settled,
        [
            ("\"bad\"".to_owned(), 1, Settled::Nacked { requeue: true }),
            (
                "\"bad\"".to_owned(),
                2,
                Settled::Rejected {
                    dead_lettered: false
                }
            ),
            ("\"skip\"".to_owned(), 1, Settled::Acked),
        ]
    );
}

#[tokio::test]
async fn a_panicking_handler_is_isolated_and_counted() {
    let mut router = Router::new();
    router.route(
        Route::new("jobs").unwrap(),
        |v: String, _: Ctx| async move {
            if v == "boom" {
                panic!("handler bug");
            }
            Ok(())
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish("jobs", &"ok-1").await.unwrap();
    app.publish("jobs", &"boom").await.unwrap();
    app.publish("jobs", &"ok-2").await.unwrap();
    app.wait_settled(3, WAIT).await.unwrap();
    let st = app.stats();
    assert_eq!(
        (
            st.received,
            st.acked,
            st.panics,
            st.rejected,
            st.handler_errors
        ),
        (3, 2, 1, 1, 1)
    );
    // Still serving.
    app.publish("jobs", &"ok-3").await.unwrap();
    app.wait_settled(4, WAIT).await.unwrap();
    assert_eq!(app.stats().acked, 3);
}

#[tokio::test]
async fn decode_failures_are_rejected_or_dead_lettered_by_policy() {
    let mut router = Router::new();
    router.route(Route::new("strict").unwrap(), |_: Signup, _: Ctx| async {
        Ok(())
    });
    router.route(
        Route::new("lenient")
            .unwrap()
            .on_decode_error(DecodePolicy::DeadLetter("bad-input".into())),
        |_: Signup, _: Ctx| async { Ok(()) },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish_message(OutgoingMessage::new("strict", "{oops").content_type("application/json"))
        .await
        .unwrap();
    app.publish_message(OutgoingMessage::new("lenient", "{oops"))
        .await
        .unwrap();
    app.publish_message(OutgoingMessage::new("strict", "x").content_type("application/xml"))
        .await
        .unwrap();
    app.wait_settled(3, WAIT).await.unwrap();
    let st = app.stats();
    assert_eq!(
        (st.decode_failures, st.rejected, st.dead_lettered),
        (3, 2, 1)
    );
    assert_eq!(st.handler_errors, 0);
    let dl = app.published_to("bad-input");
    assert_eq!(dl.len(), 1);
    assert_eq!(&dl[0].payload[..], b"{oops");
    assert!(dl[0].headers.get("x-error").unwrap().contains("decode"));
}

#[tokio::test]
async fn handler_timeout_counts_as_error() {
    let mut router = Router::new();
    router.route(
        Route::new("slow")
            .unwrap()
            .timeout(Duration::from_millis(20)),
        |_: u8, _: Ctx| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish("slow", &1).await.unwrap();
    app.wait_settled(1, WAIT).await.unwrap();
    let st = app.stats();
    assert_eq!((st.timeouts, st.handler_errors, st.rejected), (1, 1, 1));
}

#[tokio::test]
async fn concurrency_caps_in_flight_handlers() {
    let current = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (c, p) = (Arc::clone(&current), Arc::clone(&peak));
    let mut router = Router::new();
    router.route(
        Route::new("c").unwrap().concurrency(3),
        move |_: u32, _: Ctx| {
            let (c, p) = (Arc::clone(&c), Arc::clone(&p));
            async move {
                let now = c.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
                c.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    for i in 0..12 {
        app.publish("c", &i).await.unwrap();
    }
    app.wait_settled(12, WAIT).await.unwrap();
    assert_eq!(peak.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn queue_group_routes_share_the_work() {
    let a = Arc::new(AtomicU32::new(0));
    let b = Arc::new(AtomicU32::new(0));
    let mut router = Router::new();
    for counter in [Arc::clone(&a), Arc::clone(&b)] {
        router.route(
            Route::new("tasks").unwrap().queue_group("workers"),
            move |_: u32, _: Ctx| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            },
        );
    }
    let app = TestApp::start(router).await.unwrap();
    for i in 0..10 {
        app.publish("tasks", &i).await.unwrap();
    }
    app.wait_settled(10, WAIT).await.unwrap();
    let (a, b) = (a.load(Ordering::SeqCst), b.load(Ordering::SeqCst));
    assert_eq!(a + b, 10, "each message handled exactly once");
    assert_eq!((a, b), (5, 5), "round-robin");
}

struct Tagging {
    consumed: Arc<Mutex<Vec<(String, u32, bool)>>>,
}

impl Middleware for Tagging {
    fn consume<'a>(
        &'a self,
        info: &'a ConsumeInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let r = next.run(info).await;
            self.consumed
                .lock()
                .unwrap()
                .push((info.route.to_owned(), info.attempt, r.is_ok()));
            r
        })
    }
    fn publish(&self, message: &mut OutgoingMessage) -> ruststream::Result<()> {
        message.headers.insert("x-via", "tagging");
        Ok(())
    }
}

#[tokio::test]
async fn middleware_wraps_consume_and_publish_and_context_propagates_trace() {
    let consumed = Arc::new(Mutex::new(Vec::new()));
    let mut router = Router::new();
    router.layer(Tagging {
        consumed: Arc::clone(&consumed),
    });
    router.route(
        Route::new("in").unwrap().name("relay"),
        |v: u32, ctx: Ctx| async move {
            ctx.publish("out", "application/json", &(v + 1)).await?;
            if v == 0 {
                return Err(HandlerError::permanent("zero"));
            }
            Ok(())
        },
    );
    let app = TestApp::start(router).await.unwrap();
    app.publish_message(
        OutgoingMessage::new("in", "41")
            .header("traceparent", "00-abc-def-01")
            .correlation_id("c-1"),
    )
    .await
    .unwrap();
    app.publish("in", &0).await.unwrap();
    app.wait_settled(2, WAIT).await.unwrap();
    assert_eq!(
        *consumed.lock().unwrap(),
        [
            ("relay".to_owned(), 1, true),
            ("relay".to_owned(), 1, false)
        ]
    );
    let out = app.published_to("out");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].headers.get("x-via"), Some("tagging"));
    assert_eq!(out[0].headers.get("traceparent"), Some("00-abc-def-01"));
    assert_eq!(out[0].correlation_id.as_deref(), Some("c-1"));
    assert_eq!(app.decoded::<u32>("out").unwrap(), [42, 1]);
}

#[tokio::test]
async fn lifecycle_hooks_run_in_order() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut router: Router<MemoryConnection> = Router::new();
    for (name, which) in [("start", 0), ("after", 1), ("shutdown", 2)] {
        let log = Arc::clone(&log);
        let f = move || async move {
            log.lock().unwrap().push(name);
            Ok(())
        };
        match which {
            0 => router.on_start(f),
            1 => router.after_start(f),
            _ => router.on_shutdown(f),
        };
    }
    let app = TestApp::start(router).await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["start", "after"]);
    app.shutdown(WAIT).await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["start", "after", "shutdown"]);

    let mut failing: Router<MemoryConnection> = Router::new();
    failing.on_start(|| async { Err(Error::Config("missing setting".into())) });
    assert!(matches!(
        TestApp::start(failing).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn graceful_shutdown_drains_in_flight_within_deadline() {
    let started = Arc::new(AtomicU32::new(0));
    let s = Arc::clone(&started);
    let mut router = Router::new();
    router.route(
        Route::new("drain").unwrap().concurrency(3),
        move |_: u32, _: Ctx| {
            let s = Arc::clone(&s);
            async move {
                s.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(60)).await;
                Ok(())
            }
        },
    );
    let app = TestApp::start(router).await.unwrap();
    for i in 0..3 {
        app.publish("drain", &i).await.unwrap();
    }
    app.wait_until(WAIT, || started.load(Ordering::SeqCst) == 3)
        .await
        .unwrap();
    let conn = app.connection().clone();
    let report = app.shutdown(WAIT).await.unwrap();
    assert_eq!((report.drained, report.aborted), (3, 0));
    assert_eq!(
        conn.settlements()
            .iter()
            .filter(|s| s.outcome == Settled::Acked)
            .count(),
        3
    );
    // The broker is shut down with the router.
    assert!(matches!(
        conn.publish(OutgoingMessage::new("drain", "1")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        conn.subscribe(&Address::parse("drain").unwrap(), SubscribeOptions::new())
            .await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn shutdown_aborts_handlers_past_the_deadline() {
    let mut router = Router::new();
    router.route(Route::new("stuck").unwrap(), |_: u32, _: Ctx| async {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(())
    });
    let app = TestApp::start(router).await.unwrap();
    app.publish("stuck", &1).await.unwrap();
    app.wait_until(WAIT, || app.stats().in_flight == 1)
        .await
        .unwrap();
    let stats = app.router().stats_handle();
    let report = tokio::time::timeout(WAIT, app.shutdown(Duration::from_millis(30)))
        .await
        .expect("shutdown respects its deadline")
        .unwrap();
    assert_eq!((report.drained, report.aborted), (0, 1));
    let st = stats.snapshot();
    assert_eq!((st.received, st.in_flight, st.settled()), (1, 0, 0));
}

#[tokio::test]
async fn typed_client_subscribe_and_publish() {
    let conn = ruststream::memory::MemoryBroker::default().connect_now();
    let mut sub = ruststream::client::subscribe::<_, Signup>(
        &conn,
        &Address::parse("typed/{id}").unwrap(),
        SubscribeOptions::new(),
    )
    .await
    .unwrap();
    let mut headers = Headers::new();
    headers.insert("x-a", "1");
    ruststream::client::publish(
        &conn,
        "typed/1".into(),
        "application/json",
        &Signup { name: "Ada".into() },
        headers,
    )
    .await
    .unwrap();
    conn.publish(OutgoingMessage::new("typed/2", "not json"))
        .await
        .unwrap();
    let first = sub.next().await.unwrap().unwrap();
    assert_eq!(first.name, "Ada");
    assert_eq!(
        ruststream::IncomingMessage::headers(&first.message).get("x-a"),
        Some("1")
    );
    assert_eq!(first.ack().await.unwrap().name, "Ada");
    assert!(matches!(sub.next().await, Some(Err(Error::Codec { .. }))));
}

#[tokio::test]
async fn a_slow_route_slows_the_publisher_with_bounded_memory() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let g = Arc::clone(&gate);
    let mut router = Router::new();
    router.route(Route::new("bp").unwrap(), move |_: u32, _: Ctx| {
        let g = Arc::clone(&g);
        async move {
            g.acquire().await.map_err(HandlerError::new)?.forget();
            Ok(())
        }
    });
    let app = TestApp::start_with(router, MemoryConfig::new().buffer(2))
        .await
        .unwrap();
    let published = Arc::new(AtomicUsize::new(0));
    let (p, conn) = (Arc::clone(&published), app.connection().clone());
    let publisher = tokio::spawn(async move {
        for i in 0..10u32 {
            ruststream::client::publish(&conn, "bp".into(), "application/json", &i, Headers::new())
                .await
                .unwrap();
            p.fetch_add(1, Ordering::SeqCst);
        }
    });
    // One message in the handler, two in the buffer; the fourth publish waits.
    app.wait_until(WAIT, || published.load(Ordering::SeqCst) == 3)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(published.load(Ordering::SeqCst), 3);
    assert_eq!(app.stats().in_flight, 1);
    assert!(!publisher.is_finished());
    // Let the handler go: everything flows, nothing was dropped.
    gate.add_permits(10);
    app.wait_settled(10, WAIT).await.unwrap();
    publisher.await.unwrap();
    assert_eq!(app.stats().acked, 10);
}

#[tokio::test]
async fn a_durable_route_resumes_its_backlog_after_a_restart() {
    let conn =
        ruststream::memory::MemoryBroker::new(MemoryConfig::new().record(true)).connect_now();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let make = |seen: Arc<Mutex<Vec<u32>>>| {
        let mut router = Router::new();
        router.route(
            Route::new("orders").unwrap().durable("billing"),
            move |v: u32, _: Ctx| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(v);
                    Ok(())
                }
            },
        );
        router
    };
    let running = make(Arc::clone(&seen)).start(conn.clone()).await.unwrap();
    ruststream::client::publish(
        &conn,
        "orders".into(),
        "application/json",
        &1,
        Headers::new(),
    )
    .await
    .unwrap();
    let stats = running.stats_handle();
    while stats.snapshot().acked < 1 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Stop the router but keep the broker: the durable queue keeps collecting.
    running.stop(WAIT).await.unwrap();
    for v in [2, 3] {
        ruststream::client::publish(
            &conn,
            "orders".into(),
            "application/json",
            &v,
            Headers::new(),
        )
        .await
        .unwrap();
    }
    let running = make(Arc::clone(&seen)).start(conn.clone()).await.unwrap();
    let stats = running.stats_handle();
    tokio::time::timeout(WAIT, async {
        while stats.snapshot().acked < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    running.shutdown(WAIT).await.unwrap();
}

struct Gatekeeper;

impl Middleware for Gatekeeper {
    fn consume<'a>(
        &'a self,
        info: &'a ConsumeInfo<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        if info.headers.get("authorization").is_some() {
            next.run(info)
        } else {
            Box::pin(async { Err(HandlerError::permanent("unauthorized")) })
        }
    }
}

#[tokio::test]
async fn middleware_can_short_circuit_the_handler() {
    let calls = Arc::new(AtomicU32::new(0));
    let c = Arc::clone(&calls);
    let mut router = Router::new();
    router.layer(Gatekeeper);
    router.route(Route::new("secure").unwrap(), move |_: u32, _: Ctx| {
        let c = Arc::clone(&c);
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let app = TestApp::start(router).await.unwrap();
    app.publish("secure", &1).await.unwrap();
    app.publish_message(
        OutgoingMessage::new("secure", "2")
            .content_type("application/json")
            .header("authorization", "token"),
    )
    .await
    .unwrap();
    app.wait_settled(2, WAIT).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let st = app.stats();
    assert_eq!((st.acked, st.rejected, st.handler_errors), (1, 1, 1));
}

/// On stop, a route unsubscribes at once, also while its handler is busy (single worker and
/// several workers): what its subscription had queued goes back to the broker for the other
/// members of the queue group instead of waiting for the in-flight handler.
#[tokio::test]
async fn stopping_unsubscribes_while_a_handler_is_in_flight() {
    for concurrency in [1, 2] {
        let conn =
            ruststream::memory::MemoryBroker::new(MemoryConfig::new().buffer(16)).connect_now();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let started = Arc::new(AtomicU32::new(0));
        let (g, s) = (Arc::clone(&gate), Arc::clone(&started));
        let mut router = Router::new();
        router.route(
            Route::new("busy")
                .unwrap()
                .queue_group("workers")
                .concurrency(concurrency),
            move |_: u32, _: Ctx| {
                let (g, s) = (Arc::clone(&g), Arc::clone(&s));
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    g.acquire().await.unwrap().forget();
                    Ok(())
                }
            },
        );
        let running = router.start(conn.clone()).await.unwrap();
        for i in 0..6u32 {
            conn.publish(OutgoingMessage::new("busy", i.to_string()))
                .await
                .unwrap();
        }
        tokio::time::timeout(WAIT, async {
            while started.load(Ordering::SeqCst) < concurrency as u32 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        // Another member of the group, then stop the router while its handlers are blocked.
        let mut other = conn
            .subscribe(
                &Address::parse("busy").unwrap(),
                SubscribeOptions::new().queue_group("workers"),
            )
            .await
            .unwrap();
        let shutdown = tokio::spawn(running.shutdown(WAIT));
        // The router's queued messages reach the other member while its handlers still wait.
        let mut got = Vec::new();
        while got.len() < 6 - concurrency {
            let m = tokio::time::timeout(WAIT, other.next())
                .await
                .expect("handed over before the handlers finish")
                .unwrap()
                .unwrap();
            got.push(String::from_utf8(ruststream::IncomingMessage::payload(&m).to_vec()).unwrap());
            ruststream::IncomingMessage::ack(m).await.unwrap();
        }
        assert_eq!(started.load(Ordering::SeqCst), concurrency as u32);
        gate.add_permits(concurrency);
        let report = shutdown.await.unwrap().unwrap();
        assert_eq!(
            (report.drained, report.aborted),
            (concurrency as u64, 0),
            "concurrency {concurrency}"
        );
    }
}
