//! AsyncAPI AMQP bindings drive one connection: each operation's address on its own exchange
//! or queue, declared on connect, with the operation's message properties; checked with a
//! plain AMQP client on the other side.

mod common;

use common::{next, rabbit, unique};
use lapin::options::{
    BasicGetOptions, BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use ruststream::{
    Address, Broker, Connection, Error, IncomingMessage, OutgoingMessage, Publisher,
    SubscribeOptions, Subscriber,
};
use ruststream_amqp::{AmqpBroker, Config};

async fn raw() -> (lapin::Connection, lapin::Channel) {
    let raw =
        lapin::Connection::connect("amqp://guest:guest@127.0.0.1:5672/%2f", Default::default())
            .await
            .unwrap();
    let channel = raw.create_channel().await.unwrap();
    (raw, channel)
}

async fn get(channel: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    for _ in 0..50 {
        if let Some(m) = channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing in queue {queue}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_serves_each_operation_on_its_own_exchange_or_queue() {
    if !rabbit() {
        return;
    }
    let (jobs, direct, copy) = (unique("jobs"), unique("direct"), unique("copy"));
    let (events, events_queue, headers) = (unique("ev"), unique("evq"), unique("hx"));
    let bindings = [
        (
            "sendJob",
            format!(
                r#"{{"channel":{{"amqp":{{"is":"queue","queue":{{"name":"{jobs}","durable":false,"autoDelete":false,"vhost":"/"}}}}}},
                    "operation":{{"amqp":{{"deliveryMode":2,"priority":7,"expiration":60000,"bindingVersion":"0.3.0"}}}},
                    "messages":{{"job":{{"amqp":{{"messageType":"job.v1"}}}}}}}}"#
            ),
        ),
        (
            "sendDone",
            format!(
                r#"{{"channel":{{"amqp":{{"is":"routingKey","exchange":{{"type":"default","vhost":"/"}}}}}},
                    "operation":{{"amqp":{{"mandatory":true,"deliveryMode":1,"cc":["{direct}","{copy}"]}}}}}}"#
            ),
        ),
        (
            "onEvent",
            format!(
                r#"{{"channel":{{"amqp":{{"is":"routingKey","exchange":{{"name":"{events}","type":"topic","durable":false,"autoDelete":true}},
                    "queue":{{"name":"{events_queue}","durable":false,"exclusive":true}}}}}},
                    "operation":{{"amqp":{{"ack":false}}}}}}"#
            ),
        ),
        (
            "onHeaders",
            format!(
                r#"{{"channel":{{"amqp":{{"exchange":{{"name":"{headers}","type":"headers","durable":false,"autoDelete":true}}}}}}}}"#
            ),
        ),
    ];
    let bindings: Vec<(&str, &str)> = bindings.iter().map(|(o, j)| (*o, j.as_str())).collect();
    let addresses = [
        ("sendJob", "jobs.{id}"),
        ("sendDone", direct.as_str()),
        ("onEvent", "ev.{kind}"),
        ("onHeaders", "hdr.a"),
    ];
    let config = Config::default()
        .with_spec_bindings(&bindings, &addresses)
        .unwrap();
    assert!(
        config.binding_warnings().is_empty(),
        "{:?}",
        config.binding_warnings()
    );
    let conn = AmqpBroker::new(config).connect().await.unwrap();
    let (_raw, channel) = raw().await;

    // `is: queue`: declared on connect, published through the default exchange, with the
    // operation's and message's properties; content type and correlation id as properties.
    let job = OutgoingMessage::new("jobs.1", r#"{"id":1}"#)
        .content_type("application/json")
        .correlation_id("c-1")
        .header("x-tenant", "acme");
    conn.publish(job).await.unwrap();
    let got = get(&channel, &jobs).await;
    let p = &got.delivery.properties;
    assert_eq!(got.delivery.data, br#"{"id":1}"#);
    assert_eq!(got.delivery.routing_key.as_str(), jobs);
    assert_eq!(*p.priority(), Some(7));
    assert_eq!(*p.delivery_mode(), Some(2));
    assert_eq!(p.expiration().as_ref().map(|e| e.as_str()), Some("60000"));
    assert_eq!(p.kind().as_ref().map(|e| e.as_str()), Some("job.v1"));
    assert_eq!(
        p.content_type().as_ref().map(|e| e.as_str()),
        Some("application/json")
    );
    assert_eq!(p.correlation_id().as_ref().map(|e| e.as_str()), Some("c-1"));
    let tenant = p
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-tenant").cloned());
    assert_eq!(tenant, Some(AMQPValue::LongString("acme".into())));

    // Default exchange: the routing key names the queue; `cc` copies to another one.
    for queue in [&direct, &copy] {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }
    conn.publish(OutgoingMessage::new(direct.as_str(), "done"))
        .await
        .unwrap();
    for queue in [&direct, &copy] {
        let got = get(&channel, queue).await;
        assert_eq!(got.delivery.data, b"done");
        assert_eq!(*got.delivery.properties.delivery_mode(), Some(1));
    }
    // `mandatory`: with no queue to route to, the publish fails instead of vanishing.
    for queue in [&direct, &copy] {
        channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
            .unwrap();
    }
    let err = conn
        .publish(OutgoingMessage::new(direct.as_str(), "lost"))
        .await
        .expect_err("unroutable mandatory publish");
    assert!(err.to_string().contains("unroutable"), "{err}");

    // A topic exchange of its own with a named subscriber queue, consumed without acks.
    let mut sub = conn
        .subscribe(
            &Address::parse("ev.{kind}").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            events.as_str().into(),
            "ev.created".into(),
            BasicPublishOptions::default(),
            b"created",
            lapin::BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!((m.address(), m.payload()), ("ev.created", &b"created"[..]));
    assert!(matches!(m.nack(true).await, Err(Error::Unsupported(_))));
    // The subscription's queue is the binding's (exclusive: another connection cannot use it).
    let (_raw2, other) = raw().await;
    assert!(
        other
            .queue_declare(
                events_queue.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .is_err()
    );

    // A headers exchange: subscribers bind for every message and keep their address's.
    let mut sub = conn
        .subscribe(&Address::parse("hdr.a").unwrap(), SubscribeOptions::new())
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("hdr.a", "h").header("kind", "x"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.headers().get("kind"), Some("x"));
    m.ack().await.unwrap();

    channel
        .queue_delete(jobs.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    conn.shutdown().await.unwrap();
}

/// A queue the binding describes is declared as the binding says, whatever the connection's
/// queue defaults (here quorum queues with an expiry): the same declaration another client of
/// the document makes, so neither is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_queues_ignore_the_connection_queue_defaults() {
    if !rabbit() {
        return;
    }
    let queue = unique("plain");
    let json = format!(
        r#"{{"channel":{{"amqp":{{"is":"queue","queue":{{"name":"{queue}","durable":false,"autoDelete":true}}}}}}}}"#
    );
    let config = Config::default()
        .queue_type(ruststream_amqp::QueueType::Quorum)
        .queue_expires(std::time::Duration::from_secs(30))
        .with_spec_bindings(&[("onPlain", json.as_str())], &[("onPlain", "plain")])
        .unwrap();
    let conn = AmqpBroker::new(config).connect().await.unwrap();
    // Another client declared it first, as the binding says (a classic queue, no arguments).
    let (_raw, channel) = raw().await;
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declared on connect");
    let mut sub = conn
        .subscribe(&Address::parse("plain").unwrap(), SubscribeOptions::new())
        .await
        .expect("the subscription declares it the same way");
    conn.publish(OutgoingMessage::new("plain", "p"))
        .await
        .unwrap();
    let m = next(&mut sub).await;
    // The channel's address, not the queue name it was routed by.
    assert_eq!((m.address(), m.payload()), ("plain", &b"p"[..]));
    m.ack().await.unwrap();
    drop(sub);
    conn.shutdown().await.unwrap();
}
