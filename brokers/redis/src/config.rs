//! Configuration owned by this crate: the server URL and the Streams options.

use std::fmt;
use std::time::Duration;

/// Connection settings shared by [`RedisStreams`](crate::RedisStreams) and
/// [`RedisPubSub`](crate::RedisPubSub).
///
/// `Debug` never shows the password of the URL:
///
/// ```
/// let c = ruststream_redis::Config::new("redis://app:s3cret@127.0.0.1:6379/0");
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// Server URL (`redis://[user[:password]@]host[:port][/db]`).
    pub url: String,
    /// Redis Streams options (ignored by Pub/Sub).
    pub streams: StreamOptions,
    /// Most commands sent in one pipeline by the background writer.
    pub max_pipeline: usize,
    /// How long one command (or pipeline) may take before it fails with a transport error.
    pub response_timeout: Duration,
    /// How messages are written (every format is read); see [`MessageFormat`].
    pub message_format: MessageFormat,
}

/// How messages are written on Streams and Pub/Sub. Every format is read, whatever this says:
/// FastStream's binary and JSON envelopes, RustStream's own layouts, and plain payloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageFormat {
    /// FastStream's `BinaryMessageFormatV1` (see [`crate::faststream`]), the default, so a
    /// FastStream app (whose default it is) and this crate interoperate with no configuration:
    /// the blob is the Pub/Sub message or the `__data__` field of a stream entry, and replies
    /// travel over Pub/Sub (as FastStream's do), also for requests sent over a stream. A message
    /// with no headers, correlation id, reply address or key, whose payload could not be taken
    /// for an envelope, is written as its plain payload.
    #[default]
    FastStream,
    /// The layouts this crate wrote before: stream entries as fields (see [`crate::entry`]),
    /// Pub/Sub messages in the [`envelope`](crate::envelope), replies to Streams requests on a
    /// reply stream. For peers running an older version of this crate.
    RustStream,
}

