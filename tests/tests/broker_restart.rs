//! A service keeps going while its broker is killed and restarted mid-stream.
//!
//! For each broker crate with an at-least-once mode, the test starts its own server process
//! (persistence on) on a free port, runs a router on it, publishes `RELIABILITY_MESSAGES`
//! messages (default 5,000; the figure is 100,000) and kills the server (SIGKILL; SIGTERM
//! for Mosquitto, whose persistence is written at shutdown) half-way, then starts it again on
//! the same port and data directory. The publisher retries failed publishes (at-least-once on
//! the way in). Asserted: every message is handled at least once, without restarting the
//! service or reconnecting by hand; duplicates are counted and printed.
//!
//! RabbitMQ runs as a private node (own name, ports and data directory), stopped with SIGTERM.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ruststream::router::{Context, HandlerError, Route, Router};
use ruststream::{Broker, Connection, OutgoingMessage, Publisher};

/// How long a whole run may take before the test fails with what it has: a minute, plus a
/// second per 250 messages (confirmed AMQP publishes in a debug build run at ~400/s).
fn run_limit(n: u32) -> Duration {
    Duration::from_secs(60 + u64::from(n) / 250)
}

fn messages() -> u32 {
    std::env::var("RELIABILITY_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn installed(program: &str) -> bool {
    match Command::new(program).arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{program} is required in CI: {e}");
            }
            eprintln!("skipping: {program} is not installed: {e}");
            false
        }
    }
}

/// A server child process that can be killed and started again with the same arguments.
struct Server {
    program: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    port: u16,
    dir: PathBuf,
    /// Stop with SIGTERM (and wait this long) instead of SIGKILL.
    graceful: Option<Duration>,
    /// How long the server may take to listen.
    boot: Duration,
    child: Option<Child>,
}

impl Server {
    fn new(program: &'static str, args: Vec<String>, port: u16, dir: PathBuf) -> Server {
        Server::with_env(
            program,
            args,
            Vec::new(),
            port,
            dir,
            None,
            Duration::from_secs(10),
        )
    }

    fn with_env(
        program: &'static str,
        args: Vec<String>,
        env: Vec<(String, String)>,
        port: u16,
        dir: PathBuf,
        graceful: Option<Duration>,
        boot: Duration,
    ) -> Server {
        let mut s = Server {
            program,
            args,
            env,
            port,
            dir,
            graceful,
            boot,
            child: None,
        };
        s.start();
        s
    }

