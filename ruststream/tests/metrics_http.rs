//! The `/metrics` and `/health` endpoint, scraped over a raw TCP connection.
#![cfg(feature = "metrics")]

use std::net::SocketAddr;
use std::time::Duration;

use ruststream::metrics::{Metrics, Readiness, serve};
use ruststream::router::RouterStats;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap();
    (status, body)
}

#[tokio::test]
async fn health_follows_readiness_and_metrics_move() {
    let metrics = Metrics::new("scraped").unwrap();
    let readiness = Readiness::new();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        readiness.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr();

    assert_eq!(get(addr, "/health").await, (503, "not ready\n".into()));
    readiness.set(true);
    assert_eq!(get(addr, "/health").await, (200, "ready\n".into()));
    assert_eq!(get(addr, "/nope").await.0, 404);

    let stats = Arc::new(RouterStats::default());
    metrics.watch_router("memory", &[("onOrder".to_owned(), Arc::clone(&stats))]);
    stats.received.fetch_add(1, Ordering::Relaxed);
    stats.acked.fetch_add(1, Ordering::Relaxed);
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(body.contains(
        r#"ruststream_messages_handled_total{app="scraped",broker="memory",operation="onOrder",outcome="ack"} 1"#
    ), "{body}");

    stats.received.fetch_add(1, Ordering::Relaxed);
    stats.acked.fetch_add(1, Ordering::Relaxed);
    let (_, body) = get(addr, "/metrics").await;
    assert!(body.contains(
        r#"ruststream_messages_received_total{app="scraped",broker="memory",operation="onOrder"} 2"#
    ), "{body}");

    server.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn metered_publisher_counts_status_and_duration() {
    use ruststream::memory::MemoryBroker;
    use ruststream::metrics::MeteredPublisher;
    use ruststream::{Broker, Connection, OutgoingMessage, Publisher};

    let metrics = Metrics::new("pub").unwrap();
    let conn = MemoryBroker::default().connect().await.unwrap();
    let publisher = MeteredPublisher::new(conn.clone(), &metrics, "memory", "sendThing");
    publisher
        .publish(OutgoingMessage::new("things", "1"))
        .await
        .unwrap();
    conn.shutdown().await.unwrap();
    assert!(
        publisher
            .publish(OutgoingMessage::new("things", "2"))
            .await
            .is_err()
    );
    let text = metrics.render();
    let l = r#"app="pub",broker="memory",operation="sendThing""#;
    for line in [
        format!("ruststream_messages_published_total{{{l},status=\"ok\"}} 1"),
        format!("ruststream_messages_published_total{{{l},status=\"error\"}} 1"),
        format!("ruststream_publish_duration_seconds_count{{{l}}} 2"),
    ] {
        assert!(text.contains(&line), "missing `{line}` in\n{text}");
    }
}
