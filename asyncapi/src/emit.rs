//! Writing a [`Document`] back out as an AsyncAPI 3.0.0 or 3.1.0 document (a 2.x → 3.x
//! converter and the source of `asyncapi gen`).
//!
//! Bindings keep their meaning in the version written: a `bindingVersion` that version's
//! schema does not know is dropped and the fields the binding's schema does not define are
//! converted (an HTTP operation's 0.1.0 `type: request` is implied and dropped) or kept as
//! `x-` extensions (e.g. AMQP `replyTo`, HTTP `type: response`), so the output passes the
//! official schema.
//!
//! Messages go to `components/messages/<id>` and channels reference them; schemas go to
//! `components/schemas`. Loading the output gives a model equal to the input, locations and
//! `source_version` aside.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::diagnostic::escape_pointer_segment;
use crate::model::*;
use crate::schemas::sanitize_name;

/// The AsyncAPI version written by [`to_v3`], [`to_yaml`] and [`to_json`].
pub const EMITTED_VERSION: &str = "3.0.0";

/// The AsyncAPI versions [`to_version`] writes.
pub const EMITTABLE_VERSIONS: &[&str] = &["3.0.0", "3.1.0"];

fn key(id: &str) -> String {
    sanitize_name(id)
}

fn reference(section: &str, id: &str) -> Value {
    json!({ "$ref": format!("#/{section}/{}", escape_pointer_segment(&key(id))) })
}

fn put_str(m: &mut Map<String, Value>, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        m.insert(k.to_string(), Value::String(v.clone()));
    }
}

fn put_list(m: &mut Map<String, Value>, k: &str, v: &[String]) {
    if !v.is_empty() {
        m.insert(k.to_string(), json!(v));
    }
}

fn put_ext(m: &mut Map<String, Value>, ext: &BTreeMap<String, Value>) {
    for (k, v) in ext {
        m.insert(k.clone(), v.clone());
    }
}

fn put_bindings(m: &mut Map<String, Value>, b: &Value, object: &str, version: &str) {
    if !b.is_null() {
        m.insert(
            "bindings".to_string(),
            crate::official::fit_bindings(b, object, version),
        );
    }
}

fn external_docs(d: &ExternalDocs) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "description", &d.description);
    m.insert("url".to_string(), Value::String(d.url.clone()));
    Value::Object(m)
}

fn put_docs(m: &mut Map<String, Value>, tags: &[Tag], docs: &Option<ExternalDocs>) {
    if !tags.is_empty() {
        let tags = tags
            .iter()
            .map(|t| {
                let mut tm = Map::new();
                tm.insert("name".to_string(), Value::String(t.name.clone()));
                put_str(&mut tm, "description", &t.description);
                if let Some(d) = &t.external_docs {
                    tm.insert("externalDocs".to_string(), external_docs(d));
                }
                Value::Object(tm)
            })
            .collect();
        m.insert("tags".to_string(), Value::Array(tags));
    }
    if let Some(d) = docs {
        m.insert("externalDocs".to_string(), external_docs(d));
    }
}

fn security(doc: &Document, reqs: &[SecurityRequirement]) -> Value {
    Value::Array(
        reqs.iter()
            .map(|r| {
                if r.scopes.is_empty() {
                    return reference("components/securitySchemes", &r.scheme);
                }
                let mut raw = doc
                    .security_scheme(&r.scheme)
                    .map(|s| s.raw.clone())
                    .unwrap_or_else(|| json!({ "type": "oauth2" }));
                if let Value::Object(m) = &mut raw {
                    m.insert("scopes".to_string(), json!(r.scopes));
                }
                raw
            })
            .collect(),
    )
}

fn message_ref(channel: &str, message: &str) -> Value {
    json!({ "$ref": format!(
        "#/channels/{}/messages/{}",
        escape_pointer_segment(&key(channel)),
        escape_pointer_segment(&key(message))
    ) })
}

/// The document as an AsyncAPI 3.0.0 JSON value.
pub fn to_v3(doc: &Document) -> Value {
    to_version(doc, EMITTED_VERSION)
}

