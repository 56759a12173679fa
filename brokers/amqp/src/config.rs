//! Configuration of the RabbitMQ broker: connection URI, exchange, queues, prefetch, publisher
//! confirms, dead-lettering and reconnect.

use std::fmt;
use std::time::Duration;

use ruststream::broker::url::BrokerUrl;

use crate::binding::AddressBinding;

/// The AMQP exchange type messages are published to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExchangeKind {
    /// Exact routing-key match. Templates with parameters cannot be subscribed.
    Direct,
    /// Routing-key patterns (`*` one word, `#` many). Templates map to `*` per word.
    #[default]
    Topic,
    /// Every bound queue gets every message; subscriptions filter by address on the client.
    Fanout,
    /// Routes by header values; subscriptions bind matching every message and filter by
    /// address on the client.
    Headers,
    /// RabbitMQ's nameless default exchange: the routing key names the queue. Publishing to
    /// an address sends to the queue of that name; subscribing consumes (and declares) it, so
    /// subscribers of one address share its messages. Templates with parameters cannot be
    /// subscribed.
    Default,
}

impl ExchangeKind {
    pub(crate) fn to_lapin(self) -> lapin::ExchangeKind {
        match self {
            ExchangeKind::Direct | ExchangeKind::Default => lapin::ExchangeKind::Direct,
            ExchangeKind::Topic => lapin::ExchangeKind::Topic,
            ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
            ExchangeKind::Headers => lapin::ExchangeKind::Headers,
        }
    }
}

/// The RabbitMQ queue type used for subscriptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueType {
    /// Classic queues. Plain subscriptions get an exclusive, auto-delete queue each. The attempt
    /// count is only what the `redelivered` flag tells: 1 on first delivery, 2 on any later one,
    /// so the connection does not declare the `nack_requeue` capability.
    #[default]
    Classic,
    /// Quorum queues (replicated, always durable). RabbitMQ counts deliveries in the
    /// `x-delivery-count` header, so attempts grow 1, 2, 3, … and `max_deliver` maps to
    /// `x-delivery-limit`. Plain subscriptions get a uniquely named quorum queue that the
    /// subscription deletes when it ends (and that expires after [`QueueOptions::expires`]
    /// if the process dies).
    Quorum,
}

/// Options for the queues subscriptions declare.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Queue type (default [`QueueType::Classic`]).
    pub queue_type: QueueType,
    /// Whether queue-group queues are durable (durable subscriptions always are).
    pub durable: bool,
    /// Delete a named queue after it has been unused this long (`x-expires`).
    pub expires: Option<Duration>,
    /// Drop (or dead-letter) messages older than this (`x-message-ttl`).
    pub message_ttl: Option<Duration>,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            queue_type: QueueType::Classic,
            durable: true,
            expires: None,
            message_ttl: None,
        }
    }
}

/// Reconnect policy: exponential backoff between `initial_delay` and `max_delay`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconnect {
    /// Reconnect at all after a connection loss.
    pub enabled: bool,
    /// First delay.
    pub initial_delay: Duration,
    /// Delay cap.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row (`None`: never give up).
    pub max_attempts: Option<u32>,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            enabled: true,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_attempts: None,
        }
    }
}

impl Reconnect {
    /// Reconnect with exponential backoff from `initial_delay` up to `max_delay`.
    pub fn backoff(initial_delay: Duration, max_delay: Duration) -> Self {
        Reconnect {
            initial_delay,
            max_delay,
            ..Reconnect::default()
        }
    }

    /// Never reconnect: after a connection loss every operation fails.
    pub fn disabled() -> Self {
        Reconnect {
            enabled: false,
            ..Reconnect::default()
        }
    }

    /// Give up after `n` failed attempts in a row.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
}

