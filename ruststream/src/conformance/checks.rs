//! The core checks: every broker runs these (each gated on its declared capabilities).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures_util::future::join_all;

use super::{ConnectionFactory, Ctx, Report, show};
use crate::broker::{Connection, Publisher, SubscribeOptions};
use crate::{Error, Headers, IncomingMessage, OutgoingMessage};

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

fn check_payload<F: ConnectionFactory>(cx: &Ctx<'_, F>, step: &str, want: &[u8], got: &[u8]) {
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
async fn collect<F, S, M>(cx: &Ctx<'_, F>, step: &str, sub: &mut S, n: usize) -> Vec<String>
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

fn expect_exactly<F: ConnectionFactory>(
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

async fn ack<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

async fn nack_requeue<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

async fn nack_drop<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

async fn dead_letter<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

async fn ordering<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let n = cx.cfg.messages * 2;
    let conn = cx.connect().await;
    let addr = cx.addr(&["o"]);
    let mut sub = cx.subscribe(&conn, &addr, SubscribeOptions::new()).await;
    let publish = async {
        for i in 0..n {
            cx.publish(&conn, OutgoingMessage::new(addr.clone(), format!("{i}")))
                .await;
        }
    };
    let ((), got) = futures_util::future::join(publish, collect(&cx, "receive", &mut sub, n)).await;
    let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    if got != want {
        let at = got.iter().zip(&want).position(|(g, w)| g != w).unwrap_or(0);
        cx.fail(
            "publish order kept",
            format!("{:?}…", &want[at..(at + 5).min(n)]),
            format!("{:?}…", &got[at..(at + 5).min(n)]),
        );
    }
    drop(sub);
    cx.shutdown(conn).await;
}

async fn ordering_per_key<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    const KEYS: usize = 4;
    let per_key = cx.cfg.messages;
    let conn = cx.connect().await;
    let addr = cx.addr(&["k"]);
    let group = cx.name("g");
    let opts = if cx.caps.queue_groups {
        SubscribeOptions::new().queue_group(group)
    } else {
        SubscribeOptions::new()
    };
    let mut s1 = cx.subscribe(&conn, &addr, opts.clone()).await;
    let mut s2 = if cx.caps.queue_groups {
        Some(cx.subscribe(&conn, &addr, opts).await)
    } else {
        None
    };
    for i in 0..per_key {
        for k in 0..KEYS {
            let msg =
                OutgoingMessage::new(addr.clone(), format!("k{k}-{i}")).key(format!("key{k}"));
            cx.publish(&conn, msg).await;
        }
    }
    // Drain both members until everything arrived.
    let total = per_key * KEYS;
    let mut streams: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let mut count = 0;
    while count < total {
        let next = async {
            match s2.as_mut() {
                Some(s2) => {
                    tokio::select! {
                        m = cx.recv("receive", &mut s1) => (0, m),
                        m = cx.recv("receive", s2) => (1, m),
                    }
                }
                None => (0, cx.recv("receive", &mut s1).await),
            }
        };
        let (who, m) = next.await;
        streams[who].push(String::from_utf8_lossy(m.payload()).into_owned());
        cx.ack("ack", m).await;
        count += 1;
    }
    for (who, got) in streams.iter().enumerate() {
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for p in got {
            let (key, seq) = p.split_once('-').unwrap_or((p, "0"));
            let seq: usize = seq.parse().unwrap_or(0);
            if let Some(prev) = last.insert(key, seq) {
                if seq <= prev {
                    cx.fail(
                        &format!("order per key at consumer {who}"),
                        format!("{key} after {key}-{prev}: a later one"),
                        p,
                    );
                }
            }
        }
    }
    drop((s1, s2));
    cx.shutdown(conn).await;
}

async fn queue_groups<F: ConnectionFactory>(cx: Ctx<'_, F>) {
    let n = cx.cfg.messages.max(20);
    let conn = cx.connect().await;
    let other = cx.peer(&conn).await;
    let addr = cx.addr(&["q"]);
    let g1 = cx.name("g1");
    let g2 = cx.name("g2");
    let mut a1 = cx
        .subscribe(
            &conn,
            &addr,
            SubscribeOptions::new().queue_group(g1.clone()),
        )
        .await;
    let mut a2 = cx
        .subscribe(&other, &addr, SubscribeOptions::new().queue_group(g1))
        .await;
    let mut b = cx
        .subscribe(&conn, &addr, SubscribeOptions::new().queue_group(g2))
        .await;
    let mut plain = cx.subscribe(&other, &addr, SubscribeOptions::new()).await;
    let want: BTreeSet<String> = (0..n).map(|i| format!("q{i}")).collect();
    let mut g1_got: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    let publish = async {
        for i in 0..n {
            cx.publish(&conn, OutgoingMessage::new(addr.clone(), format!("q{i}")))
                .await;
        }
    };
    let drain_group = async {
        let mut count = 0;
        while count < n {
            let (who, m) = tokio::select! {
                m = cx.recv("receive in group g1", &mut a1) => (0, m),
                m = cx.recv("receive in group g1", &mut a2) => (1, m),
            };
            g1_got[who].push(String::from_utf8_lossy(m.payload()).into_owned());
            cx.ack("ack", m).await;
            count += 1;
        }
    };
    let (((), ()), (b_got, plain_got)) = futures_util::future::join(
        futures_util::future::join(publish, drain_group),
        futures_util::future::join(
            collect(&cx, "receive in group g2", &mut b, n),
            collect(&cx, "receive without group", &mut plain, n),
        ),
    )
    .await;
    cx.quiet("group member 1 gets nothing more", &mut a1).await;
    cx.quiet("group member 2 gets nothing more", &mut a2).await;
    let all: Vec<String> = g1_got.concat();
    expect_exactly(&cx, "a group gets each message exactly once", &want, &all);
    if g1_got.iter().any(Vec::is_empty) {
        cx.fail(
            "a group splits messages",
            "both members to receive some",
            format!("{} and {} messages", g1_got[0].len(), g1_got[1].len()),
        );
    }
    expect_exactly(&cx, "a distinct group gets every message", &want, &b_got);
    expect_exactly(
        &cx,
        "a plain subscriber gets every message",
        &want,
        &plain_got,
    );
    drop((a1, a2, b, plain));
    cx.shutdown(conn).await;
    cx.release(other).await;
}

async fn durable<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

async fn lifecycle<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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
