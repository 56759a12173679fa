//! Checks of the optional capability traits (they need extra trait bounds).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{ConnectionFactory, Ctx, show};
use crate::broker::SubscribeOptions;
use crate::capability::{
    BatchSubscriber, DelayedRedelivery, RequestReply, Transaction, TransactionalPublisher,
};
use crate::{Address, Error, IncomingMessage, OutgoingMessage};

fn template<F: ConnectionFactory>(cx: &Ctx<'_, F>, addr: &str) -> Address {
    Address::parse(addr).unwrap_or_else(|e| cx.fail("parse address", "a valid template", e))
}

pub(super) async fn request_reply<F>(cx: Ctx<'_, F>)
where
    F: ConnectionFactory,
    F::Conn: RequestReply,
{
    let responder = cx.connect().await;
    let requester = cx.peer(&responder).await;
    let addr = cx.addr(&["svc"]);
    let silent = cx.addr(&["silent"]);
    let mut requests = cx
        .subscribe(&responder, &addr, SubscribeOptions::new())
        .await;
    let mut ignored = cx
        .subscribe(&responder, &silent, SubscribeOptions::new())
        .await;
    let short = Duration::from_millis(300);

    // One request, one reply.
    let serve_one = async {
        let m = cx
            .recv("responder receives the request", &mut requests)
            .await;
        let reply_to = match m.reply_to() {
            Some(r) => r.to_owned(),
            None => cx.fail("request carries reply_to", "Some(reply address)", "None"),
        };
        let mut reply = OutgoingMessage::new(reply_to, [b"re:".as_slice(), m.payload()].concat())
            .header("x-reply", "yes");
        if let Some(c) = m.correlation_id() {
            reply = reply.correlation_id(c.to_owned());
        }
        cx.publish(&responder, reply).await;
        cx.ack("ack request", m).await;
    };
    let ask = cx.within(
        "request",
        requester.request(OutgoingMessage::new(addr.clone(), "ping"), cx.cfg.timeout),
    );
    // A request that fails before the responder saw it is the failure to report.
    let reply = {
        let mut serve_one = std::pin::pin!(serve_one);
        let mut ask = std::pin::pin!(ask);
        tokio::select! {
        reply = &mut ask => {
            if let Err(e) = &reply {
                cx.fail("request", "the reply", format!("error: {e}"));
            }
            serve_one.await;
            reply
        }
        () = &mut serve_one => ask.await,
        }
    };
    match reply {
        Ok(r) => {
            if r.payload.as_ref() != b"re:ping" {
                cx.fail("reply payload", "\"re:ping\"", show(&r.payload));
            }
            if cx.caps.headers && r.headers.get("x-reply") != Some("yes") {
                cx.fail("reply headers", "x-reply: yes", format!("{:?}", r.headers));
            }
        }
        Err(e) => cx.fail("request", "the reply", format!("error: {e}")),
    }

    // Two concurrent requests answered in reverse order each get their own reply.
    let serve_reversed = async {
        let first = cx.recv("receive request 1", &mut requests).await;
        let second = cx.recv("receive request 2", &mut requests).await;
        for m in [second, first] {
            let reply_to = m.reply_to().map(str::to_owned).unwrap_or_default();
            let mut reply =
                OutgoingMessage::new(reply_to, [b"re:".as_slice(), m.payload()].concat());
            if let Some(c) = m.correlation_id() {
                reply = reply.correlation_id(c.to_owned());
            }
            cx.publish(&responder, reply).await;
            cx.ack("ack request", m).await;
        }
    };
    let asks = futures_util::future::join(
        requester.request(OutgoingMessage::new(addr.clone(), "a"), cx.cfg.timeout),
        requester.request(OutgoingMessage::new(addr.clone(), "b"), cx.cfg.timeout),
    );
    let ((), (ra, rb)) = cx
        .within(
            "two concurrent requests",
            futures_util::future::join(serve_reversed, asks),
        )
        .await;
    for (want, got) in [(b"re:a".as_slice(), ra), (b"re:b".as_slice(), rb)] {
        match got {
            Ok(r) if r.payload.as_ref() == want => {}
            Ok(r) => cx.fail(
                "each request gets its own reply",
                show(want),
                show(&r.payload),
            ),
            Err(e) => cx.fail(
                "each request gets its own reply",
                show(want),
                format!("error: {e}"),
            ),
        }
    }

    // A request nobody answers times out, no sooner than asked and not much later.
    let start = Instant::now();
    let res = cx
        .within(
            "unanswered request",
            requester.request(OutgoingMessage::new(silent.clone(), "?"), short),
        )
        .await;
    let took = start.elapsed();
    match res {
        Err(Error::Timeout(_)) if took >= short => {}
        Err(Error::Timeout(_)) => cx.fail(
            "unanswered request",
            format!("a timeout after ≥ {short:?}"),
            format!("a timeout after {took:?}"),
        ),
        other => cx.fail("unanswered request", "Err(Timeout)", format!("{other:?}")),
    }
    let m = cx
        .recv("the silent responder saw the request", &mut ignored)
        .await;
    cx.ack("ack", m).await;
    // A request to an address without any subscriber fails (timeout or no-responders error).
    let res = cx
        .within(
            "request without responders",
            requester.request(OutgoingMessage::new(cx.addr(&["nobody"]), "?"), short),
        )
        .await;
    if let Ok(r) = res {
        cx.fail(
            "request without responders",
            "an error",
            format!("a reply: {}", show(&r.payload)),
        );
    }
    drop((requests, ignored));
    cx.release(requester).await;
    cx.shutdown(responder).await;
}

pub(super) async fn batch<F>(cx: Ctx<'_, F>)
where
    F: ConnectionFactory,
    F::Conn: BatchSubscriber,
{
    let conn = cx.connect().await;
    let addr = cx.addr(&["b"]);
    let max = 10;
    let max_wait = Duration::from_millis(200);
    let mut batches = cx
        .ok(
            "subscribe_batch",
            conn.subscribe_batch(
                &template(&cx, &addr),
                SubscribeOptions::new(),
                max,
                max_wait,
            ),
        )
        .await;
    let n = 25;
    for i in 0..n {
        cx.publish(&conn, OutgoingMessage::new(addr.clone(), format!("b{i}")))
            .await;
    }
    let mut got = Vec::new();
    while got.len() < n {
        let batch = match cx.within("receive a batch", batches.next()).await {
            Some(Ok(b)) => b,
            Some(Err(e)) => cx.fail("receive a batch", "a batch", format!("error: {e}")),
            None => cx.fail("receive a batch", "a batch", "the stream ended"),
        };
        if batch.is_empty() || batch.len() > max {
            cx.fail("batch size", format!("1..={max} messages"), batch.len());
        }
        for m in batch {
            got.push(String::from_utf8_lossy(m.payload()).into_owned());
            cx.ack("ack", m).await;
        }
    }
    let want: BTreeSet<String> = (0..n).map(|i| format!("b{i}")).collect();
    let set: BTreeSet<String> = got.iter().cloned().collect();
    if set != want || got.len() != n {
        cx.fail(
            "batches deliver everything once",
            format!("{want:?}"),
            format!("{got:?}"),
        );
    }
    // A partial batch is delivered after max_wait, not held for `max` messages.
    cx.publish(&conn, OutgoingMessage::new(addr.clone(), "lonely"))
        .await;
    let start = Instant::now();
    match cx.within("partial batch", batches.next()).await {
        Some(Ok(b)) if b.len() == 1 => {
            for m in b {
                cx.ack("ack", m).await;
            }
        }
        Some(Ok(b)) => cx.fail("partial batch", "1 message", b.len()),
        other => cx.fail(
            "partial batch",
            "a batch",
            format!("{:?}", other.map(|r| r.map(|b| b.len()))),
        ),
    }
    if start.elapsed() > max_wait + cx.cfg.timeout / 2 {
        cx.fail(
            "partial batch",
            format!("delivery about {max_wait:?} after publish"),
            format!("{:?}", start.elapsed()),
        );
    }
    drop(batches);
    cx.shutdown(conn).await;
}

pub(super) async fn transactions<F>(cx: Ctx<'_, F>)
where
    F: ConnectionFactory,
    F::Conn: TransactionalPublisher,
{
    let conn = cx.connect().await;
    let addr = cx.addr(&["t"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;

    let mut tx = cx.ok("begin", conn.begin()).await;
    for i in 0..3 {
        cx.ok(
            "stage",
            tx.publish(OutgoingMessage::new(addr.clone(), format!("t{i}"))),
        )
        .await;
    }
    cx.quiet("nothing visible before commit", &mut sub).await;
    cx.ok("commit", tx.commit()).await;
    let mut got = BTreeSet::new();
    for _ in 0..3 {
        let m = cx.recv("committed messages arrive", &mut sub).await;
        got.insert(String::from_utf8_lossy(m.payload()).into_owned());
        cx.ack("ack", m).await;
    }
    let want: BTreeSet<String> = (0..3).map(|i| format!("t{i}")).collect();
    if got != want {
        cx.fail("commit", format!("{want:?}"), format!("{got:?}"));
    }

    let mut tx = cx.ok("begin", conn.begin()).await;
    for i in 0..2 {
        cx.ok(
            "stage",
            tx.publish(OutgoingMessage::new(addr.clone(), format!("aborted{i}"))),
        )
        .await;
    }
    cx.ok("abort", tx.abort()).await;
    cx.quiet("aborted messages never arrive", &mut sub).await;
    drop(sub);
    cx.shutdown(conn).await;
}

pub(super) async fn delayed_redelivery<F>(cx: Ctx<'_, F>)
where
    F: ConnectionFactory,
    <F::Conn as crate::Subscriber>::Message: DelayedRedelivery,
{
    let conn = cx.connect().await;
    let addr = cx.addr(&["dl"]);
    let delay = Duration::from_millis(500);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    cx.publish(&conn, OutgoingMessage::new(addr.clone(), "later"))
        .await;
    let m = cx.recv("first delivery", &mut sub).await;
    let start = Instant::now();
    cx.ok("nack_with_delay", m.nack_with_delay(delay)).await;
    let m = cx.recv("redelivery", &mut sub).await;
    let took = start.elapsed();
    if took < delay {
        cx.fail(
            "redelivery no sooner than asked",
            format!("≥ {delay:?}"),
            format!("{took:?}"),
        );
    }
    if m.payload() != b"later" {
        cx.fail("redelivery", "the same message", show(m.payload()));
    }
    if m.attempt() != 2 {
        cx.fail("redelivery attempt", 2, m.attempt());
    }
    cx.ok("ack", m.ack()).await;
    cx.quiet("no more deliveries", &mut sub).await;
    drop(sub);
    cx.shutdown(conn).await;
}