impl Config {
    /// Settings for `url` with default stream options.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            streams: StreamOptions::default(),
            max_pipeline: 1024,
            response_timeout: Duration::from_secs(5),
            message_format: MessageFormat::default(),
        }
    }

    /// Choose how messages are written (builder style).
    pub fn message_format(mut self, format: MessageFormat) -> Self {
        self.message_format = format;
        self
    }

    /// Settings from a URL: `redis://[[user]:password@]host[:port][/db][?options]`. The db
    /// is a number (default 0). Options (removed from [`Config::url`]): `max_pipeline`,
    /// `response_timeout` (seconds), and the [`StreamOptions`] `group`, `consumer`, `block`,
    /// `claim_idle` (seconds), `max_attempts`, `dead_letter`, `maxlen`, `batch`, and
    /// `message_format` (`faststream`, `ruststream`: [`MessageFormat`]); redis-rs's `protocol`
    /// stays in the URL.
    ///
    /// ```
    /// let c = ruststream_redis::Config::from_url("redis://:s3cret@cache:6380/2?group=billing&maxlen=1000")?;
    /// assert_eq!(c.url, "redis://:s3cret@cache:6380/2");
    /// assert_eq!((c.streams.group.as_deref(), c.streams.maxlen), (Some("billing"), Some(1000)));
    /// let e = ruststream_redis::Config::from_url("redis://:s3cret@cache/x").unwrap_err().to_string();
    /// assert!(e.contains("database `x`") && !e.contains("s3cret"), "{e}");
    /// # Ok::<(), ruststream::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ruststream::Error::Config`] naming the bad part (scheme, host, port, database, option
    /// or value), without the password.
    pub fn from_url(url: &str) -> ruststream::Result<Config> {
        let mut u = ruststream::broker::url::BrokerUrl::parse(url, &["redis", "rediss"])?;
        if u.scheme == "rediss" {
            return Err(u.error("scheme `rediss`: TLS is not compiled into ruststream-redis"));
        }
        if u.hosts.len() > 1 {
            return Err(u.error("more than one host"));
        }
        if !u.path.is_empty() && u.path.parse::<u32>().is_err() {
            return Err(u.error(format_args!("database `{}` is not a number", u.path)));
        }
        let mut config = Config::new(String::new());
        if let Some(n) = u.option::<usize>("max_pipeline")? {
            config = config.max_pipeline(n);
        }
        if let Some(t) = u.seconds("response_timeout")? {
            config.response_timeout = t;
        }
        let s = &mut config.streams;
        s.group = u.take("group").or(s.group.take());
        if let Some(consumer) = u.take("consumer") {
            s.consumer = consumer;
        }
        if let Some(t) = u.seconds("block")? {
            s.block = t;
        }
        if let Some(t) = u.seconds("claim_idle")? {
            s.claim_idle = t;
        }
        if let Some(n) = u.option::<u32>("max_attempts")? {
            s.max_attempts = n.max(1);
        }
        s.dead_letter = u.take("dead_letter");
        s.maxlen = u.option("maxlen")?;
        if let Some(n) = u.option::<usize>("batch")? {
            s.batch = n.max(1);
        }
        if let Some(format) = u.take("message_format") {
            config.message_format = match format.as_str() {
                "faststream" => MessageFormat::FastStream,
                "ruststream" => MessageFormat::RustStream,
                _ => {
                    return Err(u.error(format_args!(
                        "option `message_format`: `{format}` is not faststream or ruststream"
                    )));
                }
            };
        }
        let protocol = u.take("protocol");
        u.finish_known(&[
            "max_pipeline",
            "response_timeout",
            "group",
            "consumer",
            "block",
            "claim_idle",
            "max_attempts",
            "dead_letter",
            "maxlen",
            "batch",
            "message_format",
            "protocol",
        ])?;
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
        let port = u.port_or(6379);
        config.url = format!("redis://{credentials}{host}:{port}");
        if !u.path.is_empty() {
            config.url.push('/');
            config.url.push_str(&u.path);
        }
        if let Some(protocol) = protocol {
            config.url.push_str("?protocol=");
            config.url.push_str(&protocol);
        }
        Ok(config)
    }

    /// Replace the stream options (builder style).
    pub fn streams(mut self, streams: StreamOptions) -> Self {
        self.streams = streams;
        self
    }

    /// Set the largest pipeline (builder style).
    pub fn max_pipeline(mut self, n: usize) -> Self {
        self.max_pipeline = n.max(1);
        self
    }

    /// Set the per-command response timeout (builder style).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The URL with its password replaced by `***` (for logs).
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The password in the URL, if any (used to scrub error messages).
    pub(crate) fn secret(&self) -> Option<String> {
        let (_, rest) = self.url.split_once("://")?;
        let authority = rest.split('/').next()?;
        let (userinfo, _) = authority.rsplit_once('@')?;
        let password = match userinfo.split_once(':') {
            Some((_, p)) => p,
            None => userinfo,
        };
        (!password.is_empty()).then(|| password.to_owned())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new("redis://127.0.0.1:6379")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("url", &self.redacted_url())
            .field("streams", &self.streams)
            .field("max_pipeline", &self.max_pipeline)
            .field("response_timeout", &self.response_timeout)
            .field("message_format", &self.message_format)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{user}@{host}{path}")
}

/// Redis Streams settings.
///
/// Group choice per subscription: [`SubscribeOptions::queue_group`](ruststream::SubscribeOptions),
/// else [`SubscribeOptions::durable`](ruststream::SubscribeOptions), else [`StreamOptions::group`],
/// else a unique group per subscription (so every plain subscriber receives every message; that
/// group is destroyed when the subscription is dropped). Groups are created at `$`: a new group
/// sees messages added after it was created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Consumer group used by subscriptions that name neither a queue group nor a durable name.
    pub group: Option<String>,
    /// Consumer-name prefix; each subscription appends a unique suffix.
    pub consumer: String,
    /// How long one `XREADGROUP` blocks waiting for new entries.
    pub block: Duration,
    /// Pending entries idle this long are reclaimed (`XCLAIM`) and delivered again.
    pub claim_idle: Duration,
    /// Deliveries before an entry is dead-lettered (overridden by `SubscribeOptions::max_deliver`).
    pub max_attempts: u32,
    /// Dead-letter stream (overridden by `SubscribeOptions::dead_letter`); `None` means
    /// `<stream>:dlq`.
    pub dead_letter: Option<String>,
    /// Approximate stream cap applied on publish (`XADD … MAXLEN ~ n`); `None` keeps everything.
    pub maxlen: Option<usize>,
    /// Entries fetched per `XREADGROUP` and buffered per subscription (overridden by
    /// `SubscribeOptions::prefetch`).
    pub batch: usize,
    /// How often a template subscription looks for new matching streams (`SCAN`).
    pub discover_every: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            group: None,
            consumer: format!("ruststream-{}", std::process::id()),
            block: Duration::from_secs(2),
            claim_idle: Duration::from_secs(30),
            max_attempts: 5,
            dead_letter: None,
            maxlen: None,
            batch: 128,
            discover_every: Duration::from_secs(1),
        }
    }
}

