//! Ordering and competing-consumer checks: publish order, order per key, queue groups.

use std::collections::{BTreeMap, BTreeSet};

use super::checks::{collect, expect_exactly};
use super::{ConnectionFactory, Ctx};
use crate::broker::SubscribeOptions;
use crate::{IncomingMessage, OutgoingMessage};

pub(super) async fn ordering<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

pub(super) async fn ordering_per_key<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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

pub(super) async fn queue_groups<F: ConnectionFactory>(cx: Ctx<'_, F>) {
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
