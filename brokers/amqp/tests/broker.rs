//! Focused RabbitMQ behaviour beyond the conformance harness: credentials, dead-letter
//! exchanges, attempt counts, address mapping, interop with plain AMQP clients.

mod common;

use std::time::Duration;

use common::{config, next, quiet, rabbit, unique};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable};
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_amqp::{AmqpBroker, Config, ExchangeKind, QueueType};

fn addr(s: &str) -> Address {
    Address::parse(s).unwrap()
}

#[tokio::test]
async fn errors_and_debug_never_show_the_password() {
    if !rabbit() {
        return;
    }
    let planted = "Pl4nted-S3cret";
    let cfg = Config::new(format!("amqp://guest:{planted}@127.0.0.1:5672/%2f"));
    assert!(!format!("{cfg:?}").contains(planted));
    let broker = AmqpBroker::new(cfg);
    assert!(!format!("{broker:?}").contains(planted));
    let err = broker
        .connect()
        .await
        .expect_err("wrong password must fail");
    let text = format!("{err} / {err:?}");
    assert!(
        matches!(err, Error::Transport { broker: "amqp", .. }),
        "{text}"
    );
    assert!(!text.contains(planted), "password leaked: {text}");
    assert!(text.contains("guest:***@"), "{text}");

    // An unparsable URI is a configuration error, also without the password.
    let bad = Config::new(format!("amqp://guest:{planted}@127.0.0.1:notaport/%2f"));
    let err = AmqpBroker::new(bad).connect().await.expect_err("bad URI");
    let text = format!("{err} / {err:?}");
    assert!(matches!(err, Error::Config(_)), "{text}");
    assert!(!text.contains(planted), "password leaked: {text}");
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error_not_a_hang() {
    let cfg = Config::new("amqp://guest:guest@127.0.0.1:1/%2f");
    let result = tokio::time::timeout(Duration::from_secs(15), AmqpBroker::new(cfg).connect())
        .await
        .expect("connect must not hang");
    assert!(matches!(
        result,
        Err(Error::Transport { .. } | Error::Timeout(_))
    ));
}

#[tokio::test]
async fn templates_map_to_topic_words_and_slash_stays_in_a_word() {
    if !rabbit() {
        return;
    }
    let conn = AmqpBroker::new(config("words")).connect().await.unwrap();
    let mut dotted = conn
        .subscribe(&addr("orders.{id}.created"), SubscribeOptions::new())
        .await
        .unwrap();
    let mut slashed = conn
        .subscribe(&addr("user/{id}/signup"), SubscribeOptions::new())
        .await
        .unwrap();
    for a in [
        "orders.42.deleted",
        "orders.42.x.created",
        "user/7/login",
        "user/7/signup",
        "orders.42.created",
    ] {
        conn.publish(OutgoingMessage::new(a, a)).await.unwrap();
    }
    let m = next(&mut slashed).await;
    assert_eq!(m.address(), "user/7/signup");
    m.ack().await.unwrap();
    let m = next(&mut dotted).await;
    assert_eq!(m.address(), "orders.42.created");
    m.ack().await.unwrap();
    quiet(&mut dotted).await;
    quiet(&mut slashed).await;
    // `#`/`*` in a template would be AMQP wildcards: refused.
    let err = conn
        .subscribe(&addr("orders.#"), SubscribeOptions::new())
        .await
        .expect_err("wildcard literal");
    assert!(matches!(err, Error::InvalidAddress { .. }));
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn direct_exchange_refuses_templates_and_fanout_filters() {
    if !rabbit() {
        return;
    }
    let direct = config("direct").exchange(unique("direct"), ExchangeKind::Direct);
    let conn = AmqpBroker::new(direct).connect().await.unwrap();
    assert!(!conn.capabilities().wildcards);
    let err = conn
        .subscribe(&addr("a.{x}"), SubscribeOptions::new())
        .await
        .expect_err("template on direct");
    assert!(matches!(err, Error::InvalidAddress { .. }));
    let mut exact = conn
        .subscribe(&addr("a.b"), SubscribeOptions::new())
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("a.c", "no"))
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("a.b", "yes"))
        .await
        .unwrap();
    assert_eq!(next(&mut exact).await.payload(), b"yes");
    conn.shutdown().await.unwrap();

    let fanout = config("fanout").exchange(unique("fanout"), ExchangeKind::Fanout);
    let conn = AmqpBroker::new(fanout).connect().await.unwrap();
    let mut sub = conn
        .subscribe(&addr("f.{x}"), SubscribeOptions::new())
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("g.1", "no"))
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("f.1", "yes"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!((m.address(), m.payload()), ("f.1", &b"yes"[..]));
    quiet(&mut sub).await;
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn classic_queues_report_redelivery_as_attempt_two() {
    if !rabbit() {
        return;
    }
    let conn = AmqpBroker::new(config("classic-attempt"))
        .connect()
        .await
        .unwrap();
    assert!(!conn.capabilities().nack_requeue);
    let mut sub = conn
        .subscribe(&addr("att"), SubscribeOptions::new())
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("att", "x"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!((m.attempt(), m.redelivered()), (1, false));
    m.nack(true).await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!((m.attempt(), m.redelivered()), (2, true));
    m.nack(true).await.unwrap();
    let m = next(&mut sub).await;
    assert_eq!(
        m.attempt(),
        2,
        "classic queues cannot count beyond `redelivered`"
    );
    m.ack().await.unwrap();
    quiet(&mut sub).await;
    // max_deliver needs delivery counting: refused on classic queues.
    let err = conn
        .subscribe(&addr("att2"), SubscribeOptions::new().max_deliver(3))
        .await
        .expect_err("max_deliver on classic");
    assert!(matches!(err, Error::Unsupported(_)));
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn quorum_max_deliver_dead_letters_after_the_limit() {
    if !rabbit() {
        return;
    }
    let cfg = config("quorum-limit").queue_type(QueueType::Quorum);
    let conn = AmqpBroker::new(cfg).connect().await.unwrap();
    assert!(conn.capabilities().nack_requeue);
    let mut dead = conn
        .subscribe(&addr("q.dead"), SubscribeOptions::new())
        .await
        .unwrap();
    let opts = SubscribeOptions::new().max_deliver(2).dead_letter("q.dead");
    let mut sub = conn.subscribe(&addr("q.work"), opts).await.unwrap();
    conn.publish(OutgoingMessage::new("q.work", "poison"))
        .await
        .unwrap();
    for attempt in 1..=2 {
        let m = next(&mut sub).await;
        assert_eq!(m.attempt(), attempt);
        m.nack(true).await.unwrap();
    }
    quiet(&mut sub).await;
    let m = next(&mut dead).await;
    assert_eq!(m.payload(), b"poison");
    m.ack().await.unwrap();
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn configured_dead_letter_exchange_gets_rejects_but_not_dropped_nacks() {
    if !rabbit() {
        return;
    }
    let dlx = unique("dlx");
    let cfg = config("dlx-main").dead_letter_exchange(dlx.clone());
    let conn = AmqpBroker::new(cfg).connect().await.unwrap();
    // A second connection whose exchange is the dead-letter exchange reads what lands there.
    let dl_cfg = config("dlx-reader").exchange(dlx, ExchangeKind::Topic);
    let dl_conn = AmqpBroker::new(dl_cfg).connect().await.unwrap();
    let mut dead = dl_conn
        .subscribe(&addr("jobs.{kind}"), SubscribeOptions::new())
        .await
        .unwrap();
    let group = SubscribeOptions::new().queue_group("workers");
    let mut work = conn.subscribe(&addr("jobs.{kind}"), group).await.unwrap();

    conn.publish(OutgoingMessage::new("jobs.a", "dropped"))
        .await
        .unwrap();
    next(&mut work).await.nack(false).await.unwrap();
    conn.publish(OutgoingMessage::new("jobs.b", "rejected").header("k", "v"))
        .await
        .unwrap();
    next(&mut work).await.reject().await.unwrap();

    let m = next(&mut dead).await;
    assert_eq!(m.payload(), b"rejected");
    assert_eq!(
        m.address(),
        "jobs.b",
        "routing key kept without a dead-letter address"
    );
    assert_eq!(m.headers().get("k"), Some("v"));
    m.ack().await.unwrap();
    quiet(&mut dead).await;
    quiet(&mut work).await;
    conn.shutdown().await.unwrap();
    dl_conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn interop_with_a_plain_amqp_client() {
    if !rabbit() {
        return;
    }
    let cfg = config("interop");
    let exchange = cfg.exchange.clone();
    let conn = AmqpBroker::new(cfg).connect().await.unwrap();
    let mut sub = conn
        .subscribe(&addr("interop.{x}"), SubscribeOptions::new())
        .await
        .unwrap();

    let raw =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await
            .unwrap();
    let channel = raw.create_channel().await.unwrap();
    let mut table = FieldTable::default();
    table.insert("x-number".into(), AMQPValue::LongInt(42));
    table.insert("x-text".into(), AMQPValue::LongString("hi".into()));
    let props = lapin::BasicProperties::default()
        .with_headers(table)
        .with_content_type("application/json".into())
        .with_correlation_id("c-1".into())
        .with_message_id("m-1".into())
        .with_reply_to("some.queue".into());
    channel
        .basic_publish(
            exchange.as_str().into(),
            "interop.1".into(),
            BasicPublishOptions::default(),
            b"{}",
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.headers().get("x-number"), Some("42"));
    assert_eq!(m.headers().get("x-text"), Some("hi"));
    assert_eq!(m.content_type(), Some("application/json"));
    assert_eq!(m.correlation_id(), Some("c-1"));
    assert_eq!(m.headers().get("message-id"), Some("m-1"));
    assert_eq!(m.reply_to(), Some("some.queue"));
    m.ack().await.unwrap();
    raw.close(200, "done".into()).await.unwrap();
    conn.shutdown().await.unwrap();
}

#[tokio::test]
async fn settling_after_shutdown_is_closed_and_shutdown_is_idempotent() {
    if !rabbit() {
        return;
    }
    let conn = AmqpBroker::new(config("after")).connect().await.unwrap();
    let clone = conn.clone();
    let mut sub = conn
        .subscribe(&addr("after"), SubscribeOptions::new())
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("after", "x"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    conn.shutdown().await.unwrap();
    assert!(matches!(m.ack().await, Err(Error::Closed)));
    assert!(matches!(
        clone.publish(OutgoingMessage::new("after", "y")).await,
        Err(Error::Closed)
    ));
    assert!(matches!(clone.flush().await, Err(Error::Closed)));
    clone.shutdown().await.unwrap();
}

#[tokio::test]
async fn prefetch_bounds_unsettled_deliveries() {
    if !rabbit() {
        return;
    }
    let conn = AmqpBroker::new(config("prefetch")).connect().await.unwrap();
    let mut sub = conn
        .subscribe(&addr("pf"), SubscribeOptions::new().prefetch(2))
        .await
        .unwrap();
    for i in 0..5 {
        conn.publish(OutgoingMessage::new("pf", i.to_string()))
            .await
            .unwrap();
    }
    let first = next(&mut sub).await;
    let second = next(&mut sub).await;
    quiet(&mut sub).await;
    first.ack().await.unwrap();
    let third = next(&mut sub).await;
    assert_eq!(third.payload(), b"2");
    quiet(&mut sub).await;
    second.ack().await.unwrap();
    third.ack().await.unwrap();
    for want in [b"3", b"4"] {
        let m = next(&mut sub).await;
        assert_eq!(m.payload(), want);
        m.ack().await.unwrap();
    }
    conn.shutdown().await.unwrap();
}

/// A queue that refuses publishes beyond one message (`x-overflow: reject-publish`) makes
/// RabbitMQ nack the publish: with confirms, `publish` reports it; without, it cannot know.
#[tokio::test]
async fn publish_waits_for_the_publisher_confirm() {
    if !rabbit() {
        return;
    }
    let cfg = config("confirms");
    let exchange = cfg.exchange.clone();
    let conn = AmqpBroker::new(cfg.clone()).connect().await.unwrap();
    let raw =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await
            .unwrap();
    let channel = raw.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    let options = lapin::options::QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let queue = channel
        .queue_declare("".into(), options, args)
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.name().clone(),
            exchange.as_str().into(),
            "full".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("full", "1"))
        .await
        .unwrap();
    let err = conn
        .publish(OutgoingMessage::new("full", "2"))
        .await
        .expect_err("the broker nacks a publish to a full reject-publish queue");
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    conn.shutdown().await.unwrap();

    let unconfirmed = AmqpBroker::new(cfg.publisher_confirms(false))
        .connect()
        .await
        .unwrap();
    unconfirmed
        .publish(OutgoingMessage::new("full", "3"))
        .await
        .expect("without confirms the nack is not seen");
    unconfirmed.shutdown().await.unwrap();
    raw.close(200, "done".into()).await.unwrap();
}

#[tokio::test]
async fn subscription_recovers_when_its_queue_is_deleted_under_it() {
    if !rabbit() {
        return;
    }
    let cfg = config("qdel");
    let queue = format!("{}/qd/g", cfg.exchange);
    let conn = AmqpBroker::new(cfg).connect().await.unwrap();
    let mut sub = conn
        .subscribe(&addr("qd"), SubscribeOptions::new().queue_group("g"))
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("qd", "before"))
        .await
        .unwrap();
    next(&mut sub).await.ack().await.unwrap();

    let raw =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await
            .unwrap();
    let channel = raw.create_channel().await.unwrap();
    channel
        .queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    // The server cancels the consumer; the subscription re-declares its queue and consumes again.
    let mut recovered = false;
    for _ in 0..50 {
        conn.publish(OutgoingMessage::new("qd", "after"))
            .await
            .unwrap();
        if let Ok(Some(Ok(m))) = tokio::time::timeout(
            Duration::from_millis(200),
            futures_util::StreamExt::next(&mut sub),
        )
        .await
        {
            assert_eq!(m.payload(), b"after");
            m.ack().await.unwrap();
            recovered = true;
            break;
        }
    }
    assert!(recovered, "no delivery after the queue was re-declared");
    raw.close(200, "done".into()).await.unwrap();
    conn.shutdown().await.unwrap();
}

/// A plain AMQP RPC client (exclusive server-named reply queue) gets the reply a RustStream
/// responder publishes to the request's `reply_to`.
#[tokio::test]
async fn replies_reach_a_plain_amqp_rpc_client() {
    if !rabbit() {
        return;
    }
    let cfg = config("rpc-interop");
    let exchange = cfg.exchange.clone();
    let conn = AmqpBroker::new(cfg).connect().await.unwrap();
    let mut requests = conn
        .subscribe(&addr("rpc.sum"), SubscribeOptions::new())
        .await
        .unwrap();

    let raw =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await
            .unwrap();
    let channel = raw.create_channel().await.unwrap();
    let options = lapin::options::QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    let reply_queue = channel
        .queue_declare("".into(), options, FieldTable::default())
        .await
        .unwrap();
    assert!(reply_queue.name().as_str().starts_with("amq.gen-"));
    let mut replies = channel
        .basic_consume(
            reply_queue.name().clone(),
            "".into(),
            lapin::options::BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let props = lapin::BasicProperties::default()
        .with_reply_to(reply_queue.name().clone())
        .with_correlation_id("rpc-1".into());
    channel
        .basic_publish(
            exchange.as_str().into(),
            "rpc.sum".into(),
            BasicPublishOptions::default(),
            b"[4,3]",
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();

    let request = next(&mut requests).await;
    let reply_to = request.reply_to().unwrap().to_owned();
    let reply =
        OutgoingMessage::new(reply_to, "7").correlation_id(request.correlation_id().unwrap());
    conn.publish(reply).await.unwrap();
    request.ack().await.unwrap();

    let delivery = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut replies),
    )
    .await
    .expect("reply within 5s")
    .unwrap()
    .unwrap();
    assert_eq!(delivery.data, b"7");
    assert_eq!(
        delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("rpc-1")
    );
    raw.close(200, "done".into()).await.unwrap();
    conn.shutdown().await.unwrap();
}
