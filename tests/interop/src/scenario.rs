//! The two scenarios of `specs/interop.yaml`, generic over the broker, so a broker's test file
//! is a connection, a peer script and two calls:
//!
//! - [`faststream_calls_rust`]: the generated RustStream service implements the document; the
//!   FastStream peer (role `client`) publishes an order (with a header and a correlation id) and
//!   checks what the Rust handler received, receives the shipment the handler publishes (the
//!   correlation id carried over), and requests a quote that the Rust reply operation answers.
//! - [`rust_calls_faststream`]: the FastStream peer (role `service`) implements the document;
//!   the generated `Client` publishes an order (typed headers), requests a quote that the
//!   FastStream handler answers, and receives the shipment the peer publishes.
//!
//! The peer script is started by the caller with `--run <run> --role client|service` and must
//! implement the protocol of `python/peer.py` with the subscribers its docstring lists (see
//! `python/nats_peer.py`). Every check panics with what differed.

use std::time::Duration;

use futures_util::StreamExt;
use ruststream::capability::RequestReply;
use ruststream::router::{Context, HandlerError, Router};
use ruststream::{Connection, IncomingMessage, SubscribeOptions};
use serde_json::json;
use tokio::sync::mpsc;

use crate::Peer;
use crate::spec::interop as spec;

/// How long a message may take to cross between the stacks.
pub const DELIVERY: Duration = Duration::from_secs(15);

/// The price of one item (as `python/service.py`'s `UNIT_PRICE`).
pub const UNIT_PRICE: f64 = 2.5;

/// What the Rust `on_order` handler saw.
#[derive(Debug)]
struct SeenOrder {
    order: spec::OrderPayload,
    tenant: String,
    run: String,
    correlation_id: Option<String>,
}

/// The Rust implementation of the document, for one run: messages of other runs (its routes
/// subscribe to every `{run}`) are rejected, so it never answers another test's request.
struct RustService {
    run: String,
    orders: mpsc::UnboundedSender<SeenOrder>,
    quotes: mpsc::UnboundedSender<Option<String>>,
}

impl spec::Handler for RustService {
    async fn on_order<C: Connection>(
        &self,
        message: spec::OrderPayload,
        headers: spec::OrderHeaders,
        params: spec::OrdersParams,
        ctx: Context<C>,
    ) -> Result<(), HandlerError> {
        if params.run != self.run {
            return Err(HandlerError::permanent("another run's order"));
        }
        let shipment = spec::ShipmentPayload {
            order_id: message.id,
            carrier: "rust".to_owned(),
        };
        let to = spec::ShipmentsParams {
            run: params.run.clone(),
        };
        let _ = self.orders.send(SeenOrder {
            order: message,
            tenant: headers.x_tenant,
            run: params.run,
            correlation_id: ctx.correlation_id().map(str::to_owned),
        });
        spec::Publisher::from_context(&ctx)
            .send_shipment(&to, &shipment)
            .await?;
        Ok(())
    }

    async fn on_quote<C: Connection>(
        &self,
        message: spec::QuoteRequestPayload,
        params: spec::QuotesParams,
        ctx: Context<C>,
    ) -> Result<spec::QuotePayload, HandlerError> {
        if params.run != self.run {
            return Err(HandlerError::permanent("another run's quote request"));
        }
        let _ = self.quotes.send(ctx.correlation_id().map(str::to_owned));
        Ok(spec::QuotePayload {
            total: UNIT_PRICE * message.qty as f64,
            item: message.item,
            currency: "EUR".to_owned(),
        })
    }
}

async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, what: &str) -> T {
    match tokio::time::timeout(DELIVERY, rx.recv()).await {
        Ok(Some(v)) => v,
        _ => panic!("the Rust service received no {what} within {DELIVERY:?}"),
    }
}

