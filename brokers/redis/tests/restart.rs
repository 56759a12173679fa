//! Restart: the test runs its own `redis-server` (AOF on, `appendfsync always`) on a free
//! port, kills it (SIGKILL) mid-stream and starts it again on the same data directory.
//!
//! Guarantee asserted: every publish that returned `Ok` is delivered at least once after the
//! restart (consumer group and pending entries are in the AOF); publishes attempted while the
//! server is down fail with a transport error and succeed once retried; the subscription
//! reconnects by itself.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_redis::{Config, RedisStreams, StreamOptions};

struct Server {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(port: u16, dir: PathBuf) -> Server {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child: Some(child),
            port,
            dir,
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn publish_retrying<C: Publisher>(conn: &C, stream: &str, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match conn
            .publish(OutgoingMessage::new(stream.to_owned(), i.to_string()))
            .await
        {
            Ok(()) => return,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "publish {i} never succeeded: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_published_is_lost_across_a_server_restart() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("redis-server is required under CI");
        }
        eprintln!("skipping: redis-server not installed");
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rs-redis-restart-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Server::start(port, dir.clone());
    let config = Config::new(format!("redis://127.0.0.1:{port}")).streams(
        StreamOptions::new()
            .block(Duration::from_millis(200))
            .claim_idle(Duration::from_secs(1)),
    );
    let conn = RedisStreams::new(config).connect().await.unwrap();
    let stream = "restart.orders";
    let mut sub = conn
        .subscribe(
            &Address::parse(stream).unwrap(),
            SubscribeOptions::new().queue_group("workers"),
        )
        .await
        .unwrap();

    let total = 100;
    let mut got = BTreeSet::new();
    for i in 0..total / 2 {
        publish_retrying(&conn, stream, i).await;
    }
    // Consume part of it, then crash the server.
    for _ in 0..20 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.insert(String::from_utf8(m.payload().to_vec()).unwrap());
        m.ack().await.unwrap();
    }
    server.kill();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = Server::start(port, dir);
        (s.port, s)
    });
    for i in total / 2..total {
        publish_retrying(&conn, stream, i).await;
    }
    let (_, server) = restart.await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "lost messages: got {} of {total}",
            got.len()
        );
        match tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
            Ok(Some(Ok(m))) => {
                got.insert(String::from_utf8(m.payload().to_vec()).unwrap());
                let _ = m.ack().await;
            }
            Ok(Some(Err(e))) => panic!("subscription error: {e}"),
            Ok(None) => panic!("subscription ended"),
            Err(_) => {}
        }
    }
    let want: BTreeSet<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    drop(sub);
    conn.shutdown().await.unwrap();
    let dir = server.dir.clone();
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// Pub/Sub is fire-and-forget: what is published while the server is down is lost, but the
/// subscription resubscribes by itself and receives what is published after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_subscriptions_resume_after_a_server_restart() {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("redis-server is required under CI");
        }
        eprintln!("skipping: redis-server not installed");
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rs-redis-ps-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = Server::start(port, dir.clone());
    let config = Config::new(format!("redis://127.0.0.1:{port}"));
    let conn = ruststream_redis::RedisPubSub::new(config)
        .connect()
        .await
        .unwrap();
    let mut sub = conn
        .subscribe(
            &Address::parse("news.{topic}").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    conn.publish(OutgoingMessage::new("news.a", "before"))
        .await
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(m.payload(), b"before");

    server.kill();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = Server::start(port, dir.clone());
    // Publish until the resubscribed subscription sees a message (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let received = loop {
        assert!(Instant::now() < deadline, "subscription never resumed");
        let _ = conn
            .publish(OutgoingMessage::new("news.b", "after").header("k", "v"))
            .await;
        if let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await
        {
            break m;
        }
    };
    assert_eq!(received.payload(), b"after");
    assert_eq!(received.headers().get("k"), Some("v"));
    assert_eq!(received.address(), "news.b");
    drop(sub);
    conn.shutdown().await.unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