impl StreamOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Default consumer group (builder style).
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
    /// Consumer-name prefix (builder style).
    pub fn consumer(mut self, consumer: impl Into<String>) -> Self {
        self.consumer = consumer.into();
        self
    }
    /// `XREADGROUP` block time (builder style).
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block;
        self
    }
    /// Idle time before reclaiming pending entries (builder style).
    pub fn claim_idle(mut self, idle: Duration) -> Self {
        self.claim_idle = idle;
        self
    }
    /// Deliveries before dead-lettering (builder style).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// Dead-letter stream (builder style).
    pub fn dead_letter(mut self, stream: impl Into<String>) -> Self {
        self.dead_letter = Some(stream.into());
        self
    }
    /// Approximate stream length cap (builder style).
    pub fn maxlen(mut self, n: usize) -> Self {
        self.maxlen = Some(n);
        self
    }
    /// Discovery interval of template subscriptions (builder style).
    pub fn discover_every(mut self, every: Duration) -> Self {
        self.discover_every = every.max(Duration::from_millis(10));
        self
    }
    /// Read batch / buffer size (builder style).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
}

/// Maps client errors to [`ruststream::Error::Transport`] with the password scrubbed.
#[derive(Debug, Clone)]
pub(crate) struct Scrubber {
    secret: Option<String>,
}

impl Scrubber {
    pub(crate) fn new(config: &Config) -> Self {
        Scrubber {
            secret: config.secret(),
        }
    }

    pub(crate) fn scrub(&self, message: impl fmt::Display) -> String {
        let text = message.to_string();
        match &self.secret {
            Some(s) => text.replace(s.as_str(), "***"),
            None => text,
        }
    }

    pub(crate) fn error(&self, message: impl fmt::Display) -> ruststream::Error {
        ruststream::Error::transport("redis", self.scrub(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_url_reads_every_part_and_names_the_bad_one() {
        let c = Config::from_url("redis://127.0.0.1").unwrap();
        assert_eq!(c.url, "redis://127.0.0.1:6379");
        let c = Config::from_url(
            "redis://app:p%40ss@h:6380/3?max_pipeline=8&response_timeout=2&consumer=c&block=0.5\
             &claim_idle=10&max_attempts=2&dead_letter=dlq&batch=16&protocol=resp3\
             &message_format=ruststream",
        )
        .unwrap();
        assert_eq!(c.url, "redis://app:p%40ss@h:6380/3?protocol=resp3");
        assert_eq!(c.secret().as_deref(), Some("p%40ss"));
        assert_eq!(
            (c.max_pipeline, c.response_timeout),
            (8, Duration::from_secs(2))
        );
        let s = &c.streams;
        assert_eq!(
            (s.consumer.as_str(), s.block),
            ("c", Duration::from_millis(500))
        );
        assert_eq!((s.claim_idle, s.max_attempts), (Duration::from_secs(10), 2));
        assert_eq!((s.dead_letter.as_deref(), s.batch), (Some("dlq"), 16));
        assert_eq!(c.message_format, MessageFormat::RustStream);
        for (url, part) in [
            ("nats://u:hunter2@h", "scheme `nats`"),
            ("rediss://u:hunter2@h", "TLS"),
            ("redis://u:hunter2@h:x", "port `x`"),
            ("redis://u:hunter2@h/db0", "database `db0`"),
            ("redis://u:hunter2@h?maxlen=lots", "option `maxlen`"),
            (
                "redis://u:hunter2@h?message_format=xml",
                "option `message_format`",
            ),
            ("redis://u:hunter2@h?colour=red", "unknown option `colour`"),
        ] {
            let e = Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(part), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }

    #[test]
    fn redacts_password() {
        assert_eq!(redact_url("redis://u:p%40ss@h:1/0"), "redis://u:***@h:1/0");
        assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        let c = Config::new("redis://u:topsecret@h:1");
        assert_eq!(c.secret().as_deref(), Some("topsecret"));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("topsecret"), "{dbg}");
        let e = Scrubber::new(&c).error("failed to auth with topsecret");
        assert!(!e.to_string().contains("topsecret"));
    }
}
