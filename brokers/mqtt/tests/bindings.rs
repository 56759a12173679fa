//! QoS and retain from AsyncAPI MQTT operation bindings, against the real Mosquitto on
//! 127.0.0.1:1883, observed with a raw rumqttc v5 subscriber at QoS 2.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use ruststream::{Broker, OutgoingMessage, Publisher};
use ruststream_mqtt::{Config, Mqtt, Qos};

fn up() -> bool {
    ruststream::testing::require_service("mqtt", "127.0.0.1:1883")
}

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("rstest/{}-{nanos}/{what}", std::process::id())
}

/// A raw client subscribed to `filter` at QoS 2 (SUBACK received).
async fn raw_subscriber(filter: &str) -> (AsyncClient, EventLoop) {
    let id = format!("rs-raw-{}", unique("sub").replace('/', "-"));
    let mut opts = MqttOptions::new(id, "127.0.0.1", 1883);
    opts.set_keep_alive(Duration::from_secs(10));
    let (client, mut el) = AsyncClient::new(opts, 16);
    client
        .subscribe(filter, QoS::ExactlyOnce)
        .await
        .expect("subscribe queued");
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = el.poll().await.expect("raw connection") {
                return;
            }
        }
    })
    .await
    .expect("SUBACK within 5 s");
    (client, el)
}

async fn next_publish(el: &mut EventLoop) -> Publish {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = el.poll().await.expect("raw connection") {
                return p;
            }
        }
    })
    .await
    .expect("a publish within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_and_retain_bindings_set_what_is_published() {
    if !up() {
        return;
    }
    let base = unique("bindings");
    let alerts = format!("{base}/alerts/{{site}}");
    let ticks = format!("{base}/ticks");
    let state = format!("{base}/state");
    // As the generated `BINDINGS` of a spec with three send operations.
    let bindings: &[(&str, &str)] = &[
        ("sendAlert", r#"{"operation":{"mqtt":{"qos":2}}}"#),
        ("sendTick", r#"{"operation":{"mqtt":{"qos":0}}}"#),
        (
            "sendState",
            r#"{"operation":{"mqtt":{"qos":1,"retain":true}}}"#,
        ),
    ];
    let config = Config::new("127.0.0.1", 1883)
        .default_qos(Qos::AtLeastOnce)
        .with_spec_bindings(
            bindings,
            &[
                ("sendAlert", &alerts),
                ("sendTick", &ticks),
                ("sendState", &state),
            ],
        )
        .unwrap();
    let conn = Mqtt::new(config).connect().await.unwrap();

    let (_raw, mut el) = raw_subscriber(&format!("{base}/#")).await;
    conn.publish(OutgoingMessage::new(format!("{base}/alerts/north"), "fire"))
        .await
        .unwrap();
    let p = next_publish(&mut el).await;
    assert_eq!(&p.topic[..], format!("{base}/alerts/north").as_bytes());
    assert_eq!(p.qos, QoS::ExactlyOnce, "QoS 2 binding publishes at QoS 2");
    assert!(!p.retain);

    conn.publish(OutgoingMessage::new(ticks.clone(), "tick"))
        .await
        .unwrap();
    let p = next_publish(&mut el).await;
    assert_eq!(&p.payload[..], b"tick");
    assert_eq!(p.qos, QoS::AtMostOnce, "QoS 0 binding publishes at QoS 0");

    // Retained: a subscriber arriving later still gets it, flagged retained, at QoS 1.
    conn.publish(OutgoingMessage::new(state.clone(), "on"))
        .await
        .unwrap();
    let p = next_publish(&mut el).await;
    assert_eq!(&p.payload[..], b"on");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    let (late, mut late_el) = raw_subscriber(&state).await;
    let p = next_publish(&mut late_el).await;
    assert_eq!(&p.payload[..], b"on");
    assert!(p.retain, "retain binding publishes retained");
    assert_eq!(p.qos, QoS::AtLeastOnce);

    // Clear the retained message on the shared broker.
    late.publish(state.as_str(), QoS::AtLeastOnce, true, Vec::<u8>::new())
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(Event::Incoming(Packet::PubAck(_))) | Err(_) = late_el.poll().await {
                return;
            }
        }
    })
    .await;
}
