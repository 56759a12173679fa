//! A generated application and a generated client from the same spec
//! (`data/codegen/service.yaml`) talk through the in-memory broker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ruststream::memory::{MemoryBroker, MemoryConfig, MemoryConnection};
use ruststream::router::{Context, HandlerError, Router};
use ruststream::{Connection, SubscribeOptions};
use ruststream_e2e::codegen::service::{
    CirclePayload, Client, Handler, LookupParams, LookupRequestPayload, NotificationPayload,
    NotificationsParams, OnShapeMessage, ProfilePayload, Publisher, SquarePayload,
    SumRequestPayload, SumResultPayload, UserSignedUpHeaders, UserSignedUpParams,
    UserSignedUpPayload, register,
};

const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq)]
enum Seen {
    SignedUp(UserSignedUpPayload, UserSignedUpParams, UserSignedUpHeaders),
    Shape(OnShapeMessage),
}

#[derive(Default, Clone)]
struct App {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Handler for App {
    async fn on_user_signed_up<C: Connection>(
        &self,
        message: UserSignedUpPayload,
        headers: UserSignedUpHeaders,
        params: UserSignedUpParams,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        self.seen
            .lock()
            .map_err(HandlerError::permanent)?
            .push(Seen::SignedUp(message, params, headers));
        Ok(())
    }

    async fn sum<C: Connection>(
        &self,
        message: SumRequestPayload,
        _ctx: Context<C>,
    ) -> Result<SumResultPayload, HandlerError> {
        Ok(SumResultPayload {
            sum: message.a + message.b,
        })
    }

    async fn lookup<C: Connection>(
        &self,
        _message: LookupRequestPayload,
        params: LookupParams,
        _ctx: Context<C>,
    ) -> Result<ProfilePayload, HandlerError> {
        Ok(ProfilePayload {
            user_id: params.user_id,
        })
    }

