//! The AsyncAPI 3.0.0 document an app emits (`asyncapi gen`): the embedded spec, plus the
//! hand-written routes and the servers actually configured, with credentials stripped.

use serde_json::{Map, Value, json};

/// A server the app is configured with, as it appears in the emitted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerDoc {
    /// Key under `servers` (e.g. `"production"`).
    pub name: String,
    /// Connection URL as configured; credentials, query and fragment are dropped when emitted.
    pub url: String,
    /// Protocol (`"nats"`, `"mqtt"`, …); taken from the URL scheme when empty.
    pub protocol: String,
    /// Free-text description.
    pub description: Option<String>,
}

impl ServerDoc {
    /// A server named `name` reached at `url`.
    pub fn new(name: impl Into<String>, url: impl Into<String>) -> Self {
        ServerDoc {
            name: name.into(),
            url: url.into(),
            protocol: String::new(),
            description: None,
        }
    }

    /// Set the protocol (builder style).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocol = protocol.into();
        self
    }

    /// Set the description (builder style).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    fn to_value(&self) -> Value {
        let url = SafeUrl::parse(&self.url);
        let protocol = if self.protocol.is_empty() {
            url.scheme.clone().unwrap_or_else(|| "unknown".to_owned())
        } else {
            self.protocol.clone()
        };
        let mut server = Map::new();
        server.insert("host".into(), Value::String(url.host));
        server.insert("protocol".into(), Value::String(protocol));
        if let Some(path) = url.path {
            server.insert("pathname".into(), Value::String(path));
        }
        if let Some(d) = &self.description {
            server.insert("description".into(), Value::String(d.clone()));
        }
        Value::Object(server)
    }
}

/// The parts of a URL that are safe to publish: no user info, no query, no fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeUrl {
    /// Scheme, if the URL has one.
    pub scheme: Option<String>,
    /// `host[:port]` without any `user:password@`.
    pub host: String,
    /// Path, when not empty or `/`.
    pub path: Option<String>,
}

impl SafeUrl {
    /// Split `url` and drop what may carry secrets (user info, query string, fragment).
    pub fn parse(url: &str) -> Self {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, url),
        };
        let rest = rest.split(['?', '#']).next().unwrap_or("");
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        // The last `@` ends the user info (passwords may contain `@`).
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        SafeUrl {
            scheme,
            host: host.to_owned(),
            path: path.filter(|p| *p != "/").map(str::to_owned),
        }
    }

    /// `scheme://host[path]`, safe to log.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(scheme) = &self.scheme {
            s.push_str(scheme);
            s.push_str("://");
        }
        s.push_str(&self.host);
        if let Some(p) = &self.path {
            s.push_str(p);
        }
        s
    }
}

/// Which way a hand-written route's messages flow, seen from the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The app consumes messages on the address.
    Receive,
    /// The app publishes messages to the address.
    Send,
}

/// A hand-written route (or publisher) as it appears in the emitted document.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDoc {
    /// Operation id (also used as channel and message key).
    pub operation: String,
    /// Channel address (template with `{param}`s).
    pub address: String,
    /// Receive or send.
    pub action: Action,
    /// Content type of its messages.
    pub content_type: String,
    /// JSON Schema of the payload (`{}` = anything).
    pub payload: Value,
    /// Free-text description.
    pub description: Option<String>,
}

impl RouteDoc {
    /// A route the app receives on.
    pub fn receive(operation: impl Into<String>, address: impl Into<String>) -> Self {
        RouteDoc {
            operation: operation.into(),
            address: address.into(),
            action: Action::Receive,
            content_type: "application/json".to_owned(),
            payload: json!({}),
            description: None,
        }
    }

    /// An address the app sends to.
    pub fn send(operation: impl Into<String>, address: impl Into<String>) -> Self {
        RouteDoc {
            action: Action::Send,
            ..RouteDoc::receive(operation, address)
        }
    }

    /// Set the payload's JSON Schema (builder style).
    pub fn payload(mut self, schema: Value) -> Self {
        self.payload = schema;
        self
    }

    /// Set the content type (builder style).
    pub fn content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = content_type.into();
        self
    }

    /// Set the description (builder style).
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn object<'a>(parent: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = parent
        .entry(key.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => map,
        _ => unreachable!("just made an object"),
    }
}

/// Parameter names in an address template (`a/{x}/b` → `x`).
fn parameters(address: &str) -> Vec<&str> {
    address
        .split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(name, _)| name))
        .filter(|n| !n.is_empty())
        .collect()
}

