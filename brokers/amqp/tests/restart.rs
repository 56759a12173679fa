//! Restart: the test starts its own RabbitMQ node (`rabbitmq-server`, own name, ports, data
//! and log directories under a temp dir), streams messages through a durable queue, stops the
//! node mid-stream (SIGTERM, graceful), starts it again on the same port and data, and checks
//! that every confirmed message arrives (at-least-once: duplicates allowed, no gaps).

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_amqp::{AmqpBroker, Config, Reconnect};

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// Two distinct free ports (both listeners are held until both are chosen).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = |l: &TcpListener| l.local_addr().expect("local address").port();
    (port(&a), port(&b))
}

/// A private RabbitMQ node; stopped (and its directory removed) on drop.
struct Node {
    dir: PathBuf,
    name: String,
    port: u16,
    dist_port: u16,
    child: Option<Child>,
}

impl Node {
    fn new() -> Node {
        let (port, dist_port) = free_ports();
        let dir = std::env::temp_dir().join(format!("ruststream-amqp-node-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("mnesia")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        std::fs::write(
            dir.join("rabbitmq.conf"),
            format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        Node {
            name: format!("rstest{port}@localhost"),
            dir,
            port,
            dist_port,
            child: None,
        }
    }

    fn start(&mut self) {
        let t = Instant::now();
        let d = |p: &str| self.dir.join(p);
        let child = Command::new(SERVER)
            .current_dir(&self.dir)
            .env("RABBITMQ_NODENAME", &self.name)
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf"))
            .env("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d("mnesia"))
            .env("RABBITMQ_LOG_BASE", d("log"))
            .env("HOME", &self.dir)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rabbitmq-server");
        self.child = Some(child);
        wait_until(
            // Erlang boots in ~5 s on an idle machine, far slower under a parallel build.
            Duration::from_secs(120),
            || port_open(self.port),
            "node accepts AMQP",
        );
        eprintln!("node started in {:?}", t.elapsed());
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let t = Instant::now();
            // The start script forwards SIGTERM to the Erlang VM, which stops gracefully.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
            wait_until(
                Duration::from_secs(30),
                || !port_open(self.port),
                "node stopped",
            );
            eprintln!("node stopped in {:?}", t.elapsed());
        }
    }

    fn uri(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server_available() -> bool {
    if Path::new(SERVER).exists() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(!ci, "CI requires {SERVER} for the restart test");
    eprintln!("skipping: {SERVER} not installed");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_loses_no_confirmed_message() {
    if !server_available() {
        return;
    }
    let mut node = tokio::task::block_in_place(|| {
        let mut node = Node::new();
        node.start();
        node
    });
    let reconnect = Reconnect::backoff(Duration::from_millis(100), Duration::from_millis(500));
    let cfg = Config::new(node.uri())
        .exchange("restart", ruststream_amqp::ExchangeKind::Topic)
        .reconnect(reconnect);
    let publisher = AmqpBroker::new(cfg.clone()).connect().await.unwrap();
    let subscriber = AmqpBroker::new(cfg).connect().await.unwrap();
    let mut sub = subscriber
        .subscribe(
            &Address::parse("rs.{n}").unwrap(),
            SubscribeOptions::new().durable("restart-test"),
        )
        .await
        .unwrap();

    const N: usize = 100;
    let (progress_tx, mut progress) = tokio::sync::watch::channel(0usize);
    let producer = tokio::spawn(async move {
        for i in 0..N {
            // `publish` resolves once confirmed; across the restart it waits for the reconnect.
            let mut failures = 0;
            while let Err(e) = publisher
                .publish(OutgoingMessage::new(format!("rs.{i}"), i.to_string()))
                .await
            {
                failures += 1;
                assert!(failures < 100, "publish {i} keeps failing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            progress_tx.send_replace(i + 1);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        publisher
    });

    // Stop the node once a third is published, start it again on the same data.
    progress.wait_for(|n| *n >= N / 3).await.unwrap();
    tokio::task::block_in_place(|| {
        node.stop();
        node.start();
    });

    let mut got = BTreeSet::new();
    while got.len() < N {
        let m = match tokio::time::timeout(Duration::from_secs(30), sub.next()).await {
            Ok(Some(Ok(m))) => m,
            other => panic!(
                "delivery stopped after {} of {N}: {:?}",
                got.len(),
                other.map(|o| o.map(|r| r.map(|m| m.address().to_owned())))
            ),
        };
        got.insert(String::from_utf8_lossy(m.payload()).into_owned());
        let _ = m.ack().await;
    }
    let publisher = producer.await.unwrap();
    assert!(publisher.generation() >= 2 && subscriber.generation() >= 2);

    // With the node down for good, a publish waits in the reconnect loop; shutdown ends that
    // wait with `Closed` instead of hanging.
    tokio::task::block_in_place(|| node.stop());
    let waiting = publisher.clone();
    let pending =
        tokio::spawn(async move { waiting.publish(OutgoingMessage::new("rs.x", "x")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "publish waits for the reconnect");
    let quick = Duration::from_secs(5);
    tokio::time::timeout(quick, publisher.shutdown())
        .await
        .expect("shutdown during reconnect does not hang")
        .unwrap();
    let result = tokio::time::timeout(quick, pending).await.unwrap().unwrap();
    assert!(
        matches!(result, Err(ruststream::Error::Closed)),
        "{result:?}"
    );
    tokio::time::timeout(quick, subscriber.shutdown())
        .await
        .expect("subscriber shutdown during reconnect does not hang")
        .unwrap();
    tokio::task::block_in_place(|| drop(node));
}
