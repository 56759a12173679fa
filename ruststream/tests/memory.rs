//! Behaviour of the in-memory broker against the contract.

use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use ruststream::capability::{
    BatchSubscriber, DelayedRedelivery, Partitioned, RequestReply, Transaction,
    TransactionalPublisher,
};
use ruststream::memory::{MemoryBroker, MemoryConfig, MemoryConnection, Settled};
use ruststream::{
    Address, Broker, Capabilities, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

async fn conn_with(config: MemoryConfig) -> MemoryConnection {
    MemoryBroker::new(config).connect().await.unwrap()
}

async fn conn() -> MemoryConnection {
    conn_with(MemoryConfig::new().record(true)).await
}

const WAIT: Duration = Duration::from_secs(5);

async fn next<S>(s: &mut S) -> ruststream::memory::MemoryMessage
where
    S: futures_core::Stream<Item = ruststream::Result<ruststream::memory::MemoryMessage>> + Unpin,
{
    tokio::time::timeout(WAIT, s.next())
        .await
        .expect("a message in time")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test]
async fn declares_every_capability_and_name() {
    let b = MemoryBroker::default();
    assert_eq!(b.name(), "memory");
    let c = b.connect().await.unwrap();
    assert_eq!(c.capabilities(), Capabilities::ALL);
    assert_eq!(c.partitions("x").await.unwrap(), 1);
}

#[tokio::test]
async fn wildcard_subscription_receives_matching_addresses_only() {
    let c = conn().await;
    let mut sub = c
        .subscribe(&addr("user/{id}/signup"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("user/7/other", "no"))
        .await
        .unwrap();
    c.publish(
        OutgoingMessage::new("user/42/signup", "yes")
            .header("h", "v")
            .correlation_id("c1")
            .key("k"),
    )
    .await
    .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.address(), "user/42/signup");
    assert_eq!(m.payload(), b"yes");
    assert_eq!(m.headers().get("h"), Some("v"));
    assert_eq!(m.correlation_id(), Some("c1"));
    assert_eq!(m.key(), Some(&b"k"[..]));
    assert_eq!(m.attempt(), 1);
    m.ack().await.unwrap();
    assert_eq!(sub.queued(), 0);
    assert!(sub.next().now_or_never().is_none(), "no further message");
}

#[tokio::test]
async fn queue_group_round_robins_and_distinct_groups_each_get_all() {
    let c = conn().await;
    let a = addr("orders");
    let mut g1 = c
        .subscribe(&a, SubscribeOptions::new().queue_group("workers"))
        .await
        .unwrap();
    let mut g2 = c
        .subscribe(&a, SubscribeOptions::new().queue_group("workers"))
        .await
        .unwrap();
    let mut other = c
        .subscribe(&a, SubscribeOptions::new().queue_group("audit"))
        .await
        .unwrap();
    let mut plain = c.subscribe(&a, SubscribeOptions::new()).await.unwrap();
    for i in 0..6 {
        c.publish(OutgoingMessage::new("orders", format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(g1.queued(), 3);
    assert_eq!(g2.queued(), 3);
    let mut seen = Vec::new();
    for _ in 0..3 {
        for g in [&mut g1, &mut g2] {
            let m = next(g).await;
            seen.push(String::from_utf8(m.payload().to_vec()).unwrap());
            m.ack().await.unwrap();
        }
    }
    seen.sort();
    assert_eq!(seen, ["0", "1", "2", "3", "4", "5"]);
    for i in 0..6 {
        for s in [&mut other, &mut plain] {
            let m = next(s).await;
            assert_eq!(m.payload(), format!("{i}").as_bytes());
            m.ack().await.unwrap();
        }
    }
    assert_eq!(g1.queued() + g2.queued(), 0, "each message once per group");
}

#[tokio::test]
async fn keyed_messages_stick_to_one_group_member() {
    let c = conn().await;
    let a = addr("k");
    let g1 = c
        .subscribe(&a, SubscribeOptions::new().queue_group("g"))
        .await
        .unwrap();
    let g2 = c
        .subscribe(&a, SubscribeOptions::new().queue_group("g"))
        .await
        .unwrap();
    for i in 0..10 {
        c.publish(OutgoingMessage::new("k", format!("{i}")).key("same"))
            .await
            .unwrap();
    }
    let (b1, b2) = (g1.queued(), g2.queued());
    assert_eq!(b1 + b2, 10);
    assert!(b1 == 0 || b2 == 0, "one member holds the key: {b1} / {b2}");
}

#[tokio::test]
async fn nack_requeue_redelivers_with_growing_attempt() {
    let c = conn().await;
    let mut sub = c
        .subscribe(&addr("r"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("r", "x")).await.unwrap();
    for expected in 1..=3 {
        let m = next(&mut sub).await;
        assert_eq!(m.attempt(), expected);
        m.nack(true).await.unwrap();
    }
    let m = next(&mut sub).await;
    assert_eq!(m.attempt(), 4);
    m.nack(false).await.unwrap();
    assert!(sub.next().now_or_never().is_none(), "nack(false) drops it");
    let outcomes: Vec<_> = c.settlements().iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Settled::Nacked { requeue: true },
            Settled::Nacked { requeue: true },
            Settled::Nacked { requeue: true },
            Settled::Nacked { requeue: false }
        ]
    );
}

#[tokio::test]
async fn dropping_unsettled_redelivers() {
    let c = conn().await;
    let mut sub = c
        .subscribe(&addr("d"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("d", "x")).await.unwrap();
    drop(next(&mut sub).await);
    let m = next(&mut sub).await;
    assert_eq!(m.attempt(), 2);
    m.ack().await.unwrap();
}

#[tokio::test]
async fn reject_goes_to_dead_letter_address_or_is_dropped() {
    let c = conn().await;
    let mut dlq = c
        .subscribe(&addr("dlq"), SubscribeOptions::new())
        .await
        .unwrap();
    let mut sub = c
        .subscribe(&addr("in"), SubscribeOptions::new().dead_letter("dlq"))
        .await
        .unwrap();
    let mut plain = c
        .subscribe(&addr("in"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("in", "bad").header("a", "b"))
        .await
        .unwrap();
    next(&mut sub).await.reject().await.unwrap();
    next(&mut plain).await.reject().await.unwrap();
    let dead = next(&mut dlq).await;
    assert_eq!(dead.payload(), b"bad");
    assert_eq!(dead.headers().get("a"), Some("b"));
    assert_eq!(dead.headers().get("x-original-address"), Some("in"));
    assert!(
        dlq.next().now_or_never().is_none(),
        "exactly one dead letter"
    );
    assert!(plain.next().now_or_never().is_none());
}

#[tokio::test]
async fn delayed_redelivery_is_no_sooner_than_asked() {
    let c = conn().await;
    let mut sub = c
        .subscribe(&addr("t"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("t", "x")).await.unwrap();
    let m = next(&mut sub).await;
    let start = std::time::Instant::now();
    m.nack_with_delay(Duration::from_millis(120)).await.unwrap();
    let again = next(&mut sub).await;
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert_eq!(again.attempt(), 2);
}

#[tokio::test]
async fn back_pressure_blocks_publisher_and_bounds_the_buffer() {
    let c = conn_with(MemoryConfig::new().buffer(4)).await;
    let mut sub = c
        .subscribe(&addr("bp"), SubscribeOptions::new())
        .await
        .unwrap();
    for i in 0..4 {
        c.publish(OutgoingMessage::new("bp", format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(sub.queued(), 4);
    // The buffer is full: the next publish does not complete…
    let c2 = c.clone();
    let blocked = tokio::spawn(async move {
        for i in 4..20 {
            c2.publish(OutgoingMessage::new("bp", format!("{i}")))
                .await
                .unwrap();
        }
    });
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !blocked.is_finished(),
        "publisher must wait for the slow consumer"
    );
    assert_eq!(sub.queued(), 4);
    // …and as the consumer drains, the publisher proceeds; the buffer never exceeds 4.
    for i in 0..20 {
        assert!(sub.queued() <= 4);
        let m = next(&mut sub).await;
        assert_eq!(
            m.payload(),
            format!("{i}").as_bytes(),
            "nothing lost, in order"
        );
        m.ack().await.unwrap();
    }
    blocked.await.unwrap();
}

#[tokio::test]
async fn request_reply_with_timeout_and_reverse_order_replies() {
    let c = conn().await;
    let mut server = c
        .subscribe(&addr("svc"), SubscribeOptions::new())
        .await
        .unwrap();
    // No reply → timeout.
    let err = c
        .request(
            OutgoingMessage::new("nobody", "x"),
            Duration::from_millis(30),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)));

    let c1 = c.clone();
    let c2 = c.clone();
    let r1 =
        tokio::spawn(async move { c1.request(OutgoingMessage::new("svc", "one"), WAIT).await });
    let first = next(&mut server).await;
    let r2 =
        tokio::spawn(async move { c2.request(OutgoingMessage::new("svc", "two"), WAIT).await });
    let second = next(&mut server).await;
    // Reply in reverse order.
    for m in [second, first] {
        let mut reply = OutgoingMessage::new(m.reply_to().unwrap(), m.payload().to_vec());
        reply.correlation_id = m.correlation_id().map(str::to_owned);
        c.publish(reply).await.unwrap();
        m.ack().await.unwrap();
    }
    let a = r1.await.unwrap().unwrap();
    let b = r2.await.unwrap().unwrap();
    assert_eq!(&a.payload[..], b"one");
    assert_eq!(&b.payload[..], b"two");
    assert_ne!(a.correlation_id, b.correlation_id);
    assert!(a.correlation_id.is_some());
}

#[tokio::test]
async fn durable_queue_survives_resubscribe() {
    let c = conn().await;
    let opts = SubscribeOptions::new().durable("d1");
    let mut sub = c.subscribe(&addr("dur"), opts.clone()).await.unwrap();
    for i in 0..3 {
        c.publish(OutgoingMessage::new("dur", format!("{i}")))
            .await
            .unwrap();
    }
    let m0 = next(&mut sub).await;
    m0.ack().await.unwrap();
    let unsettled = next(&mut sub).await;
    drop(sub);
    drop(unsettled); // returned to the durable queue
    c.publish(OutgoingMessage::new("dur", "3")).await.unwrap();
    let mut sub = c.subscribe(&addr("dur"), opts).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = next(&mut sub).await;
        got.push((
            String::from_utf8(m.payload().to_vec()).unwrap(),
            m.attempt(),
        ));
        m.ack().await.unwrap();
    }
    got.sort();
    assert_eq!(
        got,
        [("1".into(), 2), ("2".into(), 1), ("3".into(), 1)] as [(String, u32); 3]
    );
    // A non-durable subscription does not keep anything.
    let plain = c
        .subscribe(&addr("nd"), SubscribeOptions::new())
        .await
        .unwrap();
    drop(plain);
    c.publish(OutgoingMessage::new("nd", "lost")).await.unwrap();
    let mut plain = c
        .subscribe(&addr("nd"), SubscribeOptions::new())
        .await
        .unwrap();
    assert!(plain.next().now_or_never().is_none());
}

#[tokio::test]
async fn batches_and_transactions() {
    let c = conn().await;
    let mut batches = c
        .subscribe_batch(
            &addr("b"),
            SubscribeOptions::new(),
            3,
            Duration::from_millis(20),
        )
        .await
        .unwrap();
    let mut tx = c.begin().await.unwrap();
    for i in 0..4 {
        tx.publish(OutgoingMessage::new("b", format!("{i}")))
            .await
            .unwrap();
    }
    assert!(c.published().is_empty(), "nothing visible before commit");
    tx.commit().await.unwrap();
    let first = tokio::time::timeout(WAIT, batches.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.len(), 3);
    let second = tokio::time::timeout(WAIT, batches.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.len(), 1, "partial batch after max_wait");
    for m in first.into_iter().chain(second) {
        m.ack().await.unwrap();
    }
    let mut tx = c.begin().await.unwrap();
    tx.publish(OutgoingMessage::new("b", "never"))
        .await
        .unwrap();
    tx.abort().await.unwrap();
    assert_eq!(c.published().len(), 4);
}

#[tokio::test]
async fn shutdown_ends_subscriptions_and_refuses_publish_and_subscribe() {
    let c = conn_with(MemoryConfig::new().buffer(1)).await;
    let mut sub = c
        .subscribe(&addr("s"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("s", "1")).await.unwrap();
    let c2 = c.clone();
    let blocked = tokio::spawn(async move { c2.publish(OutgoingMessage::new("s", "2")).await });
    tokio::time::sleep(Duration::from_millis(10)).await;
    c.clone().shutdown().await.unwrap();
    assert!(matches!(
        tokio::time::timeout(WAIT, blocked).await.unwrap().unwrap(),
        Err(Error::Closed)
    ));
    assert!(
        tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        c.publish(OutgoingMessage::new("s", "x")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        c.subscribe(&addr("s"), SubscribeOptions::new()).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        c.request(OutgoingMessage::new("s", "x"), WAIT).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn a_full_durable_queue_without_consumer_blocks_until_one_joins() {
    let c = conn_with(MemoryConfig::new().buffer(2)).await;
    let opts = SubscribeOptions::new().durable("parked");
    drop(c.subscribe(&addr("pk"), opts.clone()).await.unwrap());
    c.publish(OutgoingMessage::new("pk", "0")).await.unwrap();
    c.publish(OutgoingMessage::new("pk", "1")).await.unwrap();
    let c2 = c.clone();
    let blocked = tokio::spawn(async move { c2.publish(OutgoingMessage::new("pk", "2")).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!blocked.is_finished(), "the parked queue is full");
    let mut sub = c.subscribe(&addr("pk"), opts).await.unwrap();
    tokio::time::timeout(WAIT, blocked)
        .await
        .expect("joining frees the publisher")
        .unwrap()
        .unwrap();
    for i in 0..3 {
        let m = next(&mut sub).await;
        assert_eq!(m.payload(), format!("{i}").as_bytes());
        m.ack().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_queue_group_members_never_lose_the_group() {
    let c = conn().await;
    let a = addr("churn");
    for round in 0..200 {
        let first = c
            .subscribe(&a, SubscribeOptions::new().queue_group("g"))
            .await
            .unwrap();
        let c2 = c.clone();
        let a2 = a.clone();
        let joiner = tokio::spawn(async move {
            c2.subscribe(&a2, SubscribeOptions::new().queue_group("g"))
                .await
                .unwrap()
        });
        drop(first);
        let mut second = joiner.await.unwrap();
        c.publish(OutgoingMessage::new("churn", format!("{round}")))
            .await
            .unwrap();
        let m = next(&mut second).await;
        assert_eq!(m.payload(), format!("{round}").as_bytes());
        m.ack().await.unwrap();
    }
}

#[tokio::test]
async fn connections_from_clones_of_a_broker_share_it() {
    let broker = MemoryBroker::default();
    let a = broker.clone().connect().await.unwrap();
    let b = broker.clone().connect().await.unwrap();
    let mut sub = a
        .subscribe(&addr("shared/{id}"), SubscribeOptions::new())
        .await
        .unwrap();
    let mut group = Vec::new();
    for conn in [&a, &b] {
        let opts = SubscribeOptions::new().queue_group("g");
        group.push(conn.subscribe(&addr("jobs"), opts).await.unwrap());
    }
    b.publish(OutgoingMessage::new("shared/1", "from b"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.payload(), b"from b");
    m.ack().await.unwrap();

    // A request on one connection, answered on another.
    let mut requests = b
        .subscribe(&addr("rpc"), SubscribeOptions::new())
        .await
        .unwrap();
    let answer = async {
        let req = next(&mut requests).await;
        let to = req.reply_to().unwrap().to_owned();
        b.publish(OutgoingMessage::new(to, "pong")).await.unwrap();
        req.ack().await.unwrap();
    };
    let (reply, ()) = tokio::join!(a.request(OutgoingMessage::new("rpc", "ping"), WAIT), answer);
    assert_eq!(&reply.unwrap().payload[..], b"pong");

    // Shutting `b` down ends its subscriptions only; its group member's share goes to `a`'s.
    let mut b_member = group.pop().unwrap();
    let mut a_member = group.pop().unwrap();
    b.shutdown().await.unwrap();
    assert!(
        tokio::time::timeout(WAIT, b_member.next())
            .await
            .unwrap()
            .is_none()
    );
    for i in 0..4 {
        a.publish(OutgoingMessage::new("jobs", format!("j{i}")))
            .await
            .unwrap();
    }
    for i in 0..4 {
        let m = next(&mut a_member).await;
        assert_eq!(m.payload(), format!("j{i}").as_bytes());
        m.ack().await.unwrap();
    }
    assert!(!a.is_closed());

    // `default()` makes a separate broker.
    let other = MemoryBroker::default().connect().await.unwrap();
    other
        .publish(OutgoingMessage::new("shared/2", "elsewhere"))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(50), sub.next())
            .await
            .is_err()
    );
    a.shutdown().await.unwrap();
}

#[tokio::test]
async fn concrete_and_wildcard_subscriptions_see_the_published_address() {
    let c = conn().await;
    let mut exact = c
        .subscribe(&addr("orders.eu"), SubscribeOptions::new())
        .await
        .unwrap();
    let mut dead = c
        .subscribe(&addr("dead"), SubscribeOptions::new())
        .await
        .unwrap();
    let mut rejecting = c
        .subscribe(
            &addr("orders.eu"),
            SubscribeOptions::new().dead_letter("dead"),
        )
        .await
        .unwrap();
    // Only concrete subscriptions match: the broker need not keep the address.
    c.publish(OutgoingMessage::new("orders.eu", "1"))
        .await
        .unwrap();
    let m = next(&mut exact).await;
    assert_eq!(m.address(), "orders.eu");
    m.nack(true).await.unwrap();
    let m = next(&mut exact).await;
    assert_eq!((m.address(), m.attempt()), ("orders.eu", 2));
    m.ack().await.unwrap();
    let r = next(&mut rejecting).await;
    assert_eq!(r.address(), "orders.eu");
    r.reject().await.unwrap();
    let d = next(&mut dead).await;
    assert_eq!(d.address(), "dead");
    assert_eq!(
        d.headers().get(ruststream::memory::ORIGINAL_ADDRESS_HEADER),
        Some("orders.eu")
    );
    d.ack().await.unwrap();
    // A concrete and a wildcard subscription matching the same message.
    let mut wild = c
        .subscribe(&addr("orders.{region}"), SubscribeOptions::new())
        .await
        .unwrap();
    c.publish(OutgoingMessage::new("orders.eu", "2"))
        .await
        .unwrap();
    for s in [&mut exact, &mut wild, &mut rejecting] {
        let m = next(s).await;
        assert_eq!((m.address(), m.payload()), ("orders.eu", &b"2"[..]));
        m.ack().await.unwrap();
    }
    let settled: Vec<_> = c
        .settlements()
        .into_iter()
        .map(|s| (s.address, s.attempt, s.outcome))
        .collect();
    assert_eq!(
        settled[..4],
        [
            ("orders.eu".to_owned(), 1, Settled::Nacked { requeue: true }),
            ("orders.eu".to_owned(), 2, Settled::Acked),
            (
                "orders.eu".to_owned(),
                1,
                Settled::Rejected {
                    dead_lettered: true
                }
            ),
            ("dead".to_owned(), 1, Settled::Acked),
        ]
    );
    assert!(settled[4..].iter().all(|s| s.0 == "orders.eu"));
}

#[tokio::test]
async fn a_publisher_waiting_on_a_full_buffer_is_woken_as_it_drains() {
    // Waiting publishers are woken when the buffer has drained to half, not on every pop:
    // whatever the pace of the consumer, every message arrives, in order.
    for capacity in [1, 2, 3, 8] {
        let c = conn_with(MemoryConfig::new().buffer(capacity)).await;
        let mut sub = c
            .subscribe(&addr("w"), SubscribeOptions::new())
            .await
            .unwrap();
        let c2 = c.clone();
        let publisher = tokio::spawn(async move {
            for i in 0..50u32 {
                c2.publish(OutgoingMessage::new("w", i.to_string()))
                    .await
                    .unwrap();
            }
        });
        for i in 0..50u32 {
            assert!(sub.queued() <= capacity);
            let m = next(&mut sub).await;
            assert_eq!(m.payload(), i.to_string().as_bytes(), "capacity {capacity}");
            m.ack().await.unwrap();
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::time::timeout(WAIT, publisher)
            .await
            .expect("publisher finished")
            .unwrap();
    }
}

/// Payloads of every message `sub` has now (acked), without waiting for more.
async fn drain_now<S>(sub: &mut S) -> Vec<String>
where
    S: futures_core::Stream<Item = ruststream::Result<ruststream::memory::MemoryMessage>> + Unpin,
{
    let mut got = Vec::new();
    while let Some(Some(m)) = sub.next().now_or_never() {
        let m = m.unwrap();
        got.push(String::from_utf8(m.payload().to_vec()).unwrap());
        m.ack().await.unwrap();
    }
    got
}

#[tokio::test]
async fn a_dropped_subscription_hands_its_unread_batch_back() {
    // A subscription takes several queued messages at a time; dropping it after reading one
    // passes the rest on to the group, in order, none lost.
    let c = conn().await;
    let a = addr("batch");
    let group = || SubscribeOptions::new().queue_group("g");
    let mut first = c.subscribe(&a, group()).await.unwrap();
    let mut second = c.subscribe(&a, group()).await.unwrap();
    for i in 0..10 {
        c.publish(OutgoingMessage::new("batch", format!("{i}")))
            .await
            .unwrap();
    }
    let m = next(&mut first).await;
    assert_eq!(m.payload(), b"0");
    m.ack().await.unwrap();
    assert_eq!(first.queued(), 4, "its batch still counts as queued");
    drop(first);
    let mut got = drain_now(&mut second).await;
    got.sort_by_key(|s| s.parse::<u32>().unwrap());
    assert_eq!(got, ["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
}

#[tokio::test]
async fn a_shut_down_connection_passes_its_batch_to_the_group() {
    let broker = MemoryBroker::default();
    let (ca, cb) = (broker.clone().connect_now(), broker.connect_now());
    let a = addr("batch");
    let group = || SubscribeOptions::new().queue_group("g");
    let mut first = ca.subscribe(&a, group()).await.unwrap();
    let mut second = cb.subscribe(&a, group()).await.unwrap();
    for i in 0..10 {
        cb.publish(OutgoingMessage::new("batch", format!("{i}")))
            .await
            .unwrap();
    }
    let m = next(&mut first).await;
    assert_eq!(m.payload(), b"0");
    m.ack().await.unwrap();
    ca.shutdown().await.unwrap();
    // The stream ends at once, with what it had taken handed to the other member.
    assert!(matches!(first.next().now_or_never(), Some(None)));
    let mut got = drain_now(&mut second).await;
    got.sort_by_key(|s| s.parse::<u32>().unwrap());
    assert_eq!(got, ["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
}

#[tokio::test]
async fn messages_of_a_batch_count_against_the_buffer_until_handed_out() {
    // Buffer 128: the subscription takes a batch of 32 and hands out one; the other 31 still
    // count, so there is room for exactly one more.
    const CAP: u32 = 128;
    let c = conn_with(MemoryConfig::new().buffer(CAP as usize)).await;
    let mut sub = c
        .subscribe(&addr("b"), SubscribeOptions::new())
        .await
        .unwrap();
    for i in 0..CAP {
        c.publish(OutgoingMessage::new("b", format!("{i}")))
            .await
            .unwrap();
    }
    let m = next(&mut sub).await;
    assert_eq!(m.payload(), b"0");
    m.ack().await.unwrap();
    assert_eq!(sub.queued(), CAP as usize - 1);
    c.publish(OutgoingMessage::new("b", format!("{CAP}")))
        .await
        .unwrap();
    let c2 = c.clone();
    let blocked = tokio::spawn(async move {
        c2.publish(OutgoingMessage::new("b", format!("{}", CAP + 1)))
            .await
            .unwrap();
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!blocked.is_finished(), "the buffer of {CAP} is full");
    for i in 1..=CAP + 1 {
        assert!(sub.queued() <= CAP as usize);
        let m = next(&mut sub).await;
        assert_eq!(m.payload(), format!("{i}").as_bytes(), "in order");
        m.ack().await.unwrap();
    }
    tokio::time::timeout(WAIT, blocked).await.unwrap().unwrap();
}
