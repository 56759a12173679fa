//! Configuration of the RabbitMQ broker: connection URI, exchange, queues, prefetch, publisher
//! confirms, dead-lettering and reconnect.

use std::fmt;
use std::time::Duration;

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
}

impl ExchangeKind {
    pub(crate) fn to_lapin(self) -> lapin::ExchangeKind {
        match self {
            ExchangeKind::Direct => lapin::ExchangeKind::Direct,
            ExchangeKind::Topic => lapin::ExchangeKind::Topic,
            ExchangeKind::Fanout => lapin::ExchangeKind::Fanout,
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
        check("exchange", &self.exchange)?;
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

fn percent_decode(s: &str) -> String {
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
