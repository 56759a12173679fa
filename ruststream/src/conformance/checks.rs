//! The core checks: every broker runs these (each gated on its declared capabilities).

use std::collections::BTreeSet;

use bytes::Bytes;
use futures_util::future::join_all;

use super::{ConnectionFactory, Ctx, Report, show};
use crate::broker::{Publisher, SubscribeOptions};
use crate::{Error, Headers, IncomingMessage, OutgoingMessage};

use super::order::{ordering, ordering_per_key, queue_groups};
use super::settle::{ack, dead_letter, durable, lifecycle, nack_drop, nack_requeue};

pub(super) async fn run_core<F: ConnectionFactory>(cx: &Ctx<'_, F>) -> Report {
    let c = cx.caps;
    let mut r = Report::default();
    r.merge(cx.gate("round_trip", true, "", round_trip).await);
    r.merge(
        cx.gate(
            "metadata_round_trip",
            c.headers,
            "headers",
            metadata_round_trip,
        )
        .await,
    );
    r.merge(cx.gate("topic_isolation", true, "", topic_isolation).await);
    r.merge(
        cx.gate("wildcards", c.wildcards, "wildcards", wildcards)
            .await,
    );
    r.merge(cx.gate("concurrency", true, "", concurrency).await);
    r.merge(cx.gate("flush_and_close", true, "", flush_and_close).await);
    r.merge(cx.gate("ack", c.ack, "ack", ack).await);
    r.merge(
        cx.gate("nack_requeue", c.nack_requeue, "nack_requeue", nack_requeue)
            .await,
    );
    r.merge(cx.gate("nack_drop", true, "", nack_drop).await);
    r.merge(
        cx.gate("dead_letter", c.dead_letter, "dead_letter", dead_letter)
            .await,
    );
    r.merge(cx.gate("ordering", c.ordered, "ordered", ordering).await);
    r.merge(
        cx.gate(
            "ordering_per_key",
            c.ordered_per_key,
            "ordered_per_key",
            ordering_per_key,
        )
        .await,
    );
    r.merge(
        cx.gate("queue_groups", c.queue_groups, "queue_groups", queue_groups)
            .await,
    );
    r.merge(cx.gate("durable", c.durable, "durable", durable).await);
    r.merge(cx.gate("lifecycle", true, "", lifecycle).await);
    r
}

/// Headers that exercise byte-exactness: empty value, duplicates, case, spaces, many entries.
fn tricky_headers() -> Headers {
    let mut h = Headers::new();
    h.append("content-type", "application/json");
    h.append("x-empty", "");
    h.append("x-dup", "first");
    h.append("x-dup", "second");
    h.append("X-Mixed-Case", "MiXeD vAlUe");
    h.append("x-spaces", "a b  c");
    h.append("x-punct", "k=v; q=\"1\", t=2");
    for i in 0..32 {
        h.append(format!("x-many-{i:02}"), format!("value-{i}"));
    }
    h
}

/// Every name sent arrives with exactly the same values in the same order.
fn check_headers<F: ConnectionFactory>(cx: &Ctx<'_, F>, step: &str, sent: &Headers, got: &Headers) {
    let names: BTreeSet<&str> = sent.iter().map(|(k, _)| k).collect();
    for name in names {
        let want: Vec<&str> = sent.get_all(name).collect();
        let have: Vec<&str> = got.get_all(name).collect();
        if want != have {
            cx.fail(
                step,
                format!("header {name:?} = {want:?}"),
                format!("{have:?} (all received headers: {got:?})"),
            );
        }
    }
}

pub(super) fn check_payload<F: ConnectionFactory>(
    cx: &Ctx<'_, F>,
    step: &str,
    want: &[u8],
    got: &[u8],
) {
    if want != got {
        cx.fail(
            step,
            format!("payload {}", show(want)),
            format!("payload {}", show(got)),
        );
    }
}

