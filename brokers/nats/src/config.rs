//! Connection settings (shared by core NATS and JetStream) and JetStream settings.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ruststream::{Error, Result};

use crate::subject::SubjectMapping;

/// How the client authenticates.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials (or credentials in the server URL).
    #[default]
    None,
    /// User name and password.
    UserPassword {
        /// User name.
        user: String,
        /// Password (never printed).
        password: String,
    },
    /// An authentication token (never printed).
    Token(String),
    /// An NKey seed (never printed).
    NKey(String),
    /// A `.creds` file (JWT + NKey seed) on disk.
    CredentialsFile(PathBuf),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => f
                .debug_struct("UserPassword")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
            Auth::NKey(_) => f.write_str("NKey(<redacted>)"),
            Auth::CredentialsFile(p) => f.debug_tuple("CredentialsFile").field(p).finish(),
        }
    }
}

/// TLS settings. TLS is used when the server asks for it, when [`Tls::required`] is set, or
/// for `tls://` server URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tls {
    /// Refuse to connect without TLS.
    pub required: bool,
    /// Start TLS before the NATS handshake (server option `handshake_first`).
    pub first: bool,
    /// Extra root certificates (PEM file).
    pub root_certificates: Option<PathBuf>,
    /// Client certificate and key (PEM files) for mutual TLS.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// Settings of a NATS connection.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Server URLs (`nats://host:4222`, `tls://host:4222`); default `nats://127.0.0.1:4222`.
    /// List every node of a cluster: when the node the client is connected to goes away, it
    /// reconnects to another (also to nodes the cluster told it about).
    pub servers: Vec<String>,
    /// Authentication.
    pub auth: Auth,
    /// TLS.
    pub tls: Tls,
    /// Client name shown by the server (monitoring, `nats server report connections`).
    pub client_name: Option<String>,
    /// Timeout of the initial connection (default 5 s).
    pub connect_timeout: Duration,
    /// Default timeout of JetStream API calls and publish confirms (default 5 s).
    pub request_timeout: Duration,
    /// Keep retrying when the server is down at start instead of failing `connect`.
    pub retry_on_initial_connect: bool,
    /// Give up after this many reconnect attempts (`None`: never give up).
    pub max_reconnects: Option<usize>,
    /// Messages buffered per core subscription before the client reports a slow consumer
    /// (default 8192).
    pub subscription_capacity: usize,
    /// How addresses map to subjects (default [`SubjectMapping::Native`]: addresses are
    /// subjects). See [`Config::address_separator`].
    pub subject_mapping: SubjectMapping,
    /// A content type published without a header (default `None`: the `content-type` header
    /// is always sent). See [`Config::implicit_content_type`].
    pub implicit_content_type: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            servers: vec!["nats://127.0.0.1:4222".to_owned()],
            auth: Auth::None,
            tls: Tls::default(),
            client_name: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            retry_on_initial_connect: false,
            max_reconnects: None,
            subscription_capacity: 8192,
            subject_mapping: SubjectMapping::Native,
            implicit_content_type: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let servers: Vec<String> = self.servers.iter().map(|s| redact_url(s)).collect();
        f.debug_struct("Config")
            .field("servers", &servers)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("client_name", &self.client_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry_on_initial_connect", &self.retry_on_initial_connect)
            .field("max_reconnects", &self.max_reconnects)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("subject_mapping", &self.subject_mapping)
            .field("implicit_content_type", &self.implicit_content_type)
            .finish()
    }
}

