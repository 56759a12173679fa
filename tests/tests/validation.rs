//! Schema constraints compiled into the generated code (`data/codegen/validation.yaml`,
//! `data/codegen/pydantic.yaml`): a table of valid and invalid payloads per keyword, the
//! pydantic model a FastStream service would validate with, and end to end on the memory
//! broker (invalid → dead letter with the reason, valid → handler; the publisher refuses).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ruststream::memory::MemoryConnection;
use ruststream::router::{Context, DecodePolicy, ERROR_HEADER, HandlerError, Router};
use ruststream::testing::TestApp;
use ruststream::{Connection, Error, OutgoingMessage};
use ruststream_e2e::codegen::pydantic::Order;
use ruststream_e2e::codegen::validation::{
    Handler, Payment, PaymentHeaders, PaymentsParams, Publisher, QuotePayload, QuoteRequestPayload,
    register,
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(5);

fn payment() -> Value {
    json!({
        "id": "123e4567-e89b-12d3-a456-426614174000",
        "amount": 12.5,
        "note": null
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

/// Decode and validate `value` as `T`: `Ok` or the error text.
fn check<T>(value: &Value) -> Result<T, String>
where
    T: serde::de::DeserializeOwned + ruststream::validate::Validate,
{
    let bytes = serde_json::to_vec(value).expect("json");
    ruststream::validate::decode::<T>("application/json", &bytes).map_err(|e| e.to_string())
}

#[test]
fn each_keyword_accepts_what_the_schema_allows_and_refuses_the_rest() {
    let uuid = "123e4567-e89b-12d3-a456-426614174000";
    // (what, payload, expected violation text; None = valid)
    let table: Vec<(&str, Value, Option<&str>)> = vec![
        ("minimal", payment(), None),
        (
            "format uuid",
            with(payment(), "id", json!("nope")),
            Some("/id: must be a UUID, got \"nope\""),
        ),
        (
            "exclusiveMinimum",
            with(payment(), "amount", json!(-3)),
            Some("/amount: must be > 0, got -3"),
        ),
        (
            "exclusiveMinimum at the bound",
            with(payment(), "amount", json!(0)),
            Some("/amount: must be > 0, got 0"),
        ),
        (
            "multipleOf",
            with(payment(), "amount", json!(1.005)),
            Some("/amount: must be a multiple of 0.01, got 1.005"),
        ),
        (
            "pattern",
            with(payment(), "currency", json!("eur")),
            Some("/currency: must match the pattern `^[A-Z]{3}$`, got \"eur\""),
        ),
        (
            "pattern ok",
            with(payment(), "currency", json!("USD")),
            None,
        ),
        (
            "maxLength in a nullable",
            with(payment(), "note", json!("12345678901")),
            Some("/note: must be at most 10 characters long, got 11"),
        ),
        (
            "maxLength counts characters",
            with(payment(), "note", json!("éééééééééé")),
            None,
        ),
        (
            "minimum in a nullable",
            with(payment(), "retries", json!(-1)),
            Some("/retries: must be >= 0, got -1"),
        ),
        (
            "null is allowed",
            with(payment(), "retries", json!(null)),
            None,
        ),
        (
            "maxItems",
            with(payment(), "tags", json!(["a", "b", "c", "d"])),
            Some("/tags: must have at most 3 items, got 4"),
        ),
        (
            "uniqueItems",
            with(payment(), "tags", json!(["a", "b", "a"])),
            Some("/tags: must have unique items, but items 0 and 2 are equal"),
        ),
        (
            "minLength of items",
            with(payment(), "tags", json!(["a", ""])),
            Some("/tags/1: must be at least 1 characters long, got 0"),
        ),
        (
            "integer enum",
            with(payment(), "priority", json!(4)),
            Some("/priority: must be one of [1.0, 2.0, 3.0], got 4"),
        ),
        (
            "integer enum ok",
            with(payment(), "priority", json!(2)),
            None,
        ),
        (
            "const",
            with(payment(), "kind", json!("cash")),
            Some("/kind: must be \"card\", got \"cash\""),
        ),
        (
            "minItems",
            with(payment(), "lines", json!([])),
            Some("/lines: must have at least 1 items, got 0"),
        ),
        (
            "nested struct in an array",
            with(payment(), "lines", json!([{"qty": 1}, {"qty": 0}])),
            Some("/lines/1/qty: must be >= 1, got 0"),
        ),
        (
            "alias with constraints",
            with(payment(), "lines", json!([{"qty": 1, "sku": "ab"}])),
            Some("/lines/0/sku: must be at least 3 characters long, got 2"),
        ),
        (
            "maxProperties of a map",
            with(payment(), "meta", json!({"a": 1, "b": 2, "c": 3})),
            Some("/meta: must have at most 2 properties, got 3"),
        ),
        (
            "map values",
            with(payment(), "meta", json!({"a": 10})),
            Some("/meta/a: must be <= 9, got 10"),
        ),
        (
            "allOf: email",
            with(payment(), "contact", json!({"email": "ada@localhost"})),
            Some("/contact/email: must be an email address, got \"ada@localhost\""),
        ),
        (
            "allOf: uri",
            with(payment(), "contact", json!({"website": "example.org"})),
            Some("/contact/website: must be an absolute URI, got \"example.org\""),
        ),
        (
            "allOf: ipv4",
            with(payment(), "contact", json!({"ip": "1.2.3.256"})),
            Some("/contact/ip: must be an IPv4 address, got \"1.2.3.256\""),
        ),
        (
            "allOf: ipv6",
            with(payment(), "contact", json!({"ip6": "::g"})),
            Some("/contact/ip6: must be an IPv6 address, got \"::g\""),
        ),
        (
            "allOf: date-time",
            with(payment(), "contact", json!({"at": "2024-02-30T10:00:00Z"})),
            Some("/contact/at: must be an RFC 3339 date-time, got \"2024-02-30T10:00:00Z\""),
        ),
        (
            "allOf: date",
            with(payment(), "contact", json!({"day": "2024-1-1"})),
            Some("/contact/day: must be an RFC 3339 full-date, got \"2024-1-1\""),
        ),
        (
            "allOf ok",
            with(
                payment(),
                "contact",
                json!({"email": "ada@example.org", "website": "https://example.org", "ip": "10.0.0.1", "ip6": "::1", "at": "2024-02-29T10:00:00+01:00", "day": "2024-02-29"}),
            ),
            None,
        ),
        (
            "oneOf variant",
            with(
                payment(),
                "method",
                json!({"type": "card", "last4": "12a4"}),
            ),
            Some("/method/last4: must match the pattern `^[0-9]{4}$`, got \"12a4\""),
        ),
        (
            "oneOf other variant",
            with(payment(), "method", json!({"type": "sepa", "iban": "DE89"})),
            Some("/method/iban: must be at least 15 characters long, got 4"),
        ),
        (
            "oneOf ok",
            with(
                payment(),
                "method",
                json!({"type": "sepa", "iban": "DE89370400440532013000"}),
            ),
            None,
        ),
        (
            "additionalProperties: false",
            with(payment(), "extra", json!(1)),
            Some("unknown field `extra`"),
        ),
        (
            "required nullable is required",
            json!({"id": uuid, "amount": 1}),
            Some("missing field `note`"),
        ),
        (
            "required",
            json!({"id": uuid, "note": null}),
            Some("missing field `amount`"),
        ),
    ];
    let mut failures = Vec::new();
    for (what, payload, expected) in &table {
        let got = check::<Payment>(payload);
        match (expected, &got) {
            (None, Ok(_)) => {}
            (Some(text), Err(e)) if e.contains(text) => {}
            _ => failures.push(format!("{what}: expected {expected:?}, got {got:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Every violation is reported, each with its pointer.
    let all = json!({
        "id": "x", "amount": -1, "note": "far too long a note",
        "tags": ["", ""], "lines": [{"qty": 0}]
    });
    let e = check::<Payment>(&all).expect_err("invalid");
    assert_eq!(
        e,
        "payload violates its schema: /id: must be a UUID, got \"x\"; \
         /amount: must be > 0, got -1; \
         /note: must be at most 10 characters long, got 19; \
         /tags: must have unique items, but items 0 and 1 are equal; \
         /tags/0: must be at least 1 characters long, got 0; \
         /tags/1: must be at least 1 characters long, got 0; /lines/0/qty: must be >= 1, got 0"
    );
}

#[test]
fn defaults_fill_missing_fields_and_the_struct_default() {
    let p: Payment = check(&payment()).expect("valid");
    assert_eq!(p.currency, "EUR");
    assert_eq!(p.retries, Some(3), "a nullable default is Some(default)");
    assert_eq!(
        p.status,
        ruststream_e2e::codegen::validation::PaymentStatus::New
    );
    let explicit: Payment = check(&with(payment(), "retries", json!(null))).expect("valid");
    assert_eq!(explicit.retries, None, "explicit null stays null");
    assert_eq!(Payment::default_currency(), "EUR");
    // A struct whose fields are all optional or defaulted gets a Default with the defaults.
    let line = ruststream_e2e::codegen::pydantic::Line {
        sku: "AB-1".into(),
        qty: ruststream_e2e::codegen::pydantic::Line::default_qty(),
    };
    assert_eq!(line.qty, 1);
}

#[test]
fn a_faststream_pydantic_document_validates_as_pydantic_does() {
    // Outcomes recorded from pydantic 2.13 `Order.model_validate` (see the model in
    // data/codegen/pydantic.yaml): error location, or the defaults pydantic fills.
    let base = || json!({"id": 1, "amount": 2.5, "coupon": null});
    let refused: Vec<(Value, &str)> = vec![
        (with(base(), "id", json!(0)), "/id: must be > 0, got 0"), // greater_than
        (
            with(base(), "amount", json!(-3)),
            "/amount: must be > 0, got -3",
        ), // greater_than
        (
            with(base(), "amount", json!(0.3)),
            "/amount: must be a multiple of 0.5",
        ), // multiple_of
        (json!({"id": 1, "amount": 2.5}), "missing field `coupon`"), // missing
        (
            with(base(), "coupon", json!("TOOLONG1")),
            "/coupon: must be at most 6 characters",
        ), // string_too_long
        (
            with(base(), "currency", json!("GBP")),
            "unknown variant `GBP`",
        ), // literal_error
        (
            with(
                base(),
                "lines",
                json!([{"sku": "AAA"}, {"sku": "AAA"}, {"sku": "AAA"}, {"sku": "AAA"}]),
            ),
            "/lines: must have at most 3 items",
        ), // too_long
        (
            with(base(), "lines", json!([{"sku": "ab"}])),
            "/lines/0/sku: must be at least 3 characters",
        ), // string_too_short
        (
            with(base(), "lines", json!([{"sku": "AB-1", "qty": 0}])),
            "/lines/0/qty: must be >= 1, got 0",
        ), // greater_than_equal
        (
            with(base(), "email", json!("nope")),
            "/email: must match the pattern",
        ), // string_pattern_mismatch
    ];
    for (payload, expected) in &refused {
        match check::<Order>(payload) {
            Err(e) => assert!(
                e.contains(expected),
                "{payload}: {e} does not say {expected:?}"
            ),
            Ok(o) => panic!("{payload} was accepted as {o:?}; pydantic refuses it"),
        }
    }
    // {"id":1,"amount":2.5,"currency":"EUR","note":null,"coupon":null,"priority":5,...}
    let o = check::<Order>(&base()).expect("pydantic accepts it");
    assert_eq!(o.currency, ruststream_e2e::codegen::pydantic::Currency::Eur);
    assert_eq!(
        (o.note, o.coupon, o.priority, o.email),
        (None, None, Some(5), None)
    );
    // "priority": null stays null; unknown fields are ignored (pydantic's default `extra`).
    let o = check::<Order>(&with(base(), "priority", json!(null))).expect("accepted");
    assert_eq!(o.priority, None);
    let o = check::<Order>(
        &json!({"id": 1, "amount": 3, "coupon": null, "email": "a@b.io", "extra": true}),
    )
    .expect("accepted");
    assert_eq!(o.email.as_deref(), Some("a@b.io"));
}

#[derive(Default, Clone)]
struct App {
    payments: Arc<Mutex<Vec<(Payment, PaymentsParams)>>>,
}

impl Handler for App {
    async fn on_payment<C: Connection>(
        &self,
        message: Payment,
        _headers: PaymentHeaders,
        params: PaymentsParams,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        self.payments
            .lock()
            .map_err(HandlerError::permanent)?
            .push((message, params));
        Ok(())
    }

    async fn quote<C: Connection>(
        &self,
        message: QuoteRequestPayload,
        _ctx: Context<C>,
    ) -> Result<QuotePayload, HandlerError> {
        Ok(QuotePayload {
            price: message.qty as f64 * 1.5,
        })
    }
}

async fn send(app: &TestApp, address: &str, payload: &Value, headers: &[(&str, &str)]) {
    let mut message = OutgoingMessage::new(
        address.to_owned(),
        serde_json::to_vec(payload).expect("json"),
    )
    .content_type("application/json");
    for (k, v) in headers {
        message = message.header(*k, *v);
    }
    app.publish_message(message).await.expect("published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_messages_are_dead_lettered_with_the_reason_and_valid_ones_handled() {
    let app_state = App::default();
    let mut router = Router::<MemoryConnection>::new();
    router.on_decode_error(DecodePolicy::DeadLetter("dead.payments".into()));
    register(&mut router, app_state.clone()).expect("registered");
    let app = TestApp::start(router).await.expect("starts");

    send(
        &app,
        "payments.eu",
        &with(payment(), "amount", json!(-3)),
        &[],
    )
    .await;
    send(&app, "payments.eu", &payment(), &[]).await;
    send(&app, "payments.mars", &payment(), &[]).await; // parameter not in its enum
    send(&app, "payments.us", &payment(), &[("x-tenant", "a")]).await; // header too short
    send(
        &app,
        "payments.us",
        &with(payment(), "currency", json!("USD")),
        &[("x-tenant", "acme")],
    )
    .await;
    app.wait_settled(5, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}; stats {:?}", app.stats()));

    let handled = app_state.payments.lock().expect("lock").clone();
    assert_eq!(
        handled.len(),
        2,
        "only the valid ones reach the handler: {handled:?}"
    );
    assert_eq!(handled[0].1.region, "eu");
    assert_eq!(handled[1].0.currency, "USD");

    let stats = app.stats();
    assert_eq!(stats.validation_failures, 3, "{stats:?}");
    assert_eq!(stats.decode_failures, 0, "{stats:?}");
    assert_eq!(stats.dead_lettered, 3, "{stats:?}");
    assert_eq!(stats.handler_errors, 0, "{stats:?}");

    let dead = app.published_to("dead.payments");
    let reasons: Vec<&str> = dead
        .iter()
        .filter_map(|m| m.headers.get(ERROR_HEADER))
        .collect();
    assert_eq!(
        reasons,
        [
            "invalid message: payload violates its schema: /amount: must be > 0, got -3",
            "invalid message: parameters violates its schema: /region: must be one of [\"eu\", \"us\"], got \"mars\"",
            "invalid message: headers violates its schema: /x-tenant: must be at least 2 characters long, got 1",
        ]
    );
    // The dead letter is the message unchanged.
    let original: Value = serde_json::from_slice(&dead[0].payload).expect("json");
    assert_eq!(original["amount"], json!(-3));

    // A request that violates its schema gets no reply; a valid one does.
    let reply: QuotePayload = app
        .request("quotes", &json!({"qty": 2}), WAIT)
        .await
        .expect("reply");
    assert_eq!(reply.price, 3.0);
    let refused = app
        .request::<_, QuotePayload>("quotes", &json!({"qty": 0}), Duration::from_millis(300))
        .await;
    assert!(refused.is_err(), "{refused:?}");

    app.shutdown(WAIT).await.expect("shutdown");
}

#[tokio::test]
async fn the_publisher_refuses_an_invalid_message_before_the_broker_sees_it() {
    let app = TestApp::start(Router::<MemoryConnection>::new())
        .await
        .expect("starts");
    let publisher = Publisher::new(app.connection().clone());
    let params = PaymentsParams {
        region: "eu".into(),
    };
    let headers = PaymentHeaders::default();
    let mut p: Payment = serde_json::from_value(payment()).expect("payment");
    p.amount = -3.0;
    let err = publisher
        .send_payment(&params, &p, &headers)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, Error::Validation { part: "payload", violations } if violations.len() == 1),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "payload violates its schema: /amount: must be > 0, got -3"
    );
    let bad_params = PaymentsParams {
        region: "mars".into(),
    };
    p.amount = 3.0;
    assert!(
        publisher
            .send_payment(&bad_params, &p, &headers)
            .await
            .is_err()
    );
    assert!(app.published().is_empty(), "nothing reached the broker");
    publisher
        .send_payment(&params, &p, &headers)
        .await
        .expect("valid is sent");
    assert_eq!(app.published_to("payments.eu").len(), 1);
}

#[test]
fn validation_can_be_turned_off_per_config_and_per_message() {
    use ruststream_e2e::sides::{validation_off, validation_skipped};
    // Off: the types have no `Validate` (this would not compile:
    // `ruststream::validate::check(&validation_off::Payment { .. })`), an absent required
    // nullable field decodes as `None`, and an invalid amount decodes.
    let p: validation_off::Payment = serde_json::from_value(json!({
        "id": "x", "amount": -3
    }))
    .expect("decodes without validation");
    assert_eq!(p.note, None);
    // Skipped for the `payment` message: its type still validates when asked.
    let p: validation_skipped::Payment =
        serde_json::from_value(with(payment(), "amount", json!(-3))).expect("decodes");
    assert!(ruststream::validate::check(&p).is_err());
}

/// `skip_validation("payment")`: the route hands even an invalid payment to the handler.
#[derive(Default, Clone)]
struct Lenient {
    amounts: Arc<Mutex<Vec<f64>>>,
}

impl ruststream_e2e::sides::validation_skipped::Handler for Lenient {
    async fn on_payment<C: Connection>(
        &self,
        message: ruststream_e2e::sides::validation_skipped::Payment,
        _headers: ruststream_e2e::sides::validation_skipped::PaymentHeaders,
        _params: ruststream_e2e::sides::validation_skipped::PaymentsParams,
        _ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        self.amounts
            .lock()
            .map_err(HandlerError::permanent)?
            .push(message.amount);
        Ok(())
    }

    async fn quote<C: Connection>(
        &self,
        message: ruststream_e2e::sides::validation_skipped::QuoteRequestPayload,
        _ctx: Context<C>,
    ) -> Result<ruststream_e2e::sides::validation_skipped::QuotePayload, HandlerError> {
        Ok(ruststream_e2e::sides::validation_skipped::QuotePayload {
            price: message.qty as f64,
        })
    }
}

#[tokio::test]
async fn a_message_skipped_by_the_config_reaches_the_handler_unvalidated() {
    let lenient = Lenient::default();
    let mut router = Router::<MemoryConnection>::new();
    ruststream_e2e::sides::validation_skipped::register(&mut router, lenient.clone())
        .expect("registered");
    let app = TestApp::start(router).await.expect("starts");
    send(
        &app,
        "payments.eu",
        &with(payment(), "amount", json!(-3)),
        &[],
    )
    .await;
    app.wait_settled(1, WAIT).await.expect("settled");
    assert_eq!(*lenient.amounts.lock().expect("lock"), [-3.0]);
    assert_eq!(app.stats().validation_failures, 0);
    // The other operations of the document are still validated.
    let refused = app
        .request::<_, QuotePayload>("quotes", &json!({"qty": 0}), Duration::from_millis(300))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    app.shutdown(WAIT).await.expect("shutdown");
}
