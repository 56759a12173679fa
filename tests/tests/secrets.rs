//! Planted credentials must never leave the process in clear: not in `Debug` output, not in
//! connection errors (closed port, wrong credentials), not in logs (a `tracing` subscriber
//! captures everything at TRACE level, client libraries included), not in the Prometheus
//! output and not in the emitted AsyncAPI document.
//!
//! NATS, Redis and Mosquitto run as this test's own child processes with authentication on a
//! free port; RabbitMQ is the shared server (guest/guest) and a planted wrong password.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use ruststream::app::{App, Format, ServerDoc};
use ruststream::router::{Context, HandlerError, Route};
use ruststream::{Broker, Connection, OutgoingMessage, Publisher};

/// The password every server is started with, planted in URLs and configs.
const SECRET: &str = "Pl4nted-S3cret-pw-7f3a";
/// A wrong password, planted where a connection must fail.
const WRONG: &str = "Wr0ng-Pl4nted-pw-c41d";
/// A token, planted in token auth.
const TOKEN: &str = "Pl4nted-T0ken-9c1e";
const SECRETS: [&str; 3] = [SECRET, WRONG, TOKEN];

const LIMIT: Duration = Duration::from_secs(20);

fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        #[derive(Clone, Copy)]
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs()
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        Mutex::new(Vec::new())
    })
}

/// Fail when `text` (what `what` produced) contains a planted secret.
#[track_caller]
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} leaks a planted secret:\n{text}"
        );
        // Percent-encoded forms too.
        let encoded = secret.replace('-', "%2D");
        assert!(!text.contains(&encoded), "{what} leaks {encoded}:\n{text}");
    }
}