impl Config {
    /// Defaults, connecting to `server`.
    pub fn new(server: impl Into<String>) -> Self {
        Config {
            servers: vec![server.into()],
            ..Config::default()
        }
    }
    /// Settings from a URL: `nats://[user:password@|token@]host[:port][,host[:port]…][?options]`
    /// (also `tls://`, which requires TLS, and `ws://` / `wss://`). A user without a password
    /// is a token. Options: `name` (client name), `separator` (address separator, see
    /// [`Config::address_separator`]), `connect_timeout` and `request_timeout` (seconds),
    /// `retry_on_initial_connect` (`true`/`false`), `max_reconnects`, `tls_required`,
    /// `implicit_content_type`.
    ///
    /// ```
    /// use ruststream_nats::{Auth, Config, SubjectMapping};
    /// let c = Config::from_url("nats://app:s3cret@a:4222,b?name=svc&separator=/")?;
    /// assert_eq!(c.servers, ["nats://a:4222", "nats://b:4222"]);
    /// assert!(matches!(c.auth, Auth::UserPassword { .. }));
    /// assert_eq!(c.subject_mapping, SubjectMapping::Separator('/'));
    /// let e = Config::from_url("nats://app:s3cret@a:http").unwrap_err().to_string();
    /// assert!(e.contains("port `http`") && !e.contains("s3cret"), "{e}");
    /// # Ok::<(), ruststream::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad part (scheme, host, port, path, option or value),
    /// without the password or token.
    pub fn from_url(url: &str) -> Result<Config> {
        let mut u = ruststream::broker::url::BrokerUrl::parse(url, &["nats", "tls", "ws", "wss"])?;
        if !u.path.is_empty() {
            return Err(u.error(format_args!("path `/{}`: NATS URLs have none", u.path)));
        }
        let mut config = Config::default();
        let default_port = match u.scheme.as_str() {
            "ws" => 80,
            "wss" => 443,
            _ => 4222,
        };
        config.servers = u
            .hosts
            .iter()
            .map(|h| {
                format!(
                    "{}://{}:{}",
                    u.scheme,
                    h.host,
                    h.port.unwrap_or(default_port)
                )
            })
            .collect();
        config.auth = match (u.user.clone(), u.password()) {
            (Some(user), Some(password)) => Auth::UserPassword {
                user,
                password: password.to_owned(),
            },
            (Some(token), None) => Auth::Token(token),
            (None, Some(_)) => return Err(u.error("a password without a user name")),
            (None, None) => Auth::None,
        };
        config.tls.required = u.scheme == "tls" || u.scheme == "wss";
        config.client_name = u.take("name");
        if let Some(separator) = u.take("separator") {
            let mut chars = separator.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => config = config.address_separator(c),
                _ => {
                    return Err(u.error(format_args!(
                        "option `separator`: `{separator}` is not one character"
                    )));
                }
            }
        }
        if let Some(t) = u.seconds("connect_timeout")? {
            config.connect_timeout = t;
        }
        if let Some(t) = u.seconds("request_timeout")? {
            config.request_timeout = t;
        }
        if let Some(retry) = u.option("retry_on_initial_connect")? {
            config.retry_on_initial_connect = retry;
        }
        config.max_reconnects = u.option("max_reconnects")?;
        if let Some(required) = u.option("tls_required")? {
            config.tls.required = required;
        }
        config.implicit_content_type = u.take("implicit_content_type");
        u.finish_known(&[
            "name",
            "separator",
            "connect_timeout",
            "request_timeout",
            "retry_on_initial_connect",
            "max_reconnects",
            "tls_required",
            "implicit_content_type",
        ])?;
        Ok(config)
    }

    /// Replace the server list.
    pub fn servers<I: IntoIterator<Item = S>, S: Into<String>>(mut self, servers: I) -> Self {
        self.servers = servers.into_iter().map(Into::into).collect();
        self
    }
    /// Authenticate with user name and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword {
            user: user.into(),
            password: password.into(),
        };
        self
    }
    /// Authenticate with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }
    /// Authenticate with an NKey seed.
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth = Auth::NKey(seed.into());
        self
    }
    /// Authenticate with a `.creds` file.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.auth = Auth::CredentialsFile(path.into());
        self
    }
    /// Require TLS.
    pub fn require_tls(mut self, required: bool) -> Self {
        self.tls.required = required;
        self
    }
    /// Client name.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }
    /// Initial connection timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
    /// JetStream API / publish-confirm timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Retry when the server is down at start.
    pub fn retry_on_initial_connect(mut self, retry: bool) -> Self {
        self.retry_on_initial_connect = retry;
        self
    }

    /// Addresses separate tokens with `separator` (e.g. `'/'`, as in most AsyncAPI
    /// documents), which becomes NATS's `.` on the wire: publishing to `lights/42/measured`
    /// sends to subject `lights.42.measured`, subscribing to `lights/{id}/measured` subscribes
    /// to `lights.*.measured`, and received messages report `lights/42/measured` as their
    /// address (and reply-to), so router templates match. Addresses containing `.`, or `*` /
    /// `>` other than as whole subscription tokens, are refused with
    /// [`Error::InvalidAddress`]. JetStream stream subjects ([`JetStreamConfig::subjects`]) and
    /// the `x-original-subject` dead-letter header stay NATS subjects. See [`SubjectMapping`].
    ///
    /// ```
    /// use ruststream_nats::{Config, SubjectMapping};
    ///
    /// let config = Config::new("nats://127.0.0.1:4222").address_separator('/');
    /// assert_eq!(config.subject_mapping, SubjectMapping::Separator('/'));
    /// assert_eq!(
    ///     config.subject_mapping.publish_subject("lights/42/measured").unwrap(),
    ///     "lights.42.measured"
    /// );
    /// ```
    pub fn address_separator(mut self, separator: char) -> Self {
        self.subject_mapping = SubjectMapping::separator(separator);
        self
    }
    /// Publish messages whose content type is exactly `content_type` without a
    /// `Content-Type` header (core publishes, requests and JetStream publishes; dead-lettered
    /// copies keep it). A message with no other header then goes out as a plain NATS `PUB`
    /// instead of `HPUB`, so neither side encodes or parses a header block per message.
    ///
    /// A receiver decodes a message that has no content type by its route's declared one
    /// ([`Route::content_type`](ruststream::router::Route::content_type); generated code
    /// declares the AsyncAPI message's). Set this only where every consumer of the published
    /// subjects declares `content_type`, for instance when publishers and consumers are
    /// generated from the same document (`defaultContentType: application/json`). Other NATS
    /// clients see no `Content-Type` header.
    ///
    /// ```
    /// use ruststream_nats::Config;
    ///
    /// let config = Config::new("nats://127.0.0.1:4222").implicit_content_type("application/json");
    /// assert_eq!(config.implicit_content_type.as_deref(), Some("application/json"));
    /// ```
    pub fn implicit_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.implicit_content_type = Some(content_type.into());
        self
    }
    /// How addresses map to subjects.
    pub fn subject_mapping(mut self, mapping: SubjectMapping) -> Self {
        self.subject_mapping = mapping;
        self
    }

    /// Secrets to scrub from any error text.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        match &self.auth {
            Auth::UserPassword { password, .. } => out.push(password.clone()),
            Auth::Token(t) => out.push(t.clone()),
            Auth::NKey(s) => out.push(s.clone()),
            Auth::None | Auth::CredentialsFile(_) => {}
        }
        for server in &self.servers {
            if let (_, Some((_, password))) = split_credentials(server) {
                out.push(password);
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// Connect; `closed` turns true once the client has fully closed (after a drain).
    pub(crate) async fn connect(
        &self,
        closed: tokio::sync::watch::Sender<bool>,
    ) -> Result<async_nats::Client> {
        if self.servers.is_empty() {
            return Err(Error::Config("nats: no server configured".to_owned()));
        }
        self.subject_mapping.validate()?;
        let mut servers = Vec::with_capacity(self.servers.len());
        // async-nats does not authenticate with `user:pass@` from a URL (and logs the URL), so
        // credentials are taken out of the URLs and passed as user/password instead.
        let mut url_credentials = None;
        for s in &self.servers {
            let (stripped, credentials) = split_credentials(s);
            if url_credentials.is_none() {
                url_credentials = credentials;
            }
            let addr = stripped.parse::<async_nats::ServerAddr>().map_err(|e| {
                Error::Config(format!(
                    "nats: invalid server URL {:?}: {}",
                    redact_url(s),
                    scrub(&e.to_string(), &self.secrets())
                ))
            })?;
            servers.push(addr);
        }
        let mut opts = match &self.auth {
            Auth::None => match url_credentials {
                Some((user, password)) => {
                    async_nats::ConnectOptions::with_user_and_password(user, password)
                }
                None => async_nats::ConnectOptions::new(),
            },
            Auth::UserPassword { user, password } => {
                async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Auth::Token(t) => async_nats::ConnectOptions::with_token(t.clone()),
            Auth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.clone()),
            Auth::CredentialsFile(path) => async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|e| {
                    Error::Config(format!(
                        "nats: cannot read credentials file {}: {}",
                        path.display(),
                        e.kind()
                    ))
                })?,
        };
        opts = opts
            .connection_timeout(self.connect_timeout)
            .request_timeout(Some(self.request_timeout))
            .subscription_capacity(self.subscription_capacity.max(1))
            .max_reconnects(self.max_reconnects)
            .require_tls(self.tls.required);
        if self.tls.first {
            opts = opts.tls_first();
        }
        if let Some(roots) = &self.tls.root_certificates {
            opts = opts.add_root_certificates(roots.clone());
        }
        if let Some((cert, key)) = &self.tls.client_certificate {
            opts = opts.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(name) = &self.client_name {
            opts = opts.name(name);
        }
        if self.retry_on_initial_connect {
            opts = opts.retry_on_initial_connect();
        }
        let secrets = self.secrets();
        opts = opts.event_callback(move |event| {
            if matches!(event, async_nats::Event::Closed) {
                closed.send_replace(true);
            }
            let text = scrub(&event.to_string(), &secrets);
            async move { tracing::debug!(event = %text, "nats connection event") }
        });
        opts.connect(servers)
            .await
            .map_err(|e| transport(&e, &self.secrets()))
    }
}

/// What a JetStream broker declares and how it consumes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JetStreamConfig {
    /// Stream name (letters, digits, `-`, `_`).
    pub stream: String,
    /// Subjects the stream captures (`orders.>`); publishing outside them fails.
    pub subjects: Vec<String>,
    /// Create the stream when missing (default `true`); otherwise it must exist.
    pub create_stream: bool,
    /// Keep messages in memory instead of on disk (default `false`: file storage).
    pub memory_storage: bool,
    /// Copies of the stream kept on distinct servers of a cluster (default 1; at most 5).
    /// With 3, the stream and its consumers survive the loss of any one server. Applies
    /// when the stream is created; an existing stream keeps its own.
    pub replicas: usize,
    /// Discard messages older than this (`Duration::ZERO`: keep forever).
    pub max_age: Duration,
    /// Window in which a repeated `Nats-Msg-Id` header is dropped as a duplicate (default 2 min).
    pub duplicate_window: Duration,
    /// How long the server waits for an ack before redelivering (default 30 s).
    pub ack_wait: Duration,
    /// Default cap on deliveries per message when a subscription sets none (`None`: unlimited).
    pub max_deliver: Option<u32>,
    /// A durable or queue-group consumer unused for this long is deleted by the server
    /// (`None`: kept until deleted by hand).
    pub durable_inactive_threshold: Option<Duration>,
    /// An ephemeral consumer (plain subscription) is deleted this long after its subscriber
    /// went away (default 30 s).
    pub ephemeral_inactive_threshold: Duration,
    /// A consumer created for a new durable or queue-group subscription starts with the
    /// messages already in the stream (default `false`: only messages published from now on).
    pub replay_existing: bool,
}

