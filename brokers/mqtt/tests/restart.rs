//! Restart: the test runs its own `mosquitto` (persistence on) on a free port, stops it
//! (SIGTERM, which writes the persistence file) mid-stream and starts it again.
//!
//! Guarantee asserted (QoS 1, persistent sessions on both sides): every message published is
//! delivered at least once. Publishes issued while the broker is down wait in the client and
//! resolve once the broker has acknowledged them after the restart; the subscriber's session
//! (subscription and queued messages) survives the restart.

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
use ruststream_mqtt::{Config, Mqtt, Qos};

struct Server {
    child: Option<Child>,
    conf: PathBuf,
}

impl Server {
    fn start(port: u16, dir: &std::path::Path) -> Server {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child: Some(child),
            conf,
        }
    }

    /// Graceful stop (SIGTERM): mosquitto saves its persistence file.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // The shell's builtin `kill`: no extra package needed.
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -TERM {}", c.id())])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_persistent_sessions_lose_nothing_across_a_broker_restart() {
    if Command::new("mosquitto").arg("-h").output().is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("mosquitto is required under CI");
        }
        eprintln!("skipping: mosquitto not installed");
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rs-mqtt-restart-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Started as root, mosquitto drops to its own user: it must be able to write here.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut server = Server::start(port, &dir);
    let id = format!("rsrestart{}{port}", std::process::id());
    let session = |who: &str| {
        Config::new("127.0.0.1", port)
            .default_qos(Qos::AtLeastOnce)
            .persistent_session(format!("{id}-{who}"), Duration::from_secs(300))
    };
    let sub_conn = Mqtt::new(session("sub")).connect().await.unwrap();
    let publisher = Mqtt::new(session("pub")).connect().await.unwrap();
    let topic = "restart/orders";
    let mut sub = sub_conn
        .subscribe(&Address::parse(topic).unwrap(), SubscribeOptions::new())
        .await
        .unwrap();

    let total = 60;
    let mut got = BTreeSet::new();
    for i in 0..total / 2 {
        publisher
            .publish(OutgoingMessage::new(topic, i.to_string()))
            .await
            .unwrap();
    }
    for _ in 0..10 {
        let m = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.insert(String::from_utf8(m.payload().to_vec()).unwrap());
        m.ack().await.unwrap();
    }
    server.stop();
    // Publish while the broker is down; these resolve after the restart.
    let pending = {
        let publisher = publisher.clone();
        tokio::spawn(async move {
            for i in total / 2..total {
                publisher
                    .publish(OutgoingMessage::new(topic, i.to_string()))
                    .await
                    .unwrap();
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = Server::start(port, &dir);
    tokio::time::timeout(Duration::from_secs(20), pending)
        .await
        .expect("publishes resolve after the restart")
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < total {
        assert!(
            Instant::now() < deadline,
            "lost messages: got {} of {total}: {got:?}",
            got.len()
        );
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
            let m = m.unwrap();
            got.insert(String::from_utf8(m.payload().to_vec()).unwrap());
            m.ack().await.unwrap();
        }
    }
    let want: BTreeSet<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
    drop(sub);
    publisher.shutdown().await.unwrap();
    sub_conn.shutdown().await.unwrap();
    let _ = &server.conf;
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// A clean session loses its subscriptions when the broker restarts; the connection subscribes
/// again by itself (its subscriptions and its reply inbox), so delivery and request/reply resume.
/// QoS 1 messages published while it was away are not kept (clean session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_sessions_resubscribe_after_a_broker_restart() {
    use ruststream::capability::RequestReply;
    if Command::new("mosquitto").arg("-h").output().is_err() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("mosquitto is required under CI");
        }
        eprintln!("skipping: mosquitto not installed");
        return;
    }
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rs-mqtt-clean-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut server = Server::start(port, &dir);
    let conn = Mqtt::new(Config::new("127.0.0.1", port))
        .connect()
        .await
        .unwrap();
    let mut events = conn
        .subscribe(
            &Address::parse("svc/events").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    let mut requests = conn
        .subscribe(
            &Address::parse("svc/echo").unwrap(),
            SubscribeOptions::new(),
        )
        .await
        .unwrap();
    let responder = {
        let conn = conn.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = requests.next().await {
                let mut reply =
                    OutgoingMessage::new(m.reply_to().unwrap_or_default(), m.payload().to_vec());
                if let Some(c) = m.correlation_id() {
                    reply = reply.correlation_id(c.to_owned());
                }
                let _ = conn.publish(reply).await;
                let _ = m.ack().await;
            }
        })
    };
    let r = conn
        .request(
            OutgoingMessage::new("svc/echo", "before"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(&r.payload[..], b"before");

    server.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = Server::start(port, &dir);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "subscription never resumed");
        tokio::time::timeout(
            Duration::from_secs(5),
            conn.publish(OutgoingMessage::new("svc/events", "after")),
        )
        .await
        .expect("publish resolves after the restart")
        .unwrap();
        if let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(200), events.next()).await
        {
            assert_eq!(m.payload(), b"after");
            m.ack().await.unwrap();
            break;
        }
    }
    let r = conn
        .request(
            OutgoingMessage::new("svc/echo", "after"),
            Duration::from_secs(5),
        )
        .await
        .expect("request/reply works after the restart");
    assert_eq!(&r.payload[..], b"after");
    drop(events);
    conn.clone().shutdown().await.unwrap();
    responder.abort();
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