    fn start(&mut self) {
        let child = Command::new(self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", self.program));
        self.child = Some(child);
        let end = Instant::now() + self.boot;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < end, "{} did not listen", self.program);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(wait) = self.graceful {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let end = Instant::now() + wait;
            while child.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        // Start scripts (rabbitmq-server) may leave the real server running a little longer.
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ruststream-restart-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    // Servers started as root may drop privileges (mosquitto): let them write here.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
    }
    dir
}

/// What a run measured (printed; asserted on `sent` and `handled_once`).
#[derive(Debug)]
#[allow(dead_code)] // Read through `Debug`.
struct Report {
    broker: &'static str,
    sent: u32,
    handled_once: u32,
    duplicates: u64,
    publish_retries: u64,
    outage: Duration,
    elapsed: Duration,
}

/// Run the service on `broker`, publish `n` messages to `address`, restart `server` half-way.
async fn run<B>(
    name: &'static str,
    broker: B,
    route: Route,
    address: &str,
    server: &mut Server,
) -> Report
where
    B: Broker,
    B::Connection: Connection,
{
    let n = messages();
    let counts: Arc<Vec<AtomicU32>> = Arc::new((0..n).map(|_| AtomicU32::new(0)).collect());
    let conn = tokio::time::timeout(Duration::from_secs(10), broker.connect())
        .await
        .expect("connect in time")
        .expect("connects");
    let mut router = Router::<B::Connection>::new();
    let seen = Arc::clone(&counts);
    router.route(route, move |id: u32, _ctx: Context<B::Connection>| {
        let seen = Arc::clone(&seen);
        async move {
            if let Some(c) = seen.get(id as usize) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, HandlerError>(())
        }
    });
    let running = router.start(conn.clone()).await.expect("router starts");
    // Let subscriptions settle on the server.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let retries = Arc::new(AtomicU64::new(0));
    let published = Arc::new(AtomicU32::new(0));
    let publisher = {
        let conn = conn.clone();
        let retries = Arc::clone(&retries);
        let published = Arc::clone(&published);
        let address = address.to_owned();
        tokio::spawn(async move {
            for id in 0..n {
                let payload = id.to_string();
                loop {
                    let msg = OutgoingMessage::new(address.clone(), payload.clone())
                        .content_type("application/json");
                    let sent =
                        tokio::time::timeout(Duration::from_secs(5), conn.publish(msg)).await;
                    if let Ok(Ok(())) = sent {
                        break;
                    }
                    retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                published.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // Kill the server half-way through publishing, keep it down a moment, start it again.
    while published.load(Ordering::Relaxed) < n / 2 && !publisher.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let down = Instant::now();
    server.stop();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.start();
    let outage = down.elapsed();

    let handled_once = || {
        counts
            .iter()
            .filter(|c| c.load(Ordering::Relaxed) > 0)
            .count() as u32
    };
    let deadline = Instant::now() + run_limit(n);
    while (handled_once() < n || !publisher.is_finished()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    publisher.abort();
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        running.shutdown(Duration::from_secs(2)),
    )
    .await;
    let duplicates: u64 = counts
        .iter()
        .map(|c| u64::from(c.load(Ordering::Relaxed).saturating_sub(1)))
        .sum();
    let report = Report {
        broker: name,
        sent: published.load(Ordering::Relaxed),
        handled_once: handled_once(),
        duplicates,
        publish_retries: retries.load(Ordering::Relaxed),
        outage,
        elapsed,
    };
    eprintln!("{report:?}");
    let missing: Vec<usize> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.load(Ordering::Relaxed) == 0)
        .map(|(i, _)| i)
        .take(20)
        .collect();
    assert_eq!(
        report.sent, n,
        "{name}: every message published: {report:?}"
    );
    assert_eq!(
        report.handled_once, n,
        "{name}: every message handled at least once; first missing {missing:?}: {report:?}"
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_survives_a_server_kill() {
    use ruststream_nats::{Config, JetStreamConfig, NatsBroker};
    if !installed("nats-server") {
        return;
    }
    let port = free_port();
    let dir = scratch("nats");
    let args = vec![
        "-a".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        port.to_string(),
        "-js".to_owned(),
        "-sd".to_owned(),
        dir.join("js").display().to_string(),
    ];
    let mut server = Server::new("nats-server", args, port, dir);
    let broker = NatsBroker::jetstream(
        Config::new(format!("nats://127.0.0.1:{port}")),
        JetStreamConfig::new("RESTART", ["restart.>"]).ack_wait(Duration::from_secs(2)),
    );
    let route = Route::new("restart.orders")
        .expect("route")
        .durable("restart-worker")
        .concurrency(32);
    run(
        "nats-jetstream",
        broker,
        route,
        "restart.orders",
        &mut server,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_survive_a_server_kill() {
    use ruststream_redis::{Config, RedisStreams, StreamOptions};
    if !installed("redis-server") {
        return;
    }
    let port = free_port();
    let dir = scratch("redis");
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--dir",
        &dir.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut server = Server::new("redis-server", args, port, dir);
    let broker = RedisStreams::new(
        Config::new(format!("redis://127.0.0.1:{port}")).streams(
            StreamOptions::new()
                .group("restart")
                .claim_idle(Duration::from_secs(2)),
        ),
    );
    let route = Route::new("restart.orders")
        .expect("route")
        .queue_group("restart")
        .concurrency(32);
    run(
        "redis-streams",
        broker,
        route,
        "restart.orders",
        &mut server,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_qos1_persistent_session_survives_a_server_restart() {
    use ruststream_mqtt::{Config, Mqtt, Qos};
    if !installed("mosquitto") {
        return;
    }
    let port = free_port();
    let dir = scratch("mqtt");
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_queued_messages 0\n",
            dir.display()
        ),
    )
    .expect("config");
    let args = vec!["-c".to_owned(), conf.display().to_string()];
    let mut server = Server::new("mosquitto", args, port, dir);
    server.graceful = Some(Duration::from_secs(5));
    let broker = Mqtt::new(
        Config::new("127.0.0.1", port)
            .default_qos(Qos::AtLeastOnce)
            .persistent_session(
                format!("rs-restart-{}-{port}", std::process::id()),
                Duration::from_secs(300),
            ),
    );
    let route = Route::new("restart/orders").expect("route").concurrency(32);
    run("mqtt", broker, route, "restart/orders", &mut server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_durable_queue_survives_a_node_restart() {
    use ruststream_amqp::{AmqpBroker, Config};
    const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    if !std::path::Path::new(SERVER).exists() {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
            "{SERVER} is required in CI"
        );
        eprintln!("skipping: {SERVER} is not installed");
        return;
    }
    let port = free_port();
    let dist_port = free_port();
    let dir = scratch("amqp");
    for sub in ["mnesia", "log"] {
        std::fs::create_dir_all(dir.join(sub)).expect("node dirs");
    }
    std::fs::write(
        dir.join("rabbitmq.conf"),
        format!("listeners.tcp.local = 127.0.0.1:{port}\nloopback_users = none\n"),
    )
    .expect("rabbitmq.conf");
    std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("plugins");
    std::fs::write(dir.join("rabbitmq-env.conf"), "").expect("env file");
    let d = |p: &str| dir.join(p).display().to_string();
    let env = [
        ("RABBITMQ_NODENAME", format!("rsrel{port}@localhost")),
        ("RABBITMQ_NODE_PORT", port.to_string()),
        ("RABBITMQ_DIST_PORT", dist_port.to_string()),
        ("RABBITMQ_CONFIG_FILE", d("rabbitmq.conf")),
        ("RABBITMQ_CONF_ENV_FILE", d("rabbitmq-env.conf")),
        ("RABBITMQ_ENABLED_PLUGINS_FILE", d("enabled_plugins")),
        ("RABBITMQ_MNESIA_BASE", d("mnesia")),
        ("RABBITMQ_LOG_BASE", d("log")),
        ("HOME", d("")),
        ("ERL_EPMD_ADDRESS", "127.0.0.1".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .to_vec();
    // Erlang boots in ~5 s on an idle machine, far slower under a parallel build.
    let mut server = Server::with_env(
        SERVER,
        Vec::new(),
        env,
        port,
        dir,
        Some(Duration::from_secs(30)),
        Duration::from_secs(120),
    );
    let broker = AmqpBroker::new(Config::new(format!(
        "amqp://guest:guest@127.0.0.1:{port}/%2f"
    )));
    let route = Route::new("restart.orders")
        .expect("route")
        .durable("restart-worker")
        .concurrency(32);
    run("amqp", broker, route, "restart.orders", &mut server).await;
}