/// RabbitMQ broker configuration.
///
/// `Debug` never shows the password of the URI.
///
/// ```
/// use ruststream_amqp::{Config, ExchangeKind};
/// let config = Config::new("amqp://app:secret@127.0.0.1:5672/%2f")
///     .exchange("orders", ExchangeKind::Topic)
///     .prefetch(32);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// AMQP URI (`amqp://user:password@host:port/vhost`). TLS (`amqps`) is not compiled in.
    pub uri: String,
    /// Exchange every message is published to.
    pub exchange: String,
    /// Its type.
    pub exchange_kind: ExchangeKind,
    /// Whether the exchange survives a broker restart.
    pub exchange_durable: bool,
    /// Whether the exchange is deleted once its last queue is unbound.
    pub exchange_auto_delete: bool,
    /// Queue options.
    pub queue: QueueOptions,
    /// Per-subscription prefetch (`basic.qos`); 0 means unlimited.
    pub prefetch: u16,
    /// Publish resolves only once the broker confirms the message.
    pub publisher_confirms: bool,
    /// Publish messages as persistent (delivery mode 2).
    pub persistent: bool,
    /// Dead-letter exchange (a topic exchange, declared on connect) for rejected messages of
    /// every subscription. Without it, a subscription's
    /// [`dead_letter`](ruststream::SubscribeOptions::dead_letter) address is routed through
    /// [`Config::exchange`].
    pub dead_letter_exchange: Option<String>,
    /// Reconnect policy.
    pub reconnect: Reconnect,
    /// Connect timeout per attempt.
    pub connect_timeout: Duration,
    /// Connection name shown in the management UI.
    pub connection_name: Option<String>,
    /// Per-address exchanges, queues and message properties from AsyncAPI bindings
    /// ([`Config::with_spec_bindings`]); addresses without a rule use [`Config::exchange`].
    pub bindings: Vec<AddressBinding>,
    /// What [`Config::with_spec_bindings`] warned about.
    pub(crate) binding_warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            uri: "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
            exchange: "ruststream".to_owned(),
            exchange_kind: ExchangeKind::Topic,
            exchange_durable: true,
            exchange_auto_delete: false,
            queue: QueueOptions::default(),
            prefetch: 64,
            publisher_confirms: true,
            persistent: true,
            dead_letter_exchange: None,
            reconnect: Reconnect::default(),
            connect_timeout: Duration::from_secs(10),
            connection_name: None,
            bindings: Vec::new(),
            binding_warnings: Vec::new(),
        }
    }
}

impl Config {
    /// Defaults with the given URI.
    pub fn new(uri: impl Into<String>) -> Self {
        Config {
            uri: uri.into(),
            ..Config::default()
        }
    }

    /// Set the exchange name and type.
    pub fn exchange(mut self, name: impl Into<String>, kind: ExchangeKind) -> Self {
        self.exchange = name.into();
        self.exchange_kind = kind;
        self
    }

    /// Set exchange durability and auto-delete.
    pub fn exchange_lifetime(mut self, durable: bool, auto_delete: bool) -> Self {
        self.exchange_durable = durable;
        self.exchange_auto_delete = auto_delete;
        self
    }

    /// Set the queue options.
    pub fn queue(mut self, queue: QueueOptions) -> Self {
        self.queue = queue;
        self
    }

    /// Use this queue type.
    pub fn queue_type(mut self, queue_type: QueueType) -> Self {
        self.queue.queue_type = queue_type;
        self
    }

    /// Whether queue-group queues are durable.
    pub fn queue_durable(mut self, durable: bool) -> Self {
        self.queue.durable = durable;
        self
    }

    /// Delete named queues after they have been unused this long (`x-expires`).
    pub fn queue_expires(mut self, after: Duration) -> Self {
        self.queue.expires = Some(after);
        self
    }