/// The document as an AsyncAPI JSON value of `version`, one of [`EMITTABLE_VERSIONS`]
/// (another version is written as 3.0.0).
pub fn to_version(doc: &Document, version: &str) -> Value {
    let version = if EMITTABLE_VERSIONS.contains(&version) {
        version
    } else {
        EMITTED_VERSION
    };
    let mut root = Map::new();
    root.insert("asyncapi".to_string(), json!(version));
    put_str(&mut root, "id", &doc.id);

    let i = &doc.info;
    let mut info = Map::new();
    info.insert("title".to_string(), json!(i.title));
    info.insert("version".to_string(), json!(i.version));
    put_str(&mut info, "description", &i.description);
    put_str(&mut info, "termsOfService", &i.terms_of_service);
    if let Some(c) = &i.contact {
        let mut cm = Map::new();
        put_str(&mut cm, "name", &c.name);
        put_str(&mut cm, "url", &c.url);
        put_str(&mut cm, "email", &c.email);
        info.insert("contact".to_string(), Value::Object(cm));
    }
    if let Some(l) = &i.license {
        let mut lm = Map::new();
        lm.insert("name".to_string(), json!(l.name));
        put_str(&mut lm, "url", &l.url);
        info.insert("license".to_string(), Value::Object(lm));
    }
    put_docs(&mut info, &i.tags, &i.external_docs);
    put_ext(&mut info, &i.extensions);
    root.insert("info".to_string(), Value::Object(info));
    put_str(&mut root, "defaultContentType", &doc.default_content_type);

    if !doc.servers.is_empty() {
        let mut servers = Map::new();
        for s in &doc.servers {
            let mut m = Map::new();
            m.insert("host".to_string(), json!(s.host));
            m.insert("protocol".to_string(), json!(s.protocol));
            put_str(&mut m, "protocolVersion", &s.protocol_version);
            put_str(&mut m, "pathname", &s.pathname);
            put_str(&mut m, "title", &s.title);
            put_str(&mut m, "summary", &s.summary);
            put_str(&mut m, "description", &s.description);
            if !s.variables.is_empty() {
                let mut vars = Map::new();
                for v in &s.variables {
                    let mut vm = Map::new();
                    put_list(&mut vm, "enum", &v.enum_values);
                    put_str(&mut vm, "default", &v.default);
                    put_str(&mut vm, "description", &v.description);
                    put_list(&mut vm, "examples", &v.examples);
                    vars.insert(v.name.clone(), Value::Object(vm));
                }
                m.insert("variables".to_string(), Value::Object(vars));
            }
            if !s.security.is_empty() {
                m.insert("security".to_string(), security(doc, &s.security));
            }
            put_docs(&mut m, &s.tags, &s.external_docs);
            put_bindings(&mut m, &s.bindings, "server", version);
            put_ext(&mut m, &s.extensions);
            servers.insert(key(&s.name), Value::Object(m));
        }
        root.insert("servers".to_string(), Value::Object(servers));
    }

    let mut channels = Map::new();
    for c in &doc.channels {
        let mut m = Map::new();
        m.insert(
            "address".to_string(),
            c.address.clone().map_or(Value::Null, Value::String),
        );
        put_str(&mut m, "title", &c.title);
        put_str(&mut m, "summary", &c.summary);
        put_str(&mut m, "description", &c.description);
        if !c.servers.is_empty() {
            let refs = c.servers.iter().map(|s| reference("servers", s)).collect();
            m.insert("servers".to_string(), Value::Array(refs));
        }
        // 3.x refuses parameters the address does not use (2.x accepted them when the address
        // had none): they meant nothing, so they are not written.
        let used = c
            .address
            .as_deref()
            .and_then(|a| crate::validate::address_parameters(a).ok())
            .unwrap_or_default();
        let parameters: Vec<&Parameter> = c
            .parameters
            .iter()
            .filter(|p| used.contains(&p.name))
            .collect();
        if !parameters.is_empty() {
            let mut params = Map::new();
            for p in parameters {
                let mut pm = Map::new();
                put_list(&mut pm, "enum", &p.enum_values);
                put_str(&mut pm, "default", &p.default);
                put_str(&mut pm, "description", &p.description);
                put_list(&mut pm, "examples", &p.examples);
                put_str(&mut pm, "location", &p.location);
                params.insert(p.name.clone(), Value::Object(pm));
            }
            m.insert("parameters".to_string(), Value::Object(params));
        }
        if !c.messages.is_empty() {
            let mut msgs = Map::new();
            for id in &c.messages {
                msgs.insert(key(id), reference("components/messages", id));
            }
            m.insert("messages".to_string(), Value::Object(msgs));
        }
        put_docs(&mut m, &c.tags, &c.external_docs);
        put_bindings(&mut m, &c.bindings, "channel", version);
        put_ext(&mut m, &c.extensions);
        channels.insert(key(&c.id), Value::Object(m));
    }
    if !channels.is_empty() {
        root.insert("channels".to_string(), Value::Object(channels));
    }

    let mut operations = Map::new();
    for o in &doc.operations {
        let mut m = Map::new();
        m.insert("action".to_string(), json!(o.action.as_str()));
        m.insert("channel".to_string(), reference("channels", &o.channel));
        put_str(&mut m, "title", &o.title);
        put_str(&mut m, "summary", &o.summary);
        put_str(&mut m, "description", &o.description);
        if !o.security.is_empty() {
            m.insert("security".to_string(), security(doc, &o.security));
        }
        put_docs(&mut m, &o.tags, &o.external_docs);
        put_bindings(&mut m, &o.bindings, "operation", version);
        let msgs = o
            .messages
            .iter()
            .map(|id| message_ref(&o.channel, id))
            .collect();
        m.insert("messages".to_string(), Value::Array(msgs));
        if let Some(r) = &o.reply {
            let mut rm = Map::new();
            if let Some(a) = &r.address {
                rm.insert("address".to_string(), json!({ "location": a }));
            }
            if let Some(ch) = &r.channel {
                rm.insert("channel".to_string(), reference("channels", ch));
                let msgs = r.messages.iter().map(|id| message_ref(ch, id)).collect();
                rm.insert("messages".to_string(), Value::Array(msgs));
            }
            m.insert("reply".to_string(), Value::Object(rm));
        }
        put_ext(&mut m, &o.extensions);
        operations.insert(key(&o.id), Value::Object(m));
    }
    if !operations.is_empty() {
        root.insert("operations".to_string(), Value::Object(operations));
    }

    let mut components = Map::new();
    if !doc.schemas.is_empty() {
        let schemas = doc
            .schemas
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        components.insert("schemas".to_string(), Value::Object(schemas));
    }
    if !doc.messages.is_empty() {
        let mut msgs = Map::new();
        for msg in &doc.messages {
            msgs.insert(key(&msg.id), message(msg, version));
        }
        components.insert("messages".to_string(), Value::Object(msgs));
    }
    if !doc.security_schemes.is_empty() {
        let schemes = doc
            .security_schemes
            .iter()
            .map(|s| (key(&s.name), s.raw.clone()))
            .collect();
        components.insert("securitySchemes".to_string(), Value::Object(schemes));
    }
    if !components.is_empty() {
        root.insert("components".to_string(), Value::Object(components));
    }
    put_ext(&mut root, &doc.extensions);
    Value::Object(root)
}

