//! JetStream survives a server crash: the test runs its own `nats-server` on a free port, kills
//! it mid-stream, restarts it on the same store, and checks that nothing was lost.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ruststream::{
    Address, Broker, Connection, IncomingMessage, OutgoingMessage, Publisher, SubscribeOptions,
    Subscriber,
};
use ruststream_nats::{Config, JetStreamConfig, NatsBroker};

const NATS_SERVER: &str = "/usr/sbin/nats-server";
const MESSAGES: usize = 120;

/// A `nats-server` child process with JetStream; killed (and its store removed) on drop.
struct Server {
    child: Option<Child>,
    port: u16,
    store: PathBuf,
}

impl Server {
    fn start(port: u16, store: &Path) -> Child {
        let child = Command::new(NATS_SERVER)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn new() -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let store =
            std::env::temp_dir().join(format!("ruststream-nats-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&store).expect("store dir");
        let child = Some(Server::start(port, &store));
        Server { child, port, store }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.child = Some(Server::start(self.port, &self.store));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_loses_nothing_across_a_server_restart() {
    if !Path::new(NATS_SERVER).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{NATS_SERVER} is required under CI"
        );
        eprintln!("skipping: {NATS_SERVER} not installed");
        return;
    }
    let mut server = Server::new();
    let config = Config::new(format!("nats://127.0.0.1:{}", server.port))
        .client_name("ruststream-reconnect")
        .request_timeout(Duration::from_secs(1));
    let js = JetStreamConfig::new("RECONNECT", ["recon.>"]);
    let broker = || NatsBroker::jetstream(config.clone(), js.clone());
    let subscriber = broker().connect().await.expect("connect subscriber");
    let publisher = broker().connect().await.expect("connect publisher");
    let address = Address::parse("recon.events").expect("address");
    let options = SubscribeOptions::new().durable("recon-worker");
    let mut sub = subscriber
        .subscribe(&address, options.clone())
        .await
        .expect("subscribe");

    let publishing = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            let mut retries = 0usize;
            for i in 0..MESSAGES {
                // A stable message id lets the stream drop a retried duplicate.
                let msg = OutgoingMessage::new("recon.events", format!("{i}"))
                    .header("Nats-Msg-Id", format!("recon-{i}"));
                let deadline = Instant::now() + Duration::from_secs(30);
                while let Err(e) = publisher.publish(msg.clone()).await {
                    assert!(Instant::now() < deadline, "publish {i} kept failing: {e}");
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            retries
        })
    };

    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    let mut restarted = false;
    let mut errors = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < MESSAGES {
        assert!(
            Instant::now() < deadline,
            "only {} of {MESSAGES} messages arrived; missing e.g. {:?}",
            seen.len(),
            (0..MESSAGES)
                .filter(|i| !seen.contains_key(i))
                .take(5)
                .collect::<Vec<_>>()
        );
        if !restarted && seen.len() >= MESSAGES / 3 {
            // Crash (SIGKILL), stay down long enough for publishes to fail, come back.
            server.kill();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            server.restart();
            restarted = true;
        }
        match tokio::time::timeout(Duration::from_secs(2), sub.next()).await {
            Ok(Some(Ok(m))) => {
                let i: usize = std::str::from_utf8(m.payload())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("numeric payload");
                *seen.entry(i).or_default() += 1;
                // An ack lost in the crash means a redelivery (counted as a duplicate).
                let _ = m.ack().await;
            }
            Ok(Some(Err(_))) => errors += 1,
            Ok(None) => {
                // The pull stream gave up: resume the durable consumer.
                sub = subscriber
                    .subscribe(&address, options.clone())
                    .await
                    .unwrap_or_else(|e| panic!("resubscribe: {e}"));
            }
            Err(_) => {}
        }
    }
    let retries = publishing.await.expect("publisher task");
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "reconnect: {MESSAGES} delivered, {duplicates} duplicate deliveries, \
         {retries} publish retries, {errors} stream errors"
    );
    assert!(restarted, "the server was restarted mid-stream");
    assert_eq!(seen.len(), MESSAGES);
    subscriber.shutdown().await.expect("shutdown");
    publisher.shutdown().await.expect("shutdown");
}
