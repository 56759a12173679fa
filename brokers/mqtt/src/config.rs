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