    async fn on_shape<C: Connection>(
        &self,
        message: OnShapeMessage,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        self.seen
            .lock()
            .map_err(HandlerError::permanent)?
            .push(Seen::Shape(message));
        Ok(())
    }
}

async fn start() -> (App, MemoryConnection, ruststream::router::RunningRouter) {
    let conn = MemoryBroker::new(MemoryConfig::new()).connect_now();
    let app = App::default();
    let mut router = Router::new();
    register(&mut router, app.clone()).expect("routes register");
    let running = router.start(conn.clone()).await.expect("router starts");
    (app, conn, running)
}

async fn wait_for(app: &App, n: usize) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = app.seen.lock().expect("lock").clone();
        if seen.len() >= n || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn client_publishes_with_parameters_and_typed_headers() {
    let (app, conn, running) = start().await;
    let client = Client::new(conn);
    let params = UserSignedUpParams {
        user_id: "42".into(),
    };
    let payload = UserSignedUpPayload {
        name: "Ada".into(),
        email: "ada@example.com".into(),
    };
    let headers = UserSignedUpHeaders {
        trace_id: "123".into(),
        attempt: Some(2),
    };
    client
        .on_user_signed_up(&params, &payload, &headers)
        .await
        .expect("published");
    let seen = wait_for(&app, 1).await;
    assert_eq!(seen, [Seen::SignedUp(payload, params, headers)]);
    running.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn client_requests_and_gets_the_typed_reply() {
    let (_app, conn, running) = start().await;
    let client = Client::new(conn);
    let reply = client
        .sum(&SumRequestPayload { a: 40, b: 2 }, WAIT)
        .await
        .expect("reply");
    assert_eq!(reply, SumResultPayload { sum: 42 });
    running.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn client_requests_on_a_parameterised_address() {
    let (_app, conn, running) = start().await;
    let client = Client::new(conn);
    let params = LookupParams {
        user_id: "u1".into(),
    };
    let reply = client
        .lookup(&params, &LookupRequestPayload::default(), WAIT)
        .await
        .expect("reply");
    assert_eq!(reply.user_id, "u1");
    running.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn reply_without_reply_to_goes_to_the_specs_reply_address() {
    let (_app, conn, running) = start().await;
    let profile = ruststream::Address::parse("users/u2/profile").expect("address");
    let mut replies = ruststream::client::subscribe::<_, ProfilePayload>(
        &conn,
        &profile,
        SubscribeOptions::new(),
    )
    .await
    .expect("subscribed");
    ruststream::client::publish(
        &conn,
        "users/u2/lookup".to_owned(),
        "application/json",
        &LookupRequestPayload::default(),
        ruststream::Headers::default(),
    )
    .await
    .expect("published");
    let reply = tokio::time::timeout(WAIT, replies.next())
        .await
        .expect("in time")
        .expect("stream open")
        .expect("decoded");
    assert_eq!(reply.user_id, "u2");
    running.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn multi_message_channel_decodes_each_message() {
    let (app, conn, running) = start().await;
    let client = Client::new(conn);
    let circle = OnShapeMessage::Circle(CirclePayload { radius: 1.5 });
    let square = OnShapeMessage::Square(SquarePayload { side: 2.0 });
    client.on_shape(&circle).await.expect("circle");
    client.on_shape(&square).await.expect("square");
    let seen = wait_for(&app, 2).await;
    assert_eq!(seen, [Seen::Shape(circle), Seen::Shape(square)]);
    running.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn client_subscribes_to_what_the_app_publishes_with_parameters() {
    let conn = MemoryBroker::new(MemoryConfig::new()).connect_now();
    let client = Client::new(conn.clone());
    let mut notifications = client
        .subscribe_send_notification(SubscribeOptions::new())
        .await
        .expect("subscribed");
    // The stream owns what it needs: it outlives the client (and the parsed template).
    drop(client);
    let publisher = Publisher::new(conn);
    for user in ["7", "8"] {
        publisher
            .send_notification(
                &NotificationsParams {
                    user_id: user.into(),
                },
                &NotificationPayload {
                    text: format!("hello {user}"),
                },
            )
            .await
            .expect("published");
    }
    // Different concrete addresses: no ordering between them is promised.
    let mut got = Vec::new();
    for _ in 0..2 {
        let item = tokio::time::timeout(WAIT, notifications.next())
            .await
            .expect("in time")
            .expect("stream open")
            .expect("decoded");
        let (value, message) = item.into_parts();
        let params = NotificationsParams::parse(ruststream::IncomingMessage::address(&message))
            .expect("address matches the template");
        ruststream::IncomingMessage::ack(message)
            .await
            .expect("ack");
        got.push((params.user_id, value.text));
    }
    got.sort();
    assert_eq!(
        got,
        [
            ("7".to_owned(), "hello 7".to_owned()),
            ("8".to_owned(), "hello 8".to_owned())
        ]
    );
}

#[test]
fn parameters_render_and_parse() {
    let params = UserSignedUpParams {
        user_id: "abc".into(),
    };
    assert_eq!(params.render().as_deref(), Ok("user/abc/signedup"));
    assert_eq!(UserSignedUpParams::parse("user/abc/signedup"), Some(params));
    assert_eq!(UserSignedUpParams::parse("user/abc/other"), None);
    let bad = UserSignedUpParams {
        user_id: "a/b".into(),
    };
    assert!(bad.address().is_err(), "reserved characters are refused");
}

#[test]
fn every_corpus_document_the_model_accepts_generated_code() {
    use ruststream_e2e::corpus::{ACCEPTED, REJECTED};
    assert_eq!(
        REJECTED,
        ["spec-v3.0.0/adeo-kafka-request-reply-asyncapi.yml"],
        "only the document the official parser rejects too"
    );
    assert!(ACCEPTED.len() >= 40, "{ACCEPTED:?}");
    assert!(ACCEPTED.contains(&"spec-v2.6.0/social-media/backend/asyncapi.yaml"));
}

#[test]
fn embedded_document_is_the_normalised_json() {
    let doc: serde_json::Value =
        serde_json::from_str(ruststream_e2e::codegen::service::ASYNCAPI_JSON).expect("JSON");
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(doc["info"]["title"], "Accounts Service");
}

/// Publishes a notification from the handler through `Publisher::from_context`.
#[derive(Clone)]
struct Relay;

impl Handler for Relay {
    async fn on_user_signed_up<C: Connection>(
        &self,
        message: UserSignedUpPayload,
        _headers: UserSignedUpHeaders,
        params: UserSignedUpParams,
        ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        Publisher::from_context(&ctx)
            .send_notification(
                &NotificationsParams {
                    user_id: params.user_id,
                },
                &NotificationPayload {
                    text: format!("welcome {}", message.name),
                },
            )
            .await?;
        Ok(())
    }

    async fn sum<C: Connection>(
        &self,
        message: SumRequestPayload,
        _ctx: Context<C>,
    ) -> Result<SumResultPayload, HandlerError> {
        Ok(SumResultPayload {
            sum: message.a + message.b,
        })
    }

    async fn lookup<C: Connection>(
        &self,
        _message: LookupRequestPayload,
        params: LookupParams,
        _ctx: Context<C>,
    ) -> Result<ProfilePayload, HandlerError> {
        Ok(ProfilePayload {
            user_id: params.user_id,
        })
    }

    async fn on_shape<C: Connection>(
        &self,
        _message: OnShapeMessage,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        Ok(())
    }
}

/// Records the address of every publish the router's middleware sees.
#[derive(Clone, Default)]
struct SeenPublishes(Arc<Mutex<Vec<String>>>);

impl ruststream::router::Middleware for SeenPublishes {
    fn publish(&self, message: &mut ruststream::OutgoingMessage) -> ruststream::Result<()> {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(message.address.clone());
        }
        Ok(())
    }
}

#[tokio::test]
async fn handler_publisher_from_context_carries_correlation_id_and_trace_context() {
    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let conn = MemoryBroker::new(MemoryConfig::new()).connect_now();
    let seen = SeenPublishes::default();
    let mut router = Router::new();
    router.layer(seen.clone());
    register(&mut router, Relay).expect("routes register");
    let running = router.start(conn.clone()).await.expect("router starts");
    let mut notifications = Client::new(conn.clone())
        .subscribe_send_notification(SubscribeOptions::new())
        .await
        .expect("subscribed");

    let payload = serde_json::to_vec(&UserSignedUpPayload {
        name: "Ada".into(),
        email: "ada@example.com".into(),
    })
    .expect("encodes");
    let message = ruststream::OutgoingMessage::new("user/42/signedup", payload)
        .content_type("application/json")
        .header("traceId", "t-1")
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "vendor=1")
        .correlation_id("cid-7");
    ruststream::Publisher::publish(&conn, message)
        .await
        .expect("published");

    let item = tokio::time::timeout(WAIT, notifications.next())
        .await
        .expect("in time")
        .expect("stream open")
        .expect("decoded");
    let (value, message) = item.into_parts();
    assert_eq!(value.text, "welcome Ada");
    assert_eq!(
        ruststream::IncomingMessage::address(&message),
        "notifications/42"
    );
    assert_eq!(
        ruststream::IncomingMessage::correlation_id(&message),
        Some("cid-7")
    );
    let headers = ruststream::IncomingMessage::headers(&message);
    assert_eq!(headers.get("traceparent"), Some(TRACEPARENT));
    assert_eq!(headers.get("tracestate"), Some("vendor=1"));
    ruststream::IncomingMessage::ack(message)
        .await
        .expect("ack");
    assert_eq!(
        *seen.0.lock().expect("lock"),
        ["notifications/42".to_owned()],
        "the handler's publish went through the router's middleware"
    );
    running.shutdown(WAIT).await.expect("shutdown");
}

mod bindings {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use ruststream::memory::{MemoryBroker, MemoryConfig};
    use ruststream::router::{Context, HandlerError, Router};
    use ruststream::{Connection, Publisher as _};
    use ruststream_e2e::codegen::bindings::{BINDINGS, Client, Handler, JobPayload, register};

    #[derive(Clone, Default)]
    struct Worker(Arc<AtomicUsize>);

    impl Handler for Worker {
        async fn on_job<C: Connection>(
            &self,
            _message: JobPayload,
            _ctx: Context<C>,
        ) -> Result<(), HandlerError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn bindings_are_exposed_raw_per_operation() {
        let find = |id: &str| {
            let (_, json) = BINDINGS
                .iter()
                .find(|(op, _)| *op == id)
                .unwrap_or_else(|| panic!("no bindings for {id}"));
            serde_json::from_str::<serde_json::Value>(json).expect("valid JSON")
        };
        let on_job = find("onJob");
        assert_eq!(on_job["operation"]["nats"]["queue"], "workers");
        assert_eq!(on_job["channel"]["amqp"]["queue"]["name"], "jobs");
        assert_eq!(on_job["messages"]["job"]["kafka"]["key"]["type"], "string");
        let send_result = find("sendResult");
        assert_eq!(send_result["operation"]["mqtt"]["qos"], 1);
        assert_eq!(send_result["operation"]["mqtt"]["retain"], true);
        assert_eq!(BINDINGS.len(), 2);
    }

    #[tokio::test]
    async fn register_applies_the_nats_queue_binding_as_the_queue_group() {
        let conn = MemoryBroker::new(MemoryConfig::new()).connect_now();
        let (a, b) = (Worker::default(), Worker::default());
        let mut running = Vec::new();
        for worker in [&a, &b] {
            let mut router = Router::new();
            register(&mut router, worker.clone()).expect("routes register");
            running.push(router.start(conn.clone()).await.expect("router starts"));
        }
        let client = Client::new(conn.clone());
        for id in 0..10 {
            client.on_job(&JobPayload { id }).await.expect("published");
        }
        conn.flush().await.expect("flush");
        let total = || a.0.load(Ordering::SeqCst) + b.0.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + super::WAIT;
        while total() < 10 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // One queue group: each job is handled once, by one of the two services.
        assert_eq!(total(), 10);
        assert!(a.0.load(Ordering::SeqCst) > 0 && b.0.load(Ordering::SeqCst) > 0);
        for r in running {
            r.shutdown(super::WAIT).await.expect("shutdown");
        }
    }
}

mod content_types {
    use std::sync::{Arc, Mutex};

    use ruststream::memory::{MemoryBroker, MemoryConfig};
    use ruststream::router::{Context, HandlerError, Router};
    use ruststream::{Connection, OutgoingMessage, Publisher as _};
    use ruststream_e2e::codegen::content_types::{
        Handler, OnEventMessage, PlainPayload, VendorPayload, register,
    };

    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<OnEventMessage>>>);

    impl Handler for Events {
        async fn on_event<C: Connection>(
            &self,
            message: OnEventMessage,
            _ctx: Context<C>,
        ) -> Result<(), HandlerError> {
            self.0
                .lock()
                .map_err(HandlerError::permanent)?
                .push(message);
            Ok(())
        }
    }

    fn vendor(id: &str) -> OnEventMessage {
        OnEventMessage::Vendor(VendorPayload {
            id: Some(id.into()),
            source: None,
        })
    }

    #[test]
    fn decode_tries_the_messages_of_the_content_type_first() {
        let body = br#"{"id":"1"}"#;
        // The untagged enum alone takes the first message that fits.
        assert_eq!(
            serde_json::from_slice::<OnEventMessage>(body).expect("decodes"),
            OnEventMessage::Plain(PlainPayload {
                id: Some("1".into())
            })
        );
        assert_eq!(
            OnEventMessage::decode("application/vnd.vendor+json; charset=utf-8", body)
                .expect("decodes"),
            vendor("1")
        );
        assert_eq!(
            OnEventMessage::decode("application/json", body).expect("decodes"),
            OnEventMessage::Plain(PlainPayload {
                id: Some("1".into())
            })
        );
        assert_eq!(
            OnEventMessage::decode("text/plain", b"hello").expect("decodes"),
            OnEventMessage::Note("hello".into())
        );
        // A content type no message declares: each message in order.
        assert!(matches!(
            OnEventMessage::decode("application/cloudevents+json", body),
            Ok(OnEventMessage::Plain(_))
        ));
    }

    #[tokio::test]
    async fn register_decodes_by_content_type_first() {
        let conn = MemoryBroker::new(MemoryConfig::new()).connect_now();
        let events = Events::default();
        let mut router = Router::new();
        register(&mut router, events.clone()).expect("routes register");
        let running = router.start(conn.clone()).await.expect("router starts");
        for (ct, body) in [
            ("application/vnd.vendor+json", r#"{"id":"v"}"#),
            ("application/json", r#"{"id":"p"}"#),
            ("text/plain", "note"),
        ] {
            conn.publish(OutgoingMessage::new("events", body).content_type(ct))
                .await
                .expect("published");
        }
        let deadline = tokio::time::Instant::now() + super::WAIT;
        while events.0.lock().expect("lock").len() < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let mut got = events.0.lock().expect("lock").clone();
        got.sort_by_key(|m| format!("{m:?}"));
        assert_eq!(
            got,
            [
                OnEventMessage::Note("note".into()),
                OnEventMessage::Plain(PlainPayload {
                    id: Some("p".into())
                }),
                vendor("v"),
            ]
        );
        running.shutdown(super::WAIT).await.expect("shutdown");
    }
}