async fn round_trip<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let addr = cx.addr(&["rt"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    let large: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let cases: [(&str, Bytes, bool); 4] = [
        ("empty payload", Bytes::new(), false),
        (
            "text payload",
            Bytes::from_static(b"{\"hello\":\"world\"}"),
            false,
        ),
        (
            "non-UTF-8 payload",
            Bytes::from_static(&[0xff, 0xfe, 0x00, 0x80, b'\r', b'\n', 0xc3]),
            true,
        ),
        ("64 KiB payload", Bytes::from(large), false),
    ];
    for (what, payload, may_refuse) in cases {
        let mut msg = OutgoingMessage::new(addr.clone(), payload.clone());
        if cx.caps.headers {
            msg = msg.with_headers(tricky_headers());
        }
        let sent_headers = msg.headers.clone();
        let step = format!("publish {what}");
        match cx.within(&step, conn.publish(msg)).await {
            Ok(()) => {}
            Err(Error::Unsupported(_) | Error::Codec { .. }) if may_refuse => continue,
            Err(e) => cx.fail(&step, "Ok (or a clear refusal)", format!("error: {e}")),
        }
        let step = format!("receive {what}");
        let m = cx.recv(&step, &mut sub).await;
        check_payload(&cx, &step, &payload, m.payload());
        if m.address() != addr {
            cx.fail(
                &step,
                format!("address {addr:?}"),
                format!("{:?}", m.address()),
            );
        }
        if m.attempt() != 1 {
            cx.fail(&step, "attempt 1", m.attempt());
        }
        if cx.caps.headers {
            check_headers(&cx, &step, &sent_headers, m.headers());
        }
        cx.ack(&format!("ack {what}"), m).await;
    }
    // Non-ASCII header values: carried exactly, or refused with `InvalidHeader`.
    if cx.caps.headers {
        let msg = OutgoingMessage::new(addr.clone(), "unicode").header("x-unicode", "héllo ✓ 日本");
        let sent = msg.headers.clone();
        match cx.within("publish unicode header", conn.publish(msg)).await {
            Ok(()) => {
                let m = cx.recv("receive unicode header", &mut sub).await;
                check_headers(&cx, "receive unicode header", &sent, m.headers());
                cx.ack("ack unicode header", m).await;
            }
            Err(Error::InvalidHeader { .. } | Error::Unsupported(_)) => {}
            Err(e) => cx.fail("publish unicode header", "Ok or InvalidHeader", e),
        }
    }
    cx.quiet("nothing else arrives", &mut sub).await;
    drop(sub);
    cx.shutdown(conn).await;
}

async fn metadata_round_trip<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let addr = cx.addr(&["meta"]);
    let reply = cx.addr(&["meta", "reply"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    let msg = OutgoingMessage::new(addr.clone(), "m")
        .correlation_id("corr-42-ü")
        .reply_to(reply.clone())
        .content_type("text/plain");
    cx.publish(&conn, msg).await;
    let m = cx.recv("receive", &mut sub).await;
    if m.correlation_id() != Some("corr-42-ü") {
        cx.fail(
            "correlation id",
            "Some(\"corr-42-ü\")",
            format!("{:?}", m.correlation_id()),
        );
    }
    if m.reply_to() != Some(reply.as_str()) {
        cx.fail(
            "reply_to",
            format!("Some({reply:?})"),
            format!("{:?}", m.reply_to()),
        );
    }
    if m.content_type() != Some("text/plain") {
        cx.fail(
            "content type",
            "Some(\"text/plain\")",
            format!("{:?}", m.content_type()),
        );
    }
    cx.ack("ack", m).await;
    drop(sub);
    cx.shutdown(conn).await;
}

async fn topic_isolation<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let a = cx.addr(&["a"]);
    let b = cx.addr(&["b"]);
    let ab = cx.addr(&["ab"]);
    let deeper = cx.addr(&["a", "x"]);
    let mut sa = cx.subscribe(&conn, &a, SubscribeOptions::new()).await;
    let mut sb = cx.subscribe(&conn, &b, SubscribeOptions::new()).await;
    let mut sab = cx.subscribe(&conn, &ab, SubscribeOptions::new()).await;
    for i in 0..5 {
        cx.publish(&conn, OutgoingMessage::new(a.clone(), format!("a{i}")))
            .await;
        cx.publish(&conn, OutgoingMessage::new(b.clone(), format!("b{i}")))
            .await;
        cx.publish(&conn, OutgoingMessage::new(deeper.clone(), format!("x{i}")))
            .await;
    }
    for (name, sub, addr) in [("a", &mut sa, &a), ("b", &mut sb, &b)] {
        let mut got = BTreeSet::new();
        for _ in 0..5 {
            let m = cx.recv(&format!("receive on {name}"), sub).await;
            if m.address() != addr.as_str() {
                cx.fail(&format!("address on {name}"), addr, m.address());
            }
            let p = String::from_utf8_lossy(m.payload()).into_owned();
            if !p.starts_with(name) {
                cx.fail(
                    &format!("isolation of {name}"),
                    format!("only {name}* payloads"),
                    p,
                );
            }
            got.insert(p);
            cx.ack("ack", m).await;
        }
        if got.len() != 5 {
            cx.fail(
                &format!("receive on {name}"),
                "5 distinct messages",
                format!("{got:?}"),
            );
        }
        cx.quiet(&format!("{name} gets nothing more"), sub).await;
    }
    cx.quiet(
        "a sibling address with a common prefix gets nothing",
        &mut sab,
    )
    .await;
    drop((sa, sb, sab));
    cx.shutdown(conn).await;
}

async fn wildcards<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let conn = cx.connect().await;
    let template = cx.addr(&["dev", "{id}", "temp"]);
    let mut sub = cx
        .subscribe(&conn, &template, SubscribeOptions::new())
        .await;
    let hits = [
        cx.addr(&["dev", "one", "temp"]),
        cx.addr(&["dev", "two", "temp"]),
    ];
    let misses = [
        cx.addr(&["dev", "one", "humidity"]),
        cx.addr(&["dev", "temp"]),
    ];
    for m in &misses {
        cx.publish(&conn, OutgoingMessage::new(m.clone(), "miss"))
            .await;
    }
    for h in &hits {
        cx.publish(&conn, OutgoingMessage::new(h.clone(), "hit"))
            .await;
    }
    let mut got = BTreeSet::new();
    for _ in 0..hits.len() {
        let m = cx.recv("receive matching", &mut sub).await;
        check_payload(&cx, "only matching addresses", b"hit", m.payload());
        got.insert(m.address().to_owned());
        cx.ack("ack", m).await;
    }
    let want: BTreeSet<String> = hits.iter().cloned().collect();
    if got != want {
        cx.fail(
            "concrete delivery addresses",
            format!("{want:?}"),
            format!("{got:?}"),
        );
    }
    cx.quiet("non-matching addresses deliver nothing", &mut sub)
        .await;
    drop(sub);
    cx.shutdown(conn).await;
}

