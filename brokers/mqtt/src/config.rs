//! Configuration owned by this crate.

use std::fmt;
use std::time::Duration;

use ruststream::Address;

/// MQTT quality of service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Qos {
    /// QoS 0: fire-and-forget.
    AtMostOnce,
    /// QoS 1: acknowledged, may duplicate.
    #[default]
    AtLeastOnce,
    /// QoS 2: acknowledged, exactly once between client and broker.
    ExactlyOnce,
}

impl Qos {
    pub(crate) fn to_rumqttc(self) -> rumqttc::v5::mqttbytes::QoS {
        use rumqttc::v5::mqttbytes::QoS;
        match self {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        }
    }

    /// The QoS of an AsyncAPI MQTT binding value (`0`, `1`, `2`).
    pub fn from_level(level: u8) -> Option<Qos> {
        match level {
            0 => Some(Qos::AtMostOnce),
            1 => Some(Qos::AtLeastOnce),
            2 => Some(Qos::ExactlyOnce),
            _ => None,
        }
    }
}

/// User name and password. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// MQTT 5 connection settings.
///
/// ```
/// use ruststream_mqtt::{Config, Qos};
/// let c = Config::new("127.0.0.1", 1883)
///     .credentials("app", "s3cret")
///     .default_qos(Qos::AtLeastOnce)
///     .qos_for("telemetry/{device}", Qos::AtMostOnce);
/// assert!(!format!("{c:?}").contains("s3cret"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; `None` generates a unique one per connection (required for a persistent
    /// session, whose state the broker keys by client id).
    pub client_id: Option<String>,
    /// Optional user name and password.
    pub credentials: Option<Credentials>,
    /// Keep-alive interval (at least 5 s).
    pub keep_alive: Duration,
    /// `true`: a clean session; `false`: a persistent session (subscriptions and queued QoS 1/2
    /// messages survive a disconnect for [`Config::session_expiry`]).
    pub clean_start: bool,
    /// How long the broker keeps a persistent session after a disconnect.
    pub session_expiry: Duration,
    /// QoS used for publishing and subscribing unless overridden.
    pub default_qos: Qos,
    /// QoS per address template (first match wins), e.g. from AsyncAPI MQTT bindings.
    pub qos_overrides: Vec<(Address, Qos)>,
    /// Publish every message retained.
    pub retain: bool,
    /// Publish messages to these address templates retained.
    pub retained: Vec<Address>,
    /// Topic prefix of this connection's reply inbox (`<prefix>/<client id>`).
    pub reply_prefix: String,
    /// Client-id prefix of the persistent session behind a durable subscription
    /// (`<prefix><durable name>`).
    pub durable_prefix: String,
    /// Largest packet accepted or sent, in bytes.
    pub max_packet_size: u32,
    /// Capacity of the request queue to the MQTT event loop.
    pub request_capacity: usize,
}

