//! Settlement and lifecycle checks: ack, nack, reject / dead letter, durable resume, shutdown.

use std::collections::BTreeSet;

use super::checks::{check_payload, collect, expect_exactly};
use super::{ConnectionFactory, Ctx, show};
use crate::broker::{Connection, Publisher, SubscribeOptions};
use crate::{Error, IncomingMessage, OutgoingMessage};

pub(super) async fn ack<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let addr = cx.addr(&["ack"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    cx.publish(&conn, OutgoingMessage::new(addr.clone(), "one"))
        .await;
    let m = cx.recv("receive", &mut sub).await;
    check_payload(&cx, "receive", b"one", m.payload());
    cx.ok("ack", m.ack()).await;
    cx.quiet("an acked message is not redelivered", &mut sub)
        .await;
    cx.publish(&conn, OutgoingMessage::new(addr.clone(), "two"))
        .await;
    let m = cx.recv("receive the next message", &mut sub).await;
    check_payload(
        &cx,
        "the next message, not a redelivery",
        b"two",
        m.payload(),
    );
    cx.ok("ack", m.ack()).await;
    drop(sub);
    cx.shutdown(conn).await;
}

pub(super) async fn nack_requeue<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let addr = cx.addr(&["nack"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    cx.publish(
        &conn,
        OutgoingMessage::new(addr.clone(), "again").header("x-k", "v"),
    )
    .await;
    let mut m = cx.recv("first delivery", &mut sub).await;
    for attempt in 1..=3u32 {
        let step = format!("delivery {attempt}");
        check_payload(&cx, &step, b"again", m.payload());
        if m.attempt() != attempt {
            cx.fail(&step, format!("attempt {attempt}"), m.attempt());
        }
        if cx.caps.headers && m.headers().get("x-k") != Some("v") {
            cx.fail(
                &step,
                "headers kept on redelivery",
                format!("{:?}", m.headers()),
            );
        }
        if attempt == 3 {
            cx.ok("ack", m.ack()).await;
            break;
        }
        cx.ok(&format!("nack(requeue) {attempt}"), m.nack(true))
            .await;
        m = cx
            .recv(&format!("redelivery {}", attempt + 1), &mut sub)
            .await;
    }
    cx.quiet("acked after redelivery: no more deliveries", &mut sub)
        .await;
    drop(sub);
    cx.shutdown(conn).await;
}

pub(super) async fn nack_drop<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let addr = cx.addr(&["drop"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    cx.publish(&conn, OutgoingMessage::new(addr.clone(), "drop me"))
        .await;
    let m = cx.recv("receive", &mut sub).await;
    match cx.within("nack(false)", m.nack(false)).await {
        Ok(()) => {}
        Err(Error::Unsupported(_)) if !cx.caps.nack_requeue => {}
        Err(e) => cx.fail("nack(false)", "Ok (or Unsupported without nack)", e),
    }
    cx.quiet("nack without requeue drops", &mut sub).await;
    if !cx.caps.dead_letter {
        cx.publish(&conn, OutgoingMessage::new(addr.clone(), "reject me"))
            .await;
        let m = cx.recv("receive", &mut sub).await;
        cx.ok("reject", m.reject()).await;
        cx.quiet("reject without dead letter drops", &mut sub).await;
    }
    drop(sub);
    cx.shutdown(conn).await;
}

pub(super) async fn dead_letter<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let addr = cx.addr(&["main"]);
    let dlq = cx.addr(&["dlq"]);
    let mut dead = cx.subscribe(&conn, &dlq, SubscribeOptions::new()).await;
    let mut sub = cx
        .subscribe(
            &conn,
            &addr,
            SubscribeOptions::new().dead_letter(dlq.clone()),
        )
        .await;
    cx.publish(
        &conn,
        OutgoingMessage::new(addr.clone(), [0xde, 0xad].as_slice()).header("x-k", "v"),
    )
    .await;
    let m = cx.recv("receive", &mut sub).await;
    cx.ok("reject", m.reject()).await;
    let d = cx.recv("dead letter delivery", &mut dead).await;
    check_payload(&cx, "dead letter payload", &[0xde, 0xad], d.payload());
    if cx.caps.headers && d.headers().get("x-k") != Some("v") {
        cx.fail(
            "dead letter headers",
            "x-k: v kept",
            format!("{:?}", d.headers()),
        );
    }
    cx.ack("ack dead letter", d).await;
    cx.quiet("a rejected message is not redelivered", &mut sub)
        .await;
    drop((sub, dead));
    cx.shutdown(conn).await;
}

pub(super) async fn durable<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let addr = cx.addr(&["d"]);
    let name = cx.name("durable");
    let opts = SubscribeOptions::new().durable(name);
    let shared = cx.cfg.shared_broker;

    // The publisher stays connected throughout; the subscriber goes away and comes back
    // (a new connection when the broker is shared, a new subscription otherwise).
    let publisher = cx.connect().await;
    let conn = cx.peer(&publisher).await;
    let mut sub = cx.subscribe(&conn, &addr, opts.clone()).await;
    cx.publish(&publisher, OutgoingMessage::new(addr.clone(), "before"))
        .await;
    let m = cx.recv("receive while subscribed", &mut sub).await;
    check_payload(&cx, "receive while subscribed", b"before", m.payload());
    cx.ok("ack", m.ack()).await;
    drop(sub);
    cx.release(conn).await;

    for i in 0..3 {
        let msg = OutgoingMessage::new(addr.clone(), format!("while-away-{i}"));
        cx.publish(&publisher, msg).await;
    }
    cx.ok("flush", publisher.flush()).await;

    let conn = cx.peer(&publisher).await;
    let mut sub = cx.subscribe(&conn, &addr, opts.clone()).await;
    let want: BTreeSet<String> = (0..3).map(|i| format!("while-away-{i}")).collect();
    let got = collect(&cx, "resume", &mut sub, 3).await;
    expect_exactly(
        &cx,
        "a durable subscription resumes without loss",
        &want,
        &got,
    );
    cx.quiet("acked messages are not redelivered on resume", &mut sub)
        .await;

    if shared {
        // Shutdown flushes acks: ack and shut down at once; resuming sees nothing.
        let msg = OutgoingMessage::new(addr.clone(), "ack-then-close");
        cx.publish(&publisher, msg).await;
        let m = cx.recv("receive", &mut sub).await;
        cx.ok("ack", m.ack()).await;
        drop(sub);
        cx.shutdown(conn).await;
        let conn = cx.connect().await;
        let mut sub = cx.subscribe(&conn, &addr, opts).await;
        cx.quiet("shutdown flushed the ack: nothing redelivered", &mut sub)
            .await;
        drop(sub);
        cx.shutdown(conn).await;
    } else {
        drop(sub);
    }
    cx.shutdown(publisher).await;
}

pub(super) async fn lifecycle<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let clone = conn.clone();
    let addr = cx.addr(&["l"]);
    let template = crate::Address::parse(&addr).unwrap_or_else(|e| cx.fail("parse", "valid", e));
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    cx.shutdown(conn).await;

    match cx
        .within(
            "publish after shutdown",
            clone.publish(OutgoingMessage::new(addr.clone(), "x")),
        )
        .await
    {
        Err(Error::Closed) => {}
        other => cx.fail(
            "publish after shutdown",
            "Err(Closed)",
            format!("{other:?}"),
        ),
    }
    match cx
        .within(
            "subscribe after shutdown",
            crate::Subscriber::subscribe(&clone, &template, SubscribeOptions::new()),
        )
        .await
    {
        Err(Error::Closed) => {}
        Ok(_) => cx.fail(
            "subscribe after shutdown",
            "Err(Closed)",
            "Ok(subscription)",
        ),
        Err(e) => cx.fail(
            "subscribe after shutdown",
            "Err(Closed)",
            format!("Err({e})"),
        ),
    }
    match cx
        .within(
            "an open subscription ends",
            futures_util::StreamExt::next(&mut sub),
        )
        .await
    {
        None | Some(Err(_)) => {}
        Some(Ok(m)) => cx.fail(
            "an open subscription ends",
            "end of stream",
            format!("a message: {}", show(m.payload())),
        ),
    }
    // Shutting down a clone again: Ok or Closed, never a hang.
    match cx.within("second shutdown", clone.shutdown()).await {
        Ok(()) | Err(Error::Closed) => {}
        Err(e) => cx.fail("second shutdown", "Ok or Closed", e),
    }
}
