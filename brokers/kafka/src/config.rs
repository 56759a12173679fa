//! [`Config`]: everything the Kafka broker needs, built in code or from a URL.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use ruststream::broker::url::{BrokerUrl, redact};
use ruststream::{Address, Error, Result};

/// Producer acknowledgements (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the producer does not wait for the broker.
    None,
    /// `acks=1`: the partition leader wrote the record.
    Leader,
    /// `acks=all`: every in-sync replica wrote the record (the default).
    #[default]
    All,
}

/// Producer compression (`compression.type`); only the codecs built into this crate's
/// librdkafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// No compression (the default).
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
}

/// Where a consumer group with no committed offset for a partition starts (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// From the oldest retained record: nothing published before the group's first start is
    /// missed (the default).
    #[default]
    Earliest,
    /// From the end: only records published after the group's first assignment.
    Latest,
}

/// `security.protocol`, with SASL credentials where it needs them.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain TCP (the default).
    #[default]
    Plaintext,
    /// TLS; `ca_location` is a CA bundle file (`ssl.ca.location`), `None` for the system's.
    Ssl {
        /// CA certificate file.
        ca_location: Option<String>,
    },
    /// SASL over plain TCP.
    SaslPlaintext(Sasl),
    /// SASL over TLS.
    SaslSsl {
        /// Credentials.
        sasl: Sasl,
        /// CA certificate file.
        ca_location: Option<String>,
    },
}

/// SASL credentials (`sasl.mechanism`, `sasl.username`, `sasl.password`).
#[derive(Clone, PartialEq, Eq)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// User name.
    pub username: String,
    /// Password: never printed.
    pub password: String,
}

impl fmt::Debug for Sasl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Security::Plaintext => f.write_str("Plaintext"),
            Security::Ssl { ca_location } => f
                .debug_struct("Ssl")
                .field("ca_location", ca_location)
                .finish(),
            Security::SaslPlaintext(s) => f.debug_tuple("SaslPlaintext").field(s).finish(),
            Security::SaslSsl { sasl, ca_location } => f
                .debug_struct("SaslSsl")
                .field("sasl", sasl)
                .field("ca_location", ca_location)
                .finish(),
        }
    }
}

/// How a topic is created when this crate creates it (from `kafka` channel bindings or the
/// defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSpec {
    /// Partitions; `None`: [`Config::partitions`].
    pub partitions: Option<i32>,
    /// Replication factor; `None`: [`Config::replicas`].
    pub replicas: Option<i32>,
    /// Topic configuration (`cleanup.policy`, `retention.ms`, …).
    pub config: BTreeMap<String, String>,
}

/// Configuration of a [`KafkaBroker`](crate::KafkaBroker).
///
/// ```
/// use std::time::Duration;
/// use ruststream_kafka::{Acks, Config};
///
/// let config = Config::new("127.0.0.1:9092")
///     .client_id("billing")
///     .acks(Acks::All)
///     .linger(Duration::from_millis(2))
///     .partitions(3);
/// let same = Config::from_url("kafka://127.0.0.1:9092?client_id=billing&acks=all&linger_ms=2&partitions=3")?;
/// assert_eq!(format!("{config:?}"), format!("{same:?}"));
/// # Ok::<(), ruststream::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub bootstrap_servers: String,
    /// `client.id` (default `"ruststream"`).
    pub client_id: String,
    /// The consumer group of subscriptions that name neither a queue group nor a durable
    /// name; `None` (the default): each such subscription is private (it gets every record
    /// published after it started, and commits nothing).
    pub group_id: Option<String>,
    /// Producer acknowledgements.
    pub acks: Acks,
    /// `enable.idempotence` (default off: not every Kafka-protocol server grants producer ids).
    pub idempotence: bool,
    /// `linger.ms` (default 0: a publish resolves once acknowledged, so lingering only delays
    /// it; concurrent publishes still share requests).
    pub linger: Duration,
    /// `batch.size` in bytes; `None`: librdkafka's default.
    pub batch_size: Option<usize>,
    /// `compression.type`.
    pub compression: Compression,
    /// `security.protocol` and credentials.
    pub security: Security,
    /// Bound of admin and metadata requests (default 10 s).
    pub request_timeout: Duration,
    /// `session.timeout.ms` of consumer groups (default 10 s): how soon a dead member's
    /// partitions move to the others.
    pub session_timeout: Duration,
    /// `delivery.timeout.ms`: how long a publish may take before it fails (default 30 s).
    pub delivery_timeout: Duration,
    /// How often handled offsets are committed while consuming (default 500 ms); they are also
    /// committed when partitions are revoked, when a subscription ends and at shutdown.
    pub commit_interval: Duration,
    /// Where groups without a committed offset start.
    pub offset_reset: OffsetReset,
    /// Create missing topics on publish and subscribe (default on).
    pub create_topics: bool,
    /// Partitions of topics this crate creates (default 1).
    pub partitions: i32,
    /// Replication factor of topics this crate creates (default 1).
    pub replicas: i32,
    /// Records handed to a subscription ahead of its consumer (default 256); a subscription's
    /// `prefetch` option overrides it.
    pub prefetch: usize,
    /// Prefix of request/reply inbox topics (default `"ruststream.replies"`).
    pub reply_prefix: String,
    /// Per-topic creation settings (from `kafka` channel bindings).
    pub topics: BTreeMap<String, TopicSpec>,
    /// Consumer group per address template (from `kafka` operation bindings' `groupId`).
    pub groups: Vec<(Address, String)>,
    /// Addresses use this separator where topics use `.` (see [`Config::address_separator`]).
    pub address_separator: Option<char>,
    /// Raw librdkafka settings applied last (values of keys naming a secret are redacted in
    /// `Debug`).
    pub extra: Vec<(String, String)>,
}