/// Receive exactly `n` messages, acking each; returns payloads (as strings) in arrival order.
pub(super) async fn collect<F, S, M>(
    cx: &Ctx<'_, F>,
    step: &str,
    sub: &mut S,
    n: usize,
) -> Vec<String>
where
    F: ConnectionFactory,
    S: futures_core::Stream<Item = crate::Result<M>> + Unpin,
    M: IncomingMessage,
{
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let m = cx
            .recv(&format!("{step} (message {} of {n})", i + 1), sub)
            .await;
        out.push(String::from_utf8_lossy(m.payload()).into_owned());
        cx.ack(step, m).await;
    }
    out
}

pub(super) fn expect_exactly<F: ConnectionFactory>(
    cx: &Ctx<'_, F>,
    step: &str,
    want: &BTreeSet<String>,
    got: &[String],
) {
    let set: BTreeSet<String> = got.iter().cloned().collect();
    if set.len() != got.len() {
        let mut seen = BTreeSet::new();
        let dups: Vec<&String> = got.iter().filter(|p| !seen.insert(*p)).take(5).collect();
        cx.fail(
            step,
            "no duplicates",
            format!("duplicates such as {dups:?}"),
        );
    }
    if &set != want {
        let missing: Vec<&String> = want.difference(&set).take(5).collect();
        let extra: Vec<&String> = set.difference(want).take(5).collect();
        cx.fail(
            step,
            format!("all {} messages", want.len()),
            format!(
                "{} (missing e.g. {missing:?}, unexpected e.g. {extra:?})",
                set.len()
            ),
        );
    }
}