/// Events and request/reply with FastStream as the client of the generated Rust service.
///
/// `conn` is the Rust side's connection (the router runs on a clone); `peer` runs the broker's
/// script with `--run <run> --role client`.
///
/// # Panics
/// When any message does not arrive, or arrives different from what was sent.
pub async fn faststream_calls_rust<C: Connection>(conn: C, peer: &mut Peer, run: &str) {
    let (orders_tx, mut orders) = mpsc::unbounded_channel();
    let (quotes_tx, mut quotes) = mpsc::unbounded_channel();
    let mut router = Router::new();
    spec::register(
        &mut router,
        RustService {
            run: run.to_owned(),
            orders: orders_tx,
            quotes: quotes_tx,
        },
    )
    .expect("routes");
    let running = router.start(conn).await.expect("router starts");

    // FastStream → Rust event: typed payload, typed header, correlation id.
    let orders_to = format!("interop.{run}.orders");
    peer.call(json!({
        "op": "publish", "to": orders_to,
        "body": {"id": 7, "item": "bolt", "qty": 3},
        "headers": {"x-tenant": "acme"},
        "correlation_id": "order-corr-7",
    }))
    .await;
    let seen = recv(&mut orders, "order").await;
    assert_eq!(
        (seen.order.id, seen.order.item.as_str(), seen.order.qty),
        (7, "bolt", 3),
        "order payload"
    );
    assert_eq!(seen.tenant, "acme", "x-tenant header");
    assert_eq!(seen.run, run, "address parameter");
    assert_eq!(
        seen.correlation_id.as_deref(),
        Some("order-corr-7"),
        "the order's correlation id as the Rust handler sees it"
    );

    // Rust → FastStream event (published by the handler, correlation id carried over).
    let shipment = peer
        .wait_for("the shipment", DELIVERY, |e| {
            e["event"] == "received" && e["channel"] == "shipments"
        })
        .await;
    assert_eq!(
        shipment["body"],
        json!({"orderId": 7, "carrier": "rust"}),
        "{shipment}"
    );
    assert_eq!(shipment["correlation_id"], "order-corr-7", "{shipment}");
    assert_eq!(shipment["content_type"], "application/json", "{shipment}");

    // FastStream request → Rust reply operation.
    let reply = peer
        .call(json!({
            "op": "request", "to": format!("interop.{run}.quotes"),
            "body": {"item": "nut", "qty": 4},
            "correlation_id": "quote-corr-1",
        }))
        .await;
    assert_eq!(
        reply["body"],
        json!({"item": "nut", "total": 10.0, "currency": "EUR"}),
        "{reply}"
    );
    assert_eq!(reply["correlation_id"], "quote-corr-1", "{reply}");
    assert_eq!(reply["content_type"], "application/json", "{reply}");
    let quote_corr = recv(&mut quotes, "quote request").await;
    assert_eq!(quote_corr.as_deref(), Some("quote-corr-1"));

    running
        .shutdown(Duration::from_secs(5))
        .await
        .expect("router shuts down");
}

/// Events and request/reply with the generated Rust `Client` calling the FastStream service.
///
/// `peer` runs the broker's script with `--run <run> --role service`.
///
/// # Panics
/// When any message does not arrive, or arrives different from what was sent.
pub async fn rust_calls_faststream<C: Connection + RequestReply>(
    conn: C,
    peer: &mut Peer,
    run: &str,
) {
    let client = spec::Client::new(conn);

    // Rust → FastStream event with a typed header.
    client
        .on_order(
            &spec::OrdersParams {
                run: run.to_owned(),
            },
            &spec::OrderPayload {
                id: 11,
                item: "gear".to_owned(),
                qty: 2,
            },
            &spec::OrderHeaders {
                x_tenant: "globex".to_owned(),
            },
        )
        .await
        .expect("order published");
    let order = peer
        .wait_for("the order", DELIVERY, |e| {
            e["event"] == "received" && e["channel"] == "orders"
        })
        .await;
    assert_eq!(
        order["body"],
        json!({"id": 11, "item": "gear", "qty": 2}),
        "{order}"
    );
    assert_eq!(order["headers"]["x-tenant"], "globex", "{order}");
    assert_eq!(order["content_type"], "application/json", "{order}");

    // Rust request → FastStream handler's return value.
    let quote = client
        .on_quote(
            &spec::QuotesParams {
                run: run.to_owned(),
            },
            &spec::QuoteRequestPayload {
                item: "cog".to_owned(),
                qty: 6,
            },
            DELIVERY,
        )
        .await
        .expect("quote answered by FastStream");
    assert_eq!(
        (quote.item.as_str(), quote.total, quote.currency.as_str()),
        ("cog", 15.0, "EUR")
    );
    let request = peer
        .wait_for("the quote request", DELIVERY, |e| {
            e["event"] == "received" && e["channel"] == "quotes"
        })
        .await;
    assert!(
        request["correlation_id"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "the request's correlation id as FastStream sees it: {request}"
    );
    assert!(
        request["reply_to"].as_str().is_some_and(|r| !r.is_empty()),
        "the request's reply address as FastStream sees it: {request}"
    );

    // FastStream → Rust event, through the generated client's subscription.
    let mut shipments = client
        .subscribe_send_shipment(SubscribeOptions::new())
        .await
        .expect("subscribed to shipments");
    peer.call(json!({
        "op": "publish", "to": format!("interop.{run}.shipments"),
        "body": {"orderId": 11, "carrier": "faststream"},
        "headers": {"x-trace": "t-1"},
        "correlation_id": "ship-corr-11",
    }))
    .await;
    // The subscription covers every run's shipments: skip other tests' (parallel runs).
    let ours = format!("interop.{run}.shipments");
    let deadline = tokio::time::Instant::now() + DELIVERY;
    let shipment = loop {
        match tokio::time::timeout_at(deadline, shipments.next()).await {
            Ok(Some(Ok(s))) if s.message.address() == ours => break s,
            Ok(Some(Ok(other))) => drop(other.ack().await),
            other => panic!(
                "no shipment from FastStream: {:?}",
                other.map(|o| o.map(|r| r.err()))
            ),
        }
    };
    assert_eq!(
        (shipment.value.order_id, shipment.value.carrier.as_str()),
        (11, "faststream")
    );
    assert_eq!(shipment.message.correlation_id(), Some("ship-corr-11"));
    assert_eq!(shipment.message.headers().get("x-trace"), Some("t-1"));
    assert_eq!(
        shipment.message.address(),
        format!("interop.{run}.shipments")
    );
}