/// Build the AsyncAPI 3.0.0 document of an app.
///
/// `embedded` is the generated code's normalised document (AsyncAPI 3.x JSON) if any. The
/// configured `servers` replace the document's servers when not empty (channels that pointed at
/// servers that are gone then apply to all servers); `routes` add channels and operations.
pub fn document(
    title: &str,
    version: &str,
    embedded: Option<&str>,
    servers: &[ServerDoc],
    routes: &[RouteDoc],
) -> Value {
    let mut doc = match embedded.map(serde_json::from_str::<Value>) {
        Some(Ok(Value::Object(map)))
            if map
                .get("asyncapi")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("3.")) =>
        {
            map
        }
        Some(Ok(_)) => {
            tracing::warn!("the embedded spec is not an AsyncAPI 3.x object; emitting without it");
            Map::new()
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "the embedded spec is not valid JSON; emitting without it");
            Map::new()
        }
        None => Map::new(),
    };
    doc.insert("asyncapi".into(), Value::String("3.0.0".into()));
    {
        let info = object(&mut doc, "info");
        info.entry("title")
            .or_insert_with(|| Value::String(title.to_owned()));
        info.entry("version")
            .or_insert_with(|| Value::String(version.to_owned()));
    }

    if !servers.is_empty() {
        let mut map = Map::new();
        for s in servers {
            map.insert(s.name.clone(), s.to_value());
        }
        doc.insert("servers".into(), Value::Object(map));
        if let Some(Value::Object(channels)) = doc.get_mut("channels") {
            for channel in channels.values_mut() {
                let stale = channel
                    .get("servers")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter().any(|r| {
                            let target = r.get("$ref").and_then(Value::as_str).unwrap_or("");
                            let name = target.strip_prefix("#/servers/").unwrap_or(target);
                            !servers.iter().any(|s| pointer_escape(&s.name) == name)
                        })
                    });
                if stale && let Value::Object(c) = channel {
                    c.remove("servers");
                }
            }
        }
    }

    for route in routes {
        let id = &route.operation;
        let key = pointer_escape(id);
        let mut message = Map::new();
        message.insert(
            "contentType".into(),
            Value::String(route.content_type.clone()),
        );
        message.insert("payload".into(), route.payload.clone());
        let mut channel = Map::new();
        channel.insert("address".into(), Value::String(route.address.clone()));
        channel.insert("messages".into(), json!({ id.clone(): message }));
        let params = parameters(&route.address);
        if !params.is_empty() {
            let map: Map<String, Value> = params
                .into_iter()
                .map(|p| (p.to_owned(), json!({})))
                .collect();
            channel.insert("parameters".into(), Value::Object(map));
        }
        object(&mut doc, "channels").insert(id.clone(), Value::Object(channel));
        let mut operation = Map::new();
        operation.insert(
            "action".into(),
            Value::String(
                match route.action {
                    Action::Receive => "receive",
                    Action::Send => "send",
                }
                .into(),
            ),
        );
        operation.insert(
            "channel".into(),
            json!({ "$ref": format!("#/channels/{key}") }),
        );
        operation.insert(
            "messages".into(),
            json!([{ "$ref": format!("#/channels/{key}/messages/{key}") }]),
        );
        if let Some(d) = &route.description {
            operation.insert("description".into(), Value::String(d.clone()));
        }
        object(&mut doc, "operations").insert(id.clone(), Value::Object(operation));
    }
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets() {
        let u = SafeUrl::parse("nats://user:p@ss@broker.example:4222/vh?token=s3cret#frag");
        assert_eq!(u.scheme.as_deref(), Some("nats"));
        assert_eq!(u.host, "broker.example:4222");
        assert_eq!(u.path.as_deref(), Some("/vh"));
        assert_eq!(u.display(), "nats://broker.example:4222/vh");
        assert_eq!(SafeUrl::parse("localhost:1883").host, "localhost:1883");
        assert_eq!(SafeUrl::parse("amqp://h/").path, None);
    }

    #[test]
    fn routes_and_servers_are_added() {
        let embedded = r##"{"asyncapi":"3.0.0","info":{"title":"T","version":"2.0.0"},
            "servers":{"old":{"host":"x","protocol":"mqtt"}},
            "channels":{"c":{"address":"c","servers":[{"$ref":"#/servers/old"}]}}}"##;
        let doc = document(
            "ignored",
            "0.0.0",
            Some(embedded),
            &[ServerDoc::new("prod", "mqtt://u:pw@h:1883")],
            &[RouteDoc::receive("onThing", "things/{id}/made")],
        );
        assert_eq!(doc["info"]["title"], "T");
        assert_eq!(doc["servers"]["prod"]["host"], "h:1883");
        assert!(doc["servers"].get("old").is_none());
        assert!(doc["channels"]["c"].get("servers").is_none());
        assert_eq!(doc["channels"]["onThing"]["address"], "things/{id}/made");
        assert!(doc["channels"]["onThing"]["parameters"].get("id").is_some());
        assert_eq!(doc["operations"]["onThing"]["action"], "receive");
        assert!(!doc.to_string().contains("pw"));
    }
}