fn message(msg: &Message, version: &str) -> Value {
    let mut m = Map::new();
    put_str(&mut m, "name", &msg.name);
    put_str(&mut m, "title", &msg.title);
    put_str(&mut m, "summary", &msg.summary);
    put_str(&mut m, "description", &msg.description);
    m.insert("contentType".to_string(), json!(msg.content_type));
    if let Some(h) = &msg.headers {
        m.insert("headers".to_string(), h.clone());
    }
    if let Some(p) = &msg.payload {
        let payload = match &msg.schema_format {
            Some(f) => json!({ "schemaFormat": f, "schema": p }),
            None => p.clone(),
        };
        m.insert("payload".to_string(), payload);
    }
    if let Some(c) = &msg.correlation_id {
        let mut cm = Map::new();
        put_str(&mut cm, "description", &c.description);
        cm.insert("location".to_string(), json!(c.location));
        m.insert("correlationId".to_string(), Value::Object(cm));
    }
    put_docs(&mut m, &msg.tags, &msg.external_docs);
    put_bindings(&mut m, &msg.bindings, "message", version);
    if !msg.examples.is_empty() {
        m.insert("examples".to_string(), Value::Array(msg.examples.clone()));
    }
    put_ext(&mut m, &msg.extensions);
    Value::Object(m)
}

/// The document as AsyncAPI YAML of `version` (see [`to_version`]).
pub fn to_yaml_version(doc: &Document, version: &str) -> String {
    serde_norway::to_string(&to_version(doc, version))
        .unwrap_or_else(|e| format!("# cannot write YAML: {e}\n"))
}

/// The document as pretty-printed AsyncAPI JSON of `version` (see [`to_version`]).
pub fn to_json_version(doc: &Document, version: &str) -> String {
    serde_json::to_string_pretty(&to_version(doc, version))
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The document as AsyncAPI 3.0.0 YAML.
pub fn to_yaml(doc: &Document) -> String {
    serde_norway::to_string(&to_v3(doc)).unwrap_or_else(|e| format!("# cannot write YAML: {e}\n"))
}

/// The document as pretty-printed AsyncAPI 3.0.0 JSON.
pub fn to_json(doc: &Document) -> String {
    serde_json::to_string_pretty(&to_v3(doc)).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