impl Config {
    /// Settings for the broker at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Config {
            host: host.into(),
            port,
            client_id: None,
            credentials: None,
            keep_alive: Duration::from_secs(30),
            clean_start: true,
            session_expiry: Duration::from_secs(3600),
            default_qos: Qos::AtLeastOnce,
            qos_overrides: Vec::new(),
            retain: false,
            retained: Vec::new(),
            reply_prefix: "ruststream/inbox".to_owned(),
            durable_prefix: "rs-durable-".to_owned(),
            max_packet_size: 1024 * 1024,
            request_capacity: 1024,
        }
    }

    /// Settings from a URL: `mqtt://[user[:password]@]host[:port][?options]` (also `tcp://`;
    /// port 1883 by default). Options: `client_id`, `keep_alive` and `session_expiry`
    /// (seconds), `clean_start` (`true`/`false`), `qos` (default QoS, 0, 1 or 2), `retain`
    /// (`true`/`false`), `max_packet_size` (bytes).
    ///
    /// ```
    /// use ruststream_mqtt::{Config, Qos};
    /// let c = Config::from_url("mqtt://app:s3cret@broker:1884?client_id=svc&qos=2")?;
    /// assert_eq!((c.host.as_str(), c.port), ("broker", 1884));
    /// assert_eq!((c.client_id.as_deref(), c.default_qos), (Some("svc"), Qos::ExactlyOnce));
    /// let e = Config::from_url("mqtt://app:s3cret@broker?qos=3").unwrap_err().to_string();
    /// assert!(e.contains("option `qos`") && !e.contains("s3cret"), "{e}");
    /// # Ok::<(), ruststream::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`ruststream::Error::Config`] naming the bad part (scheme, host, port, path, option or
    /// value), without the password.
    pub fn from_url(url: &str) -> ruststream::Result<Config> {
        let mut u =
            ruststream::broker::url::BrokerUrl::parse(url, &["mqtt", "tcp", "mqtts", "ssl"])?;
        if matches!(u.scheme.as_str(), "mqtts" | "ssl") {
            return Err(u.error(format_args!(
                "scheme `{}`: TLS is not compiled into ruststream-mqtt",
                u.scheme
            )));
        }
        if u.hosts.len() > 1 {
            return Err(u.error("more than one host"));
        }
        if !u.path.is_empty() {
            return Err(u.error(format_args!("path `/{}`: MQTT URLs have none", u.path)));
        }
        let host = u.hosts[0]
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        let mut config = Config::new(host, u.port_or(1883));
        match (u.user.clone(), u.password()) {
            (Some(user), password) => {
                config = config.credentials(user, password.unwrap_or_default());
            }
            (None, Some(_)) => return Err(u.error("a password without a user name")),
            (None, None) => {}
        }
        config.client_id = u.take("client_id");
        if let Some(t) = u.seconds("keep_alive")? {
            config = config.keep_alive(t);
        }
        if let Some(t) = u.seconds("session_expiry")? {
            config.session_expiry = t;
        }
        if let Some(clean) = u.option("clean_start")? {
            config.clean_start = clean;
        }
        if let Some(level) = u.option::<u8>("qos")? {
            config.default_qos = Qos::from_level(level)
                .ok_or_else(|| u.error(format_args!("option `qos`: `{level}` is not 0, 1 or 2")))?;
        }
        if let Some(retain) = u.option("retain")? {
            config.retain = retain;
        }
        if let Some(size) = u.option("max_packet_size")? {
            config.max_packet_size = size;
        }
        u.finish_known(&[
            "client_id",
            "keep_alive",
            "session_expiry",
            "clean_start",
            "qos",
            "retain",
            "max_packet_size",
        ])?;
        Ok(config)
    }

    /// Fixed client id (builder style).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }

    /// User name and password (builder style).
    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Keep-alive interval, at least 5 s (builder style).
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = keep_alive.max(Duration::from_secs(5));
        self
    }

    /// Persistent session under `client_id` (builder style): `clean_start = false`.
    pub fn persistent_session(mut self, client_id: impl Into<String>, expiry: Duration) -> Self {
        self.client_id = Some(client_id.into());
        self.clean_start = false;
        self.session_expiry = expiry;
        self
    }

    /// How long the broker keeps a persistent session (also those of durable subscriptions)
    /// after a disconnect (builder style).
    pub fn session_expiry(mut self, expiry: Duration) -> Self {
        self.session_expiry = expiry;
        self
    }

    /// Default QoS (builder style).
    pub fn default_qos(mut self, qos: Qos) -> Self {
        self.default_qos = qos;
        self
    }

    /// QoS for addresses matching `template` (builder style). Invalid templates are ignored
    /// with a warning in the log.
    pub fn qos_for(mut self, template: &str, qos: Qos) -> Self {
        match Address::parse(template) {
            Ok(a) => self.qos_overrides.push((a, qos)),
            Err(e) => tracing::warn!(template, error = %e, "mqtt: ignoring QoS override"),
        }
        self
    }

    /// Retain every published message (builder style).
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Retain messages published to addresses matching `template` (builder style).
    pub fn retain_for(mut self, template: &str) -> Self {
        match Address::parse(template) {
            Ok(a) => self.retained.push(a),
            Err(e) => tracing::warn!(template, error = %e, "mqtt: ignoring retain template"),
        }
        self
    }

    /// QoS for a concrete address.
    pub fn qos_of(&self, address: &str) -> Qos {
        self.qos_overrides
            .iter()
            .find(|(a, _)| a.matches(address))
            .map(|(_, q)| *q)
            .unwrap_or(self.default_qos)
    }

    /// QoS for a subscription template (an override whose template is the same text, else
    /// the default).
    pub(crate) fn qos_of_template(&self, template: &Address) -> Qos {
        self.qos_overrides
            .iter()
            .find(|(a, _)| a.as_str() == template.as_str() || a.matches(template.as_str()))
            .map(|(_, q)| *q)
            .unwrap_or(self.default_qos)
    }

    /// Whether a publish to `address` is retained.
    pub fn retain_of(&self, address: &str) -> bool {
        self.retain || self.retained.iter().any(|a| a.matches(address))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new("127.0.0.1", 1883)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_url_reads_every_part_and_names_the_bad_one() {
        let c = Config::from_url("mqtt://127.0.0.1").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.credentials.is_none()),
            ("127.0.0.1", 1883, true)
        );
        let c = Config::from_url(
            "tcp://u:p%40ss@[::1]:1884?keep_alive=10&session_expiry=60&clean_start=false\
             &qos=0&retain=yes&max_packet_size=4096",
        )
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("::1", 1884));
        let creds = c.credentials.as_ref().unwrap();
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("u", "p@ss")
        );
        assert_eq!(c.keep_alive, Duration::from_secs(10));
        assert_eq!(c.session_expiry, Duration::from_secs(60));
        assert!(!c.clean_start && c.retain);
        assert_eq!((c.default_qos, c.max_packet_size), (Qos::AtMostOnce, 4096));
        for (url, part) in [
            ("amqp://u:hunter2@h", "scheme `amqp`"),
            ("mqtts://u:hunter2@h", "TLS"),
            ("mqtt://u:hunter2@h:0", "port `0`"),
            ("mqtt://u:hunter2@h/x", "path `/x`"),
            ("mqtt://u:hunter2@h?qos=9", "option `qos`"),
            (
                "mqtt://u:hunter2@h?clean_start=maybe",
                "option `clean_start`",
            ),
            ("mqtt://u:hunter2@h?colour=red", "unknown option `colour`"),
        ] {
            let e = Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(part), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }
}