impl JetStreamConfig {
    /// A stream named `stream` capturing `subjects`, with defaults for everything else.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(
        stream: impl Into<String>,
        subjects: I,
    ) -> Self {
        JetStreamConfig {
            stream: stream.into(),
            subjects: subjects.into_iter().map(Into::into).collect(),
            create_stream: true,
            memory_storage: false,
            replicas: 1,
            max_age: Duration::ZERO,
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(30),
            max_deliver: None,
            durable_inactive_threshold: None,
            ephemeral_inactive_threshold: Duration::from_secs(30),
            replay_existing: false,
        }
    }
    /// Memory storage.
    pub fn memory_storage(mut self, memory: bool) -> Self {
        self.memory_storage = memory;
        self
    }
    /// Replicas of the stream across a cluster (see [`JetStreamConfig::replicas`]).
    ///
    /// ```
    /// use ruststream_nats::JetStreamConfig;
    /// let js = JetStreamConfig::new("ORDERS", ["orders.>"]).replicas(3);
    /// assert_eq!(js.replicas, 3);
    /// ```
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }
    /// Maximum message age.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }
    /// Ack wait before redelivery.
    pub fn ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }
    /// Default max deliveries.
    pub fn max_deliver(mut self, n: u32) -> Self {
        self.max_deliver = Some(n);
        self
    }
    /// Delete durable / group consumers unused for this long.
    pub fn durable_inactive_threshold(mut self, threshold: Duration) -> Self {
        self.durable_inactive_threshold = Some(threshold);
        self
    }
    /// Start new durable / group consumers at the beginning of the stream.
    pub fn replay_existing(mut self, replay: bool) -> Self {
        self.replay_existing = replay;
        self
    }
}