impl Default for Config {
    fn default() -> Self {
        Config::new("127.0.0.1:9092")
    }
}

impl Config {
    /// A configuration for `bootstrap_servers` (`host:port[,host:port…]`) with the defaults.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Config {
            bootstrap_servers: bootstrap_servers.into(),
            client_id: "ruststream".to_owned(),
            group_id: None,
            acks: Acks::All,
            idempotence: false,
            linger: Duration::ZERO,
            batch_size: None,
            compression: Compression::None,
            security: Security::Plaintext,
            request_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_secs(30),
            commit_interval: Duration::from_millis(500),
            offset_reset: OffsetReset::Earliest,
            create_topics: true,
            partitions: 1,
            replicas: 1,
            prefetch: 256,
            reply_prefix: "ruststream.replies".to_owned(),
            topics: BTreeMap::new(),
            groups: Vec::new(),
            address_separator: None,
            extra: Vec::new(),
        }
    }

    /// Parse `kafka://[user:password@]host[:port][,host[:port]…][?option=value&…]`
    /// (`kafka-secure://` or `kafka+ssl://` for TLS; the port defaults to 9092). Options:
    /// `client_id`, `group_id`, `acks` (`0`, `1`, `all`), `idempotence`, `linger_ms`,
    /// `batch_size`, `compression` (`none`, `gzip`, `snappy`, `lz4`), `partitions`,
    /// `replicas`, `offset_reset` (`earliest`, `latest`), `create_topics`, `prefetch`,
    /// `sasl_mechanism` (default `PLAIN` when credentials are given), `ca_location`,
    /// `request_timeout_ms`, `session_timeout_ms`.
    ///
    /// # Errors
    /// [`Error::Config`] naming the bad part; the password never appears in it.
    pub fn from_url(url: &str) -> Result<Config> {
        const KNOWN: &[&str] = &[
            "client_id",
            "group_id",
            "acks",
            "idempotence",
            "linger_ms",
            "batch_size",
            "compression",
            "partitions",
            "replicas",
            "offset_reset",
            "create_topics",
            "prefetch",
            "sasl_mechanism",
            "ca_location",
            "request_timeout_ms",
            "session_timeout_ms",
        ];
        let mut u = BrokerUrl::parse(url, &["kafka", "kafka-secure", "kafka+ssl", "kafkas"])?;
        let tls = u.scheme != "kafka";
        let hosts: Vec<String> = u
            .hosts
            .iter()
            .map(|h| format!("{}:{}", h.host, h.port.unwrap_or(9092)))
            .collect();
        let mut config = Config::new(hosts.join(","));
        let choice = |u: &BrokerUrl, key: &str, value: &str, allowed: &str| {
            u.error(format_args!("option `{key}`: `{value}` (use {allowed})"))
        };
        if let Some(v) = u.take("client_id") {
            config.client_id = v;
        }
        config.group_id = u.take("group_id");
        if let Some(v) = u.take("acks") {
            config.acks = match v.as_str() {
                "0" => Acks::None,
                "1" => Acks::Leader,
                "all" | "-1" => Acks::All,
                _ => return Err(choice(&u, "acks", &v, "0, 1 or all")),
            };
        }
        if let Some(v) = u.option("idempotence")? {
            config.idempotence = v;
        }
        if let Some(ms) = u.option::<u64>("linger_ms")? {
            config.linger = Duration::from_millis(ms);
        }
        config.batch_size = u.option("batch_size")?;
        if let Some(v) = u.take("compression") {
            config.compression = match v.as_str() {
                "none" => Compression::None,
                "gzip" => Compression::Gzip,
                "snappy" => Compression::Snappy,
                "lz4" => Compression::Lz4,
                _ => return Err(choice(&u, "compression", &v, "none, gzip, snappy or lz4")),
            };
        }
        for key in ["partitions", "replicas"] {
            if let Some(n) = u.option::<i32>(key)? {
                if n < 1 {
                    return Err(u.error(format_args!("option `{key}` must be at least 1")));
                }
                *(if key == "partitions" {
                    &mut config.partitions
                } else {
                    &mut config.replicas
                }) = n;
            }
        }
        if let Some(v) = u.take("offset_reset") {
            config.offset_reset = match v.as_str() {
                "earliest" => OffsetReset::Earliest,
                "latest" => OffsetReset::Latest,
                _ => return Err(choice(&u, "offset_reset", &v, "earliest or latest")),
            };
        }
        if let Some(v) = u.option("create_topics")? {
            config.create_topics = v;
        }
        if let Some(n) = u.option::<usize>("prefetch")? {
            config.prefetch = n.max(1);
        }
        if let Some(ms) = u.option::<u64>("request_timeout_ms")? {
            config.request_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = u.option::<u64>("session_timeout_ms")? {
            config.session_timeout = Duration::from_millis(ms);
        }
        let sasl_mechanism = u.take("sasl_mechanism");
        let ca_location = u.take("ca_location");
        u.finish_known(KNOWN)?;
        let sasl = match (u.user.clone(), sasl_mechanism) {
            (Some(username), mechanism) => Some(Sasl {
                mechanism: mechanism.unwrap_or_else(|| "PLAIN".to_owned()),
                username,
                password: u.password().unwrap_or_default().to_owned(),
            }),
            (None, Some(_)) => {
                return Err(u.error("`sasl_mechanism` needs `user:password@` in the url"));
            }
            (None, None) => None,
        };
        config.security = match (tls, sasl) {
            (false, None) => Security::Plaintext,
            (true, None) => Security::Ssl { ca_location },
            (false, Some(s)) => Security::SaslPlaintext(s),
            (true, Some(s)) => Security::SaslSsl {
                sasl: s,
                ca_location,
            },
        };
        Ok(config)
    }

    /// Set `client.id`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// The default consumer group (see [`Config::group_id`](Config#structfield.group_id)).
    pub fn group_id(mut self, group: impl Into<String>) -> Self {
        self.group_id = Some(group.into());
        self
    }

    /// Producer acknowledgements.
    pub fn acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        self
    }

    /// Idempotent producer.
    pub fn idempotence(mut self, on: bool) -> Self {
        self.idempotence = on;
        self
    }

    /// `linger.ms`.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// `batch.size` in bytes.
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = Some(bytes);
        self
    }

    /// `compression.type`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Security protocol and credentials.
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// Bound of admin and metadata requests.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Consumer group session timeout.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// How often handled offsets are committed while consuming.
    pub fn commit_interval(mut self, interval: Duration) -> Self {
        self.commit_interval = interval;
        self
    }

    /// Where groups without a committed offset start.
    pub fn offset_reset(mut self, reset: OffsetReset) -> Self {
        self.offset_reset = reset;
        self
    }

    /// Create missing topics (default on).
    pub fn create_topics(mut self, on: bool) -> Self {
        self.create_topics = on;
        self
    }

    /// Partitions of topics this crate creates.
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = n.max(1);
        self
    }

    /// Replication factor of topics this crate creates.
    pub fn replicas(mut self, n: i32) -> Self {
        self.replicas = n.max(1);
        self
    }

    /// Records buffered ahead of a subscription's consumer.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n.max(1);
        self
    }

    /// How `topic` is created when missing.
    pub fn topic(mut self, topic: impl Into<String>, spec: TopicSpec) -> Self {
        self.topics.insert(topic.into(), spec);
        self
    }

    /// Subscriptions to `address` (a template) without a queue group join `group`.
    pub fn group_for(mut self, address: Address, group: impl Into<String>) -> Self {
        self.groups.push((address, group.into()));
        self
    }

    /// A raw librdkafka setting, applied after everything else.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// Addresses separate their segments with `separator` where Kafka topics use `.`: with
    /// `'/'`, the AsyncAPI address `smartylighting/streetlights/1/0/event/{id}/lighting/measured`
    /// is the topic `smartylighting.streetlights.1.0.event.{id}.lighting.measured` (the
    /// official streetlights-kafka naming), and received records report the `/` form, so the
    /// same generated code runs on every broker. Such addresses cannot hold a `.` themselves.
    pub fn address_separator(mut self, separator: char) -> Self {
        self.address_separator = Some(separator).filter(|c| *c != '.');
        self
    }

    /// The topic of `address`.
    ///
    /// # Errors
    /// [`Error::InvalidAddress`] when the address holds both the separator and a `.`.
    pub fn topic_of<'a>(&self, address: &'a str) -> Result<std::borrow::Cow<'a, str>> {
        match self.address_separator {
            Some(sep) if address.contains(sep) => {
                if address.contains('.') {
                    return Err(Error::InvalidAddress {
                        address: address.to_owned(),
                        reason: format!("addresses separated by `{sep}` cannot hold a `.` (it separates Kafka topic segments)").into(),
                    });
                }
                Ok(std::borrow::Cow::Owned(address.replace(sep, ".")))
            }
            // Already a topic (a reply inbox, another client's reply topic).
            _ => Ok(std::borrow::Cow::Borrowed(address)),
        }
    }

    /// The address of `topic` (the reverse of [`Config::topic_of`]).
    pub fn address_of<'a>(&self, topic: &'a str) -> std::borrow::Cow<'a, str> {
        match self.address_separator {
            Some(sep) if topic.contains('.') => {
                std::borrow::Cow::Owned(topic.replace('.', &sep.to_string()))
            }
            _ => std::borrow::Cow::Borrowed(topic),
        }
    }

    /// The group bound to `address` by [`Config::group_for`], if any.
    pub(crate) fn group_of(&self, address: &Address) -> Option<&str> {
        self.groups
            .iter()
            .find(|(a, _)| a.as_str() == address.as_str())
            .map(|(_, g)| g.as_str())
    }

    /// How `topic` is created: its own [`TopicSpec`], or that of a template matching it.
    /// Bindings name the application's addresses: `topic` is looked up in that form too.
    pub fn topic_spec(&self, topic: &str) -> Option<&TopicSpec> {
        let address = self.address_of(topic);
        [topic, address.as_ref()].into_iter().find_map(|name| {
            self.topics.get(name).or_else(|| {
                self.topics
                    .iter()
                    .find(|(k, _)| {
                        Address::parse(k).is_ok_and(|a| !a.is_concrete() && a.matches(name))
                    })
                    .map(|(_, s)| s)
            })
        })
    }

    /// Settings shared by producers, consumers and the admin client.
    pub(crate) fn client_config(&self) -> Result<ClientConfig> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", &self.client_id)
            .set("socket.keepalive.enable", "true")
            .set("log_level", "3");
        let (protocol, sasl, ca) = match &self.security {
            Security::Plaintext => ("plaintext", None, None),
            Security::Ssl { ca_location } => ("ssl", None, ca_location.as_deref()),
            Security::SaslPlaintext(s) => ("sasl_plaintext", Some(s), None),
            Security::SaslSsl { sasl, ca_location } => {
                ("sasl_ssl", Some(sasl), ca_location.as_deref())
            }
        };
        if protocol.contains("ssl") && !cfg!(feature = "ssl") {
            return Err(Error::Config(format!(
                "kafka: security protocol `{protocol}` needs the `ssl` feature of ruststream-kafka"
            )));
        }
        if !cfg!(feature = "ssl") && sasl.is_some_and(|s| s.mechanism.starts_with("SCRAM")) {
            return Err(Error::Config(
                "kafka: SCRAM authentication needs the `ssl` feature of ruststream-kafka"
                    .to_owned(),
            ));
        }
        c.set("security.protocol", protocol);
        if let Some(s) = sasl {
            c.set("sasl.mechanism", &s.mechanism)
                .set("sasl.username", &s.username)
                .set("sasl.password", &s.password);
        }
        if let Some(ca) = ca {
            c.set("ssl.ca.location", ca);
        }
        Ok(c)
    }

    /// Producer settings.
    pub(crate) fn producer_config(&self) -> Result<ClientConfig> {
        let mut c = self.client_config()?;
        c.set(
            "acks",
            match self.acks {
                Acks::None => "0",
                Acks::Leader => "1",
                Acks::All => "all",
            },
        )
        .set(
            "enable.idempotence",
            if self.idempotence { "true" } else { "false" },
        )
        .set("linger.ms", self.linger.as_millis().to_string())
        .set(
            "delivery.timeout.ms",
            self.delivery_timeout.as_millis().to_string(),
        )
        // Java-compatible key hashing (other clients put a key on the same partition); records
        // without a key spread over partitions one by one.
        .set("partitioner", "murmur2_random")
        .set("sticky.partitioning.linger.ms", "0")
        .set(
            "compression.type",
            match self.compression {
                Compression::None => "none",
                Compression::Gzip => "gzip",
                Compression::Snappy => "snappy",
                Compression::Lz4 => "lz4",
            },
        );
        if let Some(b) = self.batch_size {
            c.set("batch.size", b.to_string());
        }
        self.apply_extra(&mut c);
        Ok(c)
    }

    /// Consumer settings (`group`: the consumer group, `None` for manual assignment).
    pub(crate) fn consumer_config(&self, group: Option<&str>) -> Result<ClientConfig> {
        let mut c = self.client_config()?;
        c.set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (self.session_timeout.as_millis() / 4).max(100).to_string(),
            )
            // Template subscriptions see new matching topics within a second.
            .set("topic.metadata.refresh.interval.ms", "1000")
            .set(
                "auto.offset.reset",
                match self.offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            );
        if let Some(g) = group {
            c.set("group.id", g);
        }
        self.apply_extra(&mut c);
        Ok(c)
    }

    fn apply_extra(&self, c: &mut ClientConfig) {
        for (k, v) in &self.extra {
            c.set(k, v);
        }
    }

    /// `text` without any secret of this configuration.
    pub(crate) fn scrub(&self, text: impl fmt::Display) -> String {
        let mut text = redact(&text.to_string());
        let mut secrets: Vec<&str> = self
            .extra
            .iter()
            .filter(|(k, _)| is_secret_key(k))
            .map(|(_, v)| v.as_str())
            .collect();
        if let Security::SaslPlaintext(s) | Security::SaslSsl { sasl: s, .. } = &self.security {
            secrets.push(&s.password);
        }
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            text = text.replace(secret, "<redacted>");
        }
        text
    }

    /// A transport error with the secrets scrubbed.
    pub(crate) fn transport(&self, what: &str, e: impl fmt::Display) -> Error {
        Error::transport("kafka", self.scrub(format_args!("{what}: {e}")))
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "key.pem", "jaas"]
        .iter()
        .any(|s| key.contains(s))
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_key(k) {
                        "<redacted>"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("Config")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("client_id", &self.client_id)
            .field("group_id", &self.group_id)
            .field("acks", &self.acks)
            .field("idempotence", &self.idempotence)
            .field("linger", &self.linger)
            .field("batch_size", &self.batch_size)
            .field("compression", &self.compression)
            .field("security", &self.security)
            .field("request_timeout", &self.request_timeout)
            .field("session_timeout", &self.session_timeout)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("commit_interval", &self.commit_interval)
            .field("offset_reset", &self.offset_reset)
            .field("create_topics", &self.create_topics)
            .field("partitions", &self.partitions)
            .field("replicas", &self.replicas)
            .field("prefetch", &self.prefetch)
            .field("reply_prefix", &self.reply_prefix)
            .field("topics", &self.topics)
            .field("groups", &self.groups)
            .field("address_separator", &self.address_separator)
            .field("extra", &extra)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_err(r: Result<Config>) -> String {
        match r {
            Err(Error::Config(m)) => m,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn url_with_credentials_options_and_several_hosts() {
        let c = Config::from_url(
            "kafka-secure://alice:s%3Acret@k1:9093,k2:9093?client_id=svc&group_id=g&acks=1&compression=lz4&sasl_mechanism=SCRAM-SHA-256&ca_location=/etc/ca.pem",
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "k1:9093,k2:9093");
        assert_eq!(c.client_id, "svc");
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(c.acks, Acks::Leader);
        assert_eq!(c.compression, Compression::Lz4);
        match &c.security {
            Security::SaslSsl { sasl, ca_location } => {
                assert_eq!(sasl.username, "alice");
                assert_eq!(sasl.password, "s:cret");
                assert_eq!(sasl.mechanism, "SCRAM-SHA-256");
                assert_eq!(ca_location.as_deref(), Some("/etc/ca.pem"));
            }
            other => panic!("{other:?}"),
        }
        let shown = format!("{c:?}");
        assert!(!shown.contains("s:cret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn url_errors_name_the_bad_part_and_hide_the_password() {
        let e = config_err(Config::from_url("amqp://h:1"));
        assert!(e.contains("scheme `amqp`"), "{e}");
        let e = config_err(Config::from_url("kafka://u:hunter2@host:x9"));
        assert!(e.contains("port `x9`") && !e.contains("hunter2"), "{e}");
        assert_eq!(
            Config::from_url("kafka://k1,k2:9093")
                .unwrap()
                .bootstrap_servers,
            "k1:9092,k2:9093"
        );
        let e = config_err(Config::from_url("kafka://h:9092?acks=2"));
        assert!(e.contains("option `acks`: `2`"), "{e}");
        let e = config_err(Config::from_url("kafka://h:9092?colour=red"));
        assert!(e.contains("unknown option `colour`"), "{e}");
        let e = config_err(Config::from_url("kafka://h:9092?partitions=0"));
        assert!(e.contains("partitions"), "{e}");
    }

    #[test]
    fn scrub_removes_passwords_from_client_errors() {
        let c = Config::from_url("kafka://bob:topsecret@h:9092")
            .unwrap()
            .set("ssl.key.password", "pemsecret");
        let text = c.scrub(
            "auth failed for bob with topsecret via kafka://bob:topsecret@h:9092, key pemsecret",
        );
        assert!(
            !text.contains("topsecret") && !text.contains("pemsecret"),
            "{text}"
        );
        assert!(format!("{c:?}").contains("(\"ssl.key.password\", \"<redacted>\")"));
    }

    #[test]
    fn slash_addresses_are_dotted_topics_and_back() {
        let c = Config::default().address_separator('/');
        let a = "smartylighting/streetlights/1/0/event/{id}/lighting/measured";
        assert_eq!(
            c.topic_of(a).unwrap(),
            "smartylighting.streetlights.1.0.event.{id}.lighting.measured"
        );
        assert_eq!(
            c.address_of("smartylighting.streetlights.1.0.event.7.lighting.measured"),
            "smartylighting/streetlights/1/0/event/7/lighting/measured"
        );
        // A topic as such (a reply inbox) passes; an address mixing both is refused.
        assert_eq!(
            c.topic_of("ruststream.replies.x").unwrap(),
            "ruststream.replies.x"
        );
        assert!(matches!(
            c.topic_of("a/b.c"),
            Err(Error::InvalidAddress { .. })
        ));
        let plain = Config::default();
        assert_eq!(plain.topic_of("a.b").unwrap(), "a.b");
        assert_eq!(plain.address_of("a.b"), "a.b");
    }

    #[test]
    fn tls_without_the_feature_is_a_clear_config_error() {
        let c = Config::new("h:9093").security(Security::Ssl { ca_location: None });
        let built = c.client_config();
        if cfg!(feature = "ssl") {
            assert!(built.is_ok());
        } else {
            let e = built.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("`ssl` feature"), "{e}");
        }
    }
}