async fn concurrency<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    const PUBLISHERS: usize = 4;
    let n = cx.cfg.messages;
    let addr = cx.addr(&["c"]);
    let sub_conn_a = cx.connect().await;
    let sub_conn_b = cx.peer(&sub_conn_a).await;
    let mut subs = vec![
        cx.subscribe(&sub_conn_a, &addr, SubscribeOptions::new())
            .await,
        cx.subscribe(&sub_conn_a, &addr, SubscribeOptions::new())
            .await,
        cx.subscribe(&sub_conn_b, &addr, SubscribeOptions::new())
            .await,
    ];
    let mut pubs = Vec::new();
    for _ in 0..PUBLISHERS {
        pubs.push(cx.peer(&sub_conn_a).await);
    }
    let want: BTreeSet<String> = (0..PUBLISHERS)
        .flat_map(|p| (0..n).map(move |i| format!("p{p}-{i}")))
        .collect();
    let publishing = join_all(pubs.iter().enumerate().map(|(p, conn)| {
        let (cx, addr) = (&cx, &addr);
        async move {
            for i in 0..n {
                cx.publish(
                    conn,
                    OutgoingMessage::new(addr.clone(), format!("p{p}-{i}")),
                )
                .await;
            }
            cx.ok("flush", conn.flush()).await;
        }
    }));
    let receiving = join_all(
        subs.iter_mut()
            .map(|s| collect(&cx, "receive everything", s, PUBLISHERS * n)),
    );
    let ((), got) = futures_util::future::join(
        async {
            publishing.await;
        },
        receiving,
    )
    .await;
    for g in &got {
        expect_exactly(&cx, "every subscriber gets every message once", &want, g);
    }
    for s in subs.iter_mut() {
        cx.quiet("nothing more", s).await;
    }
    drop(subs);
    for conn in pubs {
        cx.release(conn).await;
    }
    cx.release(sub_conn_b).await;
    cx.shutdown(sub_conn_a).await;
}

async fn flush_and_close<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let n = cx.cfg.messages;
    let addr = cx.addr(&["f"]);
    let sub_conn = cx.connect().await;
    let mut sub = cx
        .subscribe(&sub_conn, &addr, SubscribeOptions::new())
        .await;

    let publisher = cx.peer(&sub_conn).await;
    let want: BTreeSet<String> = (0..n).map(|i| format!("flush-{i}")).collect();
    let publish = async {
        for i in 0..n {
            cx.publish(
                &publisher,
                OutgoingMessage::new(addr.clone(), format!("flush-{i}")),
            )
            .await;
        }
        cx.ok("flush", publisher.flush()).await;
    };
    let ((), got) =
        futures_util::future::join(publish, collect(&cx, "after flush", &mut sub, n)).await;
    expect_exactly(&cx, "flush delivers everything published", &want, &got);
    cx.release(publisher).await;
    if !cx.cfg.shared_broker {
        cx.quiet("nothing more", &mut sub).await;
        drop(sub);
        cx.shutdown(sub_conn).await;
        return;
    }

    // Publish then shut down straight away: shutdown must deliver what was published.
    let publisher = cx.connect().await;
    let want: BTreeSet<String> = (0..n).map(|i| format!("close-{i}")).collect();
    let publish = async {
        for i in 0..n {
            cx.publish(
                &publisher,
                OutgoingMessage::new(addr.clone(), format!("close-{i}")),
            )
            .await;
        }
        cx.shutdown(publisher).await;
    };
    let ((), got) =
        futures_util::future::join(publish, collect(&cx, "after shutdown", &mut sub, n)).await;
    expect_exactly(&cx, "shutdown delivers everything published", &want, &got);
    cx.quiet("nothing more", &mut sub).await;
    drop(sub);
    cx.shutdown(sub_conn).await;
}