    /// Set the prefetch.
    pub fn prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch;
        self
    }

    /// Turn publisher confirms on or off.
    pub fn publisher_confirms(mut self, on: bool) -> Self {
        self.publisher_confirms = on;
        self
    }

    /// Set the dead-letter exchange.
    pub fn dead_letter_exchange(mut self, name: impl Into<String>) -> Self {
        self.dead_letter_exchange = Some(name.into());
        self
    }

    /// Set the reconnect policy.
    pub fn reconnect(mut self, reconnect: Reconnect) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// A configuration from a URL: `amqp://[user[:password]@]host[:port][/vhost][?options]`.
    ///
    /// The vhost is percent-encoded (`%2f` is `/`, the default when the path is empty or `/`);
    /// the port defaults to 5672. Options: `exchange`, `exchange_type` (`topic`, `direct`,
    /// `fanout`, `headers`, `default`), `prefetch`, `confirms` and `persistent` (`true` or
    /// `false`), `queue_type` (`classic`, `quorum`), `connection_name`,
    /// `dead_letter_exchange`, `connect_timeout` (seconds); lapin's `heartbeat`,
    /// `channel_max`, `frame_max`, `connection_timeout` (ms) and `auth_mechanism` stay in
    /// [`Config::uri`].
    ///
    /// ```
    /// use ruststream_amqp::{Config, ExchangeKind};
    /// let c = Config::from_url("amqp://app:s3cret@rabbit:5673/orders?exchange=events&prefetch=16&heartbeat=30")?;
    /// assert_eq!(c.uri, "amqp://app:s3cret@rabbit:5673/orders?heartbeat=30");
    /// assert_eq!((c.exchange.as_str(), c.prefetch), ("events", 16));
    /// let e = Config::from_url("amqp://app:s3cret@rabbit:http/").unwrap_err().to_string();
    /// assert!(e.contains("port `http`") && !e.contains("s3cret"), "{e}");
    /// # Ok::<(), ruststream::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ruststream::Error::Config`] naming the bad part (scheme, host, port, option or
    /// value), with the password replaced by `***`.
    pub fn from_url(url: &str) -> ruststream::Result<Config> {
        let mut u = BrokerUrl::parse(url, &["amqp", "amqps"])?;
        if u.scheme == "amqps" {
            return Err(u.error("scheme `amqps`: TLS is not compiled into ruststream-amqp"));
        }
        if u.hosts.len() > 1 {
            return Err(u.error("more than one host"));
        }
        if u.user.is_none() && u.password().is_some() {
            return Err(u.error("empty user name"));
        }
        let mut config = Config::default();
        if let Some(exchange) = u.take("exchange") {
            config.exchange = exchange;
        }
        if let Some(kind) = u.take("exchange_type") {
            config.exchange_kind = match kind.as_str() {
                "topic" => ExchangeKind::Topic,
                "direct" => ExchangeKind::Direct,
                "fanout" => ExchangeKind::Fanout,
                "headers" => ExchangeKind::Headers,
                "default" => ExchangeKind::Default,
                _ => {
                    return Err(u.error(format_args!(
                        "option `exchange_type`: `{kind}` is not topic, direct, fanout, \
                         headers or default"
                    )));
                }
            };
        }
        if let Some(prefetch) = u.option("prefetch")? {
            config.prefetch = prefetch;
        }
        if let Some(confirms) = u.option("confirms")? {
            config.publisher_confirms = confirms;
        }
        if let Some(persistent) = u.option("persistent")? {
            config.persistent = persistent;
        }
        if let Some(queue_type) = u.take("queue_type") {
            config.queue.queue_type = match queue_type.as_str() {
                "classic" => QueueType::Classic,
                "quorum" => QueueType::Quorum,
                _ => {
                    return Err(u.error(format_args!(
                        "option `queue_type`: `{queue_type}` is not classic or quorum"
                    )));
                }
            };
        }
        config.connection_name = u.take("connection_name");
        config.dead_letter_exchange = u.take("dead_letter_exchange");
        if let Some(timeout) = u.seconds("connect_timeout")? {
            config.connect_timeout = timeout;
        }
        let lapin_options = [
            "heartbeat",
            "channel_max",
            "frame_max",
            "connection_timeout",
            "auth_mechanism",
        ];
        let passed: Vec<String> = u
            .query
            .iter()
            .filter(|(k, _)| lapin_options.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        u.query
            .retain(|(k, _)| !lapin_options.contains(&k.as_str()));
        u.finish_known(&[
            "exchange",
            "exchange_type",
            "prefetch",
            "confirms",
            "persistent",
            "queue_type",
            "connection_name",
            "dead_letter_exchange",
            "connect_timeout",
            "heartbeat",
            "channel_max",
            "frame_max",
            "connection_timeout",
            "auth_mechanism",
        ])?;
        // The user info as written (still percent-encoded), for lapin to decode.
        let raw = u.as_str();
        let authority = raw
            .split_once("://")
            .map_or("", |(_, r)| r)
            .split(['/', '?', '#'])
            .next()
            .unwrap_or("");
        let credentials = authority
            .rsplit_once('@')
            .map(|(c, _)| format!("{c}@"))
            .unwrap_or_default();
        let host = &u.hosts[0].host;
        let port = u.port_or(5672);
        let vhost = if u.path.is_empty() {
            "%2f"
        } else {
            u.path.as_str()
        };
        config.uri = format!("amqp://{credentials}{host}:{port}/{vhost}");
        if !passed.is_empty() {
            config.uri.push('?');
            config.uri.push_str(&passed.join("&"));
        }
        config
            .uri
            .parse::<lapin::uri::AMQPUri>()
            .map_err(|e| u.error(config.scrub(&e)))?;
        Ok(config)
    }

    /// Check what can be checked without a server.
    pub fn validate(&self) -> ruststream::Result<()> {
        let check = |what: &str, name: &str| -> ruststream::Result<()> {
            if name.is_empty() || name.len() > 255 || name.starts_with("amq.") {
                return Err(ruststream::Error::Config(format!(
                    "{what} `{name}`: must be 1 to 255 bytes and not start with `amq.` \
                     (reserved by RabbitMQ)"
                )));
            }
            Ok(())
        };
        if self.exchange_kind != ExchangeKind::Default {
            check("exchange", &self.exchange)?;
        }
        for rule in &self.bindings {
            if let Some(exchange) = rule.exchange.as_ref().filter(|e| e.declared()) {
                check("exchange", &exchange.name)?;
            }
        }
        if let Some(dlx) = &self.dead_letter_exchange {
            check("dead-letter exchange", dlx)?;
        }
        let r = &self.reconnect;
        if r.enabled && (r.initial_delay.is_zero() || r.max_delay.is_zero()) {
            return Err(ruststream::Error::Config(
                "reconnect delays must be positive".to_owned(),
            ));
        }
        Ok(())
    }

    /// The URI with its password replaced by `***`.
    pub fn redacted_uri(&self) -> String {
        redact_uri(&self.uri)
    }

    /// The password in the URI, if any (for scrubbing error messages).
    pub(crate) fn password(&self) -> Option<&str> {
        let rest = self.uri.split_once("://")?.1;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let userinfo = authority.rsplit_once('@')?.0;
        let (_, password) = userinfo.split_once(':')?;
        (!password.is_empty()).then_some(password)
    }

    /// Replace the password (raw and percent-decoded) in `text` with `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Some(password) = self.password() {
            out = out.replace(password, "***");
            let decoded = percent_decode(password);
            if !decoded.is_empty() && decoded != password {
                out = out.replace(&decoded, "***");
            }
        }
        out
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `uri` with the password of its user info replaced by `***`.
pub(crate) fn redact_uri(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => uri.to_owned(),
        },
        None => uri.to_owned(),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("uri", &self.redacted_uri())
            .field("exchange", &self.exchange)
            .field("exchange_kind", &self.exchange_kind)
            .field("exchange_durable", &self.exchange_durable)
            .field("exchange_auto_delete", &self.exchange_auto_delete)
            .field("queue", &self.queue)
            .field("prefetch", &self.prefetch)
            .field("publisher_confirms", &self.publisher_confirms)
            .field("persistent", &self.persistent)
            .field("dead_letter_exchange", &self.dead_letter_exchange)
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("connection_name", &self.connection_name)
            .field("bindings", &self.bindings)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_redaction_hide_the_password() {
        let c = Config::new("amqp://user:s3cr%40t@host:5672/%2f");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr"), "{dbg}");
        assert!(dbg.contains("amqp://user:***@host:5672/%2f"), "{dbg}");
        assert_eq!(c.password(), Some("s3cr%40t"));
        assert_eq!(
            c.scrub("bad s3cr%40t and s3cr@t"),
            "bad *** and ***".to_owned()
        );
        assert_eq!(redact_uri("amqp://host/%2f"), "amqp://host/%2f");
        assert_eq!(redact_uri("amqp://user@host/"), "amqp://user@host/");
        assert_eq!(Config::new("amqp://host").password(), None);
    }

    #[test]
    fn from_url_reads_every_part_and_names_the_bad_one() {
        let c = Config::from_url("amqp://guest:guest@127.0.0.1").unwrap();
        assert_eq!(c.uri, "amqp://guest:guest@127.0.0.1:5672/%2f");
        let c = Config::from_url(
            "amqp://u:p%40ss@[::1]:5673/?exchange=ev&exchange_type=default&confirms=false\
             &persistent=no&queue_type=quorum&connection_name=svc&dead_letter_exchange=dlx\
             &connect_timeout=2.5&frame_max=8192",
        )
        .unwrap();
        assert_eq!(c.uri, "amqp://u:p%40ss@[::1]:5673/%2f?frame_max=8192");
        assert_eq!(c.password(), Some("p%40ss"));
        assert_eq!(
            (c.exchange.as_str(), c.exchange_kind),
            ("ev", ExchangeKind::Default)
        );
        assert!(!c.publisher_confirms && !c.persistent);
        assert_eq!(c.queue.queue_type, QueueType::Quorum);
        assert_eq!(c.connection_name.as_deref(), Some("svc"));
        assert_eq!(c.dead_letter_exchange.as_deref(), Some("dlx"));
        assert_eq!(c.connect_timeout, Duration::from_millis(2500));
        let vhost = Config::from_url("amqp://h/orders").unwrap();
        assert_eq!(vhost.uri, "amqp://h:5672/orders");
        for (url, part) in [
            ("nats://u:hunter2@h", "scheme `nats`"),
            ("amqp://u:hunter2@a,b/", "more than one host"),
            ("amqps://u:hunter2@h", "TLS"),
            ("amqp://u:hunter2@:5672/", "no host"),
            ("amqp://u:hunter2@h:99999/", "port `99999`"),
            ("amqp://u:hunter2@h/?prefetch=-1", "option `prefetch`"),
            ("amqp://u:hunter2@h/?confirms=maybe", "option `confirms`"),
            (
                "amqp://u:hunter2@h/?exchange_type=x",
                "option `exchange_type`",
            ),
            ("amqp://u:hunter2@h/?colour=red", "unknown option `colour`"),
            ("amqp://:hunter2@h/", "empty user"),
            ("h:5672", "expected"),
        ] {
            let e = Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(part), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn validation() {
        assert!(Config::default().validate().is_ok());
        for bad in ["", "amq.topic"] {
            let c = Config::default().exchange(bad, ExchangeKind::Topic);
            assert!(matches!(c.validate(), Err(ruststream::Error::Config(_))));
        }
        let c = Config::default().dead_letter_exchange("x".repeat(256));
        assert!(c.validate().is_err());
        let c = Config::default().reconnect(Reconnect::backoff(Duration::ZERO, Duration::ZERO));
        assert!(c.validate().is_err());
    }
}