/// The captured logs must be clean: every line of RustStream's own crates at any level, and
/// every line of the client libraries at DEBUG and above. Client libraries' TRACE lines are
/// not checked: async-nats traces the whole CONNECT frame, password included, at TRACE.
fn assert_logs_clean(what: &str) {
    let log =
        String::from_utf8_lossy(&logs().lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    for line in log.lines() {
        let ours = line.contains("ruststream");
        if !ours && line.contains(" TRACE ") {
            continue;
        }
        assert_clean(&format!("the logs ({what})"), line);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child server, killed on drop.
struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ruststream-secrets-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Start `program args` and wait until `port` accepts connections; `None` (test skipped with a
/// message) when the program is not installed.
fn start(program: &str, args: &[String], port: u16, dir: PathBuf) -> Option<Server> {
    let child = match Command::new(program)
        .args(args)
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
                panic!("{program} is required in CI: {e}");
            }
            eprintln!("skipping: cannot start {program}: {e}");
            return None;
        }
    };
    let server = Server { child, dir };
    let end = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "{program} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

/// `connect` must fail, in time, with an error that names no secret.
async fn assert_connect_fails_clean<B: Broker>(what: &str, broker: B) {
    match tokio::time::timeout(LIMIT, broker.connect()).await {
        Ok(Ok(_)) => panic!("{what}: connected"),
        Ok(Err(e)) => {
            assert_clean(&format!("{what}: error Display"), &e.to_string());
            assert_clean(&format!("{what}: error Debug"), &format!("{e:?}"));
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                assert_clean(&format!("{what}: error source"), &s.to_string());
                source = s.source();
            }
        }
        Err(_) => panic!("{what}: connect did not fail within {LIMIT:?}"),
    }
}

/// Run an app on `broker` with `url` in its document: publish one message, check the handler
/// saw it, and that neither the document nor the metrics carry a secret.
async fn app_round_trip<B>(what: &str, broker: B, url: &str)
where
    B: Broker + 'static,
    B::Connection: Connection + std::fmt::Debug,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u32>(4);
    let app = App::new(broker)
        .name("secrets")
        .server(ServerDoc::new("production", url))
        .route(
            Route::new("secrets/in").expect("route").name("onSecret"),
            move |n: u32, _ctx: Context<B::Connection>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(n).await;
                    Ok::<_, HandlerError>(())
                }
            },
        );
    assert_clean(&format!("{what}: App Debug"), &format!("{app:?}"));
    for format in [Format::Json, Format::Yaml] {
        let doc = app.render_document(format).expect("document");
        assert_clean(&format!("{what}: AsyncAPI document"), &doc);
        assert!(doc.contains("127.0.0.1"), "{what}: the host stays: {doc}");
    }
    let running = tokio::time::timeout(LIMIT, app.start())
        .await
        .expect("start in time")
        .expect("app starts");
    let conn = running.connection();
    // Subscriptions may need a moment to be active on the server.
    let mut got = None;
    for _ in 0..50 {
        conn.publish(OutgoingMessage::new("secrets/in", "7").content_type("application/json"))
            .await
            .expect("publish");
        if let Ok(Some(n)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            got = Some(n);
            break;
        }
    }
    assert_eq!(got, Some(7), "{what}: handled");
    let metrics = running.metrics().render();
    assert!(metrics.contains("onSecret"), "{what}: {metrics}");
    assert_clean(&format!("{what}: metrics"), &metrics);
    assert_clean(&format!("{what}: connection Debug"), &format!("{conn:?}"));
    tokio::time::timeout(LIMIT, running.shutdown())
        .await
        .expect("shutdown in time")
        .expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_stay_secret() {
    use ruststream_nats::{Config, NatsBroker};
    let _ = logs();
    let port = free_port();
    let args = [
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--user",
        "alice",
        "--pass",
        SECRET,
    ]
    .map(str::to_owned);
    let Some(_server) = start("nats-server", &args, port, scratch("nats")) else {
        return;
    };
    let closed = free_port();
    let url = format!("nats://alice:{SECRET}@127.0.0.1:{port}");
    for config in [
        Config::new(url.clone()),
        Config::new(format!("nats://127.0.0.1:{port}")).user_password("alice", SECRET),
        Config::new(format!("nats://127.0.0.1:{port}")).token(TOKEN),
        Config::new(format!("tls://bob:{WRONG}@127.0.0.1:{port}"))
            .servers([url.clone(), format!("nats://{TOKEN}@127.0.0.1:{port}")]),
    ] {
        assert_clean("nats Config Debug", &format!("{config:?}"));
        assert_clean(
            "nats NatsBroker Debug",
            &format!("{:?}", NatsBroker::new(config)),
        );
    }
    assert_connect_fails_clean(
        "nats closed port",
        NatsBroker::new(
            Config::new(format!("nats://127.0.0.1:{closed}")).user_password("alice", SECRET),
        ),
    )
    .await;
    assert_connect_fails_clean(
        "nats wrong password in config",
        NatsBroker::new(
            Config::new(format!("nats://127.0.0.1:{port}")).user_password("alice", WRONG),
        ),
    )
    .await;
    assert_connect_fails_clean(
        "nats wrong token",
        NatsBroker::new(Config::new(format!("nats://127.0.0.1:{port}")).token(TOKEN)),
    )
    .await;
    // Authenticate through the config here; URL credentials are covered by the test below.
    // The document still gets the URL (without its credentials).
    let config = Config::new(format!("nats://127.0.0.1:{port}")).user_password("alice", SECRET);
    app_round_trip("nats", NatsBroker::new(config), &url).await;
    assert_logs_clean("nats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_credentials_in_the_url_authenticate_and_are_never_logged() {
    use ruststream_nats::{Config, NatsBroker};
    let _ = logs();
    let port = free_port();
    let args = [
        "-a",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "--user",
        "alice",
        "--pass",
        SECRET,
    ]
    .map(str::to_owned);
    let Some(_server) = start("nats-server", &args, port, scratch("nats-url")) else {
        return;
    };
    let closed = free_port();
    assert_connect_fails_clean(
        "nats closed port, password in URL",
        NatsBroker::new(Config::new(format!(
            "nats://alice:{SECRET}@127.0.0.1:{closed}"
        ))),
    )
    .await;
    assert_connect_fails_clean(
        "nats wrong password in URL",
        NatsBroker::new(Config::new(format!(
            "nats://alice:{WRONG}@127.0.0.1:{port}"
        ))),
    )
    .await;
    let url = format!("nats://alice:{SECRET}@127.0.0.1:{port}");
    let conn = tokio::time::timeout(LIMIT, NatsBroker::new(Config::new(url)).connect())
        .await
        .expect("in time");
    assert!(conn.is_ok(), "{:?}", conn.err());
    // async-nats logged the server URL at DEBUG; the URL it gets no longer has a password.
    assert_logs_clean("nats URL credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_credentials_stay_secret() {
    use ruststream_redis::{Config, RedisPubSub, RedisStreams};
    let _ = logs();
    let port = free_port();
    let args = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--requirepass",
        SECRET,
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    .map(str::to_owned);
    let Some(_server) = start("redis-server", &args, port, scratch("redis")) else {
        return;
    };
    let closed = free_port();
    let url = format!("redis://default:{SECRET}@127.0.0.1:{port}/0");
    for u in [
        url.clone(),
        format!("redis://:{SECRET}@127.0.0.1:{port}"),
        format!("rediss://user:{WRONG}@127.0.0.1:{port}/?protocol=resp3"),
    ] {
        let config = Config::new(u);
        assert_clean("redis Config Debug", &format!("{config:?}"));
        assert_clean("redis redacted_url", &config.redacted_url());
        assert_clean(
            "redis RedisStreams Debug",
            &format!("{:?}", RedisStreams::new(config.clone())),
        );
        assert_clean(
            "redis RedisPubSub Debug",
            &format!("{:?}", RedisPubSub::new(config)),
        );
    }
    assert_connect_fails_clean(
        "redis closed port",
        RedisStreams::new(Config::new(format!("redis://:{SECRET}@127.0.0.1:{closed}"))),
    )
    .await;
    assert_connect_fails_clean(
        "redis wrong password",
        RedisStreams::new(Config::new(format!(
            "redis://default:{WRONG}@127.0.0.1:{port}"
        ))),
    )
    .await;
    assert_connect_fails_clean(
        "redis pubsub wrong password",
        RedisPubSub::new(Config::new(format!(
            "redis://default:{WRONG}@127.0.0.1:{port}"
        ))),
    )
    .await;
    app_round_trip("redis", RedisStreams::new(Config::new(url.clone())), &url).await;
    assert_logs_clean("redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_credentials_stay_secret() {
    use ruststream_mqtt::{Config, Mqtt};
    let _ = logs();
    let port = free_port();
    let dir = scratch("mqtt");
    let passwd = dir.join("passwd");
    let made = Command::new("mosquitto_passwd")
        .arg("-b")
        .arg("-c")
        .arg(&passwd)
        .args(["alice", SECRET])
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping: mosquitto_passwd is not available");
        return;
    }
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n",
            passwd.display()
        ),
    )
    .expect("config");
    let args = ["-c".to_owned(), conf.display().to_string()];
    let Some(_server) = start("mosquitto", &args, port, dir) else {
        return;
    };
    let closed = free_port();
    let config = Config::new("127.0.0.1", port).credentials("alice", SECRET);
    assert_clean("mqtt Config Debug", &format!("{config:?}"));
    assert_clean(
        "mqtt Mqtt Debug",
        &format!("{:?}", Mqtt::new(config.clone())),
    );
    assert_connect_fails_clean(
        "mqtt closed port",
        Mqtt::new(Config::new("127.0.0.1", closed).credentials("alice", SECRET)),
    )
    .await;
    assert_connect_fails_clean(
        "mqtt wrong password",
        Mqtt::new(Config::new("127.0.0.1", port).credentials("alice", WRONG)),
    )
    .await;
    let url = format!("mqtt://alice:{SECRET}@127.0.0.1:{port}");
    app_round_trip("mqtt", Mqtt::new(config), &url).await;
    assert_logs_clean("mqtt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_credentials_stay_secret() {
    use ruststream_amqp::{AmqpBroker, Config, Reconnect};
    let _ = logs();
    let closed = free_port();
    for uri in [
        format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f"),
        format!("amqps://guest:{WRONG}@127.0.0.1:5671/vhost?heartbeat=5&channel_max=9"),
    ] {
        let config = Config::new(uri);
        assert_clean("amqp Config Debug", &format!("{config:?}"));
        assert_clean("amqp redacted_uri", &config.redacted_uri());
        assert_clean(
            "amqp AmqpBroker Debug",
            &format!("{:?}", AmqpBroker::new(config)),
        );
    }
    assert_connect_fails_clean(
        "amqp closed port",
        AmqpBroker::new(
            Config::new(format!("amqp://guest:{SECRET}@127.0.0.1:{closed}/%2f"))
                .reconnect(Reconnect::disabled()),
        ),
    )
    .await;
    if ruststream::testing::require_service("RabbitMQ", "127.0.0.1:5672") {
        assert_connect_fails_clean(
            "amqp wrong password",
            AmqpBroker::new(
                Config::new(format!("amqp://guest:{WRONG}@127.0.0.1:5672/%2f"))
                    .reconnect(Reconnect::disabled()),
            ),
        )
        .await;
        // The shared server's password is not secret (guest); the document still must not
        // carry the planted one.
        let url = format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f");
        app_round_trip(
            "amqp",
            AmqpBroker::new(Config::new("amqp://guest:guest@127.0.0.1:5672/%2f")),
            &url,
        )
        .await;
    }
    assert_logs_clean("amqp");
}

#[test]
fn server_urls_in_the_emitted_document_lose_every_credential_form() {
    let urls = [
        format!("nats://alice:{SECRET}@127.0.0.1:4222"),
        format!("nats://{TOKEN}@127.0.0.1:4222"),
        format!("redis://:{SECRET}@127.0.0.1:6379/0?password={TOKEN}"),
        format!("amqp://guest:{SECRET}@127.0.0.1:5672/%2f#{WRONG}"),
        format!("mqtt://alice:{SECRET}@127.0.0.1"),
        format!("kafka://127.0.0.1:9092/?sasl.password={SECRET}&token={TOKEN}"),
        format!("wss://alice:{SECRET}@broker.example.com/path?token={TOKEN}"),
    ];
    let mut app = App::new(ruststream::memory::MemoryBroker::default()).name("secrets");
    for (i, url) in urls.iter().enumerate() {
        app = app.server(ServerDoc::new(format!("s{i}"), url.clone()));
    }
    for format in [Format::Json, Format::Yaml] {
        let doc = app.render_document(format).expect("document");
        assert_clean("emitted AsyncAPI document", &doc);
        assert!(doc.contains("broker.example.com"), "{doc}");
    }
}