/// `nats://user:pass@host:4222` → (`nats://host:4222`, `Some(("user", "pass"))`). A URL with
/// only a user (`nats://token@host`) gives that user as the user with an empty password.
pub(crate) fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let Some(i) = url.find("://") else {
        return (url.to_owned(), None);
    };
    let rest = &url[i + 3..];
    let end = rest
        .find(|c: char| c == '/' || c == ',' || c.is_whitespace())
        .unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let userinfo = &rest[..at];
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let stripped = format!("{}{}", &url[..i + 3], &rest[at + 1..]);
    (stripped, Some((user.to_owned(), password.to_owned())))
}

/// `nats://user:pass@host` → `nats://<redacted>@host`.
pub(crate) fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '/' || c == ',' || c.is_whitespace())
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            out.push_str("<redacted>");
            rest = &rest[at..];
        }
    }
    out.push_str(rest);
    out
}

/// Remove every secret and URL credential from `text`.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let mut s = redact_url(text);
    for secret in secrets {
        if s.contains(secret.as_str()) {
            s = s.replace(secret.as_str(), "<redacted>");
        }
    }
    s
}

/// A client error as [`Error::Transport`], scrubbed of credentials.
pub(crate) fn transport(e: &dyn fmt::Display, secrets: &[String]) -> Error {
    Error::transport("nats", scrub(&e.to_string(), secrets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_url_reads_every_part_and_names_the_bad_one() {
        let c = Config::from_url("nats://127.0.0.1").unwrap();
        assert_eq!(c.servers, ["nats://127.0.0.1:4222"]);
        assert_eq!(c.auth, Auth::None);
        let c = Config::from_url(
            "tls://t0ken@h:4443?connect_timeout=2&request_timeout=0.5&retry_on_initial_connect=true\
             &max_reconnects=3&implicit_content_type=application/json",
        )
        .unwrap();
        assert_eq!(c.servers, ["tls://h:4443"]);
        assert_eq!(c.auth, Auth::Token("t0ken".into()));
        assert!(c.tls.required && c.retry_on_initial_connect);
        assert_eq!(c.connect_timeout, Duration::from_secs(2));
        assert_eq!(c.request_timeout, Duration::from_millis(500));
        assert_eq!(c.max_reconnects, Some(3));
        assert_eq!(c.implicit_content_type.as_deref(), Some("application/json"));
        assert!(!format!("{c:?}").contains("t0ken"));
        for (url, part) in [
            ("redis://u:hunter2@h", "scheme `redis`"),
            ("nats://u:hunter2@h:70000", "port `70000`"),
            ("nats://u:hunter2@h/x", "path `/x`"),
            ("nats://u:hunter2@h?separator=ab", "option `separator`"),
            (
                "nats://u:hunter2@h?max_reconnects=many",
                "option `max_reconnects`",
            ),
            ("nats://u:hunter2@h?colour=red", "unknown option `colour`"),
            ("nats://:hunter2@h", "without a user"),
        ] {
            let e = Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(part), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = Config::new("nats://alice:hunter2@example.com:4222").user_password("bob", "s3cret");
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("s3cret"), "{d}");
        assert!(d.contains("bob") && d.contains("example.com:4222"), "{d}");
        let d = format!("{:?}", Config::default().token("tok-123"));
        assert!(!d.contains("tok-123"), "{d}");
        let d = format!("{:?}", Config::default().nkey("SUAEXAMPLESEED"));
        assert!(!d.contains("SUAEXAMPLESEED"), "{d}");
    }

    #[test]
    fn url_credentials_are_split_out() {
        assert_eq!(
            split_credentials("nats://alice:s3cr:et@127.0.0.1:4222"),
            (
                "nats://127.0.0.1:4222".to_owned(),
                Some(("alice".to_owned(), "s3cr:et".to_owned()))
            )
        );
        assert_eq!(
            split_credentials("nats://127.0.0.1:4222"),
            ("nats://127.0.0.1:4222".to_owned(), None)
        );
        assert_eq!(
            Config::new("nats://bob:hunter2@h:1").secrets(),
            vec!["hunter2".to_owned()]
        );
    }

    #[test]
    fn scrub_removes_url_credentials_and_secrets() {
        let s = scrub(
            "failed nats://u:pw@h:1, tls://x@y and token abc",
            &["abc".to_owned()],
        );
        assert_eq!(
            s,
            "failed nats://<redacted>@h:1, tls://<redacted>@y and token <redacted>"
        );
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
